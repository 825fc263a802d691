package kv_test

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/services/kv"
	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/memory"
)

// FuzzKVRequests decodes arbitrary bytes as each KV request, validates it
// as the service does and, when it passes, applies it (writes) or serves
// it (ranges, read-only transactions) on a small store: bad input gets an
// error, never a panic.
func FuzzKVRequests(f *testing.F) {
	seeds := []proto.Message{
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Limit: 2, SortOrder: pb.RangeRequest_DESCEND},
		&pb.PutRequest{Key: []byte("a"), Value: []byte("1"), PrevKv: true},
		&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, PrevKv: true},
		&pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER}},
			Success: []*pb.RequestOp{put("b", "2"), del("c", "d"), txn([]*pb.RequestOp{get("b")}, nil)},
			Failure: []*pb.RequestOp{get("a")},
		},
	}
	for kind, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(kind), b)
	}
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		s, err := storage.Open(memory.New(), storage.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Put([]byte("a"), []byte("0"), 0); err != nil {
			t.Fatal(err)
		}
		a := kv.Applier{}
		write := func(f func(tw *storage.WriteTxn) error) {
			tw, err := s.Write()
			if err != nil {
				t.Fatal(err)
			}
			if err := f(tw); err != nil {
				tw.Abort()
				return
			}
			if _, err := tw.End(); err != nil {
				t.Fatal(err)
			}
		}
		switch kind % 4 {
		case 0:
			r := &pb.RangeRequest{}
			if proto.Unmarshal(data, r) != nil || kv.CheckRange(r) != nil {
				return
			}
			rd, err := s.Read()
			if err != nil {
				t.Fatal(err)
			}
			defer rd.End()
			_, _ = kv.Range(rd, r, true)
		case 1:
			r := &pb.PutRequest{}
			if proto.Unmarshal(data, r) != nil || kv.CheckPut(r) != nil {
				return
			}
			write(func(tw *storage.WriteTxn) error { _, err := a.Put(tw, r); return err })
		case 2:
			r := &pb.DeleteRangeRequest{}
			if proto.Unmarshal(data, r) != nil || kv.CheckDeleteRange(r) != nil {
				return
			}
			write(func(tw *storage.WriteTxn) error { _, err := a.DeleteRange(tw, r); return err })
		case 3:
			r := &pb.TxnRequest{}
			if proto.Unmarshal(data, r) != nil || kv.CheckTxn(r, kv.DefaultMaxTxnOps) != nil {
				return
			}
			if kv.IsTxnReadOnly(r) {
				rd, err := s.Read()
				if err != nil {
					t.Fatal(err)
				}
				defer rd.End()
				_, _ = kv.ReadOnlyTxn(rd, 0, r)
				return
			}
			write(func(tw *storage.WriteTxn) error { _, err := a.Txn(tw, r); return err })
		}
	})
}
