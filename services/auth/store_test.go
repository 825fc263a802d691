package auth

import (
	"bytes"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"
)

// memAux is an in-memory auxiliary store: a WriteTxn and a Store at once.
type memAux map[string][]byte

func (m memAux) PutAux(b string, k, v []byte) { m[b+"\x00"+string(k)] = bytes.Clone(v) }
func (m memAux) DeleteAux(b string, k []byte) { delete(m, b+"\x00"+string(k)) }
func (m memAux) ForEachAux(b string, fn func(k, v []byte) error) error {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, b+"\x00") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k[len(b)+1:]), m[k]); err != nil {
			return err
		}
	}
	return nil
}

// harness applies requests as a member would, with a root header.
type harness struct {
	t   testing.TB
	st  *Store
	aux memAux
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, st: NewStore(nil), aux: memAux{}}
}

func (h *harness) apply(user string, r *pb.InternalRaftRequest) error {
	h.t.Helper()
	if user != "" {
		r.Header = &pb.RequestHeader{Username: user, AuthRevision: h.st.Revision()}
	}
	_, err, ok := h.st.Apply(h.aux, r)
	require.True(h.t, ok, "an auth request")
	return err
}

func hash(t testing.TB, pw string) string {
	h, err := HashPassword(pw, bcrypt.MinCost)
	require.NoError(t, err)
	return h
}

func (h *harness) addUser(name, pw string, roles ...string) {
	h.t.Helper()
	require.NoError(h.t, h.apply("root", &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: name, HashedPassword: hash(h.t, pw)}}))
	for _, r := range roles {
		require.NoError(h.t, h.apply("root", &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: name, Role: r}}))
	}
}

func (h *harness) addRole(name string, perms ...*authpb.Permission) {
	h.t.Helper()
	require.NoError(h.t, h.apply("root", &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: name}}))
	for _, p := range perms {
		require.NoError(h.t, h.apply("root", &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: name, Perm: p}}))
	}
}

func (h *harness) enable() {
	h.t.Helper()
	h.addUser("root", "rootpw", "root")
	require.NoError(h.t, h.apply("root", &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}))
	require.True(h.t, h.st.Enabled())
}

func perm(typ authpb.Permission_Type, key, end string) *authpb.Permission {
	p := &authpb.Permission{PermType: typ, Key: []byte(key)}
	if end != "" {
		p.RangeEnd = []byte(end)
	}
	return p
}

func TestNotAuthRequest(t *testing.T) {
	_, _, ok := NewStore(nil).Apply(memAux{}, &pb.InternalRaftRequest{Put: &pb.PutRequest{}})
	require.False(t, ok)
}

func TestEnableNeedsRootWithRootRole(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, rpctypes.ErrGRPCRootUserNotExist, h.apply("", &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}))
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: hash(t, "pw")}}))
	require.Equal(t, rpctypes.ErrGRPCRootRoleNotExist, h.apply("", &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}))
	require.False(t, h.st.Enabled())
	// The root role needs no RoleAdd to be granted (etcd).
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}}))
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}))
	require.True(t, h.st.Enabled())
	require.NoError(t, h.apply("root", &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}), "enabling twice is ignored")
}

func TestBadInputGetsEtcdsErrorsAndChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.enable()
	h.addRole("r", perm(authpb.READ, "a", "b"))
	h.addUser("alice", "pw", "r")
	rev := h.st.Revision()
	for _, c := range []struct {
		name string
		r    *pb.InternalRaftRequest
		want error
	}{
		{"empty user", &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{HashedPassword: hash(t, "x")}}, rpctypes.ErrGRPCUserEmpty},
		{"duplicate user", &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "alice", HashedPassword: hash(t, "x")}}, rpctypes.ErrGRPCUserAlreadyExist},
		{"bad hash", &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "bob", HashedPassword: "%%%"}}, ErrNoPasswordUser},
		{"delete missing user", &pb.InternalRaftRequest{AuthUserDelete: &pb.AuthUserDeleteRequest{Name: "nobody"}}, rpctypes.ErrGRPCUserNotFound},
		{"delete root while enabled", &pb.InternalRaftRequest{AuthUserDelete: &pb.AuthUserDeleteRequest{Name: "root"}}, rpctypes.ErrGRPCInvalidAuthMgmt},
		{"password of missing user", &pb.InternalRaftRequest{AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: "nobody", HashedPassword: hash(t, "x")}}, rpctypes.ErrGRPCUserNotFound},
		{"bad new hash", &pb.InternalRaftRequest{AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: "alice"}}, ErrNoPasswordUser},
		{"grant to missing user", &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "nobody", Role: "r"}}, rpctypes.ErrGRPCUserNotFound},
		{"grant missing role", &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "alice", Role: "nope"}}, rpctypes.ErrGRPCRoleNotFound},
		{"revoke ungranted role", &pb.InternalRaftRequest{AuthUserRevokeRole: &pb.AuthUserRevokeRoleRequest{Name: "alice", Role: "root"}}, rpctypes.ErrGRPCRoleNotGranted},
		{"revoke from missing user", &pb.InternalRaftRequest{AuthUserRevokeRole: &pb.AuthUserRevokeRoleRequest{Name: "nobody", Role: "r"}}, rpctypes.ErrGRPCUserNotFound},
		{"revoke root's root role", &pb.InternalRaftRequest{AuthUserRevokeRole: &pb.AuthUserRevokeRoleRequest{Name: "root", Role: "root"}}, rpctypes.ErrGRPCInvalidAuthMgmt},
		{"empty role", &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{}}, rpctypes.ErrGRPCRoleEmpty},
		{"duplicate role", &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "r"}}, rpctypes.ErrGRPCRoleAlreadyExist},
		{"delete missing role", &pb.InternalRaftRequest{AuthRoleDelete: &pb.AuthRoleDeleteRequest{Role: "nope"}}, rpctypes.ErrGRPCRoleNotFound},
		{"delete root role while enabled", &pb.InternalRaftRequest{AuthRoleDelete: &pb.AuthRoleDeleteRequest{Role: "root"}}, rpctypes.ErrGRPCInvalidAuthMgmt},
		{"get missing role", &pb.InternalRaftRequest{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "nope"}}, rpctypes.ErrGRPCRoleNotFound},
		{"get missing user", &pb.InternalRaftRequest{AuthUserGet: &pb.AuthUserGetRequest{Name: "nobody"}}, rpctypes.ErrGRPCUserNotFound},
		{"no permission", &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "r"}}, rpctypes.ErrGRPCPermissionNotGiven},
		{"empty range", &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: perm(authpb.READ, "b", "a")}}, rpctypes.ErrGRPCInvalidAuthMgmt},
		{"empty key", &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: perm(authpb.READ, "", "a")}}, rpctypes.ErrGRPCInvalidAuthMgmt},
		{"grant to missing role", &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "nope", Perm: perm(authpb.READ, "a", "")}}, rpctypes.ErrGRPCRoleNotFound},
		{"revoke ungranted permission", &pb.InternalRaftRequest{AuthRoleRevokePermission: &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("z")}}, rpctypes.ErrGRPCPermissionNotGranted},
		{"revoke from missing role", &pb.InternalRaftRequest{AuthRoleRevokePermission: &pb.AuthRoleRevokePermissionRequest{Role: "nope", Key: []byte("a")}}, rpctypes.ErrGRPCRoleNotFound},
		{"bad token key", &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{SimpleToken: "short"}}, rpctypes.ErrGRPCInvalidAuthMgmt},
	} {
		before := len(h.aux)
		require.Equal(t, c.want, h.apply("root", c.r), c.name)
		require.Equal(t, rev, h.st.Revision(), "%s: the revision does not move", c.name)
		require.Equal(t, before, len(h.aux), "%s: nothing written", c.name)
	}
}

func TestAdministrationNeedsRoot(t *testing.T) {
	h := newHarness(t)
	h.enable()
	h.addRole("r")
	h.addUser("alice", "pw", "r")
	for _, r := range []*pb.InternalRaftRequest{
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "x", HashedPassword: hash(t, "x")}},
		{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "x"}},
		{AuthUserList: &pb.AuthUserListRequest{}},
		{AuthRoleList: &pb.AuthRoleListRequest{}},
		{AuthDisable: &pb.AuthDisableRequest{}},
		{AuthUserGet: &pb.AuthUserGetRequest{Name: "root"}},
		{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "root"}},
	} {
		require.Equal(t, rpctypes.ErrGRPCPermissionDenied, h.apply("alice", r), "%v", r)
	}
	require.Equal(t, rpctypes.ErrGRPCUserEmpty, h.apply("", &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "x"}}))
	require.Equal(t, rpctypes.ErrGRPCUserNotFound, h.apply("ghost", &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "x"}}))
	// Anyone reads themselves and the roles they have.
	require.NoError(t, h.apply("alice", &pb.InternalRaftRequest{AuthUserGet: &pb.AuthUserGetRequest{Name: "alice"}}))
	require.NoError(t, h.apply("alice", &pb.InternalRaftRequest{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "r"}}))
	require.NoError(t, h.apply("alice", &pb.InternalRaftRequest{AuthStatus: &pb.AuthStatusRequest{}}))
	require.True(t, h.st.HasRole("alice", "r"))
	require.False(t, h.st.HasRole("alice", "root"))
}

