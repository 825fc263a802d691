package rbac

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	lpb "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/compat-tests/internal/procs"
	"github.com/metastore/metastore/tools/etcdtest"
)

var update = flag.Bool("update", false, "rewrite testdata/matrix.txt from etcd's answers")

const golden = "testdata/matrix.txt"

// principals in the order they run; root runs last, since some of its
// requests change state (revoke, compact, role add).
var principals = []string{"none", "badtoken", "deleted", "norole", "reader", "writer", "rw", "single", "root"}

// fixture is the state every principal meets: users and roles as below,
// keys r/1 w/1 p/1 k1 secret/1, lease "pl" with p/lease attached and lease
// "sl" with secret/lease attached.
type fixture struct {
	conn           *grpc.ClientConn
	tokens         map[string]string
	pLease, sLease int64
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func setup(t *testing.T, endpoint string) *fixture {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := ctx(t)
	kv, le, au := pb.NewKVClient(conn), pb.NewLeaseClient(conn), pb.NewAuthClient(conn)
	check := func(_ any, err error) { t.Helper(); require.NoError(t, err) }
	for _, k := range []string{"r/1", "w/1", "p/1", "k1", "secret/1"} {
		check(kv.Put(c, &pb.PutRequest{Key: []byte(k), Value: []byte("v")}))
	}
	f := &fixture{conn: conn, tokens: map[string]string{}}
	for _, id := range []*int64{&f.pLease, &f.sLease} {
		l, err := le.LeaseGrant(c, &pb.LeaseGrantRequest{TTL: 600})
		require.NoError(t, err)
		*id = l.ID
	}
	check(kv.Put(c, &pb.PutRequest{Key: []byte("p/lease"), Value: []byte("v"), Lease: f.pLease}))
	check(kv.Put(c, &pb.PutRequest{Key: []byte("secret/lease"), Value: []byte("v"), Lease: f.sLease}))
	roles := map[string][]*pb.AuthRoleGrantPermissionRequest{
		"r":      {{Perm: perm(0, "r/", "r0")}},
		"w":      {{Perm: perm(1, "w/", "w0")}},
		"p":      {{Perm: perm(2, "p/", "p0")}},
		"single": {{Perm: perm(0, "k1", "")}},
	}
	for _, name := range []string{"r", "w", "p", "single"} {
		check(au.RoleAdd(c, &pb.AuthRoleAddRequest{Name: name}))
		for _, g := range roles[name] {
			g.Name = name
			check(au.RoleGrantPermission(c, g))
		}
	}
	users := map[string]string{"root": "root", "reader": "r", "writer": "w", "rw": "p", "single": "single", "norole": "", "deleted": ""}
	for _, u := range []string{"root", "reader", "writer", "rw", "single", "norole", "deleted"} {
		check(au.UserAdd(c, &pb.AuthUserAddRequest{Name: u, Password: "pw-" + u}))
		if users[u] != "" {
			check(au.UserGrantRole(c, &pb.AuthUserGrantRoleRequest{User: u, Role: users[u]}))
		}
	}
	check(au.AuthEnable(c, &pb.AuthEnableRequest{}))
	login := func(u string) string {
		r, err := au.Authenticate(c, &pb.AuthenticateRequest{Name: u, Password: "pw-" + u})
		require.NoError(t, err)
		return r.Token
	}
	f.tokens["deleted"] = login("deleted")
	rootCtx := metadata.AppendToOutgoingContext(c, "token", login("root"))
	check(au.UserDelete(rootCtx, &pb.AuthUserDeleteRequest{Name: "deleted"}))
	for _, u := range []string{"root", "reader", "writer", "rw", "single", "norole"} {
		f.tokens[u] = login(u)
	}
	f.tokens["badtoken"] = "not-a-token.1"
	return f
}

func perm(typ int32, key, end string) *authpb.Permission {
	p := &authpb.Permission{Key: []byte(key), PermType: authpb.Permission_Type(typ)}
	if end != "" {
		p.RangeEnd = []byte(end)
	}
	return p
}

// answer is "ok" or the gRPC code and message of err.
func answer(err error) string {
	if err == nil {
		return "ok"
	}
	st := status.Convert(err)
	return fmt.Sprintf("%s: %s", st.Code(), st.Message())
}

type op struct {
	name string
	do   func(c context.Context, f *fixture) error
}

func ops() []op {
	kv := func(f *fixture) pb.KVClient { return pb.NewKVClient(f.conn) }
	rng := func(key, end string, serializable bool) func(context.Context, *fixture) error {
		return func(c context.Context, f *fixture) error {
			_, err := kv(f).Range(c, &pb.RangeRequest{Key: []byte(key), RangeEnd: []byte(end), Serializable: serializable})
			return err
		}
	}
	put := func(key string, prevKV bool, lease func(*fixture) int64) func(context.Context, *fixture) error {
		return func(c context.Context, f *fixture) error {
			r := &pb.PutRequest{Key: []byte(key), Value: []byte("x"), PrevKv: prevKV}
			if lease != nil {
				r.Lease = lease(f)
			}
			_, err := kv(f).Put(c, r)
			return err
		}
	}
	del := func(key, end string, prevKV bool) func(context.Context, *fixture) error {
		return func(c context.Context, f *fixture) error {
			_, err := kv(f).DeleteRange(c, &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end), PrevKv: prevKV})
			return err
		}
	}
	txn := func(r *pb.TxnRequest) func(context.Context, *fixture) error {
		return func(c context.Context, f *fixture) error { _, err := kv(f).Txn(c, r); return err }
	}
	putOp := func(k string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("t")}}}
	}
	getOp := func(k string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
	}
	cmp := func(k string) *pb.Compare {
		return &pb.Compare{Key: []byte(k), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Version{Version: 0}}
	}
	watch := func(key, end string) func(context.Context, *fixture) error {
		return func(c context.Context, f *fixture) error {
			wc, err := pb.NewWatchClient(f.conn).Watch(c)
			if err != nil {
				return err
			}
			defer wc.CloseSend()
			if err := wc.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte(key), RangeEnd: []byte(end)}}}); err != nil {
				return err
			}
			resp, err := wc.Recv()
			if err != nil {
				return err
			}
			if resp.Canceled {
				return fmt.Errorf("watch canceled: %s", resp.CancelReason)
			}
			return nil
		}
	}
	le := func(f *fixture) pb.LeaseClient { return pb.NewLeaseClient(f.conn) }
	mt := func(f *fixture) pb.MaintenanceClient { return pb.NewMaintenanceClient(f.conn) }
	au := func(f *fixture) pb.AuthClient { return pb.NewAuthClient(f.conn) }
	return []op{
		{"range r/1", rng("r/1", "", false)},
		{"range r/1 serializable", rng("r/1", "", true)},
		{"range prefix r/", rng("r/", "r0", false)},
		{"range prefix p/", rng("p/", "p0", false)},
		{"range secret/1", rng("secret/1", "", false)},
		{"range from k1", rng("k1", "\x00", false)},
		{"range k1", rng("k1", "", false)},
		{"put w/1", put("w/1", false, nil)},
		{"put p/x", put("p/x", false, nil)},
		{"put r/x", put("r/x", false, nil)},
		{"put w/1 prev_kv", put("w/1", true, nil)},
		{"put p/x prev_kv", put("p/x", true, nil)},
		{"put p/y on secret lease", put("p/y", false, func(f *fixture) int64 { return f.sLease })},
		{"put p/y on p lease", put("p/y", false, func(f *fixture) int64 { return f.pLease })},
		{"delete p/x", del("p/x", "", false)},
		{"delete prefix w/ prev_kv", del("w/", "w0", true)},
		{"txn compare r/1 then put w/t", txn(&pb.TxnRequest{Compare: []*pb.Compare{cmp("r/1")}, Success: []*pb.RequestOp{putOp("w/t")}})},
		{"txn put p/t else get secret/1", txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("p/t")}, Failure: []*pb.RequestOp{getOp("secret/1")}})},
		{"txn nested put secret/t", txn(&pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{putOp("secret/t")}}}}}})},
		{"txn get p/1", txn(&pb.TxnRequest{Success: []*pb.RequestOp{getOp("p/1")}})},
		{"watch prefix r/", watch("r/", "r0")},
		{"watch secret/1", watch("secret/1", "")},
		{"watch from k1", watch("k1", "\x00")},
		{"watch k1", watch("k1", "")},
		{"lease grant", func(c context.Context, f *fixture) error {
			_, err := le(f).LeaseGrant(c, &pb.LeaseGrantRequest{TTL: 600})
			return err
		}},
		{"lease ttl keys of p lease", func(c context.Context, f *fixture) error {
			_, err := le(f).LeaseTimeToLive(c, &pb.LeaseTimeToLiveRequest{ID: f.pLease, Keys: true})
			return err
		}},
		{"lease ttl keys of secret lease", func(c context.Context, f *fixture) error {
			_, err := le(f).LeaseTimeToLive(c, &pb.LeaseTimeToLiveRequest{ID: f.sLease, Keys: true})
			return err
		}},
		{"lease ttl of secret lease", func(c context.Context, f *fixture) error {
			_, err := le(f).LeaseTimeToLive(c, &pb.LeaseTimeToLiveRequest{ID: f.sLease})
			return err
		}},
		{"lease leases", func(c context.Context, f *fixture) error {
			_, err := le(f).LeaseLeases(c, &pb.LeaseLeasesRequest{})
			return err
		}},
		{"status", func(c context.Context, f *fixture) error { _, err := mt(f).Status(c, &pb.StatusRequest{}); return err }},
		{"alarm get", func(c context.Context, f *fixture) error {
			_, err := mt(f).Alarm(c, &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
			return err
		}},
		{"hashkv", func(c context.Context, f *fixture) error { _, err := mt(f).HashKV(c, &pb.HashKVRequest{}); return err }},
		{"member list", func(c context.Context, f *fixture) error {
			_, err := pb.NewClusterClient(f.conn).MemberList(c, &pb.MemberListRequest{})
			return err
		}},
		{"auth status", func(c context.Context, f *fixture) error {
			_, err := au(f).AuthStatus(c, &pb.AuthStatusRequest{})
			return err
		}},
		{"user get reader", func(c context.Context, f *fixture) error {
			_, err := au(f).UserGet(c, &pb.AuthUserGetRequest{Name: "reader"})
			return err
		}},
		{"role get r", func(c context.Context, f *fixture) error {
			_, err := au(f).RoleGet(c, &pb.AuthRoleGetRequest{Role: "r"})
			return err
		}},
		{"user list", func(c context.Context, f *fixture) error {
			_, err := au(f).UserList(c, &pb.AuthUserListRequest{})
			return err
		}},
		{"role list", func(c context.Context, f *fixture) error {
			_, err := au(f).RoleList(c, &pb.AuthRoleListRequest{})
			return err
		}},
		{"downgrade validate 3.6", func(c context.Context, f *fixture) error {
			_, err := mt(f).Downgrade(c, &pb.DowngradeRequest{Action: pb.DowngradeRequest_VALIDATE, Version: "3.6"})
			return err
		}},
		// The Lock and Election services act as their caller.
		{"lock p/lock, unlock", func(c context.Context, f *fixture) error {
			return lockUnlock(c, f, "p/lock", f.pLease)
		}},
		{"lock secret/lock, unlock", func(c context.Context, f *fixture) error {
			return lockUnlock(c, f, "secret/lock", f.sLease)
		}},
		{"election leader p/elect", func(c context.Context, f *fixture) error {
			_, err := epb.NewElectionClient(f.conn).Leader(c, &epb.LeaderRequest{Name: []byte("p/elect")})
			return err
		}},
		{"campaign p/elect, resign", func(c context.Context, f *fixture) error {
			ec := epb.NewElectionClient(f.conn)
			r, err := ec.Campaign(c, &epb.CampaignRequest{Name: []byte("p/elect"), Lease: f.pLease, Value: []byte("x")})
			if err != nil {
				return err
			}
			_, err = ec.Resign(c, &epb.ResignRequest{Leader: r.Leader})
			return err
		}},
		// State-changing requests last.
		{"lease revoke secret lease", func(c context.Context, f *fixture) error {
			_, err := le(f).LeaseRevoke(c, &pb.LeaseRevokeRequest{ID: f.sLease})
			return err
		}},
		{"defragment", func(c context.Context, f *fixture) error {
			_, err := mt(f).Defragment(c, &pb.DefragmentRequest{})
			return err
		}},
		{"compact", func(c context.Context, f *fixture) error {
			st, err := kv(f).Range(c, &pb.RangeRequest{Key: []byte("k1"), Serializable: true, CountOnly: true})
			rev := int64(1)
			if err == nil {
				rev = st.Header.Revision
			}
			_, err = kv(f).Compact(c, &pb.CompactionRequest{Revision: rev})
			return err
		}},
		{"role add", func(c context.Context, f *fixture) error {
			_, err := au(f).RoleAdd(c, &pb.AuthRoleAddRequest{Name: "added"})
			return err
		}},
	}
}

