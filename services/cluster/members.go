package cluster

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"google.golang.org/protobuf/proto"
)

// MembersBucket is the storage auxiliary bucket holding the member table.
const MembersBucket = "members"

// AuxReader reads a storage auxiliary bucket (*storage.Store).
type AuxReader interface {
	ForEachAux(bucket string, fn func(key, value []byte) error) error
}

// AuxWriter writes a storage auxiliary bucket (*storage.WriteTxn).
type AuxWriter interface {
	PutAux(bucket string, key, value []byte)
}

// Members is the replicated member table: the bootstrap members (from
// --initial-cluster, the same on every member), with the attributes each
// member publishes through Raft once it runs (its name and client URLs),
// as etcd's ClusterMemberAttrSet. Apply methods run in Raft log order in
// the apply loop; reads are safe concurrently.
type Members struct {
	mu sync.RWMutex
	m  map[uint64]*pb.Member
}

// NewMembers returns the table of a bootstrapping cluster.
func NewMembers(initial []*pb.Member) *Members {
	t := &Members{m: map[uint64]*pb.Member{}}
	for _, m := range initial {
		t.m[m.ID] = proto.Clone(m).(*pb.Member)
	}
	return t
}

func memberKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Recover overlays what r holds on the bootstrap table.
func (t *Members) Recover(r AuxReader) error {
	stored := map[uint64]*pb.Member{}
	err := r.ForEachAux(MembersBucket, func(k, v []byte) error {
		m := &pb.Member{}
		if len(k) != 8 || proto.Unmarshal(v, m) != nil {
			return fmt.Errorf("cluster: corrupt member record %x", k)
		}
		stored[m.ID] = m
		return nil
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, m := range stored {
		t.m[id] = m
	}
	return nil
}

// ApplyAttrSet applies a member's published attributes. Unknown members
// are ignored, as etcd does for removed ones.
func (t *Members) ApplyAttrSet(tw AuxWriter, r *membershippb.ClusterMemberAttrSetRequest) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.m[r.Member_ID]
	if !ok || r.MemberAttributes == nil {
		return
	}
	m.Name = r.MemberAttributes.Name
	m.ClientURLs = slices.Clone(r.MemberAttributes.ClientUrls)
	b, err := proto.Marshal(m)
	if err != nil {
		return
	}
	tw.PutAux(MembersBucket, memberKey(m.ID), b)
}

// Published reports whether member id's client URLs are in the table.
func (t *Members) Published(id uint64, clientURLs []string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.m[id]
	return ok && slices.Equal(m.ClientURLs, clientURLs)
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
