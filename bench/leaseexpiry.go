package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeaseGrant grants one lease of ttl per request and lets it expire
// (lease-expiry's first phase).
func LeaseGrant(ttl int64) Op {
	return Plain(func(ctx context.Context, c *clientv3.Client, _ int) error {
		_, err := c.Grant(ctx, ttl)
		return err
	})
}

// Expiry is how a server revoked a pile of expired leases.
type Expiry struct {
	// Leases is how many leases were alive when the first came due.
	Leases int `json:"leases"`
	// Due is when the last granted lease came due (the end of the grants
	// plus the TTL).
	Due time.Time `json:"due"`
	// Drained is when the server listed no lease any more.
	Drained time.Time `json:"drained"`
	// RevokesPerSecond is the revoke rate from the first revoke seen to
	// the last.
	RevokesPerSecond float64 `json:"revokes_per_second"`
	// Lag is Drained - Due: how late the last lease was revoked.
	Lag time.Duration `json:"lag_ns"`
	// Timeline is the number of leases left at each poll.
	Timeline []ExpiryPoint `json:"timeline"`
}

// ExpiryPoint is one poll of the lease list.
type ExpiryPoint struct {
	At   time.Time `json:"at"`
	Left int       `json:"left"`
}

// WriteText writes e for people.
func (e Expiry) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "\nLease expiry:\n  Leases:\t%d\n  Revokes/sec:\t%.1f\n  Last revoked after it was due:\t%s\n",
		e.Leases, e.RevokesPerSecond, e.Lag.Round(time.Millisecond))
	return err
}

// WaitExpiry polls the lease list on c every interval from now until it is
// empty or timeout passes, and measures the revoke rate; due is when the
// last lease comes due.
func WaitExpiry(ctx context.Context, c *clientv3.Client, due time.Time, interval, timeout time.Duration) (Expiry, error) {
	e := Expiry{Due: due}
	deadline := time.Now().Add(timeout)
	var first, last ExpiryPoint
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := c.Leases(lctx)
		cancel()
		if err != nil {
			return e, fmt.Errorf("bench: list leases: %w", err)
		}
		p := ExpiryPoint{At: time.Now(), Left: len(resp.Leases)}
		e.Timeline = append(e.Timeline, p)
		if len(e.Timeline) == 1 || p.Left > e.Leases {
			e.Leases = p.Left
		}
		if first.At.IsZero() && p.Left < e.Leases {
			first = e.Timeline[len(e.Timeline)-2] // the last poll before a revoke
		}
		if p.Left == 0 {
			last = p
			break
		}
		if time.Now().After(deadline) {
			return e, fmt.Errorf("bench: %d of %d leases still alive %s after the last was due", p.Left, e.Leases, time.Since(due).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return e, ctx.Err()
		case <-time.After(interval):
		}
	}
	e.Drained = last.At
	e.Lag = e.Drained.Sub(due)
	if !first.At.IsZero() {
		if d := last.At.Sub(first.At).Seconds(); d > 0 {
			e.RevokesPerSecond = float64(first.Left) / d
		}
	}
	return e, nil
}
