package kv

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// DefaultMaxTxnOps is etcd's default --max-txn-ops.
const DefaultMaxTxnOps = 128

// DefaultMaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB),
// also the size RangeStream aims its chunks at.
const DefaultMaxRequestBytes = 3 << 19

// CheckRange validates a RangeRequest as etcd does.
func CheckRange(r *pb.RangeRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.GetSortOrder())]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.GetSortTarget())]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

// CheckPut validates a PutRequest as etcd does.
func CheckPut(r *pb.PutRequest) error {
	switch {
	case len(r.GetKey()) == 0:
		return rpctypes.ErrGRPCEmptyKey
	case r.GetIgnoreValue() && len(r.GetValue()) != 0:
		return rpctypes.ErrGRPCValueProvided
	case r.GetIgnoreLease() && r.GetLease() != 0:
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

// CheckDeleteRange validates a DeleteRangeRequest as etcd does.
func CheckDeleteRange(r *pb.DeleteRangeRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

// CheckTxn validates a TxnRequest as etcd does: operation counts against
// maxTxnOps at every level, empty keys, and keys written twice.
func CheckTxn(r *pb.TxnRequest, maxTxnOps int) error {
	if err := checkTxnOps(r, maxTxnOps); err != nil {
		return err
	}
	_, _, err := checkIntervals(r.GetSuccess())
	if err != nil {
		return err
	}
	_, _, err = checkIntervals(r.GetFailure())
	return err
}

func checkTxnOps(r *pb.TxnRequest, maxTxnOps int) error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if err := checkOp(op, maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkOp(op *pb.RequestOp, maxTxnOps int) error {
	switch {
	case op.GetRequestRange() != nil:
		return CheckRange(op.GetRequestRange())
	case op.GetRequestPut() != nil:
		return CheckPut(op.GetRequestPut())
	case op.GetRequestDeleteRange() != nil:
		return CheckDeleteRange(op.GetRequestDeleteRange())
	case op.GetRequestTxn() != nil:
		return checkTxnOps(op.GetRequestTxn(), maxTxnOps)
	}
	// An empty op (no request set): etcd's answer (checkRequestOp).
	return rpctypes.ErrGRPCKeyNotFound
}

// interval is a key or key range deleted by a txn level.
type interval struct{ key, end string }

func (iv interval) contains(k string) bool {
	if iv.end == "" {
		return k == iv.key
	}
	if iv.end == "\x00" {
		return k >= iv.key
	}
	return k >= iv.key && k < iv.end
}

func intersects(dels []interval, k string) bool {
	for _, d := range dels {
		if d.contains(k) {
			return true
		}
	}
	return false
}

// checkIntervals returns the keys put and ranges deleted by reqs and their
// nested txns, failing with ErrGRPCDuplicateKey when a key is put twice or
// put and deleted — etcd's rule, including that a nested txn's then and
// else branches may put the same key (only one of them runs).
func checkIntervals(reqs []*pb.RequestOp) (map[string]struct{}, []interval, error) {
	var dels []interval
	for _, req := range reqs {
		if d := req.GetRequestDeleteRange(); d != nil {
			dels = append(dels, interval{string(d.GetKey()), string(d.GetRangeEnd())})
		}
	}
	puts := map[string]struct{}{}
	for _, req := range reqs {
		t := req.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.GetSuccess())
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkIntervals(t.GetFailure())
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || intersects(dels, k) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				if _, fromThen := putsThen[k]; !fromThen {
					return nil, nil, rpctypes.ErrGRPCDuplicateKey
				}
			}
			if intersects(dels, k) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, req := range reqs {
		p := req.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.GetKey())
		if _, dup := puts[k]; dup || intersects(dels, k) {
			return nil, nil, rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
