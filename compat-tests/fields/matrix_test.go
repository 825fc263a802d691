package fields

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/compat-tests/internal/procs"
	"github.com/metastore/metastore/tools/etcdtest"
)

var (
	update = flag.Bool("update", false, "rewrite testdata from etcd's answers")
	outDir = flag.String("out", "", "also write every target's answers to this directory (<target>-<file>), to diff them")
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// history is the fixed history every target gets, on a fresh server
// (revisions 2..): versions, a delete, a re-create, a key on a lease, then
// a compaction at compactRev. Its revisions are the same everywhere.
const compactRev = 4

func seed(t *testing.T, conn *grpc.ClientConn) {
	kv, le := pb.NewKVClient(conn), pb.NewLeaseClient(conn)
	put := func(k, v string, lease int64) {
		_, err := kv.Put(ctx(t), &pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: lease})
		require.NoError(t, err)
	}
	put("a", "3", 0)                                                           // rev 2
	put("b", "2", 0)                                                           // rev 3
	put("a", "1", 0)                                                           // rev 4
	put("c", "5", 0)                                                           // rev 5
	put("b", "4", 0)                                                           // rev 6
	_, err := kv.DeleteRange(ctx(t), &pb.DeleteRangeRequest{Key: []byte("c")}) // rev 7
	require.NoError(t, err)
	put("d", "0", 0) // rev 8
	put("c", "9", 0) // rev 9
	l, err := le.LeaseGrant(ctx(t), &pb.LeaseGrantRequest{TTL: 600})
	require.NoError(t, err)
	put("e", "6", l.ID) // rev 10
	put("ab", "7", 0)   // rev 11
	_, err = kv.Compact(ctx(t), &pb.CompactionRequest{Revision: compactRev, Physical: true})
	require.NoError(t, err)
}

func kvString(kv *mvccpb.KeyValue) string {
	lease := ""
	if kv.Lease != 0 {
		lease = "+lease"
	}
	return fmt.Sprintf("%s=%q@c%d/m%d/v%d%s", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, lease)
}

func errString(err error) string {
	st := status.Convert(err)
	return fmt.Sprintf("%s: %s", st.Code(), st.Message())
}

func rangeAnswer(r *pb.RangeResponse, err error) string {
	if err != nil {
		return errString(err)
	}
	var kvs []string
	for _, kv := range r.Kvs {
		kvs = append(kvs, kvString(kv))
	}
	return fmt.Sprintf("rev=%d count=%d more=%t [%s]", r.Header.Revision, r.Count, r.More, strings.Join(kvs, " "))
}

// rangeRequests is the cartesian product of the documented Range fields,
// in a fixed order.
func rangeRequests() []*pb.RangeRequest {
	type span struct{ key, end string }
	spans := []span{{"a", ""}, {"a", "c"}, {"a", "\x00"}, {"\x00", "\x00"}, {"zz", ""}, {"b", "a"}}
	var out []*pb.RangeRequest
	for _, sp := range spans {
		for _, limit := range []int64{0, 1, 3} {
			for _, order := range []pb.RangeRequest_SortOrder{pb.RangeRequest_NONE, pb.RangeRequest_ASCEND, pb.RangeRequest_DESCEND} {
				for _, target := range []pb.RangeRequest_SortTarget{pb.RangeRequest_KEY, pb.RangeRequest_VERSION, pb.RangeRequest_CREATE, pb.RangeRequest_MOD, pb.RangeRequest_VALUE} {
					for _, keysOnly := range []bool{false, true} {
						for _, countOnly := range []bool{false, true} {
							out = append(out, &pb.RangeRequest{Key: []byte(sp.key), RangeEnd: []byte(sp.end), Limit: limit,
								SortOrder: order, SortTarget: target, KeysOnly: keysOnly, CountOnly: countOnly})
						}
					}
				}
			}
		}
	}
	type filter struct{ minMod, maxMod, minCreate, maxCreate int64 }
	filters := []filter{{}, {minMod: 6}, {maxMod: 6}, {minCreate: 5}, {maxCreate: 5}, {minMod: 5, maxMod: 9}, {minCreate: 3, maxCreate: 9}}
	for _, sp := range spans[:4] {
		for _, rev := range []int64{0, compactRev - 1, compactRev, 7, 11, 12} {
			for _, f := range filters {
				for _, limit := range []int64{0, 2} {
					for _, countOnly := range []bool{false, true} {
						out = append(out, &pb.RangeRequest{Key: []byte(sp.key), RangeEnd: []byte(sp.end), Revision: rev, Limit: limit,
							MinModRevision: f.minMod, MaxModRevision: f.maxMod, MinCreateRevision: f.minCreate, MaxCreateRevision: f.maxCreate,
							CountOnly: countOnly})
					}
				}
			}
		}
	}
	return out
}

func describeRange(r *pb.RangeRequest) string {
	s := fmt.Sprintf("key=%q end=%q", r.Key, r.RangeEnd)
	for _, f := range []struct {
		name string
		v    int64
	}{{"limit", r.Limit}, {"rev", r.Revision}, {"minMod", r.MinModRevision}, {"maxMod", r.MaxModRevision}, {"minCreate", r.MinCreateRevision}, {"maxCreate", r.MaxCreateRevision}} {
		if f.v != 0 {
			s += fmt.Sprintf(" %s=%d", f.name, f.v)
		}
	}
	if r.SortOrder != pb.RangeRequest_NONE || r.SortTarget != pb.RangeRequest_KEY {
		s += fmt.Sprintf(" sort=%s/%s", r.SortTarget, r.SortOrder)
	}
	if r.KeysOnly {
		s += " keys_only"
	}
	if r.CountOnly {
		s += " count_only"
	}
	return s
}

