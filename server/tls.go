package server

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/soheilhy/cmux"
	"go.etcd.io/etcd/client/pkg/v3/tlsutil"
	etcdtransport "go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"
)

// TLS on the client and peer listeners, as etcd configures it. The
// certificate handling is etcd's own (go.etcd.io/etcd/client/pkg/v3/
// transport): key pairs are re-read from their files on every handshake
// (rotation without restart), CRLs and allowed CNs/hostnames are checked
// after the handshake, and --auto-tls/--peer-auto-tls generate
// self-signed certificates under the data dir as etcd does.

func (c *Config) addTLSFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.CertFile, "cert-file", c.CertFile, "Path to the client server TLS cert file.")
	fs.StringVar(&c.KeyFile, "key-file", c.KeyFile, "Path to the client server TLS key file.")
	fs.StringVar(&c.ClientCertFile, "client-cert-file", c.ClientCertFile, "Path to an explicit peer client TLS cert file otherwise cert file will be used when client auth is required.")
	fs.StringVar(&c.ClientKeyFile, "client-key-file", c.ClientKeyFile, "Path to an explicit peer client TLS key file otherwise key file will be used when client auth is required.")
	fs.BoolVar(&c.ClientCertAuth, "client-cert-auth", c.ClientCertAuth, "Enable client cert authentication.")
	fs.StringVar(&c.ClientCRLFile, "client-crl-file", c.ClientCRLFile, "Path to the client certificate revocation list file.")
	fs.StringVar(&c.ClientCertAllowedHostname, "client-cert-allowed-hostname", c.ClientCertAllowedHostname, "Allowed TLS hostname for client cert authentication.")
	fs.StringVar(&c.TrustedCAFile, "trusted-ca-file", c.TrustedCAFile, "Path to the client server TLS trusted CA file.")
	fs.BoolVar(&c.AutoTLS, "auto-tls", c.AutoTLS, "Client TLS using generated certificates")
	fs.StringVar(&c.PeerCertFile, "peer-cert-file", c.PeerCertFile, "Path to the peer server TLS cert file.")
	fs.StringVar(&c.PeerKeyFile, "peer-key-file", c.PeerKeyFile, "Path to the peer server TLS key file.")
	fs.StringVar(&c.PeerClientCertFile, "peer-client-cert-file", c.PeerClientCertFile, "Path to an explicit peer client TLS cert file otherwise peer cert file will be used when client auth is required.")
	fs.StringVar(&c.PeerClientKeyFile, "peer-client-key-file", c.PeerClientKeyFile, "Path to an explicit peer client TLS key file otherwise peer key file will be used when client auth is required.")
	fs.BoolVar(&c.PeerClientCertAuth, "peer-client-cert-auth", c.PeerClientCertAuth, "Enable peer client cert authentication.")
	fs.StringVar(&c.PeerTrustedCAFile, "peer-trusted-ca-file", c.PeerTrustedCAFile, "Path to the peer server TLS trusted CA file.")
	fs.BoolVar(&c.PeerAutoTLS, "peer-auto-tls", c.PeerAutoTLS, "Peer TLS using generated certificates")
	fs.StringVar(&c.PeerCRLFile, "peer-crl-file", c.PeerCRLFile, "Path to the peer certificate revocation list file.")
	fs.StringVar(&c.PeerCertAllowedCN, "peer-cert-allowed-cn", c.PeerCertAllowedCN, "Comma-separated list of allowed CNs for inter-peer TLS authentication.")
	fs.StringVar(&c.PeerCertAllowedHostname, "peer-cert-allowed-hostname", c.PeerCertAllowedHostname, "Comma-separated list of allowed SAN hostnames for inter-peer TLS authentication.")
	fs.BoolVar(&c.PeerSkipClientSANVerification, "peer-skip-client-san-verification", c.PeerSkipClientSANVerification, "Skip verification of SAN field in client certificate for peer connections.")
	fs.UintVar(&c.SelfSignedCertValidity, "self-signed-cert-validity", c.SelfSignedCertValidity, "The validity period of the client and peer certificates, unit is year")
	fs.StringVar(&c.CipherSuites, "cipher-suites", c.CipherSuites, "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).")
	fs.StringVar(&c.TLSMinVersion, "tls-min-version", c.TLSMinVersion, "Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3.")
	fs.StringVar(&c.TLSMaxVersion, "tls-max-version", c.TLSMaxVersion, "Maximum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3 (empty defers to Go).")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// hasScheme reports whether a URL list has a TLS URL (https or unixs).
func hasTLSURL(urls string) bool {
	for _, u := range splitList(urls) {
		if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "unixs://") {
			return true
		}
	}
	return false
}

// validateTLS checks the TLS flags as etcd does at start.
func (c Config) validateTLS() []error {
	var errs []error
	if _, err := tlsutil.GetCipherSuites(splitList(c.CipherSuites)); err != nil {
		errs = append(errs, fmt.Errorf("--cipher-suites: %w", err))
	}
	min, err := tlsutil.GetTLSVersion(c.TLSMinVersion)
	if err != nil {
		errs = append(errs, fmt.Errorf("--tls-min-version: %w", err))
	}
	max, err := tlsutil.GetTLSVersion(c.TLSMaxVersion)
	if err != nil {
		errs = append(errs, fmt.Errorf("--tls-max-version: %w", err))
	}
	if min != 0 && max != 0 && min > max {
		errs = append(errs, errors.New("--tls-min-version is greater than --tls-max-version"))
	}
	if c.CipherSuites != "" && max == tls.VersionTLS13 {
		errs = append(errs, errors.New("--cipher-suites cannot be used with --tls-max-version=TLS1.3 (TLS 1.3 suites are not configurable)"))
	}
	if hasTLSURL(c.ListenClientURLs) && (c.CertFile == "" || c.KeyFile == "") && !c.AutoTLS {
		errs = append(errs, fmt.Errorf("--listen-client-urls %s: TLS key/cert (--cert-file, --key-file) must be provided, or --auto-tls", c.ListenClientURLs))
	}
	if hasTLSURL(c.ListenMetricsURLs) && (c.CertFile == "" || c.KeyFile == "") && !c.AutoTLS {
		errs = append(errs, errors.New("client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url")) // etcd's
	}
	if hasTLSURL(c.ListenPeerURLs) && (c.PeerCertFile == "" || c.PeerKeyFile == "") && !c.PeerAutoTLS {
		errs = append(errs, fmt.Errorf("--listen-peer-urls %s: TLS key/cert (--peer-cert-file, --peer-key-file) must be provided, or --peer-auto-tls", c.ListenPeerURLs))
	}
	return errs
}

