package wal_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus/wal"
)

func entry(term, index uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Term: proto.Uint64(term), Index: proto.Uint64(index), Type: raftpb.EntryNormal.Enum(), Data: []byte(data)}
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func indexes(st *wal.State) []string {
	var out []string
	for _, e := range st.Entries {
		out = append(out, fmt.Sprintf("%d/%d:%s", e.GetIndex(), e.GetTerm(), e.Data))
	}
	return out
}

func open(t *testing.T, dir string, segBytes int64) (*wal.WAL, *wal.State) {
	t.Helper()
	w, st, err := wal.Open(dir, wal.Options{Logger: zaptest.NewLogger(t), SegmentBytes: segBytes})
	require.NoError(t, err)
	return w, st
}

func TestReplayAndTailReplacement(t *testing.T) {
	dir := t.TempDir()
	w, st := open(t, dir, 0)
	require.Empty(t, st.Entries)
	require.Zero(t, st.HardState.GetTerm())
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 5; i++ {
		ents = append(ents, entry(1, i, fmt.Sprint("a", i)))
	}
	require.NoError(t, w.Save(hardState(1, 2, 3), ents))
	// A new leader overwrites the uncommitted tail from index 4.
	require.NoError(t, w.Save(hardState(2, 3, 3), []*raftpb.Entry{entry(2, 4, "b4"), entry(2, 5, "b5"), entry(2, 6, "b6")}))
	require.NoError(t, w.Sync())
	require.NoError(t, w.Close())

	w, st = open(t, dir, 0)
	defer w.Close()
	require.Equal(t, []string{"1/1:a1", "2/1:a2", "3/1:a3", "4/2:b4", "5/2:b5", "6/2:b6"}, indexes(st))
	require.True(t, proto.Equal(hardState(2, 3, 3), st.HardState))
	// Appending after reopen continues the log.
	require.NoError(t, w.Save(nil, []*raftpb.Entry{entry(2, 7, "b7")}))
	require.NoError(t, w.Sync())
}

func TestSnapshotAndRelease(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, 1024) // tiny segments
	for i := uint64(1); i <= 200; i++ {
		require.NoError(t, w.Save(hardState(1, 1, i), []*raftpb.Entry{entry(1, i, strings.Repeat("x", 50))}))
	}
	require.NoError(t, w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: proto.Uint64(150), Term: proto.Uint64(1), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}))
	require.NoError(t, w.Sync())
	before := segments(t, dir)
	require.NoError(t, w.ReleaseTo(150))
	after := segments(t, dir)
	require.Less(t, after, before, "old segments are deleted")
	require.NoError(t, w.Close())

	w, st := open(t, dir, 1024)
	defer w.Close()
	require.EqualValues(t, 150, st.Snapshot.GetIndex())
	require.Equal(t, []uint64{1, 2, 3}, st.Snapshot.GetConfState().GetVoters())
	require.Len(t, st.Entries, 50)
	require.EqualValues(t, 151, st.Entries[0].GetIndex())
	require.EqualValues(t, 200, st.HardState.GetCommit())
}

func segments(t *testing.T, dir string) int {
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NoError(t, err)
	return len(m)
}

func lastSegment(t *testing.T, dir string) string {
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NoError(t, err)
	return m[len(m)-1]
}

func TestTornTailIsTruncated(t *testing.T) {
	for name, damage := range map[string]func(path string){
		"partial record": func(p string) {
			info, _ := os.Stat(p)
			require.NoError(t, os.Truncate(p, info.Size()-7))
		},
		"garbage appended": func(p string) {
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{0x20, 0, 0, 0, 1, 2, 3, 4, 1, 'g', 'a', 'r'})
			f.Close()
		},
		"zeros appended": func(p string) {
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(make([]byte, 4096))
			f.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			w, _ := open(t, dir, 0)
			for i := uint64(1); i <= 10; i++ {
				require.NoError(t, w.Save(hardState(1, 1, i), []*raftpb.Entry{entry(1, i, "v")}))
			}
			require.NoError(t, w.Close())
			damage(lastSegment(t, dir))
			w, st := open(t, dir, 0)
			if name == "partial record" {
				require.Len(t, st.Entries, 10, "the torn record was the last hard state")
			} else {
				require.Len(t, st.Entries, 10)
			}
			// The tail was cut at a record boundary: appending works and replays.
			require.NoError(t, w.Save(nil, []*raftpb.Entry{entry(1, 11, "after")}))
			require.NoError(t, w.Close())
			w, st = open(t, dir, 0)
			defer w.Close()
			require.Len(t, st.Entries, 11)
			require.Equal(t, "after", string(st.Entries[10].Data))
		})
	}
}

