package kv_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/metastore/metastore/services/kv"
	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/memory"
)

func put(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func del(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func txn(then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
}

func TestValidation(t *testing.T) {
	require.Equal(t, rpctypes.ErrGRPCEmptyKey, kv.CheckRange(&pb.RangeRequest{}))
	require.Equal(t, rpctypes.ErrGRPCInvalidSortOption, kv.CheckRange(&pb.RangeRequest{Key: []byte("a"), SortOrder: 9}))
	require.Equal(t, rpctypes.ErrGRPCValueProvided, kv.CheckPut(&pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}))
	require.Equal(t, rpctypes.ErrGRPCLeaseProvided, kv.CheckPut(&pb.PutRequest{Key: []byte("a"), Lease: 5, IgnoreLease: true}))
	require.Equal(t, rpctypes.ErrGRPCEmptyKey, kv.CheckDeleteRange(&pb.DeleteRangeRequest{}))

	ops := make([]*pb.RequestOp, 3)
	for i := range ops {
		ops[i] = put(string(rune('a'+i)), "v")
	}
	require.Equal(t, rpctypes.ErrGRPCTooManyOps, kv.CheckTxn(&pb.TxnRequest{Success: ops}, 2))
	require.NoError(t, kv.CheckTxn(&pb.TxnRequest{Success: ops}, 3))
	for name, tc := range map[string]struct {
		ops []*pb.RequestOp
		err error
	}{
		"same key twice":            {[]*pb.RequestOp{put("a", "1"), put("a", "2")}, rpctypes.ErrGRPCDuplicateKey},
		"put and delete":            {[]*pb.RequestOp{put("b", "1"), del("a", "c")}, rpctypes.ErrGRPCDuplicateKey},
		"nested then and else":      {[]*pb.RequestOp{txn([]*pb.RequestOp{put("a", "1")}, []*pb.RequestOp{put("a", "2")})}, nil},
		"nested and outer":          {[]*pb.RequestOp{put("a", "0"), txn([]*pb.RequestOp{put("a", "1")}, nil)}, rpctypes.ErrGRPCDuplicateKey},
		"nested put, outer delete":  {[]*pb.RequestOp{del("a", ""), txn([]*pb.RequestOp{put("a", "1")}, nil)}, rpctypes.ErrGRPCDuplicateKey},
		"different keys":            {[]*pb.RequestOp{put("a", "1"), put("b", "2"), del("c", "")}, nil},
		"empty compare key is fine": {nil, nil},
		"an empty op (etcd)":        {[]*pb.RequestOp{{}}, rpctypes.ErrGRPCKeyNotFound},
		"an empty nested op":        {[]*pb.RequestOp{txn([]*pb.RequestOp{{}}, nil)}, rpctypes.ErrGRPCKeyNotFound},
	} {
		require.Equal(t, tc.err, kv.CheckTxn(&pb.TxnRequest{Success: tc.ops}, 128), name)
	}
	require.Equal(t, rpctypes.ErrGRPCEmptyKey, kv.CheckTxn(&pb.TxnRequest{Compare: []*pb.Compare{{}}}, 128))
}

func TestApplyTxnAndRange(t *testing.T) {
	s, err := storage.Open(memory.New(), storage.Config{})
	require.NoError(t, err)
	defer s.Close()
	a := kv.Applier{}
	write := func(f func(tw *storage.WriteTxn) error) int64 {
		tw, err := s.Write()
		require.NoError(t, err)
		if err := f(tw); err != nil {
			tw.Abort()
			require.NoError(t, err)
		}
		rev, err := tw.End()
		require.NoError(t, err)
		return rev
	}
	write(func(tw *storage.WriteTxn) error {
		_, err := a.Put(tw, &pb.PutRequest{Key: []byte("a"), Value: []byte("1")})
		return err
	})
	// Compare a's value; then branch puts b and reads it back in the same txn.
	var resp *pb.TxnResponse
	rev := write(func(tw *storage.WriteTxn) error {
		var err error
		resp, err = a.Txn(tw, &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("1")}}},
			Success: []*pb.RequestOp{put("b", "2"), {Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("b")}}}},
		})
		return err
	})
	require.True(t, resp.Succeeded)
	require.Equal(t, "2", string(resp.Responses[1].GetResponseRange().Kvs[0].Value), "read-your-writes inside the txn")
	require.Equal(t, rev, resp.Responses[0].GetResponsePut().Header.Revision, "a put in a txn reports the txn's revision")
	require.Equal(t, rev, resp.Responses[1].GetResponseRange().Header.Revision, "a range after a write sees the txn's revision")

	// A value compare on a missing key is false; a version compare on it sees 0.
	write(func(tw *storage.WriteTxn) error {
		r, err := a.Txn(tw, &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("missing"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL}}})
		require.False(t, r.Succeeded)
		r, err = a.Txn(tw, &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("missing"), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: 0}}}})
		require.True(t, r.Succeeded)
		return err
	})
	// ignore_value on a missing key, and unknown leases, are etcd's errors.
	tw, err := s.Write()
	require.NoError(t, err)
	_, err = a.Put(tw, &pb.PutRequest{Key: []byte("zz"), IgnoreValue: true})
	require.Equal(t, rpctypes.ErrGRPCKeyNotFound, err)
	_, err = a.Put(tw, &pb.PutRequest{Key: []byte("zz"), Lease: 42})
	require.Equal(t, rpctypes.ErrGRPCLeaseNotFound, err)
	tw.Abort()

	rd, err := s.Read()
	require.NoError(t, err)
	defer rd.End()
	rr, err := kv.Range(rd, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_KEY, Limit: 1, KeysOnly: true}, true)
	require.NoError(t, err)
	require.Equal(t, "b", string(rr.Kvs[0].Key))
	require.Nil(t, rr.Kvs[0].Value)
	require.True(t, rr.More)
	require.EqualValues(t, 2, rr.Count)
}

