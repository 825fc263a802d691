// Package fields is the request-field matrix: Range requests over every
// combination of the fields etcd documents (key, range_end, limit,
// revision, sort_order, sort_target, keys_only, count_only and the
// min/max mod and create revision filters), and Watch create requests
// over start_revision, range_end, filters and prev_kv, sent to a fresh
// server holding one fixed history. Every answer — the kvs with their
// revisions, versions, values and whether they carry a lease, more,
// count, the header revision, the watch responses in order, or the exact
// gRPC code and message — must equal testdata/range.txt and
// testdata/watch.txt, which are written from etcd 3.7.3 (go test -run
// 'Test.*Matrix/etcd' -update) and checked against etcd and against
// bin/metastore in every run.
package fields
