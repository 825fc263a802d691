package etcddb

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/coreos/go-semver/semver"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// kvsPerTx bounds the key-bucket puts of one bbolt transaction, which
// holds its dirty pages in memory until it commits.
const kvsPerTx = 20000

// buckets are created in every file, as etcd creates them.
var buckets = []backend.Bucket{
	schema.Key, schema.Meta, schema.Lease, schema.Alarm, schema.Cluster,
	schema.Members, schema.MembersRemoved, schema.Auth, schema.AuthUsers, schema.AuthRoles,
}

// Meta is what etcd keeps in its meta and cluster buckets.
type Meta struct {
	// ConsistentIndex and Term are the Raft position the file reflects.
	ConsistentIndex, Term uint64
	// ConfState is the Raft configuration (voters and learners).
	ConfState *raftpb.ConfState
	// CompactRev is the compaction revision (scheduled and finished);
	// <= 0 writes none.
	CompactRev int64
	// ClusterVersion is the cluster's version ("3.7.0"); empty writes none.
	ClusterVersion string
	// StorageVersion is the storage schema version (etcd 3.7: "3.7.0").
	StorageVersion string
}

// Writer builds a new etcd backend file. Its methods are not safe for
// concurrent use. Key-bucket pairs must come in revision order.
type Writer struct {
	db  *bolt.DB
	tx  *bolt.Tx
	kvs *bolt.Bucket
	n   int
	err error
}

// Create starts a new backend file at path, which must not exist. The file
// is not synced: it is meant to be streamed or renamed by the caller after
// Close, which syncs it.
func Create(path string) (*Writer, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("etcddb: %s exists", path)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, NoGrowSync: true, NoFreelistSync: false, InitialMmapSize: 1 << 20})
	if err != nil {
		return nil, fmt.Errorf("etcddb: %w", err)
	}
	w := &Writer{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b.Name()); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = w.begin()
	}
	if err != nil {
		db.Close()
		os.Remove(path)
		return nil, fmt.Errorf("etcddb: %w", err)
	}
	return w, nil
}

func (w *Writer) begin() error {
	tx, err := w.db.Begin(true)
	if err != nil {
		return err
	}
	w.tx, w.kvs, w.n = tx, tx.Bucket(schema.Key.Name()), 0
	w.kvs.FillPercent = 0.9 // as etcd's UnsafeSeqPut: appends in key order
	return nil
}

// fail records the first error; later calls do nothing.
func (w *Writer) fail(err error) error {
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("etcddb: %w", err)
	}
	return w.err
}

func (w *Writer) put(b backend.Bucket, k, v []byte) error {
	if w.err != nil {
		return w.err
	}
	return w.fail(w.tx.Bucket(b.Name()).Put(k, v))
}

// PutKV adds a key-bucket pair: etcd's revision key and the marshaled
// mvccpb.KeyValue. Pairs must come in revision order; k and v may be
// reused by the caller after PutKV returns.
func (w *Writer) PutKV(k, v []byte) error {
	if w.err != nil {
		return w.err
	}
	// bbolt keeps the slices until the transaction commits.
	if err := w.kvs.Put(bytes.Clone(k), bytes.Clone(v)); err != nil {
		return w.fail(err)
	}
	if w.n++; w.n >= kvsPerTx {
		if err := w.tx.Commit(); err != nil {
			return w.fail(err)
		}
		return w.fail(w.begin())
	}
	return nil
}

// PutLease adds a lease as etcd's lessor persists it.
func (w *Writer) PutLease(id, ttl, remainingTTL int64) error {
	v, err := proto.Marshal(&leasepb.Lease{ID: id, TTL: ttl, RemainingTTL: remainingTTL})
	if err != nil {
		return w.fail(err)
	}
	return w.put(schema.Lease, binary.BigEndian.AppendUint64(nil, uint64(id)), v)
}