// tlsInfos builds the client and peer TLSInfo (nil: that side has no TLS
// URL), generating self-signed certificates for --auto-tls and
// --peer-auto-tls as etcd does.
func (s *Server) tlsInfos() error {
	c := s.cfg
	suites, _ := tlsutil.GetCipherSuites(splitList(c.CipherSuites))
	min, _ := tlsutil.GetTLSVersion(c.TLSMinVersion)
	max, _ := tlsutil.GetTLSVersion(c.TLSMaxVersion)
	common := func(ti *etcdtransport.TLSInfo, side string) {
		ti.CipherSuites, ti.MinVersion, ti.MaxVersion = suites, min, max
		ti.Logger = s.lg.Named(side + "-tls")
		ti.HandshakeFailure = func(conn *tls.Conn, err error) {
			s.lg.Warn("rejected connection on "+side+" endpoint", zap.String("remote-addr", conn.RemoteAddr().String()), zap.Error(err))
		}
	}
	if hasTLSURL(c.ListenClientURLs) || hasTLSURL(c.ListenMetricsURLs) || hasTLSURL(c.ListenClientHTTPURLs) {
		ti := &etcdtransport.TLSInfo{
			CertFile: c.CertFile, KeyFile: c.KeyFile, ClientCertFile: c.ClientCertFile, ClientKeyFile: c.ClientKeyFile,
			TrustedCAFile: c.TrustedCAFile, ClientCertAuth: c.ClientCertAuth, CRLFile: c.ClientCRLFile,
			AllowedHostnames: splitList(c.ClientCertAllowedHostname),
		}
		if ti.Empty() && c.AutoTLS {
			self, err := etcdtransport.SelfCert(s.lg, filepath.Join(c.DataDir, "fixtures", "client"), urlHosts(c.ListenClientURLs), c.SelfSignedCertValidity)
			if err != nil {
				return fmt.Errorf("--auto-tls: %w", err)
			}
			self.ClientCertAuth = c.ClientCertAuth
			ti = &self
		}
		common(ti, "client")
		s.clientTLS = ti
	}
	if hasTLSURL(c.ListenPeerURLs) || hasTLSURL(c.InitialAdvertisePeerURLs) {
		ti := &etcdtransport.TLSInfo{
			CertFile: c.PeerCertFile, KeyFile: c.PeerKeyFile, ClientCertFile: c.PeerClientCertFile, ClientKeyFile: c.PeerClientKeyFile,
			TrustedCAFile: c.PeerTrustedCAFile, ClientCertAuth: c.PeerClientCertAuth, CRLFile: c.PeerCRLFile,
			AllowedCNs: splitList(c.PeerCertAllowedCN), AllowedHostnames: splitList(c.PeerCertAllowedHostname),
			SkipClientSANVerify: c.PeerSkipClientSANVerification,
		}
		if ti.Empty() && c.PeerAutoTLS {
			self, err := etcdtransport.SelfCert(s.lg, filepath.Join(c.DataDir, "fixtures", "peer"), urlHosts(c.ListenPeerURLs), c.SelfSignedCertValidity)
			if err != nil {
				return fmt.Errorf("--peer-auto-tls: %w", err)
			}
			ti = &self
		}
		common(ti, "peer")
		s.peerTLS = ti
	}
	return nil
}

func urlHosts(urls string) []string {
	var out []string
	for _, raw := range splitList(urls) {
		if u, err := url.Parse(raw); err == nil {
			out = append(out, u.Host)
		}
	}
	return out
}

// peerDialCreds secures this member's connections to its peers (Raft and
// lease forwarding); nil when peers speak plain text.
func (s *Server) peerDialCreds() (credentials.TransportCredentials, error) {
	if s.peerTLS == nil {
		return nil, nil
	}
	cfg, err := s.peerTLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("peer TLS: %w", err)
	}
	return credentials.NewTLS(cfg), nil
}

// tlsConnCreds are gRPC server credentials for connections a TLS listener
// has already accepted and decrypted (and cmux may have wrapped): the
// handshake is done, so they only hand gRPC the connection's TLS state,
// from which the caller's certificate (CommonName identity) is read.
// Plain-text connections pass as insecure.
type tlsConnCreds struct{}

func (tlsConnCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	inner := conn
	if mc, ok := inner.(*cmux.MuxConn); ok {
		inner = mc.Conn
	}
	if tc, ok := inner.(*tls.Conn); ok {
		return conn, credentials.TLSInfo{State: tc.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return conn, insecureInfo{}, nil
}

func (tlsConnCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("server-side credentials")
}
func (tlsConnCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}
func (c tlsConnCreds) Clone() credentials.TransportCredentials { return c }
func (tlsConnCreds) OverrideServerName(string) error           { return nil }

type insecureInfo struct{ credentials.CommonAuthInfo }

func (insecureInfo) AuthType() string { return "insecure" }
