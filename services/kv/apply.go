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

// Txn applies r in tw; the caller sets the top header's revision once tw
// ends. As etcd, the op responses inside carry the revision each op saw
// (a nested txn's header none), and every compare — those of nested txns
// too — is evaluated first, against the state before the txn; then the
// chosen branches run in order, each op seeing the previous ones' writes.
// An error aborts the whole transaction (the caller aborts tw), so nothing
// is half applied.
func (a Applier) Txn(tw *storage.WriteTxn, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	path, err := txnPath(tw, r)
	if err != nil {
		return nil, err
	}
	resp, _, err := a.txn(tw, tw, r, path)
	return resp, err
}

// errWriteInReadOnlyTxn guards ReadOnlyTxn against a caller that did not
// check IsTxnReadOnly.
var errWriteInReadOnlyTxn = errors.New("kv: write op in a read-only txn")

// IsRequestError reports whether err is this package's refusal of a
// request (the same on every member), as opposed to a storage failure.
// etcd's gRPC errors (rpctypes) are refusals too; callers check those.
func IsRequestError(err error) bool { return errors.Is(err, errWriteInReadOnlyTxn) }

// txnPath evaluates the compares of r and of the nested txns on the
// chosen branches, depth first (etcd's compareToPath).
func txnPath(rv RangeReader, r *pb.TxnRequest) ([]bool, error) {
	ok, err := compareAll(rv, r.Compare)
	if err != nil {
		return nil, err
	}
	path := []bool{ok}
	ops := r.Failure
	if ok {
		ops = r.Success
	}
	for _, op := range ops {
		if t := op.GetRequestTxn(); t != nil {
			sub, err := txnPath(rv, t)
			if err != nil {
				return nil, err
			}
			path = append(path, sub...)
		}
	}
	return path, nil
}

// txn executes r along path (from txnPath), reading from rv; writes go to
// tw, which is nil for a read-only txn. It returns how much of path it
// used.
func (a Applier) txn(rv RangeReader, tw *storage.WriteTxn, r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int, error) {
	ok, used := path[0], 1
	ops := r.Failure
	if ok {
		ops = r.Success
	}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: ok, Responses: make([]*pb.ResponseOp, 0, len(ops))}
	for _, op := range ops {
		out := &pb.ResponseOp{}
		if tw == nil && (op.GetRequestPut() != nil || op.GetRequestDeleteRange() != nil) {
			return nil, 0, errWriteInReadOnlyTxn
		}
		switch {
		case op.GetRequestRange() != nil:
			rr, err := Range(rv, op.GetRequestRange(), true)
			if err != nil {
				return nil, 0, err
			}
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case op.GetRequestPut() != nil:
			pr, err := a.Put(tw, op.GetRequestPut())
			if err != nil {
				return nil, 0, err
			}
			pr.Header.Revision = tw.Rev() + 1 // as etcd's txn: the txn's revision
			out.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case op.GetRequestDeleteRange() != nil:
			dr, err := a.DeleteRange(tw, op.GetRequestDeleteRange())
			if err != nil {
				return nil, 0, err
			}
			dr.Header.Revision = tw.Rev() // as etcd: unchanged until the txn changes something
			if dr.Deleted > 0 || len(tw.Changes()) > 0 {
				dr.Header.Revision++
			}
			out.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case op.GetRequestTxn() != nil:
			tr, n, err := a.txn(rv, tw, op.GetRequestTxn(), path[used:])
			if err != nil {
				return nil, 0, err
			}
			used += n
			out.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
		default:
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Header: &pb.ResponseHeader{}}}
		}
		resp.Responses = append(resp.Responses, out)
	}
	return resp, used, nil
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
// the top header reports. Its result equals what Applier.Txn would return.
func ReadOnlyTxn(rv RangeReader, rev int64, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	path, err := txnPath(rv, r)
	if err != nil {
		return nil, err
	}
	resp, _, err := Applier{}.txn(rv, nil, r, path)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = rev
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
