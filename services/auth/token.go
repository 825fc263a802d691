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
	"sync"
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

	// checked caches simple tokens whose signature was verified, so a
	// client's next requests cost a map lookup instead of an HMAC. An
	// entry holds the signing key and password hash it was verified
	// against; any change of either (they are replaced, never modified in
	// place) makes it miss.
	mu      sync.Mutex
	checked map[string]checkedToken
}

type checkedToken struct {
	user     string
	exp      int64
	key, pwd []byte
}

// maxCheckedTokens bounds the cache; it is emptied when full.
const maxCheckedTokens = 10000

func sameSlice(a, b []byte) bool { return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0] }

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
	t := &Tokens{s: s, lg: lg, ttl: ttl, now: time.Now, checked: map[string]checkedToken{}}
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
	now := t.now().Unix()
	t.mu.Lock()
	c, hit := t.checked[token]
	t.mu.Unlock()
	if hit {
		t.s.mu.RLock()
		u := t.s.users[c.user]
		ok := c.exp >= now && u != nil && sameSlice(c.key, t.s.tokenKey) && sameSlice(c.pwd, u.Password)
		t.s.mu.RUnlock()
		if ok {
			return &AuthInfo{Username: c.user, Revision: t.s.Revision()}, true
		}
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
	if err != nil || int64(exp) < now {
		return nil, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, false
	}
	t.s.mu.RLock()
	u := t.s.users[string(name)]
	key := t.s.tokenKey
	valid := key != nil && u != nil && hmac.Equal(mac, t.s.simpleMAC(string(name), exp, u.Password))
	t.s.mu.RUnlock()
	if !valid {
		return nil, false
	}
	t.mu.Lock()
	if len(t.checked) >= maxCheckedTokens {
		clear(t.checked)
	}
	t.checked[token] = checkedToken{user: string(name), exp: int64(exp), key: key, pwd: u.Password}
	t.mu.Unlock()
	return &AuthInfo{Username: string(name), Revision: t.s.Revision()}, true
}
