package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/server/internal/testcluster"
)

// rawConn is a plain gRPC connection to one member, so a test chooses the
// token each call carries (clientv3 would re-authenticate on its own).
func rawConn(t *testing.T, m *testcluster.Member) *grpc.ClientConn {
	conn, err := grpc.NewClient(m.Srv.ClientAddrs()[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func withToken(t *testing.T, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx(t), "token", tok)
}

func authenticate(t *testing.T, m *testcluster.Member, user, pw string) string {
	t.Helper()
	r, err := pb.NewAuthClient(rawConn(t, m)).Authenticate(ctx(t), &pb.AuthenticateRequest{Name: user, Password: pw})
	require.NoError(t, err)
	return r.Token
}

// userClient is a clientv3 client logged in as user; creating it
// authenticates, which is retried while the cluster changes leader.
func userClient(t *testing.T, user, pw string, ms ...*testcluster.Member) *clientv3.Client {
	var c *clientv3.Client
	require.Eventually(t, func() bool {
		var err error
		c, err = clientv3.New(clientv3.Config{Endpoints: testcluster.Members(ms).Endpoints(), Username: user, Password: pw,
			DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		return err == nil
	}, 20*time.Second, 50*time.Millisecond)
	t.Cleanup(func() { c.Close() })
	return c
}

// enableAuth creates root and alice (read-write on app/) and turns auth on.
func enableAuth(t *testing.T, m *testcluster.Member) {
	enableAuthWith(t, testcluster.Client(t, m))
}

// enableAuthWith is enableAuth through c.
func enableAuthWith(t *testing.T, c *clientv3.Client) {
	for _, step := range []func() error{
		func() error { _, err := c.UserAdd(ctx(t), "root", "rootpw"); return err },
		func() error { _, err := c.UserGrantRole(ctx(t), "root", "root"); return err },
		func() error { _, err := c.RoleAdd(ctx(t), "app"); return err },
		func() error {
			_, err := c.RoleGrantPermission(ctx(t), "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(authpb.READWRITE))
			return err
		},
		func() error { _, err := c.UserAdd(ctx(t), "alice", "alicepw"); return err },
		func() error { _, err := c.UserGrantRole(ctx(t), "alice", "app"); return err },
		func() error { _, err := c.AuthEnable(ctx(t)); return err },
	} {
		require.NoError(t, step())
	}
}

func putWith(t *testing.T, conn *grpc.ClientConn, tok, key string) error {
	_, err := pb.NewKVClient(conn).Put(withToken(t, tok), &pb.PutRequest{Key: []byte(key), Value: []byte("v")})
	return err
}

func sameStatus(t *testing.T, want, got error) bool {
	return status.Code(want) == status.Code(got) && status.Convert(want).Message() == status.Convert(got).Message()
}

// A token issued by one member works on every member (etcd's simple
// tokens work only where they were issued, etcd issue #18437), and a
// permission change, a new password or a restart are seen everywhere.
func TestAuthTokensAndChangesAcrossMembers(t *testing.T) {
	ms := testcluster.Start(t, 3, func(c *server.Config) {
		c.BcryptCost = 4
		c.SnapshotCount, c.SnapshotCatchUpEntries = 50, 10
	})
	enableAuth(t, ms[0])
	tok := authenticate(t, ms[0], "alice", "alicepw")
	conns := []*grpc.ClientConn{rawConn(t, ms[0]), rawConn(t, ms[1]), rawConn(t, ms[2])}
	for i, conn := range conns {
		require.NoError(t, putWith(t, conn, tok, fmt.Sprintf("app/%d", i)), "member %d takes member 0's token", i)
		err := putWith(t, conn, tok, "other")
		require.True(t, sameStatus(t, rpctypes.ErrGRPCPermissionDenied, err), "member %d: %v", i, err)
	}
	_, err := pb.NewAuthClient(conns[1]).Authenticate(ctx(t), &pb.AuthenticateRequest{Name: "alice", Password: "wrong"})
	require.True(t, sameStatus(t, rpctypes.ErrGRPCAuthFailed, err), "%v", err)

	// Revoke alice's permission through member 2: every member refuses.
	root := userClient(t, "root", "rootpw", ms[2])
	_, err = root.RoleRevokePermission(ctx(t), "app", "app/", clientv3.GetPrefixRangeEnd("app/"))
	require.NoError(t, err)
	for i, conn := range conns {
		require.Eventually(t, func() bool {
			return sameStatus(t, rpctypes.ErrGRPCPermissionDenied, putWith(t, conn, tok, "app/x"))
		}, 10*time.Second, 20*time.Millisecond, "member %d sees the revocation", i)
	}
	_, err = root.RoleGrantPermission(ctx(t), "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(authpb.READWRITE))
	require.NoError(t, err)

	// A restarted member keeps the auth state, and tokens issued before.
	ms[1].Restart()
	conns[1] = rawConn(t, ms[1])
	require.Eventually(t, func() bool { return putWith(t, conns[1], tok, "app/after-restart") == nil },
		10*time.Second, 20*time.Millisecond, "a token survives the member's restart")

	// A member that catches up from a snapshot gets users created while
	// it was down.
	ms[2].Srv.Stop()
	rootOn0 := userClient(t, "root", "rootpw", ms[0], ms[1])
	for i := range 120 {
		_, err := rootOn0.Put(ctx(t), fmt.Sprintf("fill/%03d", i), "x")
		require.NoError(t, err)
	}
	_, err = rootOn0.UserAdd(ctx(t), "bob", "bobpw")
	require.NoError(t, err)
	ms[2].Start()
	ms[2].WaitReady()
	bobTok := ""
	require.Eventually(t, func() bool {
		r, err := pb.NewAuthClient(rawConn(t, ms[2])).Authenticate(ctx(t), &pb.AuthenticateRequest{Name: "bob", Password: "bobpw"})
		if err == nil {
			bobTok = r.Token
		}
		return err == nil
	}, 20*time.Second, 50*time.Millisecond)
	st, err := pb.NewMaintenanceClient(conns[0]).Status(withToken(t, bobTok), &pb.StatusRequest{})
	require.NoError(t, err, "member 2's token for bob works on member 0")
	require.NotZero(t, st.Header.MemberId)

	// A new password ends every earlier token, on every member.
	_, err = rootOn0.UserChangePassword(ctx(t), "alice", "newpw")
	require.NoError(t, err)
	for i := range conns {
		conn := rawConn(t, ms[i])
		require.Eventually(t, func() bool {
			return sameStatus(t, rpctypes.ErrGRPCInvalidAuthToken, putWith(t, conn, tok, "app/y"))
		}, 10*time.Second, 20*time.Millisecond, "member %d refuses the old token", i)
	}

	// A session survives a leader change: clientv3 re-authenticates when
	// it has to and goes on.
	alice := userClient(t, "alice", "newpw", ms...)
	_, err = alice.Put(ctx(t), "app/before-move", "1")
	require.NoError(t, err)
	rootAll := userClient(t, "root", "rootpw", ms...)
	lead := -1
	require.Eventually(t, func() bool {
		for i, m := range ms {
			st, err := rootAll.Status(ctx(t), m.Srv.ClientAddrs()[0])
			if err == nil && st.Leader == m.Srv.ID() {
				lead = i
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond)
	to := ms[(lead+1)%3]
	_, err = userClient(t, "root", "rootpw", ms[lead]).MoveLeader(ctx(t), to.Srv.ID())
	require.NoError(t, err)
	_, err = alice.Put(ctx(t), "app/after-move", "1")
	require.NoError(t, err)
	get, err := alice.Get(ctx(t), "app/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Positive(t, get.Count)
}

// Bad --auth-token values stop the member before it opens anything.
func TestBadAuthTokenOption(t *testing.T) {
	ms := testcluster.Configs(t, 1, func(c *server.Config) { c.AuthToken = "jwt,sign-method=RS256" })
	_, err := server.New(ms[0].Cfg, zap.NewNop())
	require.ErrorContains(t, err, "--auth-token")
}
