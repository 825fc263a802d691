package auth

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// The storage auxiliary buckets and keys of the auth state; the names are
// etcd's bucket and key names.
const (
	UsersBucket = "authUsers"
	RolesBucket = "authRoles"
	MetaBucket  = "auth"
)

var (
	keyEnabled  = []byte("authEnabled")
	keyRevision = []byte("authRevision")
	keyTokenKey = []byte("simpleTokenKey") // MetaStore's: signs simple tokens
)

const (
	rootUser = "root"
	rootRole = "root"
)

// rootPerm is what RoleGet answers for the root role, as etcd.
var rootPerm = authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte{}, RangeEnd: []byte{0}}

// AuxReader reads a storage auxiliary bucket (*storage.Store).
type AuxReader interface {
	ForEachAux(bucket string, fn func(key, value []byte) error) error
}

// AuxWriter writes storage auxiliary buckets (*storage.WriteTxn).
type AuxWriter interface {
	PutAux(bucket string, key, value []byte)
	DeleteAux(bucket string, key []byte)
}

// AuthInfo is who a request comes from: a user and the auth revision its
// credentials were checked at.
type AuthInfo struct {
	Username string
	Revision uint64
}

// Store is the replicated auth state. Apply runs in Raft log order in the
// apply loop; the checks are safe concurrently.
type Store struct {
	lg *zap.Logger

	mu       sync.RWMutex
	enabled  bool
	users    map[string]*authpb.User
	roles    map[string]*authpb.Role
	perms    map[string]*userPerms // by user, rebuilt on every change
	tokenKey []byte

	revision atomic.Uint64
	enabledA atomic.Bool // enabled, for lock-free checks on the hot path
}

// NewStore returns an empty store (auth disabled, revision 1 as etcd
// starts); Recover loads a persisted one.
func NewStore(lg *zap.Logger) *Store {
	if lg == nil {
		lg = zap.NewNop()
	}
	s := &Store{lg: lg, users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}, perms: map[string]*userPerms{}}
	s.revision.Store(1)
	return s
}

// Recover replaces the state with the one persisted in r.
func (s *Store) Recover(r AuxReader) error {
	users := map[string]*authpb.User{}
	roles := map[string]*authpb.Role{}
	err := r.ForEachAux(UsersBucket, func(k, v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil {
			return fmt.Errorf("auth: user %q: %w", k, err)
		}
		users[string(u.Name)] = u
		return nil
	})
	if err != nil {
		return err
	}
	err = r.ForEachAux(RolesBucket, func(k, v []byte) error {
		ro := &authpb.Role{}
		if err := proto.Unmarshal(v, ro); err != nil {
			return fmt.Errorf("auth: role %q: %w", k, err)
		}
		roles[string(ro.Name)] = ro
		return nil
	})
	if err != nil {
		return err
	}
	enabled, rev := false, uint64(1)
	var tokenKey []byte
	err = r.ForEachAux(MetaBucket, func(k, v []byte) error {
		switch {
		case bytes.Equal(k, keyEnabled):
			enabled = len(v) == 1 && v[0] == 1
		case bytes.Equal(k, keyRevision):
			if len(v) != 8 {
				return fmt.Errorf("auth: revision of %d bytes", len(v))
			}
			rev = binary.BigEndian.Uint64(v)
		case bytes.Equal(k, keyTokenKey):
			tokenKey = slices.Clone(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users, s.roles, s.tokenKey = users, roles, tokenKey
	s.setEnabled(enabled)
	s.revision.Store(rev)
	s.refreshPerms()
	return nil
}

// Users returns copies of every user, sorted by name, with their password
// hashes as stored (for snapshots in etcd's format).
func (s *Store) Users() []*authpb.User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*authpb.User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, proto.Clone(u).(*authpb.User))
	}
	slices.SortFunc(out, func(a, b *authpb.User) int { return bytes.Compare(a.Name, b.Name) })
	return out
}

// Roles returns copies of every role, sorted by name.
func (s *Store) Roles() []*authpb.Role {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*authpb.Role, 0, len(s.roles))
	for _, r := range s.roles {
		out = append(out, proto.Clone(r).(*authpb.Role))
	}
	slices.SortFunc(out, func(a, b *authpb.Role) int { return bytes.Compare(a.Name, b.Name) })
	return out
}

// Enabled reports whether auth is on.
func (s *Store) Enabled() bool { return s.enabledA.Load() }

// Revision is the auth revision: it moves with every change of users,
// roles or permissions.
func (s *Store) Revision() uint64 { return s.revision.Load() }

