package kv

import (
	"bytes"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/metastore/metastore/storage"
)

// LeaseChecker tells whether a lease exists; the lease service provides
// it. A nil LeaseChecker knows no lease.
type LeaseChecker interface {
	LeaseExists(id int64) bool
}

// Applier applies KV writes to a storage write transaction. It is used by
// the server's apply loop, in log order.
type Applier struct {
	// Leases checks lease IDs of puts; nil means no lease exists.
	Leases LeaseChecker
}

func (a Applier) leaseExists(id int64) bool {
	return a.Leases != nil && a.Leases.LeaseExists(id)
}

// Put applies r in tw.
func (a Applier) Put(tw *storage.WriteTxn, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	val, lease := r.Value, r.Lease
	if r.IgnoreValue || r.IgnoreLease || r.PrevKv {
		rr, err := tw.Range(r.Key, nil, storage.RangeOptions{})
		if err != nil {
			return nil, err
		}
		if len(rr.KVs) == 0 {
			if r.IgnoreValue || r.IgnoreLease {
				return nil, rpctypes.ErrGRPCKeyNotFound
			}
		} else {
			prev := rr.KVs[0]
			if r.IgnoreValue {
				val = prev.Value
			}
			if r.IgnoreLease {
				lease = prev.Lease
			}
			if r.PrevKv {
				resp.PrevKv = prev
			}
		}
	}
	if lease != 0 && !a.leaseExists(lease) {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	if _, err := tw.Put(r.Key, val, lease); err != nil {
		return nil, err
	}
	return resp, nil
}

// DeleteRange applies r in tw.
func (a Applier) DeleteRange(tw *storage.WriteTxn, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	if r.PrevKv {
		rr, err := tw.Range(r.Key, r.RangeEnd, storage.RangeOptions{})
		if err != nil {
			return nil, err
		}
		resp.PrevKvs = rr.KVs
	}
	n, err := tw.DeleteRange(r.Key, r.RangeEnd)
	if err != nil {
		return nil, err
	}
	resp.Deleted = n
	return resp, nil
}

// Txn applies r in tw: the compares are evaluated, then the chosen branch
// runs in order, each op seeing the previous ones' writes. An error aborts
// the whole transaction (the caller aborts tw), so nothing is half applied.
func (a Applier) Txn(tw *storage.WriteTxn, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	return a.txn(tw, tw, r)
}

// errWriteInReadOnlyTxn guards ReadOnlyTxn against a caller that did not
// check IsTxnReadOnly.
var errWriteInReadOnlyTxn = errors.New("kv: write op in a read-only txn")

// txn executes r reading from rv; writes go to tw, which is nil for a
// read-only txn.
func (a Applier) txn(rv RangeReader, tw *storage.WriteTxn, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	ok, err := compareAll(rv, r.Compare)
	if err != nil {
		return nil, err
	}
	ops := r.Failure
	if ok {
		ops = r.Success
	}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: ok, Responses: make([]*pb.ResponseOp, 0, len(ops))}
	for _, op := range ops {
		out := &pb.ResponseOp{}
		if tw == nil && (op.GetRequestPut() != nil || op.GetRequestDeleteRange() != nil) {
			return nil, errWriteInReadOnlyTxn
		}
		switch {
		case op.GetRequestRange() != nil:
			rr, err := Range(rv, op.GetRequestRange(), true)
			if err != nil {
				return nil, err
			}
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case op.GetRequestPut() != nil:
			pr, err := a.Put(tw, op.GetRequestPut())
			if err != nil {
				return nil, err
			}
			out.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case op.GetRequestDeleteRange() != nil:
			dr, err := a.DeleteRange(tw, op.GetRequestDeleteRange())
			if err != nil {
				return nil, err
			}
			out.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case op.GetRequestTxn() != nil:
			tr, err := a.txn(rv, tw, op.GetRequestTxn())
			if err != nil {
				return nil, err
			}
			out.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
		default:
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Header: &pb.ResponseHeader{}}}
		}
		resp.Responses = append(resp.Responses, out)
	}
	return resp, nil
}

// SetTxnRevision stamps rev into every header of a txn response, as etcd
// reports the transaction's revision everywhere.
func SetTxnRevision(resp *pb.TxnResponse, rev int64) {
	resp.Header.Revision = rev
	for _, op := range resp.Responses {
		switch r := op.Response.(type) {
		case *pb.ResponseOp_ResponseRange:
			r.ResponseRange.Header.Revision = rev
		case *pb.ResponseOp_ResponsePut:
			r.ResponsePut.Header.Revision = rev
		case *pb.ResponseOp_ResponseDeleteRange:
			r.ResponseDeleteRange.Header.Revision = rev
		case *pb.ResponseOp_ResponseTxn:
			SetTxnRevision(r.ResponseTxn, rev)
		}
	}
}

// IsTxnReadOnly reports whether a txn only reads (it can then be served
// without Raft, like a Range).
func IsTxnReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if op.GetRequestPut() != nil || op.GetRequestDeleteRange() != nil {
				return false
			}
			if t := op.GetRequestTxn(); t != nil && !IsTxnReadOnly(t) {
				return false
			}
		}
	}
	return true
}

func compareAll(rv RangeReader, cmps []*pb.Compare) (bool, error) {
	for _, c := range cmps {
		ok, err := compare(rv, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// compare evaluates one compare as etcd's applyCompare does: over every key
// of its range; a value compare on a missing key is false.
func compare(rv RangeReader, c *pb.Compare) (bool, error) {
	rr, err := rv.Range(c.Key, c.RangeEnd, storage.RangeOptions{})
	if err != nil {
		return false, err
	}
	if len(rr.KVs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false, nil
		}
		return compareKV(c, &mvccpb.KeyValue{}), nil
	}
	for _, kv := range rr.KVs {
		if !compareKV(c, kv) {
			return false, nil
		}
	}
	return true, nil
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	switch c.Target {
	case pb.Compare_VALUE:
		result = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		result = cmpInt(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		result = cmpInt(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		result = cmpInt(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		result = cmpInt(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ReadOnlyTxn executes a transaction without writes (IsTxnReadOnly) on a
// read view, so it needs no Raft round; rev is the view's revision, which
// every header reports. Its result equals what Applier.Txn would return.
func ReadOnlyTxn(rv RangeReader, rev int64, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	resp, err := Applier{}.txn(rv, nil, r)
	if err != nil {
		return nil, err
	}
	SetTxnRevision(resp, rev)
	return resp, nil
}

// IsTxnSerializable reports whether every op of a txn is a serializable
// range (etcd's rule for skipping the ReadIndex round; a nested txn is
// never serializable).
func IsTxnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr == nil || !rr.Serializable {
				return false
			}
		}
	}
	return true
}
