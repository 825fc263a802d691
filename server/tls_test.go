package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/server/internal/testcluster"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	t    testing.TB
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate (PEM)
	n    int64
}

func newTestCA(t testing.TB) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key, n: 1}
	ca.file = ca.write("ca.crt", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(name, typ string, der []byte) string {
	p := filepath.Join(ca.dir, name)
	require.NoError(ca.t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return p
}

// issue writes a certificate for cn valid for 127.0.0.1 and localhost,
// for servers and clients, and returns the cert and key files.
func (ca *testCA) issue(name, cn string) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(ca.t, err)
	ca.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(ca.t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(ca.t, err)
	return ca.write(name+".crt", "CERTIFICATE", der), ca.write(name+".key", "EC PRIVATE KEY", kder)
}

func (ca *testCA) clientTLS(certFile, keyFile string) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(ca.t, err)
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg
}

func tlsClient(t *testing.T, eps []string, cfg *tls.Config, user, pw string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: cfg, Username: user, Password: pw,
		DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// toHTTPS turns a member's URLs into https ones.
func toHTTPS(c *server.Config) {
	for _, u := range []*string{&c.ListenClientURLs, &c.AdvertiseClientURLs, &c.ListenPeerURLs, &c.InitialAdvertisePeerURLs} {
		*u = strings.Replace(*u, "http://", "https://", 1)
	}
}

// Client and peer TLS on three members with mutual TLS everywhere: data
// replicates over TLS peers, a client without a certificate is refused,
// and with --client-cert-auth and auth on, the certificate's CommonName
// is the user (etcd's rule) — no password needed.
func TestMutualTLSAndCertificateIdentity(t *testing.T) {
	ca := newTestCA(t)
	srvCert, srvKey := ca.issue("server", "server")
	ms := testcluster.Start(t, 3, func(c *server.Config) {
		toHTTPS(c)
		c.CertFile, c.KeyFile, c.TrustedCAFile, c.ClientCertAuth = srvCert, srvKey, ca.file, true
		c.PeerCertFile, c.PeerKeyFile, c.PeerTrustedCAFile, c.PeerClientCertAuth = srvCert, srvKey, ca.file, true
		c.PeerCertAllowedCN = "server"
	})
	eps := ms.Endpoints()
	rootCert, rootKey := ca.issue("root", "root")
	root, err := tlsClient(t, eps, ca.clientTLS(rootCert, rootKey), "", "")
	require.NoError(t, err)
	_, err = root.Put(ctx(t), "k", "v")
	require.NoError(t, err)
	for _, m := range ms {
		c, err := tlsClient(t, []string{m.Srv.ClientAddrs()[0]}, ca.clientTLS(rootCert, rootKey), "", "")
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			g, err := c.Get(ctx(t), "k", clientv3.WithSerializable())
			return err == nil && g.Count == 1
		}, 10*time.Second, 20*time.Millisecond, "replicated over peer TLS")
	}

	// No client certificate, or one from another CA: refused at the handshake.
	short := func() context.Context {
		c, cancel := context.WithTimeout(t.Context(), time.Second)
		t.Cleanup(cancel)
		return c
	}
	bare, _ := tlsClient(t, eps[:1], ca.clientTLS("", ""), "", "")
	if bare != nil {
		_, err = bare.Get(short(), "k")
		require.Error(t, err, "no client certificate")
	}
	other := newTestCA(t)
	oc, ok := other.issue("other", "root")
	badCfg := ca.clientTLS(oc, ok)
	bad, _ := tlsClient(t, eps[:1], badCfg, "", "")
	if bad != nil {
		_, err = bad.Get(short(), "k")
		require.Error(t, err, "a certificate of another CA")
	}

	// Auth on: the root certificate is root, alice's is alice.
	_, err = root.UserAdd(ctx(t), "root", "rootpw")
	require.NoError(t, err)
	_, err = root.UserGrantRole(ctx(t), "root", "root")
	require.NoError(t, err)
	_, err = root.RoleAdd(ctx(t), "app")
	require.NoError(t, err)
	_, err = root.RoleGrantPermission(ctx(t), "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(authpb.READWRITE))
	require.NoError(t, err)
	_, err = root.UserAddWithOptions(ctx(t), "alice", "", &clientv3.UserAddOptions{NoPassword: true})
	require.NoError(t, err)
	_, err = root.UserGrantRole(ctx(t), "alice", "app")
	require.NoError(t, err)
	_, err = root.AuthEnable(ctx(t))
	require.NoError(t, err)
	_, err = root.Get(ctx(t), "k")
	require.NoError(t, err, "the root certificate acts as root")

	aliceCert, aliceKey := ca.issue("alice", "alice")
	alice, err := tlsClient(t, eps, ca.clientTLS(aliceCert, aliceKey), "", "")
	require.NoError(t, err)
	_, err = alice.Put(ctx(t), "app/x", "1")
	require.NoError(t, err, "alice by her certificate, no password")
	_, err = alice.Put(ctx(t), "other", "1")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	// The Lock and Election services act as the certificate's user too.
	l, err := alice.Grant(ctx(t), 60)
	require.NoError(t, err)
	lk, err := v3lockpb.NewLockClient(alice.ActiveConnection()).Lock(ctx(t), &v3lockpb.LockRequest{Name: []byte("app/lock"), Lease: int64(l.ID)})
	require.NoError(t, err, "alice locks under app/ by her certificate")
	require.Equal(t, fmt.Sprintf("app/lock/%x", l.ID), string(lk.Key))
	_, err = v3lockpb.NewLockClient(alice.ActiveConnection()).Lock(ctx(t), &v3lockpb.LockRequest{Name: []byte("other/lock"), Lease: int64(l.ID)})
	require.ErrorContains(t, err, rpctypes.ErrPermissionDenied.Error())
	_, err = v3electionpb.NewElectionClient(alice.ActiveConnection()).Campaign(ctx(t), &v3electionpb.CampaignRequest{Name: []byte("app/e"), Lease: int64(l.ID), Value: []byte("a")})
	require.NoError(t, err, "alice campaigns under app/ by her certificate")
	nobodyCert, nobodyKey := ca.issue("nobody", "")
	nobody, err := tlsClient(t, eps, ca.clientTLS(nobodyCert, nobodyKey), "", "")
	require.NoError(t, err)
	_, err = nobody.Get(ctx(t), "app/x")
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty, "a certificate without a CommonName is nobody")
	// The metadata the Lock and Election services pass a CommonName in is
	// believed only on their in-memory connection.
	spoof := metadata.AppendToOutgoingContext(ctx(t), "metastore-self-cn", "root")
	_, err = nobody.Get(spoof, "app/x")
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty, "a client cannot claim an identity in metadata")
	_, err = v3lockpb.NewLockClient(nobody.ActiveConnection()).Lock(spoof, &v3lockpb.LockRequest{Name: []byte("app/lock"), Lease: int64(l.ID)})
	require.ErrorContains(t, err, rpctypes.ErrUserEmpty.Error())
}

