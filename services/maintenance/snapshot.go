package maintenance

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// snapshotChunk is the blob size of one SnapshotResponse (etcd:
// snapshotSendBufferSize, 32 KiB).
const snapshotChunk = 32 * 1024

// SnapshotFile is a point-in-time copy of a member's state in etcd's
// backend format (a bbolt file), ready to stream.
type SnapshotFile struct {
	// R reads the file from its start.
	R io.Reader
	// Size is the file's size in bytes.
	Size int64
	// StorageVersion is the storage schema version the file holds
	// ("3.7.0"), sent in every response as etcd does.
	StorageVersion string
	// Close releases the file (and removes it if it is a temporary one).
	Close func() error
}

// Snapshotter is implemented by a Backend that can take snapshots.
type Snapshotter interface {
	// Snapshot takes a consistent snapshot of the member's state without
	// stopping writes.
	Snapshot(ctx context.Context) (*SnapshotFile, error)
}

// Snapshot implements pb.MaintenanceServer as etcd does: the file in
// chunks of 32 KiB, each with the bytes that remain after it, then one
// last response whose blob is the SHA-256 of the file — the trailer
// etcdctl appends and etcdutl checks on restore.
func (s *Server) Snapshot(r *pb.SnapshotRequest, srv pb.Maintenance_SnapshotServer) error {
	sn, ok := s.b.(Snapshotter)
	if !ok {
		return s.UnimplementedMaintenanceServer.Snapshot(r, srv)
	}
	f, err := sn.Snapshot(srv.Context())
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	var sent int64
	for sent < f.Size {
		// srv.Send may keep the buffer until it is written out: a new one
		// for every message.
		buf := make([]byte, min(snapshotChunk, f.Size-sent))
		n, err := io.ReadFull(f.R, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("maintenance: snapshot file shorter than its size")
			}
			return err
		}
		sent += int64(n)
		h.Write(buf)
		if err := srv.Send(&pb.SnapshotResponse{RemainingBytes: uint64(f.Size - sent), Blob: buf, Version: f.StorageVersion}); err != nil {
			return err
		}
	}
	return srv.Send(&pb.SnapshotResponse{Blob: h.Sum(nil), Version: f.StorageVersion})
}
