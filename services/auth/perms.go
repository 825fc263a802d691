package auth

import (
	"bytes"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/pkg/v3/adt"
)

// userPerms are one user's permissions merged over all its roles, as
// etcd's unifiedRangePermissions.
type userPerms struct {
	read, write adt.IntervalTree
}

// refreshPerms rebuilds every user's merged permissions (s.mu held).
func (s *Store) refreshPerms() {
	perms := make(map[string]*userPerms, len(s.users))
	for name, u := range s.users {
		up := &userPerms{read: adt.NewIntervalTree(), write: adt.NewIntervalTree()}
		for _, rn := range u.Roles {
			ro := s.roles[rn]
			if ro == nil {
				continue
			}
			for _, p := range ro.KeyPermission {
				ivl := permInterval(p)
				switch p.PermType {
				case authpb.Permission_READWRITE:
					up.read.Insert(ivl, struct{}{})
					up.write.Insert(ivl, struct{}{})
				case authpb.Permission_READ:
					up.read.Insert(ivl, struct{}{})
				case authpb.Permission_WRITE:
					up.write.Insert(ivl, struct{}{})
				}
			}
		}
		perms[name] = up
	}
	s.perms = perms
}

// permInterval is the key interval a permission grants: a point for a
// single key, [key, end) for a range, [key, ∞) for end "\x00".
func permInterval(p *authpb.Permission) adt.Interval {
	if len(p.RangeEnd) == 0 {
		return adt.NewBytesAffinePoint(p.Key)
	}
	end := p.RangeEnd
	if isOpenEnded(end) {
		end = nil // the affine interval's "infinity"
	}
	return adt.NewBytesAffineInterval(p.Key, end)
}

func isOpenEnded(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// validPermissionRange is etcd's rule: a key, and an end that is empty,
// after the key, or "\x00".
func validPermissionRange(key, end []byte) bool {
	if len(key) == 0 {
		return false
	}
	if len(end) == 0 || bytes.Compare(key, end) < 0 {
		return true
	}
	return isOpenEnded(end)
}

// IsPermitted answers whether ai may read (write=false) or write the keys
// in [key, end) (end empty: key alone; "\x00": every key from key), with
// etcd's errors: none while auth is off; ErrUserEmpty without credentials;
// ErrAuthOldRevision for credentials checked before the last change of
// the auth state; ErrPermissionDenied otherwise.
func (s *Store) IsPermitted(ai *AuthInfo, write bool, key, end []byte) error {
	if !s.Enabled() {
		return nil
	}
	if ai == nil || ai.Revision == 0 {
		return rpctypes.ErrGRPCUserEmpty
	}
	if ai.Revision < s.Revision() {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[ai.Username]
	if u == nil {
		return rpctypes.ErrGRPCPermissionDenied
	}
	if hasRootRole(u) {
		return nil
	}
	up := s.perms[ai.Username]
	if up == nil {
		return rpctypes.ErrGRPCPermissionDenied
	}
	tree := up.read
	if write {
		tree = up.write
	}
	var ok bool
	if len(end) == 0 {
		ok = tree.Intersects(adt.NewBytesAffinePoint(key))
	} else {
		if isOpenEnded(end) {
			end = nil
		}
		ok = tree.Contains(adt.NewBytesAffineInterval(key, end))
	}
	if !ok {
		return rpctypes.ErrGRPCPermissionDenied
	}
	return nil
}

// IsAdmin answers whether ai has the root role, with etcd's errors: none
// while auth is off; ErrUserEmpty without credentials; ErrUserNotFound
// for a user that does not exist; ErrPermissionDenied otherwise.
func (s *Store) IsAdmin(ai *AuthInfo) error {
	if !s.Enabled() {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.adminLocked(ai)
}

func (s *Store) adminLocked(ai *AuthInfo) error {
	if !s.enabled {
		return nil
	}
	if ai == nil || ai.Username == "" {
		return rpctypes.ErrGRPCUserEmpty
	}
	u := s.users[ai.Username]
	if u == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	if !hasRootRole(u) {
		return rpctypes.ErrGRPCPermissionDenied
	}
	return nil
}

// HasRole reports whether user has role.
func (s *Store) HasRole(user, role string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hasRoleLocked(&AuthInfo{Username: user}, role)
}
