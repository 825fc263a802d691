package storage_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
)

const (
	crashChildEnv = "STORAGE_CRASH_CHILD_DIR"
	crashNoWALEnv = "STORAGE_CRASH_NOWAL"
)

// keysPerTxn is the number of keys each crash-test transaction writes.
const keysPerTxn = 10

// TestCrashChild is the child process of TestCrashRecovery: it writes
// transactions forever, printing "ack <n>" after each one is acknowledged.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	// With STORAGE_CRASH_NOWAL the engine runs without RocksDB's WAL, as
	// under the server: writes are not durable until Sync (a memtable
	// flush), and "ack n" follows the Sync that covers n.
	noWAL := os.Getenv(crashNoWALEnv) != ""
	eng := engines[1].open(t, dir)
	if noWAL {
		eng.Close()
		var err error
		eng, err = rocksdb.Open(dir, rocksdb.Config{BlockCacheBytes: 8 << 20, WriteBufferBytes: 4 << 20, DisableWAL: true})
		require.NoError(t, err)
	}
	s, err := storage.Open(eng, storage.Config{NoSync: noWAL})
	require.NoError(t, err)
	n := nextTxn(t, s)
	out := bufio.NewWriter(os.Stdout)
	for ; ; n++ {
		tw, err := s.Write()
		require.NoError(t, err)
		for k := range keysPerTxn {
			_, err := tw.Put([]byte(fmt.Sprintf("c/%06d/%d", n, k)), []byte(strconv.Itoa(n)), 0)
			require.NoError(t, err)
		}
		_, err = tw.End()
		require.NoError(t, err)
		if noWAL {
			if n%25 != 0 {
				continue
			}
			require.NoError(t, s.Sync())
		}
		fmt.Fprintf(out, "ack %d\n", n)
		out.Flush()
		if n%40 == 0 {
			_, _ = s.Compact(s.Rev() - 5)
		}
	}
}

// nextTxn returns the first transaction number not in the store.
func nextTxn(t *testing.T, s *storage.Store) int {
	res, err := s.Range([]byte("c/"), []byte("c0"), storage.RangeOptions{CountOnly: true})
	require.NoError(t, err)
	return int(res.Count) / keysPerTxn
}

// TestCrashRecovery kills a writing child process with SIGKILL at random
// moments, then reopens its store: every acknowledged transaction is there,
// and every transaction is there whole or not at all.
func TestCrashRecovery(t *testing.T) {
	t.Run("wal", func(t *testing.T) { testCrashRecovery(t, false) })
	t.Run("nowal", func(t *testing.T) { testCrashRecovery(t, true) })
}

func testCrashRecovery(t *testing.T, noWAL bool) {
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	acked := -1
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		if noWAL {
			cmd.Env = append(cmd.Env, crashNoWALEnv+"=1")
		}
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := make(chan int, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
					v, _ := strconv.Atoi(n)
					lines <- v
				}
			}
		}()
		// Let it write for a while, then kill it mid-flight.
		deadline := time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		for waiting := true; waiting; {
			select {
			case n, ok := <-lines:
				if !ok {
					waiting = false
					break
				}
				acked = max(acked, n)
			case <-deadline:
				waiting = false
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for n := range lines {
			acked = max(acked, n)
		}
		_ = cmd.Wait()

		s, err := storage.Open(engines[1].open(t, dir), testConfig(t))
		require.NoError(t, err, "round %d", round)
		res, err := s.Range([]byte("c/"), []byte("c0"), storage.RangeOptions{})
		require.NoError(t, err)
		require.Zero(t, len(res.KVs)%keysPerTxn, "round %d: a transaction was torn", round)
		have := len(res.KVs) / keysPerTxn
		require.Greater(t, have, acked, "round %d: acknowledged transaction %d lost", round, acked)
		for i, kv := range res.KVs {
			require.Equal(t, fmt.Sprintf("c/%06d/%d", i/keysPerTxn, i%keysPerTxn), string(kv.Key))
			require.Equal(t, strconv.Itoa(i/keysPerTxn), string(kv.Value))
		}
		_, err = s.HashKV(0)
		require.NoError(t, err)
		t.Logf("round %d: %d transactions acknowledged, %d present at revision %d", round, acked+1, have, s.Rev())
		require.NoError(t, s.Close())
	}
	require.Positive(t, acked, "the child never acknowledged a write")
}
