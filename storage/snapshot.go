package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/metastore/metastore/storage/backend"
)

// snapshotMagic starts every snapshot stream.
var snapshotMagic = []byte("MSTSNAP1")

// restoreBatchBytes bounds the size of one restore batch.
const restoreBatchBytes = 4 << 20

// Snapshot is a consistent point-in-time copy of a store, streamed with
// WriteTo. It pins an engine snapshot until Close.
//
// Stream format: the 8-byte magic "MSTSNAP1", then for every engine entry
// in key order uvarint(len(key)) key uvarint(len(value)) value, then
// uvarint(0), then the big-endian CRC-32C of every preceding byte.
type Snapshot struct {
	v view
}

// Snapshot takes a point-in-time snapshot of the whole store.
func (s *Store) Snapshot() (*Snapshot, error) {
	v, err := s.newView()
	if err != nil {
		return nil, err
	}
	return &Snapshot{v: v}, nil
}

// Rev returns the revision the snapshot was taken at.
func (sn *Snapshot) Rev() int64 { return sn.v.rev }

// WriteTo streams the snapshot to w. It implements io.WriterTo.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	crc := crc32.New(crcTable)
	bw := bufio.NewWriterSize(io.MultiWriter(cw, crc), 1<<20)
	bw.Write(snapshotMagic)
	it := sn.v.snap.NewIterator(backend.IterOptions{})
	var lenBuf [binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		for _, b := range [][]byte{it.Key(), it.Value()} {
			bw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(b)))])
			bw.Write(b)
		}
	}
	if err := it.Close(); err != nil {
		return cw.n, err
	}
	bw.WriteByte(0)
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	_, err := cw.Write(sum[:])
	return cw.n, err
}

// Close releases the snapshot.
func (sn *Snapshot) Close() error { return sn.v.snap.Close() }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces everything in be — an engine not opened by a Store —
// with the snapshot read from r. Open the store afterwards. If Restore
// fails or is interrupted, Open reports ErrIncompleteRestore until a
// Restore succeeds. A stream that fails its checksum gets ErrCorrupt.
func Restore(be backend.Backend, r io.Reader) error {
	wb := be.NewBatch()
	wb.Set(metaRestoring, nil)
	if err := wb.Commit(true); err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	wb = be.NewBatch()
	wb.DeleteRange([]byte{0}, metaRestoring)
	wb.DeleteRange(append(bytes.Clone(metaRestoring), 0), []byte{0xff})
	if err := wb.Commit(false); err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	br := &crcReader{r: bufio.NewReaderSize(r, 1<<20), crc: crc32.New(crcTable)}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || !bytes.Equal(magic, snapshotMagic) {
		return fmt.Errorf("%w: not a snapshot stream", ErrCorrupt)
	}
	wb = be.NewBatch()
	defer func() { wb.Close() }()
	for {
		k, err := readChunk(br)
		if err != nil {
			return err
		}
		if len(k) == 0 {
			break
		}
		v, err := readChunk(br)
		if err != nil {
			return err
		}
		if bytes.Equal(k, metaRestoring) {
			return fmt.Errorf("%w: snapshot of a store being restored", ErrCorrupt)
		}
		wb.Set(k, v)
		if wb.Size() >= restoreBatchBytes {
			if err := wb.Commit(false); err != nil {
				return fmt.Errorf("storage: restore: %w", err)
			}
			wb = be.NewBatch()
		}
	}
	want := br.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br.r, sum[:]); err != nil {
		return fmt.Errorf("%w: truncated snapshot trailer", ErrCorrupt)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("%w: snapshot checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	wb.Delete(metaRestoring)
	if err := wb.Commit(true); err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	return nil
}

// crcReader checksums exactly the bytes it hands out.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}

// readChunk reads one uvarint-prefixed byte string; a zero length ends the
// stream's entries.
func readChunk(br *crcReader) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: truncated snapshot: %v", ErrCorrupt, err)
	}
	if n > 1<<31 {
		return nil, fmt.Errorf("%w: snapshot entry of %d bytes", ErrCorrupt, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("%w: truncated snapshot: %v", ErrCorrupt, err)
	}
	return b, nil
}
