package compare

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CPU accounting reads what a busy process used: spinning until the
// kernel's counter moves (no wall-clock assumption; the deadline only
// guards against a hang).
func TestCPUTime(t *testing.T) {
	d, err := procCPUTime(os.Getpid())
	require.NoError(t, err)
	d2 := d
	for deadline := time.Now().Add(time.Minute); d2 == d && time.Now().Before(deadline); {
		x := 0
		for i := range 10_000_000 {
			x += i
		}
		_ = x
		d2, err = procCPUTime(os.Getpid())
		require.NoError(t, err)
	}
	require.Greater(t, d2, d, "spinning used CPU")
	require.Positive(t, selfCPUTime())

	cmd := exec.Command("sleep", "5")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	cl := &Cluster{procs: []*exec.Cmd{cmd}}
	c, err := cl.CPUTime()
	require.NoError(t, err)
	require.Less(t, c, d2, "a sleeping process used less than this spinning one")
	_, err = procCPUTime(-1)
	require.Error(t, err)
}