// lockUnlock takes the lock name with lease and releases it (nothing else
// holds it, so Lock does not wait).
func lockUnlock(c context.Context, f *fixture, name string, lease int64) error {
	c, cancel := context.WithTimeout(c, 5*time.Second)
	defer cancel()
	lc := lpb.NewLockClient(f.conn)
	r, err := lc.Lock(c, &lpb.LockRequest{Name: []byte(name), Lease: lease})
	if err != nil {
		return err
	}
	_, err = lc.Unlock(c, &lpb.UnlockRequest{Key: r.Key})
	return err
}

// run sends every request as every principal and returns the answers, one
// line per (principal, request).
func run(t *testing.T, endpoint string) string {
	f := setup(t, endpoint)
	var lines []string
	for _, p := range principals {
		c := ctx(t)
		if p != "none" {
			c = metadata.AppendToOutgoingContext(c, "token", f.tokens[p])
		}
		for _, o := range ops() {
			lines = append(lines, fmt.Sprintf("%-9s %-32s %s", p, o.name, answer(o.do(c, f))))
		}
	}
	return strings.Join(lines, "\n") + "\n"
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
				t.Skip("needs bin/metastore: make test runs it after the build (make rbac)")
			}
			got := run(t, target.start(t))
			if *update && target.name == "etcd" {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, diffable(string(want)), diffable(got))
		})
	}
}

// diffable keeps the lines in order but makes testify's diff per line.
func diffable(s string) []string {
	return strings.Split(strings.TrimSpace(s), "\n")
}