func (s *Store) setEnabled(on bool) {
	s.enabled = on
	s.enabledA.Store(on)
}

// commit bumps the revision and persists it (s.mu held).
func (s *Store) commit(tw AuxWriter) {
	rev := s.revision.Add(1)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rev)
	tw.PutAux(MetaBucket, keyRevision, b[:])
	s.refreshPerms()
}

func (s *Store) putUser(tw AuxWriter, u *authpb.User) error {
	b, err := proto.Marshal(u)
	if err != nil {
		return err
	}
	tw.PutAux(UsersBucket, u.Name, b)
	s.users[string(u.Name)] = u
	return nil
}

func (s *Store) putRole(tw AuxWriter, r *authpb.Role) error {
	b, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	tw.PutAux(RolesBucket, r.Name, b)
	s.roles[string(r.Name)] = r
	return nil
}

func hasRootRole(u *authpb.User) bool {
	i := sort.SearchStrings(u.Roles, rootRole)
	return i < len(u.Roles) && u.Roles[i] == rootRole
}

// Apply applies the auth request in r, if r is one, and reports whether
// it was. Writes go to tw; the in-memory state changes only when the
// request succeeds. A refused request answers etcd's error (a request
// error: the same on every member) and changes nothing.
func (s *Store) Apply(tw AuxWriter, r *pb.InternalRaftRequest) (proto.Message, error, bool) {
	if !isAuthRequest(r) {
		return nil, nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if needsAdmin(r) {
		if err := s.adminLocked(headerInfo(r)); err != nil {
			return nil, err, true
		}
	}
	resp, err := s.applyLocked(tw, r)
	return resp, err, true
}

func headerInfo(r *pb.InternalRaftRequest) *AuthInfo {
	if r.Header == nil {
		return nil
	}
	return &AuthInfo{Username: r.Header.Username, Revision: r.Header.AuthRevision}
}

func isAuthRequest(r *pb.InternalRaftRequest) bool {
	return r.AuthEnable != nil || r.AuthDisable != nil || r.AuthStatus != nil || r.Authenticate != nil ||
		r.AuthUserAdd != nil || r.AuthUserDelete != nil || r.AuthUserGet != nil || r.AuthUserList != nil ||
		r.AuthUserChangePassword != nil || r.AuthUserGrantRole != nil || r.AuthUserRevokeRole != nil ||
		r.AuthRoleAdd != nil || r.AuthRoleDelete != nil || r.AuthRoleGet != nil || r.AuthRoleList != nil ||
		r.AuthRoleGrantPermission != nil || r.AuthRoleRevokePermission != nil
}

// needsAdmin is etcd's needAdminPermission: these need the root role when
// auth is on (UserGet and RoleGet are checked in their own way).
func needsAdmin(r *pb.InternalRaftRequest) bool {
	return r.AuthEnable != nil || r.AuthDisable != nil || r.AuthUserAdd != nil || r.AuthUserDelete != nil ||
		r.AuthUserChangePassword != nil || r.AuthUserGrantRole != nil || r.AuthUserRevokeRole != nil ||
		r.AuthRoleAdd != nil || r.AuthRoleGrantPermission != nil || r.AuthRoleRevokePermission != nil ||
		r.AuthRoleDelete != nil || r.AuthUserList != nil || r.AuthRoleList != nil
}

func (s *Store) applyLocked(tw AuxWriter, r *pb.InternalRaftRequest) (proto.Message, error) {
	switch {
	case r.AuthEnable != nil:
		return s.authEnable(tw)
	case r.AuthDisable != nil:
		return s.authDisable(tw)
	case r.AuthStatus != nil:
		return &pb.AuthStatusResponse{Enabled: s.enabled, AuthRevision: s.Revision()}, nil
	case r.Authenticate != nil:
		return s.setTokenKey(tw, r.Authenticate)
	case r.AuthUserAdd != nil:
		return s.userAdd(tw, r.AuthUserAdd)
	case r.AuthUserDelete != nil:
		return s.userDelete(tw, r.AuthUserDelete)
	case r.AuthUserGet != nil:
		return s.userGet(headerInfo(r), r.AuthUserGet)
	case r.AuthUserList != nil:
		return s.userList(), nil
	case r.AuthUserChangePassword != nil:
		return s.userChangePassword(tw, r.AuthUserChangePassword)
	case r.AuthUserGrantRole != nil:
		return s.userGrantRole(tw, r.AuthUserGrantRole)
	case r.AuthUserRevokeRole != nil:
		return s.userRevokeRole(tw, r.AuthUserRevokeRole)
	case r.AuthRoleAdd != nil:
		return s.roleAdd(tw, r.AuthRoleAdd)
	case r.AuthRoleDelete != nil:
		return s.roleDelete(tw, r.AuthRoleDelete)
	case r.AuthRoleGet != nil:
		return s.roleGet(headerInfo(r), r.AuthRoleGet)
	case r.AuthRoleList != nil:
		return s.roleList(), nil
	case r.AuthRoleGrantPermission != nil:
		return s.roleGrantPermission(tw, r.AuthRoleGrantPermission)
	default: // AuthRoleRevokePermission
		return s.roleRevokePermission(tw, r.AuthRoleRevokePermission)
	}
}

func (s *Store) authEnable(tw AuxWriter) (proto.Message, error) {
	if s.enabled {
		return &pb.AuthEnableResponse{}, nil // etcd ignores it
	}
	u := s.users[rootUser]
	if u == nil {
		return nil, rpctypes.ErrGRPCRootUserNotExist
	}
	if !hasRootRole(u) {
		return nil, rpctypes.ErrGRPCRootRoleNotExist
	}
	tw.PutAux(MetaBucket, keyEnabled, []byte{1})
	// A new signing key on every enable: tokens of an earlier period of
	// auth stop working, as etcd's simple tokens do.
	tw.DeleteAux(MetaBucket, keyTokenKey)
	s.tokenKey = nil
	s.setEnabled(true)
	s.lg.Info("enabled authentication")
	return &pb.AuthEnableResponse{}, nil
}

func (s *Store) authDisable(tw AuxWriter) (proto.Message, error) {
	if !s.enabled {
		return &pb.AuthDisableResponse{}, nil
	}
	tw.PutAux(MetaBucket, keyEnabled, []byte{0})
	tw.DeleteAux(MetaBucket, keyTokenKey)
	s.tokenKey = nil
	s.setEnabled(false)
	s.commit(tw)
	s.lg.Info("disabled authentication")
	return &pb.AuthDisableResponse{}, nil
}

// setTokenKey installs the simple-token signing key a member proposed
// (an Authenticate entry without a user name) unless one is set already:
// the first proposal committed wins on every member.
func (s *Store) setTokenKey(tw AuxWriter, r *pb.InternalAuthenticateRequest) (proto.Message, error) {
	if r.Name != "" || len(r.SimpleToken) < 32 {
		return nil, rpctypes.ErrGRPCInvalidAuthMgmt
	}
	if s.tokenKey == nil && s.enabled {
		s.tokenKey = []byte(r.SimpleToken)
		tw.PutAux(MetaBucket, keyTokenKey, s.tokenKey)
	}
	return &pb.AuthenticateResponse{}, nil
}

func (s *Store) userAdd(tw AuxWriter, r *pb.AuthUserAddRequest) (proto.Message, error) {
	if r.Name == "" {
		return nil, rpctypes.ErrGRPCUserEmpty
	}
	if s.users[r.Name] != nil {
		return nil, rpctypes.ErrGRPCUserAlreadyExist
	}
	opts := r.Options
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	u := &authpb.User{Name: []byte(r.Name), Options: opts}
	if !opts.NoPassword {
		pw, err := replicatedHash(r.HashedPassword)
		if err != nil {
			return nil, err
		}
		u.Password = pw
	}
	if err := s.putUser(tw, u); err != nil {
		return nil, err
	}
	s.commit(tw)
	return &pb.AuthUserAddResponse{}, nil
}

func (s *Store) userDelete(tw AuxWriter, r *pb.AuthUserDeleteRequest) (proto.Message, error) {
	if s.enabled && r.Name == rootUser {
		return nil, rpctypes.ErrGRPCInvalidAuthMgmt
	}
	if s.users[r.Name] == nil {
		return nil, rpctypes.ErrGRPCUserNotFound
	}
	tw.DeleteAux(UsersBucket, []byte(r.Name))
	delete(s.users, r.Name)
	s.commit(tw)
	return &pb.AuthUserDeleteResponse{}, nil
}

func (s *Store) userChangePassword(tw AuxWriter, r *pb.AuthUserChangePasswordRequest) (proto.Message, error) {
	u := s.users[r.Name]
	if u == nil {
		return nil, rpctypes.ErrGRPCUserNotFound
	}
	nu := proto.Clone(u).(*authpb.User)
	if u.Options == nil || !u.Options.NoPassword {
		pw, err := replicatedHash(r.HashedPassword)
		if err != nil {
			return nil, err
		}
		nu.Password = pw
	}
	if err := s.putUser(tw, nu); err != nil {
		return nil, err
	}
	s.commit(tw)
	return &pb.AuthUserChangePasswordResponse{}, nil
}

func (s *Store) userGrantRole(tw AuxWriter, r *pb.AuthUserGrantRoleRequest) (proto.Message, error) {
	u := s.users[r.User]
	if u == nil {
		return nil, rpctypes.ErrGRPCUserNotFound
	}
	if r.Role != rootRole && s.roles[r.Role] == nil {
		return nil, rpctypes.ErrGRPCRoleNotFound
	}
	i := sort.SearchStrings(u.Roles, r.Role)
	if i < len(u.Roles) && u.Roles[i] == r.Role {
		return &pb.AuthUserGrantRoleResponse{}, nil // already granted: etcd ignores it
	}
	nu := proto.Clone(u).(*authpb.User)
	nu.Roles = slices.Insert(nu.Roles, i, r.Role)
	if err := s.putUser(tw, nu); err != nil {
		return nil, err
	}
	s.commit(tw)
	return &pb.AuthUserGrantRoleResponse{}, nil
}

func (s *Store) userRevokeRole(tw AuxWriter, r *pb.AuthUserRevokeRoleRequest) (proto.Message, error) {
	if s.enabled && r.Name == rootUser && r.Role == rootRole {
		return nil, rpctypes.ErrGRPCInvalidAuthMgmt
	}
	u := s.users[r.Name]
	if u == nil {
		return nil, rpctypes.ErrGRPCUserNotFound
	}
	i := slices.Index(u.Roles, r.Role)
	if i < 0 {
		return nil, rpctypes.ErrGRPCRoleNotGranted
	}
	nu := proto.Clone(u).(*authpb.User)
	nu.Roles = slices.Delete(nu.Roles, i, i+1)
	if err := s.putUser(tw, nu); err != nil {
		return nil, err
	}
	s.commit(tw)
	return &pb.AuthUserRevokeRoleResponse{}, nil
}

func (s *Store) userGet(ai *AuthInfo, r *pb.AuthUserGetRequest) (proto.Message, error) {
	// Anyone may read themselves; others need root (etcd).
	if err := s.adminLocked(ai); err != nil && (ai == nil || r.Name != ai.Username) {
		return nil, err
	}
	u := s.users[r.Name]
	if u == nil {
		return nil, rpctypes.ErrGRPCUserNotFound
	}
	return &pb.AuthUserGetResponse{Roles: slices.Clone(u.Roles)}, nil
}

func (s *Store) userList() proto.Message {
	names := make([]string, 0, len(s.users))
	for n := range s.users {
		names = append(names, n)
	}
	sort.Strings(names)
	return &pb.AuthUserListResponse{Users: names}
}

func (s *Store) roleAdd(tw AuxWriter, r *pb.AuthRoleAddRequest) (proto.Message, error) {
	if r.Name == "" {
		return nil, rpctypes.ErrGRPCRoleEmpty
	}
	if s.roles[r.Name] != nil {
		return nil, rpctypes.ErrGRPCRoleAlreadyExist
	}
	if err := s.putRole(tw, &authpb.Role{Name: []byte(r.Name)}); err != nil {
		return nil, err
	}
	s.commit(tw)
	return &pb.AuthRoleAddResponse{}, nil
}

func (s *Store) roleDelete(tw AuxWriter, r *pb.AuthRoleDeleteRequest) (proto.Message, error) {
	if s.enabled && r.Role == rootRole {
		return nil, rpctypes.ErrGRPCInvalidAuthMgmt
	}
	if s.roles[r.Role] == nil {
		return nil, rpctypes.ErrGRPCRoleNotFound
	}
	tw.DeleteAux(RolesBucket, []byte(r.Role))
	delete(s.roles, r.Role)
	for _, u := range s.users {
		if i := slices.Index(u.Roles, r.Role); i >= 0 {
			nu := proto.Clone(u).(*authpb.User)
			nu.Roles = slices.Delete(nu.Roles, i, i+1)
			if err := s.putUser(tw, nu); err != nil {
				return nil, err
			}
		}
	}
	s.commit(tw)
	return &pb.AuthRoleDeleteResponse{}, nil
}

func (s *Store) roleGet(ai *AuthInfo, r *pb.AuthRoleGetRequest) (proto.Message, error) {
	// Anyone may read a role they have; others need root (etcd).
	if err := s.adminLocked(ai); err != nil && !s.hasRoleLocked(ai, r.Role) {
		return nil, err
	}
	ro := s.roles[r.Role]
	if ro == nil {
		return nil, rpctypes.ErrGRPCRoleNotFound
	}
	if r.Role == rootRole {
		return &pb.AuthRoleGetResponse{Perm: []*authpb.Permission{proto.Clone(&rootPerm).(*authpb.Permission)}}, nil
	}
	resp := &pb.AuthRoleGetResponse{}
	for _, p := range ro.KeyPermission {
		resp.Perm = append(resp.Perm, proto.Clone(p).(*authpb.Permission))
	}
	return resp, nil
}

func (s *Store) hasRoleLocked(ai *AuthInfo, role string) bool {
	if ai == nil {
		return false
	}
	u := s.users[ai.Username]
	return u != nil && slices.Contains(u.Roles, role)
}

func (s *Store) roleList() proto.Message {
	names := make([]string, 0, len(s.roles))
	for n := range s.roles {
		names = append(names, n)
	}
	sort.Strings(names)
	return &pb.AuthRoleListResponse{Roles: names}
}

func (s *Store) roleGrantPermission(tw AuxWriter, r *pb.AuthRoleGrantPermissionRequest) (proto.Message, error) {
	if r.Perm == nil {
		return nil, rpctypes.ErrGRPCPermissionNotGiven
	}
	if !validPermissionRange(r.Perm.Key, r.Perm.RangeEnd) {
		return nil, rpctypes.ErrGRPCInvalidAuthMgmt
	}
	ro := s.roles[r.Name]
	if ro == nil {
		return nil, rpctypes.ErrGRPCRoleNotFound
	}
	nr := proto.Clone(ro).(*authpb.Role)
	i := sort.Search(len(nr.KeyPermission), func(i int) bool { return bytes.Compare(nr.KeyPermission[i].Key, r.Perm.Key) >= 0 })
	if i < len(nr.KeyPermission) && bytes.Equal(nr.KeyPermission[i].Key, r.Perm.Key) && bytes.Equal(nr.KeyPermission[i].RangeEnd, r.Perm.RangeEnd) {
		nr.KeyPermission[i].PermType = r.Perm.PermType
	} else {
		nr.KeyPermission = append(nr.KeyPermission, &authpb.Permission{Key: r.Perm.Key, RangeEnd: r.Perm.RangeEnd, PermType: r.Perm.PermType})
		sort.SliceStable(nr.KeyPermission, func(a, b int) bool { return bytes.Compare(nr.KeyPermission[a].Key, nr.KeyPermission[b].Key) < 0 })
	}
	if err := s.putRole(tw, nr); err != nil {
		return nil, err
	}
	s.commit(tw)
	return &pb.AuthRoleGrantPermissionResponse{}, nil
}

func (s *Store) roleRevokePermission(tw AuxWriter, r *pb.AuthRoleRevokePermissionRequest) (proto.Message, error) {
	ro := s.roles[r.Role]
	if ro == nil {
		return nil, rpctypes.ErrGRPCRoleNotFound
	}
	nr := &authpb.Role{Name: ro.Name}
	for _, p := range ro.KeyPermission {
		if !bytes.Equal(p.Key, r.Key) || !bytes.Equal(p.RangeEnd, r.RangeEnd) {
			nr.KeyPermission = append(nr.KeyPermission, proto.Clone(p).(*authpb.Permission))
		}
	}
	if len(nr.KeyPermission) == len(ro.KeyPermission) {
		return nil, rpctypes.ErrGRPCPermissionNotGranted
	}
	if err := s.putRole(tw, nr); err != nil {
		return nil, err
	}
	s.commit(tw)
	return &pb.AuthRoleRevokePermissionResponse{}, nil
}

// Import writes users, roles, whether auth is enabled and the auth
// revision as the store persists them, for a store being filled from
// another one's data (an etcd snapshot: password hashes are bcrypt's, as
// etcd's). Recover loads them afterwards.
func Import(tw AuxWriter, users []*authpb.User, roles []*authpb.Role, enabled bool, revision uint64) error {
	s := NewStore(zap.NewNop())
	for _, u := range users {
		if err := s.putUser(tw, u); err != nil {
			return err
		}
	}
	for _, r := range roles {
		if err := s.putRole(tw, r); err != nil {
			return err
		}
	}
	on := []byte{0}
	if enabled {
		on = []byte{1}
	}
	tw.PutAux(MetaBucket, keyEnabled, on)
	tw.PutAux(MetaBucket, keyRevision, binary.BigEndian.AppendUint64(nil, max(revision, 1)))
	return nil
}
