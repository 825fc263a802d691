package server

import "context"

// Authorizer is the single authorization check point of the server. Every
// operation passes it with the caller's context (whose gRPC metadata
// carries the caller's token): each KV op, every op and compare of a
// transaction at any nesting depth, prev_kv reads, lease attachments (the
// keys already attached), lease revocations (the keys to delete), lease
// TimeToLive with keys, and every watch range. It returns nil or the etcd
// error to answer with (rpctypes.ErrGRPCPermissionDenied and friends).
//
// Until the Auth service is built the server allows everything; embedders
// and tests install their own with WithAuthorizer.
type Authorizer interface {
	Authorize(ctx context.Context, write bool, key, end []byte) error
}

// Option customizes a Server beyond its Config.
type Option func(*Server)

// WithAuthorizer installs a as the check point.
func WithAuthorizer(a Authorizer) Option {
	return func(s *Server) { s.auth = a }
}

// WithPeerAddrs replaces how this member reaches its peers: f gets a
// peer's ID and advertised peer URLs and returns the host:port targets to
// dial (Raft traffic and lease forwarding). Tests route peer traffic
// through fault-injecting bridges with it.
func WithPeerAddrs(f func(id uint64, peerURLs []string) []string) Option {
	return func(s *Server) { s.peerAddrs = f }
}