// PutMember adds a member as etcd's membership store keeps it.
func (w *Writer) PutMember(m *pb.Member) error {
	em := &membership.Member{
		ID:             types.ID(m.ID),
		RaftAttributes: membership.RaftAttributes{PeerURLs: m.PeerURLs, IsLearner: m.IsLearner},
		Attributes:     membership.Attributes{Name: m.Name, ClientURLs: m.ClientURLs},
	}
	v, err := json.Marshal(em)
	if err != nil {
		return w.fail(err)
	}
	return w.put(schema.Members, schema.BackendMemberKey(em.ID), v)
}

// PutRemoved records a removed member ID.
func (w *Writer) PutRemoved(id uint64) error {
	return w.put(schema.MembersRemoved, schema.BackendMemberKey(types.ID(id)), []byte("removed"))
}

// PutAlarm adds an active alarm.
func (w *Writer) PutAlarm(a *pb.AlarmMember) error {
	k, err := proto.Marshal(a)
	if err != nil {
		return w.fail(err)
	}
	return w.put(schema.Alarm, k, nil)
}

// PutUser adds an auth user (its password hash as stored).
func (w *Writer) PutUser(u *authpb.User) error {
	v, err := proto.Marshal(u)
	if err != nil {
		return w.fail(err)
	}
	return w.put(schema.AuthUsers, u.Name, v)
}

// PutRole adds an auth role.
func (w *Writer) PutRole(r *authpb.Role) error {
	v, err := proto.Marshal(r)
	if err != nil {
		return w.fail(err)
	}
	return w.put(schema.AuthRoles, r.Name, v)
}

// SetAuth records whether auth is enabled and the auth revision.
func (w *Writer) SetAuth(enabled bool, revision uint64) error {
	on := []byte{0}
	if enabled {
		on = []byte{1}
	}
	if err := w.put(schema.Auth, schema.AuthEnabledKeyName, on); err != nil {
		return err
	}
	return w.put(schema.Auth, schema.AuthRevisionKeyName, binary.BigEndian.AppendUint64(nil, revision))
}

// entry is one bucket entry.
type entry struct {
	b    backend.Bucket
	k, v []byte
}

// SetMeta records the meta and cluster buckets' values.
func (w *Writer) SetMeta(m Meta) error {
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	puts := []entry{
		{schema.Meta, schema.MetaConsistentIndexKeyName, u64(m.ConsistentIndex)},
		{schema.Meta, schema.MetaTermKeyName, u64(m.Term)},
	}
	if m.ConfState != nil {
		cs, err := json.Marshal(m.ConfState)
		if err != nil {
			return w.fail(err)
		}
		puts = append(puts, entry{schema.Meta, schema.MetaConfStateName, cs})
	}
	if m.CompactRev > 0 {
		rb := mvcc.RevToBytes(mvcc.Revision{Main: m.CompactRev}, mvcc.NewRevBytes())
		puts = append(puts, entry{schema.Meta, schema.ScheduledCompactKeyName, rb},
			entry{schema.Meta, schema.FinishedCompactKeyName, rb})
	}
	for _, v := range []struct {
		s string
		e entry
	}{{m.StorageVersion, entry{b: schema.Meta, k: schema.MetaStorageVersionName}},
		{m.ClusterVersion, entry{b: schema.Cluster, k: schema.ClusterClusterVersionKeyName}}} {
		if v.s == "" {
			continue
		}
		sv, err := semver.NewVersion(v.s)
		if err != nil {
			return w.fail(err)
		}
		v.e.v = []byte(sv.String())
		puts = append(puts, v.e)
	}
	for _, p := range puts {
		if err := w.put(p.b, p.k, p.v); err != nil {
			return err
		}
	}
	return nil
}

// Close commits what was written and syncs and closes the file; after an
// error it only closes it. It returns the first error of any call.
func (w *Writer) Close() error {
	if w.tx != nil {
		if w.err == nil {
			w.fail(w.tx.Commit())
		} else {
			w.tx.Rollback()
		}
		w.tx = nil
	}
	if w.err == nil {
		w.fail(w.db.Sync())
	}
	return errors.Join(w.err, w.db.Close())
}