func TestAnswers(t *testing.T) {
	h := newHarness(t)
	h.addRole("r", perm(authpb.READ, "b", "c"), perm(authpb.WRITE, "a", ""))
	h.addUser("bob", "pw", "r")
	h.addUser("alice", "pw")
	resp, _, _ := h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthUserList: &pb.AuthUserListRequest{}})
	require.Equal(t, []string{"alice", "bob"}, resp.(*pb.AuthUserListResponse).Users)
	resp, _, _ = h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthRoleList: &pb.AuthRoleListRequest{}})
	require.Equal(t, []string{"r"}, resp.(*pb.AuthRoleListResponse).Roles)
	resp, _, _ = h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "r"}})
	perms := resp.(*pb.AuthRoleGetResponse).Perm
	require.Len(t, perms, 2)
	require.Equal(t, "a", string(perms[0].Key), "permissions sorted by key, as etcd")
	// Granting the same key and range again updates the type.
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: perm(authpb.READWRITE, "a", "")}}))
	resp, _, _ = h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "r"}})
	require.Len(t, resp.(*pb.AuthRoleGetResponse).Perm, 2)
	require.Equal(t, authpb.READWRITE, resp.(*pb.AuthRoleGetResponse).Perm[0].PermType)
	resp, _, _ = h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthUserGet: &pb.AuthUserGetRequest{Name: "bob"}})
	require.Equal(t, []string{"r"}, resp.(*pb.AuthUserGetResponse).Roles)
	// Granting a role twice is ignored; the root role reads as everything.
	rev := h.st.Revision()
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "bob", Role: "r"}}))
	require.Equal(t, rev, h.st.Revision())
	h.addUser("root", "pw", "root")
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "root"}}))
	resp, _, _ = h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "root"}})
	require.Equal(t, []byte{0}, resp.(*pb.AuthRoleGetResponse).Perm[0].RangeEnd)
	// Deleting a role takes it from its users; revoking a permission.
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthRoleRevokePermission: &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("b"), RangeEnd: []byte("c")}}))
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthRoleDelete: &pb.AuthRoleDeleteRequest{Role: "r"}}))
	resp, _, _ = h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthUserGet: &pb.AuthUserGetRequest{Name: "bob"}})
	require.Empty(t, resp.(*pb.AuthUserGetResponse).Roles)
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthUserRevokeRole: &pb.AuthUserRevokeRoleRequest{Name: "root", Role: "root"}}), "allowed while auth is off")
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthUserDelete: &pb.AuthUserDeleteRequest{Name: "alice"}}))
	resp, _, _ = h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthStatus: &pb.AuthStatusRequest{}})
	require.Equal(t, &pb.AuthStatusResponse{AuthRevision: h.st.Revision()}, resp)
}

func TestPermissionChecks(t *testing.T) {
	h := newHarness(t)
	require.NoError(t, h.st.IsPermitted(nil, true, []byte("a"), nil), "auth off: everything")
	require.NoError(t, h.st.IsAdmin(nil))
	h.enable()
	h.addRole("ranges",
		perm(authpb.READ, "k", ""),          // one key
		perm(authpb.READ, "p/", "p0"),       // a prefix
		perm(authpb.READ, "q", "r"),         // [q, r)
		perm(authpb.READ, "r", "s"),         // [r, s): with the one above, [q, s)
		perm(authpb.READWRITE, "z", "\x00"), // every key from z
		perm(authpb.WRITE, "w", ""))
	h.addUser("u", "pw", "ranges")
	ai := &AuthInfo{Username: "u", Revision: h.st.Revision()}
	for _, c := range []struct {
		write    bool
		key, end string
		ok       bool
	}{
		{false, "k", "", true},
		{true, "k", "", false},
		{false, "k", "k\x00", true},
		{false, "k", "l", false},
		{false, "p/a", "", true},
		{false, "p/", "p0", true},
		{false, "p/", "p1", false},
		{false, "q", "s", true}, // covered by the union of two grants
		{false, "q", "s\x00", false},
		{false, "z", "\x00", true},
		{true, "zz", "\x00", true},
		{false, "y", "\x00", false}, // from-key needs a from-key grant (3.7.1)
		{true, "w", "", true},
		{false, "w", "", false},
		{false, "a", "", false},
	} {
		err := h.st.IsPermitted(ai, c.write, []byte(c.key), []byte(c.end))
		if c.ok {
			require.NoError(t, err, "%+v", c)
		} else {
			require.Equal(t, rpctypes.ErrGRPCPermissionDenied, err, "%+v", c)
		}
	}
	require.Equal(t, rpctypes.ErrGRPCUserEmpty, h.st.IsPermitted(nil, false, []byte("k"), nil))
	require.Equal(t, rpctypes.ErrGRPCUserEmpty, h.st.IsPermitted(&AuthInfo{Username: "u"}, false, []byte("k"), nil))
	require.Equal(t, rpctypes.ErrGRPCPermissionDenied, h.st.IsPermitted(&AuthInfo{Username: "ghost", Revision: ai.Revision}, false, []byte("k"), nil))
	require.NoError(t, h.st.IsPermitted(&AuthInfo{Username: "root", Revision: ai.Revision}, true, []byte("anything"), nil))
	require.Equal(t, rpctypes.ErrGRPCPermissionDenied, h.st.IsAdmin(ai))
	require.NoError(t, h.st.IsAdmin(&AuthInfo{Username: "root"}))

	h.addRole("other") // any change: credentials checked before are old
	require.Equal(t, rpctypes.ErrGRPCAuthOldRevision, h.st.IsPermitted(ai, false, []byte("k"), nil))
}

