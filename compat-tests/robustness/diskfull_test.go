package robustness

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
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
	cli2 := spaceAgain(t, c, 0, filler, dir, true)
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

// spaceAgain gives member i space again: it removes filler, grows the
// tmpfs on dir (unless dir is "") to 1 GiB, and starts the member if it
// stopped — or, with restart, kills and starts it even if it still runs.
// It waits for the member and returns a client of it alone.
func spaceAgain(t *testing.T, c *procs.Cluster, i int, filler, dir string, restart bool) *clientv3.Client {
	t.Helper()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if dir != "" {
		remountTmpfs(t, dir, 1<<30)
	}
	if restart && c.Running(i) {
		c.Kill(i)
	}
	if !c.Running(i) {
		c.Start(i)
		if err := c.Wait(i, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints[i : i+1], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// fill leaves about keep bytes free on the file system of dir, with a
// filler file it returns (to remove for space again).
func fill(t *testing.T, dir string, keep int64) string {
	t.Helper()
	var st fsStat
	if err := st.of(dir); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, fmt.Sprintf("filler-%d", time.Now().UnixNano()))
	if free := st.free(); free > keep {
		if out, err := exec.Command("fallocate", "-l", fmt.Sprint(free-keep), filler).CombinedOutput(); err != nil {
			t.Fatalf("fallocate: %v: %s", err, out)
		}
	}
	return filler
}

// TestDiskFullDuringCompaction runs a compaction and a defragmentation —
// which write as they reclaim: deletion markers, then every live record
// again — on a member whose file system has 1 MiB left, then puts.
// Whatever fails with ENOSPC, nothing acknowledged is lost or rolled back:
// once there is space again the member starts on the same data dir, every
// key holds its last acknowledged value or a later attempted one, the
// compaction answers as compacted, and writes, compaction and
// defragmentation work.
func TestDiskFullDuringCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a file system; skipped under -short")
	}
	if os.Getenv("ROBUSTNESS_TARGET") == "etcd" {
		t.Skip("MetaStore only")
	}
	dir := mountTmpfs(t, 160<<20)
	c := procs.StartMetastoreIn(t, dir, 1)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// 40 keys written 8 times each, 64 KiB a value: 20 MiB, 7/8 of it
	// history for the compaction to reclaim.
	const keys = 40
	value := func(k, round int) string { // 64 KiB that RocksDB cannot compress away
		b := make([]byte, 48<<10)
		rng := rand.New(rand.NewPCG(uint64(k), uint64(round)))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return fmt.Sprintf("%d/%d/%s", k, round, base64.StdEncoding.EncodeToString(b))
	}
	acked := make([]int, keys)     // last acknowledged round per key
	attempted := make([]int, keys) // last attempted round per key
	put := func(k, round int) error {
		attempted[k] = round
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := cli.Put(ctx, fmt.Sprintf("compact/%03d", k), value(k, round))
		if err == nil {
			acked[k] = round
		}
		return err
	}
	var rev int64
	for round := 1; round <= 8; round++ {
		for k := range keys {
			if err := put(k, round); err != nil {
				t.Fatalf("put with space left: %v", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	r, err := cli.Get(ctx, "compact/000")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	rev = r.Header.Revision

	filler := fill(t, dir, 1<<20)
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	_, compactErr := cli.Compact(ctx, rev, clientv3.WithCompactPhysical())
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	_, defragErr := cli.Defragment(ctx, c.Endpoints[0])
	cancel()
	// Then puts, until they fail too.
	failures := 0
	for round := 9; round < 20 && failures < 5; round++ {
		for k := 0; k < keys && failures < 5; k++ {
			if put(k, round) != nil {
				failures++
			}
		}
	}
	t.Logf("with 1 MiB free: compact: %v; defragment: %v; %d puts failed; member running: %v", compactErr, defragErr, failures, c.Running(0))
	if defragErr == nil {
		// 1 MiB cannot hold the compacted store's live records again.
		t.Errorf("the defragmentation reported success with 1 MiB free")
	}
	if failures == 0 {
		t.Fatalf("no put ran out of space")
	}
	if !strings.Contains(strings.ToLower(c.Log(0)), "no space left on device") {
		t.Errorf("the member's log does not name ENOSPC")
	}

	cli2 := spaceAgain(t, c, 0, filler, "", true)
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := cli2.Get(ctx, "compact/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != keys {
		t.Fatalf("%d of %d keys after the restart", len(got.Kvs), keys)
	}
	for _, kv := range got.Kvs {
		var k, round int
		if _, err := fmt.Sscanf(string(kv.Value), "%d/%d/", &k, &round); err != nil {
			t.Fatalf("%s holds %.20q: %v", kv.Key, kv.Value, err)
		}
		if string(kv.Value) != value(k, round) || round < acked[k] || round > attempted[k] {
			t.Errorf("%s holds round %d; acknowledged %d, attempted up to %d", kv.Key, round, acked[k], attempted[k])
		}
	}
	// The compaction either happened or is refused as not yet done; a
	// revision below it answers as compacted once it has.
	if _, err := cli2.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil && !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("compact at %d after the restart: %v", rev, err)
	}
	if _, err := cli2.Get(ctx, "compact/000", clientv3.WithRev(rev-1)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("a read below the compaction: %v, want compacted", err)
	}
	if _, err := cli2.Defragment(ctx, c.Endpoints[0]); err != nil {
		t.Fatalf("defragment with space: %v", err)
	}
	if _, err := cli2.Put(ctx, "after", "space"); err != nil {
		t.Fatalf("no write after space came back: %v", err)
	}
}

// incompressible returns n bytes of base64 text drawn from seed: values
// that RocksDB's compression cannot shrink below three quarters.
func incompressible(seed uint64, n int) string {
	b := make([]byte, n*3/4)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestDiskFullDuringSnapshotReceive cuts a follower off long enough that
// it must catch up by snapshot, and fills its file system (a 160 MiB
// tmpfs of its own) before the link heals: the snapshot it is sent does
// not fit. The other two members serve writes throughout; the follower
// fails the transfer (ENOSPC in its log) without taking a partial
// snapshot for a whole one; and once there is space again it catches up —
// every acknowledged put on it, HashKV equal to the others'.
func TestDiskFullDuringSnapshotReceive(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a file system; skipped under -short")
	}
	if os.Getenv("ROBUSTNESS_TARGET") == "etcd" {
		t.Skip("MetaStore only")
	}
	if _, err := procs.MetastoreBin(); err != nil {
		t.Skip(err)
	}
	base := t.TempDir()
	const full = 2 // the member on the small file system
	small := filepath.Join(base, fmt.Sprintf("m%d", full))
	if err := os.MkdirAll(small, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", 160<<20), "tmpfs", small).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (root and mount(8) are needed): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
	c := procs.Metastore(t, 3, procs.Options{Dir: base, PeerProxies: true,
		Args: []string{"--snapshot-count=100", "--snapshot-catchup-entries=100"}})
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints[:full], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The member to fill must be a follower.
	for i := range 3 {
		st, err := cli.Status(ctx, c.Endpoints[i])
		if err != nil {
			t.Fatal(err)
		}
		if i == full && st.Leader == st.Header.MemberId {
			others, err := cli.Status(ctx, c.Endpoints[0])
			if err != nil {
				t.Fatal(err)
			}
			lc, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints[full:], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			_, err = lc.MoveLeader(ctx, others.Header.MemberId)
			lc.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	acked := map[string]bool{}
	put := func(prefix string, n, size int) {
		for i := range n {
			k := fmt.Sprintf("%s/%04d", prefix, i)
			pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := cli.Put(pctx, k, incompressible(uint64(len(acked)), size))
			pcancel()
			if err != nil {
				t.Fatalf("put %s on the healthy members: %v", k, err)
			}
			acked[k] = true
		}
	}
	put("before", 50, 64<<10)

	// Cut off, it misses 30 MiB of puts and more entries than the
	// leader keeps: it must be sent a snapshot bigger than what is left
	// on its file system.
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Net.Senders(full)) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("member m%d's proxy knows only %v", full, c.Net.Senders(full))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Net.Isolate(full, procs.Link{Blackhole: true})
	c.Net.Disconnect(full)
	put("cut", 480, 64<<10)
	filler := fill(t, small, 4<<20)
	c.Net.Heal()
	deadline = time.Now().Add(time.Minute)
	for !strings.Contains(strings.ToLower(c.Log(full)), "no space left on device") {
		if time.Now().After(deadline) {
			t.Fatalf("member m%d never ran out of space receiving its snapshot; its log:\n%s", full, c.Log(full))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The others still take writes.
	put("during", 20, 1<<10)
	t.Logf("member m%d ran out of space receiving its snapshot; running: %v", full, c.Running(full))

	// Caught up: the same revision and hash as a healthy member, every
	// acknowledged put in a serializable read of its own.
	fc := spaceAgain(t, c, full, filler, small, false)
	r, err := cli.Get(ctx, "before/0000")
	if err != nil {
		t.Fatal(err)
	}
	rev := r.Header.Revision
	deadline = time.Now().Add(time.Minute)
	for {
		got, err := fc.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSerializable())
		if err == nil && got.Header.Revision >= rev {
			have := map[string]bool{}
			for _, kv := range got.Kvs {
				have[string(kv.Key)] = true
			}
			lost := 0
			for k := range acked {
				if !have[k] {
					lost++
				}
			}
			if lost > 0 {
				t.Fatalf("member m%d lacks %d of %d acknowledged puts at revision %d", full, lost, len(acked), got.Header.Revision)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member m%d not at revision %d a minute after space came back: %v", full, rev, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	want, err := cli.HashKV(ctx, c.Endpoints[0], rev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fc.HashKV(ctx, c.Endpoints[full], rev)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != want.Hash {
		t.Fatalf("HashKV at %d: m%d %x, m0 %x", rev, full, got.Hash, want.Hash)
	}
	if !strings.Contains(c.Log(full), `"applied snapshot"`) {
		t.Errorf("member m%d caught up without a snapshot: the test did not test what it names", full)
	}
}
