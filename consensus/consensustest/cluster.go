package consensustest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/metastore/metastore/consensus"
)

// Member is one node of a Cluster. Its state machine is in-memory: after a
// restart it recovers from the node's snapshot and log.
type Member struct {
	ID   uint64
	Dir  string
	Node *consensus.Node[uint64]
	SM   *KV
}

// Cluster is N nodes on one in-memory Network, stopped at test cleanup.
type Cluster struct {
	tb      testing.TB
	Net     *Network
	Members map[uint64]*Member
	base    consensus.Config
	durable bool
}

// Options tune NewCluster.
type Options struct {
	// Tick is the tick interval; default 10 ms.
	Tick time.Duration
	// SnapshotCount and CatchUp configure log compaction.
	SnapshotCount, CatchUp uint64
	// ManualTick turns the clocks off: time advances only through Tick,
	// so elections and heartbeats happen when the test says.
	ManualTick bool
	// DurableSM keeps each member's state machine across Restart, like a
	// state machine on disk (MetaStore's store): the node must then replay
	// membership to Raft without re-applying entries.
	DurableSM bool
}

// NewCluster starts size members with IDs 1..size.
func NewCluster(tb testing.TB, size int, opts Options) *Cluster {
	tb.Helper()
	if opts.Tick == 0 {
		opts.Tick = 10 * time.Millisecond
	}
	c := &Cluster{tb: tb, Net: NewNetwork(), Members: map[uint64]*Member{}, durable: opts.DurableSM}
	if opts.ManualTick {
		opts.Tick = -1
	}
	c.base = consensus.Config{
		TickInterval:           opts.Tick,
		ElectionTicks:          10,
		HeartbeatTicks:         1,
		SnapshotCount:          opts.SnapshotCount,
		SnapshotCatchUpEntries: opts.CatchUp,
		ReadIndexTimeout:       2 * time.Second,
	}
	var peers []consensus.Peer
	for i := 1; i <= size; i++ {
		peers = append(peers, consensus.Peer{ID: uint64(i), Context: []byte(fmt.Sprint("m", i))})
	}
	dir := tb.TempDir()
	for _, p := range peers {
		m := &Member{ID: p.ID, Dir: filepath.Join(dir, fmt.Sprint("m", p.ID))}
		c.Members[p.ID] = m
		c.start(m, peers, false)
	}
	tb.Cleanup(c.Close)
	return c
}

func (c *Cluster) start(m *Member, peers []consensus.Peer, join bool) {
	c.tb.Helper()
	c.startWith(m, func(cfg *consensus.Config) { cfg.Peers, cfg.Join = peers, join })
}

func (c *Cluster) startWith(m *Member, adjust func(*consensus.Config)) {
	c.tb.Helper()
	cfg := c.base
	cfg.ID, cfg.Dir = m.ID, m.Dir
	adjust(&cfg)
	cfg.Logger = zaptest.NewLogger(c.tb).Named(fmt.Sprint("m", m.ID))
	if m.SM == nil || !c.durable {
		m.SM = NewKV()
	}
	n, err := consensus.Start(cfg, m.SM, c.Net.Transport(m.ID))
	require.NoError(c.tb, err)
	m.Node = n
	c.Net.Register(m.ID, n)
}

// Stop stops member id (its data stays).
func (c *Cluster) Stop(id uint64) {
	m := c.Members[id]
	c.Net.Unregister(id)
	m.Node.Stop()
}

// Restart starts a stopped member again on its data.
func (c *Cluster) Restart(id uint64) {
	c.start(c.Members[id], nil, false)
}

// RestartForced starts a stopped member again on its data as the only
// member of its cluster (Config.ForceNewCluster).
func (c *Cluster) RestartForced(id uint64) {
	c.tb.Helper()
	c.startWith(c.Members[id], func(cfg *consensus.Config) { cfg.ForceNewCluster = true })
}

// AddMember starts a new, empty member id that joins the cluster; the
// caller proposes the conf change that adds it.
func (c *Cluster) AddMember(id uint64) *Member {
	m := &Member{ID: id, Dir: filepath.Join(c.tb.TempDir(), fmt.Sprint("m", id))}
	c.Members[id] = m
	c.start(m, nil, true)
	return m
}

// Tick advances the clock of each member in ids by n ticks.
func (c *Cluster) Tick(n int, ids ...uint64) {
	for range n {
		for _, id := range ids {
			c.Members[id].Node.Tick()
		}
	}
}

// Close stops every member and the network.
func (c *Cluster) Close() {
	for id, m := range c.Members {
		if m.Node != nil {
			select {
			case <-m.Node.Done():
			default:
				c.Net.Unregister(id)
				m.Node.Stop()
			}
		}
	}
	c.Net.Close()
}

// WaitLeader waits until every running member in ids (all if none) agrees
// on one leader, and returns it.
func (c *Cluster) WaitLeader(ctx context.Context, ids ...uint64) uint64 {
	c.tb.Helper()
	if len(ids) == 0 {
		for id := range c.Members {
			ids = append(ids, id)
		}
	}
	for {
		lead := c.Members[ids[0]].Node.Leader()
		agree := lead != 0
		for _, id := range ids[1:] {
			if c.Members[id].Node.Leader() != lead {
				agree = false
			}
		}
		if agree {
			return lead
		}
		select {
		case <-ctx.Done():
			c.tb.Fatalf("no leader agreed by %v", ids)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// WaitApplied waits until every member in ids has applied index.
func (c *Cluster) WaitApplied(ctx context.Context, index uint64, ids ...uint64) {
	c.tb.Helper()
	for _, id := range ids {
		require.NoError(c.tb, c.Members[id].Node.WaitApplied(ctx, index), "member %d", id)
	}
}
