package auth

import (
	"encoding/base64"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNoPasswordUser is etcd's answer to a password for a user created
// without one, or to a password hash it cannot read. etcd has no gRPC
// code for it: clients get codes.Unknown with etcd's message.
var ErrNoPasswordUser = status.Error(codes.Unknown, "auth: authentication failed, password was given for no password user")

// DefaultBcryptCost is etcd's --bcrypt-cost default (bcrypt's).
const DefaultBcryptCost = bcrypt.DefaultCost

// ValidBcryptCost reports whether cost is within bcrypt's bounds (etcd
// falls back to the default outside them, with a warning).
func ValidBcryptCost(cost int) bool { return cost >= bcrypt.MinCost && cost <= bcrypt.MaxCost }

// HashPassword returns the base64 bcrypt hash of password that UserAdd and
// UserChangePassword replicate instead of the password (etcd 3.5+'s
// hashed_password), so the password never enters the Raft log.
func HashPassword(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

// replicatedHash decodes the hash a proposer computed.
func replicatedHash(b64 string) ([]byte, error) {
	h, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(h) == 0 {
		return nil, ErrNoPasswordUser // etcd's answer to a bad hash
	}
	return h, nil
}

// CheckPassword checks name's password against its stored hash, outside
// the apply step, and returns the auth revision it was checked at. Wrong
// password and unknown user are the same ErrAuthFailed; a user created
// without a password cannot authenticate with one.
func (s *Store) CheckPassword(name, password string) (uint64, error) {
	if !s.Enabled() {
		return 0, rpctypes.ErrGRPCAuthNotEnabled
	}
	s.mu.RLock()
	u := s.users[name]
	rev := s.Revision()
	s.mu.RUnlock()
	if u == nil {
		return 0, rpctypes.ErrGRPCAuthFailed
	}
	if u.Options != nil && u.Options.NoPassword {
		return 0, ErrNoPasswordUser
	}
	if bcrypt.CompareHashAndPassword(u.Password, []byte(password)) != nil {
		return 0, rpctypes.ErrGRPCAuthFailed
	}
	return rev, nil
}
