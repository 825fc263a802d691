package kv

import (
	"bytes"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage"
)

// RangeReader is what Range reads from: a storage.ReadTxn or WriteTxn.
type RangeReader interface {
	Range(key, end []byte, opts storage.RangeOptions) (*storage.RangeResult, error)
}

func defaultOrder(r *pb.RangeRequest) bool {
	return r.SortOrder == pb.RangeRequest_NONE ||
		(r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)
}

// Range executes r with etcd 3.7's semantics: Count covers the whole range
// (unless withTotalCount is false, as for RangeStream) and ignores the
// revision filters; a non-default sort reads everything, sorts, then cuts
// to the limit; keys_only drops values, and leases unless sorted by value.
func Range(rv RangeReader, r *pb.RangeRequest, withTotalCount bool) (*pb.RangeResponse, error) {
	sorted := !defaultOrder(r) || (r.SortTarget != pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_NONE)
	opts := storage.RangeOptions{
		Rev:          r.Revision,
		CountOnly:    r.CountOnly,
		KeysOnly:     r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE,
		MinModRev:    r.MinModRevision,
		MaxModRev:    r.MaxModRevision,
		MinCreateRev: r.MinCreateRevision,
		MaxCreateRev: r.MaxCreateRevision,
		NoTotalCount: !withTotalCount,
	}
	if !sorted {
		opts.Limit = r.Limit
	}
	res, err := rv.Range(r.Key, r.RangeEnd, opts)
	if err != nil {
		return nil, err
	}
	kvs := res.KVs
	more := res.More
	if sorted {
		sortKVs(kvs, r)
		if r.Limit > 0 && int64(len(kvs)) > r.Limit {
			kvs, more = kvs[:r.Limit], true
		}
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
			if opts.KeysOnly {
				// etcd 3.7 answers these from its in-memory index, which
				// keeps no lease.
				kv.Lease = 0
			}
		}
	}
	return &pb.RangeResponse{
		Header: &pb.ResponseHeader{Revision: res.Rev},
		Kvs:    kvs,
		More:   more,
		Count:  res.Count,
	}, nil
}

// sortKVs sorts as etcd does: a target with no order sorts ascending.
func sortKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) {
	order := r.SortOrder
	if order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	var less func(a, b *mvccpb.KeyValue) bool
	switch r.SortTarget {
	case pb.RangeRequest_KEY:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
	}
	if order == pb.RangeRequest_DESCEND {
		asc := less
		less = func(a, b *mvccpb.KeyValue) bool { return asc(b, a) }
	}
	// Stable, like etcd's sort.Sort on an already key-ordered slice for
	// equal elements is not guaranteed; stable keeps key order for ties.
	sort.SliceStable(kvs, func(i, j int) bool { return less(kvs[i], kvs[j]) })
}