// watchRequests covers start_revision (compacted, at the compaction, past,
// current+1, negative), the range, both filters and prev_kv.
func watchRequests() []*pb.WatchCreateRequest {
	var out []*pb.WatchCreateRequest
	for _, rev := range []int64{compactRev - 1, compactRev, compactRev + 1, 9, 12, -1} {
		for _, end := range []string{"", "c", "\x00"} {
			for _, filters := range [][]pb.WatchCreateRequest_FilterType{nil, {pb.WatchCreateRequest_NOPUT}, {pb.WatchCreateRequest_NODELETE}} {
				for _, prev := range []bool{false, true} {
					out = append(out, &pb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte(end), StartRevision: rev, Filters: filters, PrevKv: prev})
				}
			}
		}
	}
	return out
}

func describeWatch(r *pb.WatchCreateRequest) string {
	return fmt.Sprintf("key=%q end=%q start=%d filters=%v prev_kv=%t", r.Key, r.RangeEnd, r.StartRevision, r.Filters, r.PrevKv)
}

// watchAnswer opens a stream, creates the watch and returns every
// response until none came for a while.
func watchAnswer(t *testing.T, conn *grpc.ClientConn, r *pb.WatchCreateRequest) string {
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	ws, err := pb.NewWatchClient(conn).Watch(c)
	if err != nil {
		return "watch: " + errString(err)
	}
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: r}}); err != nil {
		return "send: " + errString(err)
	}
	ch := make(chan *pb.WatchResponse, 16)
	go func() {
		defer close(ch)
		for {
			wr, err := ws.Recv()
			if err != nil {
				return
			}
			ch <- wr
		}
	}()
	var parts []string
	for {
		select {
		case wr, ok := <-ch:
			if !ok {
				return strings.Join(parts, " | ")
			}
			parts = append(parts, watchResponse(wr))
			continue
		case <-time.After(500 * time.Millisecond):
		}
		return strings.Join(parts, " | ")
	}
}

func watchResponse(wr *pb.WatchResponse) string {
	s := fmt.Sprintf("id=%d rev=%d", wr.WatchId, wr.GetHeader().GetRevision())
	if wr.Created {
		s += " created"
	}
	if wr.Canceled {
		s += fmt.Sprintf(" canceled(%q)", wr.CancelReason)
	}
	if wr.CompactRevision != 0 {
		s += fmt.Sprintf(" compact=%d", wr.CompactRevision)
	}
	for _, ev := range wr.Events {
		s += fmt.Sprintf(" %s:%s", ev.Type, kvString(ev.Kv))
		if ev.PrevKv != nil {
			s += " prev:" + kvString(ev.PrevKv)
		}
	}
	return s
}

func rangeMatrix(t *testing.T, conn *grpc.ClientConn) string {
	var b strings.Builder
	for _, r := range rangeRequests() {
		resp, err := pb.NewKVClient(conn).Range(ctx(t), r)
		fmt.Fprintf(&b, "%s -> %s\n", describeRange(r), rangeAnswer(resp, err))
	}
	return b.String()
}

// watchMatrix runs every watch on a stream of its own, all at once (each
// waits for a quiet spell), and lists the answers in request order.
func watchMatrix(t *testing.T, conn *grpc.ClientConn) string {
	reqs := watchRequests()
	answers := make([]string, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = watchAnswer(t, conn, r)
		}()
	}
	wg.Wait()
	var b strings.Builder
	for i, r := range reqs {
		fmt.Fprintf(&b, "%s -> %s\n", describeWatch(r), answers[i])
	}
	return b.String()
}

func TestMatrix(t *testing.T) {
	for _, target := range []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"etcd", func(t *testing.T) string { return etcdtest.StartT(t, etcdtest.Config{}).Endpoints[0] }},
		{"metastore", func(t *testing.T) string { return procs.StartMetastore(t, 1).Endpoints[0] }},
	} {
		t.Run(target.name, func(t *testing.T) {
			if target.name == "metastore" && testing.Short() {
				t.Skip("needs bin/metastore: make test runs it after the build (make fields)")
			}
			conn, err := grpc.NewClient(target.start(t), grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			defer conn.Close()
			seed(t, conn)
			for _, m := range []struct {
				file string
				run  func(*testing.T, *grpc.ClientConn) string
			}{{"range.txt", rangeMatrix}, {"watch.txt", watchMatrix}} {
				got := m.run(t, conn)
				if *outDir != "" {
					require.NoError(t, os.WriteFile(filepath.Join(*outDir, target.name+"-"+m.file), []byte(got), 0o644))
				}
				golden := filepath.Join("testdata", m.file)
				if *update && target.name == "etcd" {
					require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err)
				assert.Equal(t, strings.Split(string(want), "\n"), strings.Split(got, "\n"), "%s differs from etcd's", m.file)
			}
		})
	}
}