func TestCorruptionBeforeTheTailFails(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, 512)
	for i := uint64(1); i <= 50; i++ {
		require.NoError(t, w.Save(nil, []*raftpb.Entry{entry(1, i, strings.Repeat("y", 40))}))
	}
	require.NoError(t, w.Close())
	m, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.Greater(t, len(m), 2)
	data, err := os.ReadFile(m[0])
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, os.WriteFile(m[0], data, 0o600))
	_, _, err = wal.Open(dir, wal.Options{})
	require.ErrorIs(t, err, wal.ErrCorrupt, "never drop data silently")
}

const crashEnv = "WAL_CRASH_CHILD_DIR"

// TestCrashChild appends batches forever, printing "synced N" after each
// Sync; it only runs as the child of TestCrashRecovery.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	w, st, err := wal.Open(dir, wal.Options{SegmentBytes: 64 << 10})
	require.NoError(t, err)
	next := uint64(1)
	if n := len(st.Entries); n > 0 {
		next = st.Entries[n-1].GetIndex() + 1
	}
	out := bufio.NewWriter(os.Stdout)
	rng := rand.New(rand.NewPCG(next, 1))
	for {
		var batch []*raftpb.Entry
		for range 1 + rng.IntN(20) {
			batch = append(batch, entry(1, next, strings.Repeat(strconv.FormatUint(next%10, 10), rng.IntN(300))))
			next++
		}
		require.NoError(t, w.Save(hardState(1, 1, next-1), batch))
		require.NoError(t, w.Sync())
		fmt.Fprintf(out, "synced %d\n", next-1)
		out.Flush()
	}
}

// TestCrashRecovery SIGKILLs a child mid-write many times: everything it
// reported synced must replay, in order, and nothing torn may appear.
func TestCrashRecovery(t *testing.T) {
	rounds := 10
	if testing.Short() {
		rounds = 4
	}
	dir := t.TempDir()
	synced := uint64(0)
	rng := rand.New(rand.NewPCG(3, 3))
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		acks := make(chan uint64, 4096)
		go func() {
			defer close(acks)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "synced "); ok {
					n, _ := strconv.ParseUint(v, 10, 64)
					acks <- n
				}
			}
		}()
		timer := time.After(time.Duration(50+rng.IntN(250)) * time.Millisecond)
	wait:
		for {
			select {
			case n, ok := <-acks:
				if !ok {
					break wait
				}
				synced = max(synced, n)
			case <-timer:
				break wait
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for n := range acks {
			synced = max(synced, n)
		}
		_ = cmd.Wait()

		w, st, err := wal.Open(dir, wal.Options{SegmentBytes: 64 << 10})
		require.NoError(t, err, "round %d", round)
		require.NotEmpty(t, st.Entries)
		last := st.Entries[len(st.Entries)-1].GetIndex()
		require.GreaterOrEqual(t, last, synced, "round %d: synced entries lost", round)
		for i, e := range st.Entries {
			require.EqualValues(t, i+1, e.GetIndex(), "round %d: gap or reorder", round)
			want := strconv.FormatUint(e.GetIndex()%10, 10)
			require.Equal(t, strings.Repeat(want, len(e.Data)), string(e.Data), "round %d: garbage replayed", round)
		}
		require.NoError(t, w.Close())
		t.Logf("round %d: %d entries synced, %d replayed", round, synced, last)
	}
	require.Positive(t, synced)
}

// fileSums returns every file of dir with its content, to prove Open
// changed nothing.
func fileSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		require.NoError(t, err)
		out[de.Name()] = string(b)
	}
	return out
}

// oneEntrySegment writes a WAL with one entry and returns its segment.
func oneEntrySegment(t *testing.T, dir string) (path string, content []byte) {
	t.Helper()
	w, _ := open(t, dir, 0)
	require.NoError(t, w.Save(hardState(1, 1, 1), []*raftpb.Entry{entry(1, 1, "v")}))
	require.NoError(t, w.Close())
	path = lastSegment(t, dir)
	content, err := os.ReadFile(path)
	require.NoError(t, err)
	return path, content
}

