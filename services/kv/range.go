package kv

import (
	"bytes"
	"math"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage"
)

// RangeReader is what Range reads from: a storage.ReadTxn or WriteTxn.
type RangeReader interface {
	Range(key, end []byte, opts storage.RangeOptions) (*storage.RangeResult, error)
}

// defaultOrder reports whether results in key order need no sort: no
// order asked for, or ascending keys (etcd's IsDefaultOrdering).
func defaultOrder(target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) bool {
	return order == pb.RangeRequest_NONE || (target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
}

func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// Range executes r with etcd 3.7's semantics: Count covers the whole range
// (unless withTotalCount is false, as for RangeStream) and ignores the
// revision filters; keys_only drops values, and leases unless sorted by
// value. The limit is applied as etcd applies it: with a sort order or a
// revision filter everything is read, filtered, sorted and cut to the
// limit; otherwise the first limit+1 keys are read — and then sorted
// when a target other than the key is given without an order (etcd sorts
// those ascending after the read, so such a reply is the sorted first
// limit+1 keys, cut to the limit).
func Range(rv RangeReader, r *pb.RangeRequest, withTotalCount bool) (*pb.RangeResponse, error) {
	fastKeysOnly := r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE
	opts := storage.RangeOptions{
		Rev:          r.Revision,
		CountOnly:    r.CountOnly,
		KeysOnly:     fastKeysOnly,
		MinModRev:    r.MinModRevision,
		MaxModRev:    r.MaxModRevision,
		MinCreateRev: r.MinCreateRevision,
		MaxCreateRev: r.MaxCreateRevision,
		NoTotalCount: !withTotalCount,
	}
	if defaultOrder(r.SortTarget, r.SortOrder) && !hasRevisionFilters(r) && r.Limit > 0 && r.Limit < math.MaxInt64 {
		opts.Limit = r.Limit + 1
	}
	res, err := rv.Range(r.Key, r.RangeEnd, opts)
	if err != nil {
		return nil, err
	}
	kvs := res.KVs
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if !defaultOrder(r.SortTarget, order) {
		sortKVs(kvs, r.SortTarget, order)
	}
	more := false
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, more = kvs[:r.Limit], true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
			if fastKeysOnly {
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

// sortKVs sorts by target in order (ASCEND or DESCEND) exactly as etcd
// does — sort.Sort, reversed for DESCEND, over the same comparisons — so
// that keys comparing equal end in etcd's order too.
func sortKVs(kvs []*mvccpb.KeyValue, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) {
	var less func(a, b *mvccpb.KeyValue) bool
	switch target {
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
	default:
		return
	}
	var data sort.Interface = kvSorter{kvs, less}
	if order == pb.RangeRequest_DESCEND {
		data = sort.Reverse(data)
	}
	sort.Sort(data)
}

type kvSorter struct {
	kvs  []*mvccpb.KeyValue
	less func(a, b *mvccpb.KeyValue) bool
}

func (s kvSorter) Len() int           { return len(s.kvs) }
func (s kvSorter) Swap(i, j int)      { s.kvs[i], s.kvs[j] = s.kvs[j], s.kvs[i] }
func (s kvSorter) Less(i, j int) bool { return s.less(s.kvs[i], s.kvs[j]) }
