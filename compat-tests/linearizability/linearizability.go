// Package linearizability drives concurrent clients against an etcd
// endpoint — puts, gets, deletes and compare-and-swap txns on a small key
// set — records the history with invocation and response times, and checks
// it against a sequential key-value model with porcupine. The server tests
// use it under fault injection; the conformance run uses it on any
// endpoint.
package linearizability

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Kind is an operation kind.
type Kind int

// The operation kinds.
const (
	Get Kind = iota
	Put
	Delete
	CAS // txn: if value(key) == Expect then put Value
)

// Input is one operation's request.
type Input struct {
	Kind          Kind
	Key           string
	Value, Expect string
}

// Output is one operation's result. Unknown marks an operation whose
// outcome the client never learned (error, timeout): it may or may not
// have taken effect.
type Output struct {
	Value   string
	Found   bool
	OK      bool // CAS succeeded
	Unknown bool
}

type state struct {
	value string
	found bool
}

// Model is the sequential specification of one key (histories are
// partitioned by key).
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return state{} },
	Step: func(st, in, out any) (bool, any) {
		s, i, o := st.(state), in.(Input), out.(Output)
		switch i.Kind {
		case Get:
			return o.Unknown || (o.Found == s.found && o.Value == s.value), s
		case Put:
			return true, state{value: i.Value, found: true}
		case Delete:
			return true, state{}
		case CAS:
			match := s.found && s.value == i.Expect
			if o.Unknown {
				if match {
					return true, state{value: i.Value, found: true}
				}
				return true, s
			}
			if o.OK != match {
				return false, s
			}
			if match {
				return true, state{value: i.Value, found: true}
			}
			return true, s
		}
		return false, s
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(Input), out.(Output)
		return fmt.Sprintf("%v %s %q %q -> %+v", i.Kind, i.Key, i.Value, i.Expect, o)
	},
}

// Config shapes a recorded workload.
type Config struct {
	Clients  int           // concurrent clients (default 4)
	Keys     int           // distinct keys (default 3)
	Duration time.Duration // how long to run (default 2 s)
	Prefix   string        // key prefix, so runs can share a server
	Seed     uint64
	// OpTimeout bounds one operation; a timed-out write has an unknown
	// outcome. Default 2 s.
	OpTimeout time.Duration
}

// Record runs the workload with one client connection per worker from
// newClient and returns the history.
func Record(ctx context.Context, cfg Config, newClient func() (*clientv3.Client, error)) ([]porcupine.Operation, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 4
	}
	if cfg.Keys <= 0 {
		cfg.Keys = 3
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 2 * time.Second
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 2 * time.Second
	}
	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	for id := range cfg.Clients {
		c, err := newClient()
		if err != nil {
			return nil, err
		}
		defer c.Close()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(id)))
			seq := 0
			for time.Since(start) < cfg.Duration && ctx.Err() == nil {
				seq++
				in := Input{Key: fmt.Sprintf("%sk%d", cfg.Prefix, rng.IntN(cfg.Keys))}
				switch r := rng.IntN(10); {
				case r < 4:
					in.Kind = Get
				case r < 7:
					in.Kind, in.Value = Put, fmt.Sprintf("%d-%d", id, seq)
				case r < 8:
					in.Kind = Delete
				default:
					in.Kind, in.Value = CAS, fmt.Sprintf("%d-%d", id, seq)
					in.Expect = fmt.Sprintf("%d-%d", rng.IntN(cfg.Clients), seq-rng.IntN(3))
				}
				call := time.Since(start).Nanoseconds()
				out := do(ctx, c, in, cfg.OpTimeout)
				ret := time.Since(start).Nanoseconds()
				if out.Unknown {
					if in.Kind == Get {
						continue // a failed read changed nothing
					}
					ret = math.MaxInt64 // may take effect at any later time
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return history, nil
}

func do(ctx context.Context, c *clientv3.Client, in Input, timeout time.Duration) Output {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch in.Kind {
	case Get:
		r, err := c.Get(ctx, in.Key)
		if err != nil {
			return Output{Unknown: true}
		}
		if len(r.Kvs) == 0 {
			return Output{}
		}
		return Output{Value: string(r.Kvs[0].Value), Found: true}
	case Put:
		if _, err := c.Put(ctx, in.Key, in.Value); err != nil {
			return Output{Unknown: true}
		}
	case Delete:
		if _, err := c.Delete(ctx, in.Key); err != nil {
			return Output{Unknown: true}
		}
	case CAS:
		r, err := c.Txn(ctx).If(clientv3.Compare(clientv3.Value(in.Key), "=", in.Expect)).
			Then(clientv3.OpPut(in.Key, in.Value)).Commit()
		if err != nil {
			return Output{Unknown: true}
		}
		return Output{OK: r.Succeeded}
	}
	return Output{}
}

// Check checks history against Model within timeout.
func Check(history []porcupine.Operation, timeout time.Duration) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model, history, timeout)
}
