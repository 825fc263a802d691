package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func enabledWithKey(t testing.TB) *harness {
	h := newHarness(t)
	h.enable()
	h.addUser("alice", "pw")
	key, err := NewTokenKey()
	require.NoError(t, err)
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{SimpleToken: key}}))
	return h
}

func TestSimpleTokens(t *testing.T) {
	h := newHarness(t)
	h.enable()
	h.addUser("alice", "pw")
	tk, err := NewTokens(h.st, "simple", 0, nil)
	require.NoError(t, err)
	require.Equal(t, DefaultSimpleTokenTTL, tk.ttl)
	require.True(t, tk.NeedsKey())
	_, err = tk.Assign("alice", h.st.Revision())
	require.Error(t, err, "no signing key yet")

	key, err := NewTokenKey()
	require.NoError(t, err)
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{SimpleToken: key}}))
	require.False(t, tk.NeedsKey())
	other, _ := NewTokenKey()
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{SimpleToken: other}}))
	require.Equal(t, key, string(h.st.tokenKey), "the first key committed wins")

	tok, err := tk.Assign("alice", h.st.Revision())
	require.NoError(t, err)
	require.NotContains(t, tok, "pw")
	ai, ok := tk.Info(tok)
	require.True(t, ok)
	require.Equal(t, &AuthInfo{Username: "alice", Revision: h.st.Revision()}, ai)

	for _, bad := range []string{"", "a.b", "a.b.c.d", "!!.1.x", tok[:len(tok)-2] + "AA", strings.Replace(tok, ".", ".f", 1)} {
		_, ok := tk.Info(bad)
		require.False(t, ok, "%q", bad)
	}
	// Expired.
	tk.now = func() time.Time { return time.Now().Add(DefaultSimpleTokenTTL + time.Minute) }
	_, ok = tk.Info(tok)
	require.False(t, ok, "expired")
	tk.now = time.Now

	// A new password invalidates the tokens issued before it, on every
	// member (the signature covers the password hash).
	require.NoError(t, h.apply("root", &pb.InternalRaftRequest{AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hash(t, "new")}}))
	_, ok = tk.Info(tok)
	require.False(t, ok, "password changed")
	tok, _ = tk.Assign("alice", h.st.Revision())
	require.NoError(t, h.apply("root", &pb.InternalRaftRequest{AuthUserDelete: &pb.AuthUserDeleteRequest{Name: "alice"}}))
	_, ok = tk.Info(tok)
	require.False(t, ok, "user deleted")
	h.addUser("alice", "new")
	_, ok = tk.Info(tok)
	require.False(t, ok, "a new user of the same name")

	// Disable and enable again: a new key, old tokens dead.
	tok, _ = tk.Assign("root", h.st.Revision())
	require.NoError(t, h.apply("root", &pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}}))
	require.NoError(t, h.apply("", &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}))
	_, ok = tk.Info(tok)
	require.False(t, ok)
	require.True(t, tk.NeedsKey())
}

func TestTokensOfAnotherClusterAreRefused(t *testing.T) {
	a, b := enabledWithKey(t), enabledWithKey(t)
	ta, _ := NewTokens(a.st, "simple", time.Minute, nil)
	tb, _ := NewTokens(b.st, "simple", time.Minute, nil)
	tok, err := ta.Assign("alice", a.st.Revision())
	require.NoError(t, err)
	_, ok := tb.Info(tok)
	require.False(t, ok)
}