func get(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

// A read-only txn served from a read view gives exactly what applying it
// through the write path gives.
func TestReadOnlyTxnEqualsApply(t *testing.T) {
	s, err := storage.Open(memory.New(), storage.Config{})
	require.NoError(t, err)
	defer s.Close()
	for _, k := range []string{"a", "b", "c"} {
		_, err := s.Put([]byte(k), []byte("v-"+k), 0)
		require.NoError(t, err)
	}
	for name, r := range map[string]*pb.TxnRequest{
		"success": {Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("v-a")}}},
			Success: []*pb.RequestOp{get("a"), get("zz")}, Failure: []*pb.RequestOp{get("b")}},
		"failure on a missing key": {Compare: []*pb.Compare{{Key: []byte("zz"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("x")}}},
			Success: []*pb.RequestOp{get("a")}, Failure: []*pb.RequestOp{get("b"), txn([]*pb.RequestOp{get("c")}, nil)}},
		"range compare": {Compare: []*pb.Compare{{Key: []byte("a"), RangeEnd: []byte("d"), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: 1}}}, Success: []*pb.RequestOp{get("c")}},
		"no ops at all": {},
	} {
		require.True(t, kv.IsTxnReadOnly(r), name)
		rd, err := s.Read()
		require.NoError(t, err)
		got, err := kv.ReadOnlyTxn(rd, rd.Rev(), r)
		rd.End()
		require.NoError(t, err, name)

		tw, err := s.Write()
		require.NoError(t, err)
		want, err := kv.Applier{}.Txn(tw, r)
		require.NoError(t, err, name)
		rev, err := tw.End()
		require.NoError(t, err)
		want.Header.Revision = rev
		require.Equal(t, want.String(), got.String(), name)
	}
	require.False(t, kv.IsTxnSerializable(&pb.TxnRequest{Success: []*pb.RequestOp{get("a")}}))
	ser := get("a")
	ser.GetRequestRange().Serializable = true
	require.True(t, kv.IsTxnSerializable(&pb.TxnRequest{Success: []*pb.RequestOp{ser}}))
	require.False(t, kv.IsTxnSerializable(&pb.TxnRequest{Success: []*pb.RequestOp{ser, txn(nil, nil)}}), "nested txns are never serializable, as in etcd")
}

// As etcd, every compare of a txn — nested ones too — sees the state
// before the txn, while ops see the writes before them.
func TestNestedComparesSeeThePreTxnState(t *testing.T) {
	s, err := storage.Open(memory.New(), storage.Config{})
	require.NoError(t, err)
	defer s.Close()
	nested := &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: 0}}},
		Success: []*pb.RequestOp{put("seen-missing", "1"), get("a")},
		Failure: []*pb.RequestOp{put("seen-present", "1")},
	}
	tw, err := s.Write()
	require.NoError(t, err)
	defer tw.Abort()
	resp, err := kv.Applier{}.Txn(tw, &pb.TxnRequest{Success: []*pb.RequestOp{
		put("a", "1"),
		{Request: &pb.RequestOp_RequestTxn{RequestTxn: nested}},
	}})
	require.NoError(t, err)
	inner := resp.Responses[1].GetResponseTxn()
	require.True(t, inner.Succeeded, "a did not exist before the txn")
	require.Equal(t, "1", string(inner.Responses[1].GetResponseRange().Kvs[0].Value), "but the range sees the put")
	require.Zero(t, inner.Header.Revision, "a nested txn's header carries no revision, as etcd")
}
