package robustness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/compat-tests/internal/procs"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it at cleanup (lazily, so a process still holding a file cannot keep it).
// It skips when the machine does not let the test mount one.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (root and mount(8) are needed): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// remountTmpfs changes the size of the tmpfs mounted on dir.
func remountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}

// TestDiskFull fills the file system a member's data dir is on until
// writes hit real ENOSPC (a 160 MiB tmpfs, most of it taken by a filler
// file): the member answers errors or stops — it never acknowledges a
// write it did not make durable — and once there is space again it starts
// on the same data dir with every acknowledged write and takes writes.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a file system; skipped under -short")
	}
	if os.Getenv("ROBUSTNESS_TARGET") == "etcd" {
		t.Skip("MetaStore only")
	}
	const size = 160 << 20
	dir := mountTmpfs(t, size)
	c := procs.StartMetastoreIn(t, dir, 1)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// Leave about 24 MiB free: the WAL's preallocated segment is taken
	// already, so the writes below run the store and the log out of room.
	var st fsStat
	if err := st.of(dir); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if free := st.free(); free > 24<<20 {
		if out, err := exec.Command("fallocate", "-l", fmt.Sprint(free-24<<20), filler).CombinedOutput(); err != nil {
			t.Fatalf("fallocate: %v: %s", err, out)
		}
	}

	value := strings.Repeat("x", 64<<10)
	acked := map[string]bool{}
	var lastErr error
	failures := 0
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; failures < 20 && time.Now().Before(deadline); i++ {
		key := fmt.Sprintf("full/%06d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, key, value)
		cancel()
		if err == nil {
			acked[key] = true
			continue
		}
		lastErr = err
		failures++
		if !c.Running(0) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if failures == 0 {
		t.Fatalf("%d puts of 64 KiB never ran out of space", len(acked))
	}
	t.Logf("%d puts acknowledged before the disk filled; then %d failures, last: %v; member running: %v", len(acked), failures, lastErr, c.Running(0))
	if !strings.Contains(c.Log(0), "no space left on device") {
		t.Errorf("the member's log does not name ENOSPC")
	}

	// Space again: the member (restarted if it stopped) has every
	// acknowledged write and takes new ones.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	remountTmpfs(t, dir, 1<<30)
	if c.Running(0) {
		c.Kill(0)
	}
	c.Start(0)
	if err := c.Wait(0, time.Minute); err != nil {
		t.Fatal(err)
	}
	cli2, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if lost := missing(t, c, "full/", acked); lost > 0 {
		t.Fatalf("%d of %d acknowledged puts are gone after the disk filled", lost, len(acked))
	}
	if _, err := cli2.Put(ctx, "after", "space"); err != nil {
		t.Fatalf("no write after space came back: %v", err)
	}
	t.Logf("all %d acknowledged puts present after restart", len(acked))
}
