package compare

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// JoinResult is one measurement of a member joining a cluster that holds
// Keys keys: how long MemberAdd took, and the time from the new member's
// process start until it serves the last key written before it joined
// (a serializable read of its own state).
type JoinResult struct {
	Target     string        `json:"target"`
	Keys       int           `json:"keys"`
	AddLatency time.Duration `json:"add_latency_ns"`
	ToServing  time.Duration `json:"to_serving_ns"`
}

func (cl *Cluster) client(eps ...string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		MaxCallSendMsgSize: 8 << 20})
}

// Load writes keys keys of valSize bytes (key-000000000…) in
// transactions of 128 puts from 8 writers, and returns the revision after
// the last.
func (cl *Cluster) Load(ctx context.Context, keys, valSize int) (int64, error) {
	c, err := cl.client(cl.Endpoints...)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	val := strings.Repeat("v", valSize)
	const batch = 128
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range 8 {
		g.Go(func() error {
			for {
				start := int(next.Add(batch)) - batch
				if start >= keys {
					return nil
				}
				var ops []clientv3.Op
				for i := start; i < min(start+batch, keys); i++ {
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("key-%09d", i), val))
				}
				if _, err := c.Txn(gctx).Then(ops...).Commit(); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	r, err := c.Put(ctx, "load-done", "x")
	if err != nil {
		return 0, err
	}
	return r.Header.Revision, nil
}

// Join adds a member (a learner if asked) through the cluster's first
// member, starts it, and waits until it serves revision rev.
func (cl *Cluster) Join(ctx context.Context, learner bool, rev int64) (add, serving time.Duration, err error) {
	client, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	peer, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	c, err := cl.client(cl.Endpoints...)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	name := fmt.Sprintf("m%d", cl.started)
	var resp *clientv3.MemberAddResponse
	for {
		start := time.Now()
		if learner {
			resp, err = c.MemberAddAsLearner(ctx, []string{cl.scheme + "://" + peer})
		} else {
			resp, err = c.MemberAdd(ctx, []string{cl.scheme + "://" + peer})
		}
		add = time.Since(start)
		if !errors.Is(err, rpctypes.ErrUnhealthy) {
			break
		}
		select { // --strict-reconfig-check wants links up for 5 s
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("member add: %w", err)
	}
	var initial []string
	for _, m := range resp.Members {
		n := m.Name
		if m.ID == resp.Member.ID {
			n = name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	start := time.Now()
	if err := cl.startMember(name, client, peer, strings.Join(initial, ","), "existing"); err != nil {
		return 0, 0, err
	}
	// Dial only once the member listens: a refused first dial would put
	// the client in gRPC's reconnect backoff (a second), not the member.
	for {
		if conn, err := net.DialTimeout("tcp", client, time.Second); err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-cl.exited[len(cl.exited)-1]:
			return 0, 0, fmt.Errorf("the new member exited: %v%s", err, cl.logTail())
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	nc, err := cl.client(client)
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	deadline := time.Now().Add(30 * time.Minute)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := nc.Get(rctx, "load-done", clientv3.WithSerializable())
		cancel()
		if err == nil && len(r.Kvs) == 1 && r.Header.Revision >= rev {
			return add, time.Since(start), nil
		}
		select {
		case err := <-cl.exited[len(cl.exited)-1]:
			return 0, 0, fmt.Errorf("the new member exited: %v%s", err, cl.logTail())
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("the new member did not catch up in 30 minutes%s", cl.logTail())
		}
	}
}

// MeasureJoin starts a one-member cluster of t under dir, loads keys keys
// of valSize bytes, adds a learner and measures it joining.
func MeasureJoin(ctx context.Context, t Target, dir string, keys, valSize int) (JoinResult, error) {
	cl, err := Start(ctx, t, 1, filepath.Join(dir, fmt.Sprintf("%s-join-%d", t.Name, keys)), nil)
	if err != nil {
		return JoinResult{}, err
	}
	defer cl.Stop()
	rev, err := cl.Load(ctx, keys, valSize)
	if err != nil {
		return JoinResult{}, fmt.Errorf("load: %w", err)
	}
	add, serving, err := cl.Join(ctx, true, rev)
	if err != nil {
		return JoinResult{}, err
	}
	return JoinResult{Target: t.Name, Keys: keys, AddLatency: add, ToServing: serving}, nil
}

// ReplaceResult is the write throughput of a three-member cluster before,
// during and after one of its members is replaced (removed, a new member
// added as a voter, started, caught up).
type ReplaceResult struct {
	Target                string        `json:"target"`
	Keys                  int           `json:"keys"`
	Before, During, After float64       `json:"-"` // puts per second
	Took                  time.Duration `json:"took_ns"`
	Failed                int64         `json:"failed"` // puts that failed or timed out
}

// MeasureReplace starts three members of t, loads keys keys, and runs a
// put load from 16 clients while it replaces the last member.
func MeasureReplace(ctx context.Context, t Target, dir string, keys, valSize int, window time.Duration) (ReplaceResult, error) {
	cl, err := Start(ctx, t, 3, filepath.Join(dir, fmt.Sprintf("%s-replace-%d", t.Name, keys)), nil)
	if err != nil {
		return ReplaceResult{}, err
	}
	defer cl.Stop()
	if _, err := cl.Load(ctx, keys, valSize); err != nil {
		return ReplaceResult{}, fmt.Errorf("load: %w", err)
	}
	c, err := cl.client(cl.Endpoints[:2]...)
	if err != nil {
		return ReplaceResult{}, err
	}
	defer c.Close()
	var done, failed atomic.Int64
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	val := strings.Repeat("v", valSize)
	for w := range 16 {
		wg.Go(func() {
			for i := 0; lctx.Err() == nil; i++ {
				pctx, cancel := context.WithTimeout(lctx, 5*time.Second)
				_, err := c.Put(pctx, fmt.Sprintf("load-%02d-%09d", w, i), val)
				cancel()
				if err == nil {
					done.Add(1)
				} else if lctx.Err() == nil {
					failed.Add(1)
				}
			}
		})
	}
	rate := func(d time.Duration) float64 {
		n0, t0 := done.Load(), time.Now()
		time.Sleep(d)
		return float64(done.Load()-n0) / time.Since(t0).Seconds()
	}
	res := ReplaceResult{Target: t.Name, Keys: keys}
	res.Before = rate(window)
	n0, t0 := done.Load(), time.Now()
	err = cl.replaceLast(ctx, c)
	res.Took = time.Since(t0)
	res.During = float64(done.Load()-n0) / res.Took.Seconds()
	if err == nil {
		res.After = rate(window)
	}
	stop()
	wg.Wait()
	res.Failed = failed.Load()
	return res, err
}

// replaceLast removes the last member (killed: its disk is lost), adds a
// new voter in its place and waits until it serves.
func (cl *Cluster) replaceLast(ctx context.Context, c *clientv3.Client) error {
	i := len(cl.procs) - 1
	st, err := c.Status(ctx, cl.Endpoints[0])
	if err != nil {
		return err
	}
	ms, err := c.MemberList(ctx)
	if err != nil {
		return err
	}
	_ = cl.procs[i].Process.Kill()
	<-cl.exited[i]
	for _, m := range ms.Members {
		if len(m.ClientURLs) > 0 && strings.HasSuffix(m.ClientURLs[0], cl.Endpoints[i]) {
			if err := removeWithRetry(ctx, c, m.ID); err != nil {
				return fmt.Errorf("member remove: %w", err)
			}
		}
	}
	cl.procs, cl.exited, cl.logs, cl.Endpoints = cl.procs[:i], cl.exited[:i], cl.logs[:i], cl.Endpoints[:i]
	_, _, err = cl.Join(ctx, false, st.Header.Revision)
	return err
}

// removeWithRetry removes member id, each attempt bounded as an operator's
// etcdctl call is (a removal proposed while the cluster re-elects or
// applies an earlier change may get no answer), for up to a minute; a
// removal that already applied answers ErrMemberNotFound on the next try.
func removeWithRetry(ctx context.Context, c *clientv3.Client, id uint64) error {
	deadline := time.Now().Add(time.Minute)
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.MemberRemove(actx, id)
		cancel()
		switch {
		case err == nil, errors.Is(err, rpctypes.ErrMemberNotFound):
			return nil
		case ctx.Err() != nil || time.Now().After(deadline):
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
