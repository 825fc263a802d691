package consensus

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Defaults, as etcd's.
const (
	DefaultTickInterval           = 100 * time.Millisecond
	DefaultElectionTicks          = 10
	DefaultHeartbeatTicks         = 1
	DefaultSnapshotCount          = 10000
	DefaultSnapshotCatchUpEntries = 5000
	DefaultMaxSizePerMsg          = 1 << 20
	DefaultMaxInflightMsgs        = 4096 / 8
	DefaultReadIndexTimeout       = 5 * time.Second
)

// Peer is a member of the initial cluster.
type Peer struct {
	// ID is the member's Raft ID, never 0.
	ID uint64
	// Context is opaque member data (for MetaStore: name and peer URLs),
	// stored in the initial configuration entry.
	Context []byte
}

// Config configures a Node. Zero fields take their defaults.
type Config struct {
	// ID is this node's Raft ID; required, never 0.
	ID uint64
	// Dir holds the WAL ("wal/") and snapshots ("snap/"); required.
	Dir string
	// Peers is the initial membership of a new cluster. Ignored when Dir
	// already holds a log; empty (with Join) for a member that joins an
	// existing cluster.
	Peers []Peer
	// Join starts a node with an empty log that waits to be contacted by
	// the leader of an existing cluster that already added it.
	Join bool
	// ForceNewCluster restarts a member on its existing log as the only
	// member of its cluster (etcd's --force-new-cluster): uncommitted
	// entries are dropped and every other member is removed through the
	// log. Ignored for a new log.
	ForceNewCluster bool
	// TickInterval is the duration of one Raft tick (etcd's
	// --heartbeat-interval). 0 means DefaultTickInterval; negative means
	// no ticker: the caller calls Tick (tests).
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks (etcd's
	// --election-timeout divided by --heartbeat-interval). Default 10.
	ElectionTicks int
	// HeartbeatTicks is the heartbeat interval in ticks. Default 1.
	HeartbeatTicks int
	// SnapshotCount is the number of applied entries between snapshots
	// (etcd's --snapshot-count). Default 10000.
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries stay in the log after a
	// compaction, for slow followers. Default 5000.
	SnapshotCatchUpEntries uint64
	// MaxSizePerMsg bounds the bytes of entries per append message.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds append messages in flight per follower.
	MaxInflightMsgs int
	// ReadIndexTimeout bounds one ReadIndex round. Default 5 s.
	ReadIndexTimeout time.Duration
	// WALSegmentBytes is the WAL segment size; 0 means the wal default.
	WALSegmentBytes int64
	// Logger receives the node's and raft's logs; nil means none.
	Logger *zap.Logger
	// WALSyncObserver, if set, is called after every fsync of the log
	// with its duration (etcd's etcd_disk_wal_fsync_duration_seconds).
	WALSyncObserver func(time.Duration)
	// WALWriteObserver, if set, is called after every append to the log
	// with the bytes written and the time it took.
	WALWriteObserver func(bytes int64, d time.Duration)
}

// DefaultConfig returns a Config with every default spelled out; ID, Dir
// and Peers (or Join) remain to be set.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

// Validate reports every invalid field at once; it does not modify c.
func (c Config) Validate() error {
	var errs []error
	if c.ID == 0 {
		errs = append(errs, errors.New("consensus: ID must not be 0"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("consensus: Dir is required"))
	}
	for _, p := range c.Peers {
		if p.ID == 0 {
			errs = append(errs, errors.New("consensus: a peer ID must not be 0"))
		}
	}
	if c.Join && len(c.Peers) > 0 {
		errs = append(errs, errors.New("consensus: Join and Peers are exclusive"))
	}
	if c.ElectionTicks < 0 || c.HeartbeatTicks < 0 {
		errs = append(errs, errors.New("consensus: ElectionTicks and HeartbeatTicks must be >= 0"))
	}
	e, h := c.ElectionTicks, c.HeartbeatTicks
	if e == 0 {
		e = DefaultElectionTicks
	}
	if h == 0 {
		h = DefaultHeartbeatTicks
	}
	if e <= h {
		errs = append(errs, fmt.Errorf("consensus: ElectionTicks (%d) must be greater than HeartbeatTicks (%d)", e, h))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	setDefault(&c.TickInterval, DefaultTickInterval)
	setDefault(&c.ElectionTicks, DefaultElectionTicks)
	setDefault(&c.HeartbeatTicks, DefaultHeartbeatTicks)
	setDefault(&c.SnapshotCount, DefaultSnapshotCount)
	setDefault(&c.SnapshotCatchUpEntries, DefaultSnapshotCatchUpEntries)
	setDefault(&c.MaxSizePerMsg, DefaultMaxSizePerMsg)
	setDefault(&c.MaxInflightMsgs, DefaultMaxInflightMsgs)
	setDefault(&c.ReadIndexTimeout, DefaultReadIndexTimeout)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// setDefault sets *field to def when it holds its zero value.
func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
