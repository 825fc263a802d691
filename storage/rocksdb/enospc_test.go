package rocksdb_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage/rocksdb"
)

// TestCompactReportsFailure fills the file system under a store (a 40 MiB
// tmpfs) before a full compaction that needs room for its output: Compact
// must say it failed — RocksDB's C API gives a manual compaction no
// status, so a silent failure would report a defragmentation that did not
// happen — and the store keeps its data and takes writes once there is
// space. It skips where the test cannot mount a tmpfs.
func TestCompactReportsFailure(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (root and mount(8) are needed): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	cfg := rocksdb.DefaultConfig()
	cfg.DisableWAL = true
	b, err := rocksdb.Open(filepath.Join(dir, "db"), cfg)
	require.NoError(t, err)
	defer b.Close()
	v := make([]byte, 64<<10)
	for i := range 300 { // 19 MiB, incompressible
		_, _ = rand.Read(v)
		bt := b.NewBatch()
		bt.Set(fmt.Appendf(nil, "k%05d", i), v)
		require.NoError(t, bt.Commit(false))
	}
	require.NoError(t, b.Sync())
	for i := range 250 {
		bt := b.NewBatch()
		bt.Delete(fmt.Appendf(nil, "k%05d", i))
		require.NoError(t, bt.Commit(false))
	}

	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	filler := filepath.Join(dir, "filler")
	out, err := exec.Command("fallocate", "-l", fmt.Sprint(int64(st.Bavail)*st.Bsize-256<<10), filler).CombinedOutput()
	require.NoError(t, err, "%s", out)
	err = b.Compact(nil, nil)
	require.Error(t, err, "a compaction with 256 KiB free for 3 MiB of output")
	require.True(t, errors.Is(err, rocksdb.ErrCompactionFailed), "%v", err)

	require.NoError(t, os.Remove(filler))
	// As much room as RocksDB wants for a compaction's headroom (several
	// times its input).
	out, err = exec.Command("mount", "-o", "remount,size=1g", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, b.Compact(nil, nil), "with space again")
	for i := 250; i < 300; i++ {
		got, err := b.Get(fmt.Appendf(nil, "k%05d", i))
		require.NoError(t, err)
		require.Len(t, got, len(v))
	}
	bt := b.NewBatch()
	bt.Set([]byte("after"), []byte("space"))
	require.NoError(t, bt.Commit(true))
}
