package auth

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// DefaultJWTTTL is etcd's JWT token lifetime default.
const DefaultJWTTTL = 5 * time.Minute

// ErrVerifyOnly is etcd's answer to Authenticate on a member that has only
// the public key.
var ErrVerifyOnly = errors.New("auth: token signing attempted with verify-only key")

// jwtTokens are etcd's JWT tokens: claims username, revision and exp,
// signed with the configured key. With only a public key the member
// verifies tokens but cannot issue them.
type jwtTokens struct {
	lg         *zap.Logger
	method     jwt.SigningMethod
	signKey    any // nil: verify only
	verifyKey  any
	ttl        time.Duration
	verifyOnly bool
}

func newJWTTokens(opts map[string]string, lg *zap.Logger) (*jwtTokens, error) {
	for k := range opts {
		switch k {
		case "sign-method", "pub-key", "priv-key", "ttl":
		default:
			lg.Warn("unknown JWT option", zap.String("key", k))
		}
	}
	t := &jwtTokens{lg: lg, ttl: DefaultJWTTTL}
	if v := opts["ttl"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%w: ttl: %v", ErrInvalidAuthOpts, err)
		}
		t.ttl = d
	}
	t.method = jwt.GetSigningMethod(opts["sign-method"])
	if t.method == nil {
		return nil, errors.New("auth: invalid auth signature method")
	}
	read := func(name string) ([]byte, error) {
		if opts[name] == "" {
			return nil, nil
		}
		b, err := os.ReadFile(opts[name])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidAuthOpts, name, err)
		}
		return b, nil
	}
	pub, err := read("pub-key")
	if err != nil {
		return nil, err
	}
	priv, err := read("priv-key")
	if err != nil {
		return nil, err
	}
	if err := t.loadKeys(pub, priv); err != nil {
		return nil, err
	}
	return t, nil
}

var errMissingKey = errors.New("auth: missing key data")

// loadKeys parses the keys for the sign method; a private key is checked
// against the public one when both are given.
func (t *jwtTokens) loadKeys(pub, priv []byte) error {
	if _, ok := t.method.(*jwt.SigningMethodHMAC); ok {
		if len(priv) == 0 {
			return errMissingKey
		}
		t.signKey, t.verifyKey = priv, priv
		return nil
	}
	if len(pub) == 0 && len(priv) == 0 {
		return errMissingKey
	}
	parsePub, parsePriv, ok := keyParsers(t.method)
	if !ok {
		return fmt.Errorf("auth: unsupported signing method %s", t.method.Alg())
	}
	var pubKey, privKey any
	var err error
	if len(pub) > 0 {
		if pubKey, err = parsePub(pub); err != nil {
			return err
		}
	}
	if len(priv) > 0 {
		if privKey, err = parsePriv(priv); err != nil {
			return err
		}
	}
	if privKey != nil {
		derived := privKey.(crypto.Signer).Public()
		if pubKey != nil && !derived.(interface{ Equal(crypto.PublicKey) bool }).Equal(pubKey) {
			return errors.New("auth: public and private keys don't match")
		}
		t.signKey, t.verifyKey = privKey, derived
		return nil
	}
	t.verifyKey, t.verifyOnly = pubKey, true
	return nil
}

// anyKey makes a typed key parser return any.
func anyKey[K any](parse func([]byte) (K, error)) func([]byte) (any, error) {
	return func(b []byte) (any, error) { return parse(b) }
}

// keyParsers returns the PEM parsers of a sign method's public and private
// keys.
func keyParsers(m jwt.SigningMethod) (pub, priv func([]byte) (any, error), ok bool) {
	switch m.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		return anyKey(jwt.ParseRSAPublicKeyFromPEM), anyKey(jwt.ParseRSAPrivateKeyFromPEM), true
	case *jwt.SigningMethodECDSA:
		return anyKey(jwt.ParseECPublicKeyFromPEM), anyKey(jwt.ParseECPrivateKeyFromPEM), true
	case *jwt.SigningMethodEd25519:
		return anyKey(jwt.ParseEdPublicKeyFromPEM), anyKey(jwt.ParseEdPrivateKeyFromPEM), true
	}
	return nil, nil, false
}

func (t *jwtTokens) assign(user string, rev uint64) (string, error) {
	if t.verifyOnly {
		return "", ErrVerifyOnly
	}
	tk := jwt.NewWithClaims(t.method, jwt.MapClaims{
		"username": user, "revision": rev, "exp": time.Now().Add(t.ttl).Unix(),
	})
	return tk.SignedString(t.signKey)
}

func (t *jwtTokens) info(token string) (*AuthInfo, bool) {
	parsed, err := jwt.Parse(token, func(tk *jwt.Token) (any, error) {
		if tk.Method.Alg() != t.method.Alg() {
			return nil, errors.New("invalid signing method")
		}
		return t.verifyKey, nil
	})
	if err != nil || !parsed.Valid {
		return nil, false
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return nil, false
	}
	user, ok := claims["username"].(string)
	if !ok {
		return nil, false
	}
	rev, ok := claims["revision"].(float64)
	if !ok {
		return nil, false
	}
	return &AuthInfo{Username: user, Revision: uint64(rev)}, true
}
