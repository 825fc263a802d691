package cluster

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// Storage auxiliary buckets of the member table (etcd's backend buckets
// "members" and "members_removed"), plus the membership changes the table
// refused, so a replay after a restart refuses them again.
const (
	MembersBucket = "members"
	RemovedBucket = "members_removed"
	RefusedBucket = "members_refused"
)

// AuxReader reads a storage auxiliary bucket (*storage.Store).
type AuxReader interface {
	ForEachAux(bucket string, fn func(key, value []byte) error) error
}

// AuxWriter writes a storage auxiliary bucket (*storage.WriteTxn).
type AuxWriter interface {
	PutAux(bucket string, key, value []byte)
	DeleteAux(bucket string, key []byte)
}

// ChangeType is the kind of a membership change.
type ChangeType int

// The membership changes, as etcd's ConfChange types (a promotion is an
// AddNode of a learner that etcd marks IsPromote).
const (
	AddMember ChangeType = iota
	AddLearner
	Promote
	Remove
	Update
)

// Change is one committed membership change, decoded from Raft.
type Change struct {
	Type     ChangeType
	ID       uint64
	Name     string
	PeerURLs []string
}

// Members is the replicated member table, as etcd's RaftCluster: the
// members, with the attributes each publishes through Raft once it runs
// (its name and client URLs, ClusterMemberAttrSet), and the IDs removed
// for good. Apply methods run in Raft log order in the apply loop; reads
// are safe concurrently.
//
// A table starts from seeds — the --initial-cluster of a new cluster, or
// the list a joining member got from its peers — that the log then
// confirms: the entries adding the seeded members are accepted as the
// members they already are.
type Members struct {
	mu          sync.RWMutex
	m           map[uint64]*pb.Member
	removed     map[uint64]bool
	seeded      map[uint64]bool
	refused     map[uint64]bool // raft indexes of refused changes
	maxLearners int
}

// NewMembers returns a table seeded with initial. maxLearners bounds the
// learners a MemberAdd may add (etcd's --max-learners).
func NewMembers(initial []*pb.Member, maxLearners int) *Members {
	t := &Members{m: map[uint64]*pb.Member{}, removed: map[uint64]bool{}, seeded: map[uint64]bool{},
		refused: map[uint64]bool{}, maxLearners: maxLearners}
	for _, m := range initial {
		t.m[m.ID] = proto.Clone(m).(*pb.Member)
		t.seeded[m.ID] = true
	}
	return t
}

func memberKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Recover loads what r holds: its members replace the seeds (seeds it
// does not know of stay, for data dirs written before membership changes
// were recorded), its removed IDs are gone for good.
func (t *Members) Recover(r AuxReader) error {
	stored := map[uint64]*pb.Member{}
	removed := map[uint64]bool{}
	refused := map[uint64]bool{}
	err := r.ForEachAux(MembersBucket, func(k, v []byte) error {
		m := &pb.Member{}
		if len(k) != 8 || proto.Unmarshal(v, m) != nil {
			return fmt.Errorf("cluster: corrupt member record %x", k)
		}
		stored[m.ID] = m
		return nil
	})
	for _, b := range []struct {
		name string
		set  map[uint64]bool
	}{{RemovedBucket, removed}, {RefusedBucket, refused}} {
		if err != nil {
			break
		}
		err = r.ForEachAux(b.name, func(k, _ []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("cluster: corrupt %s record %x", b.name, k)
			}
			b.set[binary.BigEndian.Uint64(k)] = true
			return nil
		})
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, m := range stored {
		t.m[id] = m
		delete(t.seeded, id)
	}
	for id := range removed {
		delete(t.m, id)
		delete(t.seeded, id)
	}
	t.removed, t.refused = removed, refused
	return nil
}

// Validate decides whether a committed change takes effect, with etcd's
// errors (ValidateConfigurationChange): an ID removed before, a member
// added twice, a peer URL another member has, too many learners, a
// promotion of a voter, a change of an unknown member. Only members the
// log (or the store) confirmed count: seeds are not known to the history
// a joining member replays, which must be judged as it was.
func (t *Members) Validate(c Change) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.removed[c.ID] {
		return rpctypes.ErrGRPCMemberNotFound // etcd's ErrIDRemoved
	}
	m, exists := t.m[c.ID]
	exists = exists && !t.seeded[c.ID]
	switch c.Type {
	case Promote:
		if !exists {
			return rpctypes.ErrGRPCMemberNotFound
		}
		if !m.IsLearner {
			return rpctypes.ErrGRPCMemberNotLearner
		}
	case AddMember, AddLearner:
		if exists {
			return rpctypes.ErrGRPCMemberExist
		}
		if t.urlTaken(c.PeerURLs, 0) {
			return rpctypes.ErrGRPCPeerURLExist
		}
		if c.Type == AddLearner && t.learners() >= t.maxLearners {
			return rpctypes.ErrGRPCTooManyLearners
		}
	case Remove:
		if !exists {
			return rpctypes.ErrGRPCMemberNotFound
		}
	case Update:
		if !exists {
			return rpctypes.ErrGRPCMemberNotFound
		}
		if t.urlTaken(c.PeerURLs, c.ID) {
			return rpctypes.ErrGRPCPeerURLExist
		}
	}
	return nil
}

