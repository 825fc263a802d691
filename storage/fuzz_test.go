package storage

import (
	"bytes"
	"testing"

	"github.com/metastore/metastore/storage/memory"
)

// FuzzKeyEncoding checks that escaped version keys round-trip, keep the
// byte order of user keys and never let one key's versions interleave with
// another key's.
func FuzzKeyEncoding(f *testing.F) {
	f.Add([]byte("a"), []byte("a\x00"), int64(5), int64(0))
	f.Add([]byte("\x00"), []byte("\x00\x00"), int64(1), int64(3))
	f.Add([]byte("k\xff"), []byte("k\x00\xff"), int64(1<<40), int64(1))
	f.Fuzz(func(t *testing.T, a, b []byte, main, sub int64) {
		if main < 0 || sub < 0 {
			return
		}
		r := Revision{Main: main, Sub: sub}
		ka, kb := versionKey(a, r), versionKey(b, Revision{})
		pa, ra, err := splitVersionKey(ka)
		if err != nil || ra != r {
			t.Fatalf("split %x: %v %v", ka, ra, err)
		}
		got, err := unescapeKey(pa[1 : len(pa)-2])
		if err != nil || !bytes.Equal(got, a) {
			t.Fatalf("round trip %q -> %q (%v)", a, got, err)
		}
		if c := bytes.Compare(a, b); c != 0 && bytes.Compare(ka, kb) != c {
			t.Fatalf("order of %q and %q not kept", a, b)
		}
		if !bytes.Equal(a, b) && bytes.HasPrefix(kb, keyPrefix(a)) {
			t.Fatalf("versions of %q fall under the prefix of %q", b, a)
		}
	})
}

// FuzzDecodeRecord checks that no engine value makes record decoding panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add((&record{create: 2, version: 3, lease: 7, value: []byte("v")}).encode())
	f.Add([]byte{flagTombstone})
	f.Add([]byte{0, 0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := decodeRecord(raw, true)
		if err == nil && !rec.tombstone && len(raw) > 0 {
			_ = valueLen(raw)
		}
	})
}

// FuzzRestore feeds arbitrary streams to Restore: it must fail cleanly
// (never panic) unless the stream is a valid snapshot.
func FuzzRestore(f *testing.F) {
	s, err := Open(memory.New(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	_, _ = s.Put([]byte("a"), []byte("1"), 0)
	snap, err := s.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	_ = snap.Close()
	_ = s.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("MSTSNAP1"))
	f.Add([]byte("MSTSNAP1\x05hello\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		be := memory.New()
		defer be.Close()
		if err := Restore(be, bytes.NewReader(stream)); err != nil {
			return
		}
		st, err := Open(be, Config{})
		if err != nil {
			return
		}
		_ = st.Close()
	})
}