func TestTokenOptions(t *testing.T) {
	st := NewStore(nil)
	for _, bad := range []string{"magic", "simple,x", "jwt,sign-method=RS256,sign-method=RS256", "jwt,ttl=x,sign-method=HS256", "jwt,sign-method=nope", "jwt,sign-method=HS256", "jwt,sign-method=RS256", "jwt,sign-method=RS256,pub-key=/nonexistent"} {
		_, err := NewTokens(st, bad, 0, nil)
		require.Error(t, err, bad)
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return p
}

// keyFiles writes a key pair for method family fam and returns the files.
func keyFiles(t *testing.T, fam string) (pub, priv string) {
	dir := t.TempDir()
	var signer any
	switch fam {
	case "RS", "PS":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		signer = k
		priv = writePEM(t, dir, "priv.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		pub = writePEM(t, dir, "pub.pem", "PUBLIC KEY", der)
	case "ES":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		signer = k
		der, _ := x509.MarshalECPrivateKey(k)
		priv = writePEM(t, dir, "priv.pem", "EC PRIVATE KEY", der)
		pder, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		pub = writePEM(t, dir, "pub.pem", "PUBLIC KEY", pder)
	case "Ed":
		pk, k, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		signer = k
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		priv = writePEM(t, dir, "priv.pem", "PRIVATE KEY", der)
		pder, _ := x509.MarshalPKIXPublicKey(pk)
		pub = writePEM(t, dir, "pub.pem", "PUBLIC KEY", pder)
	}
	_ = signer
	return pub, priv
}

func TestJWTEverySignMethod(t *testing.T) {
	st := NewStore(nil)
	for _, c := range []struct{ method, fam string }{
		{"RS256", "RS"}, {"RS384", "RS"}, {"RS512", "RS"},
		{"PS256", "PS"}, {"PS384", "PS"}, {"PS512", "PS"},
		{"ES256", "ES"}, {"EdDSA", "Ed"},
	} {
		t.Run(c.method, func(t *testing.T) {
			pub, priv := keyFiles(t, c.fam)
			signer, err := NewTokens(st, "jwt,pub-key="+pub+",priv-key="+priv+",sign-method="+c.method+",ttl=1m", 0, nil)
			require.NoError(t, err)
			require.False(t, signer.NeedsKey())
			tok, err := signer.Assign("alice", 7)
			require.NoError(t, err)
			ai, ok := signer.Info(tok)
			require.True(t, ok)
			require.Equal(t, &AuthInfo{Username: "alice", Revision: 7}, ai, "the revision travels in the token")

			// A member with only the public key verifies but cannot sign.
			verifier, err := NewTokens(st, "jwt,pub-key="+pub+",sign-method="+c.method, 0, nil)
			require.NoError(t, err)
			_, ok = verifier.Info(tok)
			require.True(t, ok)
			_, err = verifier.Assign("alice", 7)
			require.ErrorIs(t, err, ErrVerifyOnly)

			// Another key pair's token is refused; so are mismatched keys.
			pub2, priv2 := keyFiles(t, c.fam)
			other, err := NewTokens(st, "jwt,priv-key="+priv2+",sign-method="+c.method, 0, nil)
			require.NoError(t, err)
			tok2, err := other.Assign("alice", 7)
			require.NoError(t, err)
			_, ok = signer.Info(tok2)
			require.False(t, ok)
			_, err = NewTokens(st, "jwt,pub-key="+pub2+",priv-key="+priv+",sign-method="+c.method, 0, nil)
			require.Error(t, err, "keys that do not match")
		})
	}
	t.Run("HS256", func(t *testing.T) {
		dir := t.TempDir()
		key := filepath.Join(dir, "hmac")
		require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600))
		tk, err := NewTokens(st, "jwt,priv-key="+key+",sign-method=HS256,unknown=1", 0, nil)
		require.NoError(t, err)
		tok, err := tk.Assign("bob", 3)
		require.NoError(t, err)
		ai, ok := tk.Info(tok)
		require.True(t, ok)
		require.Equal(t, "bob", ai.Username)
		_, ok = tk.Info(tok + "x")
		require.False(t, ok)
		_, ok = tk.Info("not.a.jwt")
		require.False(t, ok)
	})
	t.Run("expired", func(t *testing.T) {
		_, priv := keyFiles(t, "ES")
		tk, err := NewTokens(st, "jwt,priv-key="+priv+",sign-method=ES256,ttl=-1s", 0, nil)
		require.NoError(t, err)
		tok, err := tk.Assign("alice", 1)
		require.NoError(t, err)
		_, ok := tk.Info(tok)
		require.False(t, ok)
	})
	t.Run("method mismatch", func(t *testing.T) {
		_, priv := keyFiles(t, "RS")
		rs, err := NewTokens(st, "jwt,priv-key="+priv+",sign-method=RS256", 0, nil)
		require.NoError(t, err)
		ps, err := NewTokens(st, "jwt,priv-key="+priv+",sign-method=PS256", 0, nil)
		require.NoError(t, err)
		tok, _ := rs.Assign("alice", 1)
		_, ok := ps.Info(tok)
		require.False(t, ok)
	})
}