// A segment whose first record is bad was not written by this package (or
// is damaged): every segment is created whole, so it is never a torn tail.
// Open refuses it and leaves every file as it was.
func TestForeignOrDamagedFirstRecordIsRefused(t *testing.T) {
	for name, prepare := range map[string]func(t *testing.T, dir string){
		"first record checksum": func(t *testing.T, dir string) {
			p, b := oneEntrySegment(t, dir)
			b[4] ^= 0xff // the snapshot marker's checksum
			require.NoError(t, os.WriteFile(p, b, 0o600))
		},
		"another program's log": func(t *testing.T, dir string) {
			// etcd names its WAL segments like ours; its records are framed
			// differently (an int64 length, then a walpb.Record).
			b := make([]byte, 64<<10)
			copy(b, []byte{0x12, 0, 0, 0, 0, 0, 0, 0x84, 0x08, 0x04, 0x10, 0x00, 0x1a, 0x0c})
			require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000000000000-0000000000000000.wal"), b, 0o600))
		},
		"a record that is not a snapshot marker first": func(t *testing.T, dir string) {
			p, b := oneEntrySegment(t, dir)
			// Drop the leading snapshot marker: the file now starts at the
			// hard state, a valid record of another type.
			n := headerLenForTest + int(binary.LittleEndian.Uint32(b[0:4]))
			require.NoError(t, os.WriteFile(p, b[n:], 0o600))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			prepare(t, dir)
			before := fileSums(t, dir)
			_, _, err := wal.Open(dir, wal.Options{})
			require.ErrorIs(t, err, wal.ErrCorrupt)
			require.Equal(t, before, fileSums(t, dir), "a refused WAL is left exactly as it was")
		})
	}
}

// A damaged last record is a torn write only if part of it was never
// written (an all-zero sector, as the segment is preallocated with
// zeros); a record damaged otherwise is corruption, refused unchanged.
func TestDamagedTailRecordIsTornOnlyWithAnUnwrittenSector(t *testing.T) {
	build := func(t *testing.T) (dir, path string, lastOff int) {
		dir = t.TempDir()
		w, _ := open(t, dir, 0)
		for i := uint64(1); i <= 5; i++ {
			require.NoError(t, w.Save(nil, []*raftpb.Entry{entry(1, i, strings.Repeat("z", 2000))}))
		}
		require.NoError(t, w.Close())
		path = lastSegment(t, dir)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		for off := 0; off < len(b); {
			n := headerLenForTest + int(binary.LittleEndian.Uint32(b[off:off+4]))
			lastOff, off = off, off+n
		}
		return dir, path, lastOff
	}
	t.Run("flipped byte", func(t *testing.T) {
		dir, path, last := build(t)
		b, _ := os.ReadFile(path)
		b[last+headerLenForTest+100] ^= 0x01
		require.NoError(t, os.WriteFile(path, b, 0o600))
		before := fileSums(t, dir)
		_, _, err := wal.Open(dir, wal.Options{})
		require.ErrorIs(t, err, wal.ErrCorrupt)
		require.Equal(t, before, fileSums(t, dir))
	})
	t.Run("unwritten sector", func(t *testing.T) {
		dir, path, last := build(t)
		b, _ := os.ReadFile(path)
		// Zero the sector-aligned block after the record's start: the
		// crash came before it reached the disk.
		s := (last/512 + 1) * 512
		copy(b[s:s+512], make([]byte, 512))
		require.NoError(t, os.WriteFile(path, b, 0o600))
		w, st, err := wal.Open(dir, wal.Options{})
		require.NoError(t, err)
		defer w.Close()
		require.Len(t, st.Entries, 4, "the torn fifth entry is dropped")
	})
}

// A segment whose creation a crash interrupted (still under its temporary
// name) is removed; it never held anything acknowledged.
func TestUnfinishedSegmentIsRemoved(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, 0)
	require.NoError(t, w.Save(hardState(1, 1, 1), []*raftpb.Entry{entry(1, 1, "v")}))
	require.NoError(t, w.Close())
	tmp := filepath.Join(dir, "0000000000000001-0000000000000002.wal.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte{1, 2, 3}, 0o600))
	other := filepath.Join(dir, "notes.tmp")
	require.NoError(t, os.WriteFile(other, []byte("keep"), 0o600))
	w, st := open(t, dir, 0)
	defer w.Close()
	require.Len(t, st.Entries, 1)
	require.NoFileExists(t, tmp)
	require.FileExists(t, other, "files not named like our own are never touched")
}

// headerLenForTest is a record header's size: uint32 length, uint32 CRC,
// uint8 type (the format in doc.go).
const headerLenForTest = 9

// The sync observer sees every fsync, with its duration; a Sync with
// nothing written is no fsync.
func TestSyncObserverSeesEveryFsync(t *testing.T) {
	var seen []time.Duration
	var written int64
	w, _, err := wal.Open(t.TempDir(), wal.Options{
		SyncObserver:  func(d time.Duration) { seen = append(seen, d) },
		WriteObserver: func(n int64, _ time.Duration) { written += n },
	})
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Save(hardState(1, 1, 0), []*raftpb.Entry{entry(1, 1, "a")}))
	require.Positive(t, written, "the write observer sees the bytes saved")
	require.NoError(t, w.Sync())
	n := len(seen)
	require.NoError(t, w.Sync())
	require.Len(t, seen, n, "nothing written: no fsync")
	require.Len(t, seen, int(w.Syncs()))
	for _, d := range seen {
		require.Positive(t, d)
	}
}
