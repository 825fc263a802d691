package concurrency

import (
	"context"

	v3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Session is a lease kept alive in the background; locks and elections
// created with it last as long as it does. It is etcd's Session type, so
// the two packages interoperate.
type Session = concurrency.Session

// SessionOption configures a Session.
type SessionOption = concurrency.SessionOption

// NewSession creates a session on client: a lease (TTL 60 s by default)
// kept alive until Close or until ctx (WithContext) is cancelled.
func NewSession(client *v3.Client, opts ...SessionOption) (*Session, error) {
	return concurrency.NewSession(client, opts...)
}

// WithTTL sets the session's lease TTL in seconds.
func WithTTL(ttl int) SessionOption { return concurrency.WithTTL(ttl) }

// WithLease uses an existing lease instead of granting one.
func WithLease(leaseID v3.LeaseID) SessionOption { return concurrency.WithLease(leaseID) }

// WithContext ties the session's keepalive to ctx.
func WithContext(ctx context.Context) SessionOption { return concurrency.WithContext(ctx) }
