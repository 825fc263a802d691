package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ErrInvalidAuthOpts is etcd's answer to a bad --auth-token value.
var ErrInvalidAuthOpts = errors.New("auth: invalid auth options")

// DefaultSimpleTokenTTL is etcd's --auth-token-ttl default.
const DefaultSimpleTokenTTL = 300 * time.Second

// Tokens issues and checks the tokens of one member, as --auth-token
// configures them: "simple" (etcd's default) or "jwt,…".
type Tokens struct {
	s   *Store
	lg  *zap.Logger
	ttl time.Duration // simple tokens
	jwt *jwtTokens    // nil for simple tokens
	now func() time.Time
}

// NewTokens parses an --auth-token value ("simple", or "jwt,pub-key=…,
// priv-key=…,sign-method=…,ttl=…") for store s; ttl is --auth-token-ttl
// (simple tokens).
func NewTokens(s *Store, opts string, ttl time.Duration, lg *zap.Logger) (*Tokens, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if ttl <= 0 {
		ttl = DefaultSimpleTokenTTL
	}
	t := &Tokens{s: s, lg: lg, ttl: ttl, now: time.Now}
	kind, kv, err := splitTokenOpts(opts)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "simple":
	case "jwt":
		t.jwt, err = newJWTTokens(kv, lg)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: unknown token type %q", ErrInvalidAuthOpts, kind)
	}
	return t, nil
}

func splitTokenOpts(opts string) (string, map[string]string, error) {
	parts := strings.Split(opts, ",")
	kv := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.Contains(v, "=") {
			return "", nil, fmt.Errorf("%w: %q is not key=value", ErrInvalidAuthOpts, p)
		}
		if _, dup := kv[k]; dup {
			return "", nil, fmt.Errorf("%w: %q given twice", ErrInvalidAuthOpts, k)
		}
		kv[k] = v
	}
	return parts[0], kv, nil
}

// NeedsKey reports whether simple tokens need a signing key proposed
// first (auth was just enabled); NewTokenKey makes one.
func (t *Tokens) NeedsKey() bool {
	if t.jwt != nil {
		return false
	}
	t.s.mu.RLock()
	defer t.s.mu.RUnlock()
	return t.s.tokenKey == nil
}

// NewTokenKey returns a fresh random signing key, encoded to travel as an
// InternalAuthenticateRequest's simple_token.
func NewTokenKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Assign returns a token for user, whose password was checked at auth
// revision rev.
func (t *Tokens) Assign(user string, rev uint64) (string, error) {
	if t.jwt != nil {
		return t.jwt.assign(user, rev)
	}
	t.s.mu.RLock()
	defer t.s.mu.RUnlock()
	u := t.s.users[user]
	if t.s.tokenKey == nil || u == nil {
		return "", errors.New("auth: no signing key or user for a simple token")
	}
	exp := uint64(t.now().Add(t.ttl).Unix())
	mac := t.s.simpleMAC(user, exp, u.Password)
	return base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + strconv.FormatUint(exp, 16) + "." +
		base64.RawURLEncoding.EncodeToString(mac), nil
}

// simpleMAC signs a simple token: it covers the user, the expiry and the
// user's password hash, so a new password (or a new user of that name)
// invalidates every token issued before (s.mu held).
func (s *Store) simpleMAC(user string, exp uint64, pwHash []byte) []byte {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(user))
	m.Write([]byte{0})
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], exp)
	m.Write(b[:])
	m.Write(pwHash)
	return m.Sum(nil)[:20]
}

// Info returns who token belongs to, or false for a token that is
// malformed, expired, signed with another key, or of a user that was
// deleted or changed password since.
func (t *Tokens) Info(token string) (*AuthInfo, bool) {
	if t.jwt != nil {
		return t.jwt.info(token)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	name, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, false
	}
	exp, err := strconv.ParseUint(parts[1], 16, 64)
	if err != nil || int64(exp) < t.now().Unix() {
		return nil, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, false
	}
	t.s.mu.RLock()
	defer t.s.mu.RUnlock()
	u := t.s.users[string(name)]
	if t.s.tokenKey == nil || u == nil || !hmac.Equal(mac, t.s.simpleMAC(string(name), exp, u.Password)) {
		return nil, false
	}
	return &AuthInfo{Username: string(name), Revision: t.s.Revision()}, true
}