// Certificates are re-read on every handshake: replacing the files
// switches new connections to the new certificate without a restart.
func TestClientCertificateRotation(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue("server", "server")
	ms := testcluster.Start(t, 1, func(c *server.Config) {
		c.ListenClientURLs = strings.Replace(c.ListenClientURLs, "http://", "https://", 1)
		c.AdvertiseClientURLs = c.ListenClientURLs
		c.CertFile, c.KeyFile = certFile, keyFile
	})
	addr := ms[0].Srv.ClientAddrs()[0]
	serial := func() *big.Int {
		cfg := ca.clientTLS("", "")
		cfg.NextProtos = []string{"h2"}
		conn, err := tls.Dial("tcp", addr, cfg)
		require.NoError(t, err)
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := serial()
	c, err := tlsClient(t, []string{addr}, ca.clientTLS("", ""), "", "")
	require.NoError(t, err)
	_, err = c.Put(ctx(t), "before", "1")
	require.NoError(t, err)

	newCert, newKey := ca.issue("server2", "server")
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, err := os.ReadFile(f[0])
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f[1], b, 0o600))
	}
	require.NotEqual(t, first, serial(), "a new connection gets the new certificate")
	_, err = c.Put(ctx(t), "after", "1")
	require.NoError(t, err, "the open connection keeps working")
}