func TestRecoverRestoresEverything(t *testing.T) {
	h := newHarness(t)
	h.enable()
	h.addRole("r", perm(authpb.READ, "a", "b"))
	h.addUser("alice", "pw", "r")
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{SimpleToken: strings.Repeat("k", 43)}}))

	st := NewStore(nil)
	require.NoError(t, st.Recover(h.aux))
	require.True(t, st.Enabled())
	require.Equal(t, h.st.Revision(), st.Revision())
	ai := &AuthInfo{Username: "alice", Revision: st.Revision()}
	require.NoError(t, st.IsPermitted(ai, false, []byte("a1"), nil))
	require.Equal(t, rpctypes.ErrGRPCPermissionDenied, st.IsPermitted(ai, true, []byte("a1"), nil))
	// A token of one store is good on the recovered one (the key travels).
	tk1, err := NewTokens(h.st, "simple", time.Minute, nil)
	require.NoError(t, err)
	tk2, err := NewTokens(st, "simple", time.Minute, nil)
	require.NoError(t, err)
	tok, err := tk1.Assign("alice", ai.Revision)
	require.NoError(t, err)
	got, ok := tk2.Info(tok)
	require.True(t, ok)
	require.Equal(t, "alice", got.Username)

	h.aux.PutAux(UsersBucket, []byte("bad"), []byte{0xff})
	require.Error(t, NewStore(nil).Recover(h.aux))
	delete(h.aux, UsersBucket+"\x00bad")
	h.aux.PutAux(MetaBucket, keyRevision, []byte{1})
	require.Error(t, NewStore(nil).Recover(h.aux))
}

func TestCheckPassword(t *testing.T) {
	h := newHarness(t)
	_, err := h.st.CheckPassword("root", "rootpw")
	require.Equal(t, rpctypes.ErrGRPCAuthNotEnabled, err)
	h.enable()
	require.NoError(t, h.apply("root", &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "nopw", Options: &authpb.UserAddOptions{NoPassword: true}}}))
	rev, err := h.st.CheckPassword("root", "rootpw")
	require.NoError(t, err)
	require.Equal(t, h.st.Revision(), rev)
	_, err = h.st.CheckPassword("root", "wrong")
	require.Equal(t, rpctypes.ErrGRPCAuthFailed, err)
	_, err = h.st.CheckPassword("nobody", "x")
	require.Equal(t, rpctypes.ErrGRPCAuthFailed, err, "an unknown user looks like a wrong password")
	_, err = h.st.CheckPassword("nopw", "")
	require.Equal(t, ErrNoPasswordUser, err)
	// A no-password user keeps having none when its password "changes".
	require.NoError(t, h.apply("root", &pb.InternalRaftRequest{AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: "nopw"}}))
	require.True(t, ValidBcryptCost(DefaultBcryptCost))
	require.False(t, ValidBcryptCost(3))
	require.False(t, ValidBcryptCost(32))
}

func TestAuthDisableRevisionAndKey(t *testing.T) {
	h := newHarness(t)
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}}), "disabling while off is ignored")
	h.enable()
	rev := h.st.Revision()
	require.NoError(t, h.apply("root", &pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}}))
	require.False(t, h.st.Enabled())
	require.Equal(t, rev+1, h.st.Revision(), "disable moves the revision (etcd)")
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{SimpleToken: strings.Repeat("k", 43)}}))
	require.Nil(t, h.st.tokenKey, "no signing key while auth is off")
}