// urlTaken reports whether a confirmed member other than except has one
// of urls.
func (t *Members) urlTaken(urls []string, except uint64) bool {
	for id, m := range t.m {
		if id == except || t.seeded[id] {
			continue
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(urls, u) {
				return true
			}
		}
	}
	return false
}

func (t *Members) learners() int {
	n := 0
	for id, m := range t.m {
		if m.IsLearner && !t.seeded[id] {
			n++
		}
	}
	return n
}

// ConfirmSeeds makes the seeds members the log confirmed: for a data dir
// written before membership changes were recorded, whose bootstrap
// entries were applied then.
func (t *Members) ConfirmSeeds() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seeded = map[uint64]bool{}
}

// Apply records a change Validate accepted, in tw.
func (t *Members) Apply(tw AuxWriter, c Change) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seeded, c.ID)
	m := t.m[c.ID]
	switch c.Type {
	case AddMember, AddLearner:
		if m == nil {
			m = &pb.Member{ID: c.ID, Name: c.Name}
			t.m[c.ID] = m
		}
		m.PeerURLs = slices.Clone(c.PeerURLs)
		m.IsLearner = c.Type == AddLearner
	case Promote:
		m.IsLearner = false
	case Update:
		m.PeerURLs = slices.Clone(c.PeerURLs)
	case Remove:
		delete(t.m, c.ID)
		t.removed[c.ID] = true
		tw.DeleteAux(MembersBucket, memberKey(c.ID))
		tw.PutAux(RemovedBucket, memberKey(c.ID), []byte{1})
		return nil
	}
	return t.put(tw, m)
}

func (t *Members) put(tw AuxWriter, m *pb.Member) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	tw.PutAux(MembersBucket, memberKey(m.ID), b)
	return nil
}

// RecordRefused records that the change at index was refused.
func (t *Members) RecordRefused(tw AuxWriter, index uint64) {
	t.mu.Lock()
	t.refused[index] = true
	t.mu.Unlock()
	tw.PutAux(RefusedBucket, memberKey(index), []byte{1})
}

// Refused reports whether the change at index was refused.
func (t *Members) Refused(index uint64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.refused[index]
}

// ApplyAttrSet applies a member's published attributes. Unknown members
// are ignored, as etcd does for removed ones.
func (t *Members) ApplyAttrSet(tw AuxWriter, r *membershippb.ClusterMemberAttrSetRequest) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.m[r.Member_ID]
	if !ok || r.MemberAttributes == nil {
		return nil
	}
	m.Name = r.MemberAttributes.Name
	m.ClientURLs = slices.Clone(r.MemberAttributes.ClientUrls)
	return t.put(tw, m)
}

// Published reports whether member id's client URLs are in the table.
func (t *Members) Published(id uint64, clientURLs []string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.m[id]
	return ok && slices.Equal(m.ClientURLs, clientURLs)
}

// Member returns a copy of member id, or nil.
func (t *Members) Member(id uint64) *pb.Member {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if m, ok := t.m[id]; ok {
		return proto.Clone(m).(*pb.Member)
	}
	return nil
}

// IsLearner reports whether member id is a learner.
func (t *Members) IsLearner(id uint64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.m[id]
	return ok && m.IsLearner
}

// IsRemoved reports whether id was removed from the cluster.
func (t *Members) IsRemoved(id uint64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.removed[id]
}

// Removed returns the removed IDs.
func (t *Members) Removed() []uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]uint64, 0, len(t.removed))
	for id := range t.removed {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// List returns the members by ID, as etcd lists them.
func (t *Members) List() []*pb.Member {
	t.mu.RLock()
	out := make([]*pb.Member, 0, len(t.m))
	for _, m := range t.m {
		out = append(out, proto.Clone(m).(*pb.Member))
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Started reports whether a member has published itself (etcd's
// IsStarted: it has a name).
func Started(m *pb.Member) bool { return m.Name != "" }