// Bad TLS configuration stops the member at start with the flag named.
func TestTLSConfigErrors(t *testing.T) {
	for _, c := range []struct {
		set  func(*server.Config)
		want string
	}{
		{func(c *server.Config) { c.ListenClientURLs = "https://127.0.0.1:0" }, "--cert-file, --key-file"},
		{func(c *server.Config) { c.ListenPeerURLs = "https://127.0.0.1:0" }, "--peer-cert-file, --peer-key-file"},
		{func(c *server.Config) { c.TLSMinVersion = "TLS1.0" }, "--tls-min-version"},
		{func(c *server.Config) { c.ListenMetricsURLs = "https://127.0.0.1:0" }, "client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url"},
		{func(c *server.Config) { c.CipherSuites = "NOPE" }, "--cipher-suites"},
		{func(c *server.Config) { c.TLSMinVersion, c.TLSMaxVersion = "TLS1.3", "TLS1.2" }, "greater than"},
	} {
		cfg := server.DefaultConfig()
		cfg.DataDir = t.TempDir()
		c.set(&cfg)
		require.ErrorContains(t, cfg.Validate(), c.want)
	}
	ms := testcluster.Configs(t, 1, func(c *server.Config) {
		c.ListenClientURLs = strings.Replace(c.ListenClientURLs, "http://", "https://", 1)
		c.CertFile, c.KeyFile = "/nonexistent.crt", "/nonexistent.key"
	})
	_, err := server.New(ms[0].Cfg, zap.NewNop())
	require.ErrorContains(t, err, "--listen-client-urls")
}

// --auto-tls and --peer-auto-tls: self-signed certificates under the data
// dir; clients that skip verification connect, peers talk TLS.
func TestAutoTLS(t *testing.T) {
	ms := testcluster.Start(t, 3, func(c *server.Config) {
		toHTTPS(c)
		c.AutoTLS, c.PeerAutoTLS = true, true
	})
	for _, m := range ms {
		for _, side := range []string{"client", "peer"} {
			_, err := os.Stat(filepath.Join(m.Cfg.DataDir, "fixtures", side, "cert.pem"))
			require.NoError(t, err)
		}
	}
	c, err := tlsClient(t, ms.Endpoints(), &tls.Config{InsecureSkipVerify: true}, "", "")
	require.NoError(t, err)
	_, err = c.Put(ctx(t), "k", "v")
	require.NoError(t, err)
	testcluster.RequireSameHashKVWith(t, ms, 0, c)
}

// BenchmarkTLSHandshake is the cost of a new mutual-TLS client connection
// (ECDSA P-256 certificates): dial, handshake with a client certificate,
// close.
func BenchmarkTLSHandshake(b *testing.B) {
	ca := newTestCA(b)
	srvCert, srvKey := ca.issue("server", "server")
	cliCert, cliKey := ca.issue("client", "client")
	ms := testcluster.Start(b, 1, func(c *server.Config) {
		c.ListenClientURLs = strings.Replace(c.ListenClientURLs, "http://", "https://", 1)
		c.AdvertiseClientURLs = c.ListenClientURLs
		c.CertFile, c.KeyFile, c.TrustedCAFile, c.ClientCertAuth = srvCert, srvKey, ca.file, true
	})
	cfg := ca.clientTLS(cliCert, cliKey)
	cfg.NextProtos = []string{"h2"}
	addr := ms[0].Srv.ClientAddrs()[0]
	b.ResetTimer()
	for b.Loop() {
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}

// A member whose peer certificate the others do not trust is refused at
// the handshake: the two trusted members form the cluster and serve; the
// third never learns a leader.
func TestUntrustedPeerIsRefused(t *testing.T) {
	ca, rogue := newTestCA(t), newTestCA(t)
	good, goodKey := ca.issue("peer", "peer")
	bad, badKey := rogue.issue("peer", "peer")
	ms := testcluster.Configs(t, 3, func(c *server.Config) {
		c.ListenPeerURLs = strings.Replace(c.ListenPeerURLs, "http://", "https://", 1)
		c.InitialAdvertisePeerURLs = c.ListenPeerURLs
		c.PeerCertFile, c.PeerKeyFile, c.PeerTrustedCAFile, c.PeerClientCertAuth = good, goodKey, ca.file, true
	})
	ms[2].Cfg.PeerCertFile, ms[2].Cfg.PeerKeyFile = bad, badKey
	for _, m := range ms {
		m.Start()
	}
	ms[0].WaitReady()
	ms[1].WaitReady()
	c := testcluster.Client(t, ms[0], ms[1])
	_, err := c.Put(ctx(t), "k", "v")
	require.NoError(t, err)
	time.Sleep(time.Second) // many election timeouts
	select {
	case <-ms[2].Srv.Ready():
		t.Fatal("the untrusted member joined the cluster")
	default:
	}
}
