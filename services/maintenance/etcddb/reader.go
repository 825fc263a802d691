package etcddb

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Reader reads an etcd backend file. It opens the file read-only: the
// file is never changed.
type Reader struct {
	db *bolt.DB
}

// Open opens the etcd backend file at path read-only.
func Open(path string) (*Reader, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("etcddb: %s is in use (is etcd running on it?)", path)
	} else if err != nil {
		return nil, fmt.Errorf("etcddb: %s: %w", path, err)
	}
	r := &Reader{db: db}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(schema.Key.Name()) == nil || tx.Bucket(schema.Meta.Name()) == nil {
			return errors.New("not an etcd v3 backend (no key or meta bucket)")
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("etcddb: %s: %w", path, err)
	}
	return r, nil
}

// Close closes the file.
func (r *Reader) Close() error { return r.db.Close() }

// forEach calls fn for every entry of bucket b (none if it is missing).
func (r *Reader) forEach(b backend.Bucket, fn func(k, v []byte) error) error {
	return r.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(b.Name())
		if bk == nil {
			return nil
		}
		return bk.ForEach(fn)
	})
}

// ForEachKV calls fn with every pair of the key bucket, in revision order,
// until fn returns an error. fn must not keep k or v after it returns.
func (r *Reader) ForEachKV(fn func(k, v []byte) error) error {
	return r.forEach(schema.Key, fn)
}

// Meta reads the meta and cluster buckets. CompactRev is the scheduled
// compaction revision (etcd finishes an unfinished one when it opens the
// file; everything below it is to be dropped), -1 if none.
func (r *Reader) Meta() (Meta, error) {
	m := Meta{CompactRev: -1}
	var err error
	get := func(b backend.Bucket, k []byte) []byte {
		var out []byte
		if err == nil {
			err = r.db.View(func(tx *bolt.Tx) error {
				if bk := tx.Bucket(b.Name()); bk != nil {
					out = append(out, bk.Get(k)...)
				}
				return nil
			})
		}
		return out
	}
	u64 := func(v []byte, what string) uint64 {
		if len(v) == 0 || err != nil {
			return 0
		}
		if len(v) != 8 {
			err = fmt.Errorf("etcddb: %s of %d bytes", what, len(v))
			return 0
		}
		return binary.BigEndian.Uint64(v)
	}
	m.ConsistentIndex = u64(get(schema.Meta, schema.MetaConsistentIndexKeyName), "consistent index")
	m.Term = u64(get(schema.Meta, schema.MetaTermKeyName), "term")
	if v := get(schema.Meta, schema.ScheduledCompactKeyName); len(v) > 0 && err == nil {
		rev, perr := bytesToRev(v)
		m.CompactRev, err = rev.Main, perr
	}
	if v := get(schema.Meta, schema.MetaConfStateName); len(v) > 0 && err == nil {
		m.ConfState = &raftpb.ConfState{}
		err = json.Unmarshal(v, m.ConfState)
	}
	m.StorageVersion = string(get(schema.Meta, schema.MetaStorageVersionName))
	m.ClusterVersion = string(get(schema.Cluster, schema.ClusterClusterVersionKeyName))
	if err != nil {
		return Meta{}, fmt.Errorf("etcddb: meta: %w", err)
	}
	return m, nil
}

func bytesToRev(b []byte) (mvcc.Revision, error) {
	if len(b) < 17 || b[8] != '_' {
		return mvcc.Revision{}, fmt.Errorf("bad revision %x", b)
	}
	return mvcc.BytesToRev(b[:17]), nil
}

// Leases returns every lease the file holds.
func (r *Reader) Leases() ([]*leasepb.Lease, error) {
	var out []*leasepb.Lease
	err := r.forEach(schema.Lease, func(k, v []byte) error {
		l := &leasepb.Lease{}
		if err := proto.Unmarshal(v, l); err != nil {
			return fmt.Errorf("etcddb: lease %x: %w", k, err)
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// Auth returns the users, roles, whether auth is enabled and the auth
// revision.
func (r *Reader) Auth() (users []*authpb.User, roles []*authpb.Role, enabled bool, revision uint64, err error) {
	err = r.forEach(schema.AuthUsers, func(k, v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil {
			return fmt.Errorf("etcddb: user %q: %w", k, err)
		}
		users = append(users, u)
		return nil
	})
	if err == nil {
		err = r.forEach(schema.AuthRoles, func(k, v []byte) error {
			ro := &authpb.Role{}
			if err := proto.Unmarshal(v, ro); err != nil {
				return fmt.Errorf("etcddb: role %q: %w", k, err)
			}
			roles = append(roles, ro)
			return nil
		})
	}
	if err == nil {
		err = r.forEach(schema.Auth, func(k, v []byte) error {
			switch string(k) {
			case string(schema.AuthEnabledKeyName):
				enabled = len(v) == 1 && v[0] == 1
			case string(schema.AuthRevisionKeyName):
				if len(v) != 8 {
					return fmt.Errorf("etcddb: auth revision of %d bytes", len(v))
				}
				revision = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	}
	return users, roles, enabled, revision, err
}

// Alarms returns the active alarms.
func (r *Reader) Alarms() ([]*pb.AlarmMember, error) {
	var out []*pb.AlarmMember
	err := r.forEach(schema.Alarm, func(k, _ []byte) error {
		a := &pb.AlarmMember{}
		if err := proto.Unmarshal(k, a); err != nil {
			return fmt.Errorf("etcddb: alarm %x: %w", k, err)
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// Members returns the members and the removed member IDs.
func (r *Reader) Members() (members []*pb.Member, removed []uint64, err error) {
	err = r.forEach(schema.Members, func(k, v []byte) error {
		m := &membership.Member{}
		if err := json.Unmarshal(v, m); err != nil {
			return fmt.Errorf("etcddb: member %s: %w", k, err)
		}
		members = append(members, &pb.Member{ID: uint64(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
		return nil
	})
	if err == nil {
		err = r.forEach(schema.MembersRemoved, func(k, _ []byte) error {
			id, err := strconv.ParseUint(string(k), 16, 64)
			if err != nil {
				return fmt.Errorf("etcddb: removed member %q: %w", k, err)
			}
			removed = append(removed, id)
			return nil
		})
	}
	return members, removed, err
}
