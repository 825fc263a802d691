package compare

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CPU accounting reads what a busy process used.
func TestCPUTime(t *testing.T) {
	d, err := procCPUTime(os.Getpid())
	require.NoError(t, err)
	spin := time.Now()
	for time.Since(spin) < 300*time.Millisecond {
	}
	d2, err := procCPUTime(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, d2, d, "spinning used CPU")
	require.Positive(t, selfCPUTime())

	cmd := exec.Command("sleep", "5")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	cl := &Cluster{procs: []*exec.Cmd{cmd}}
	c, err := cl.CPUTime()
	require.NoError(t, err)
	require.Less(t, c, time.Second, "a sleeping process uses next to none")
	_, err = procCPUTime(-1)
	require.Error(t, err)
}
