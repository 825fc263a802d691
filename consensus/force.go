package consensus

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// forceNewCluster turns a restarted member into the only member of its
// cluster, as etcd's --force-new-cluster: committed entries removing
// every other member are appended to its log,
// so Raft (and the state machine, through ApplyConfChange) applies them
// like any other membership change. The data and the cluster's identity
// stay. It runs after restore, before Raft starts.
func (n *Node[R]) forceNewCluster() error {
	hs, _, err := n.storage.InitialState()
	if err != nil {
		return err
	}
	// Unlike etcd, the log's tail after the commit index this member knows
	// of is kept and committed: the cluster may have committed (and
	// acknowledged) some of it without this member hearing so, and Raft
	// would commit it too if this member won an election.
	last, err := n.storage.LastIndex()
	if err != nil {
		return err
	}
	members := map[uint64]bool{} // id -> learner
	for _, id := range n.confState.GetVoters() {
		members[id] = false
	}
	for _, id := range n.confState.GetLearners() {
		members[id] = true
	}
	first, _ := n.storage.FirstIndex()
	if last >= first {
		ents, err := n.storage.Entries(first, last+1, 1<<62)
		if err != nil {
			return err
		}
		for _, e := range ents {
			for _, ch := range confChanges(e) {
				switch ch.GetType() {
				case raftpb.ConfChangeAddNode:
					members[ch.GetNodeId()] = false
				case raftpb.ConfChangeAddLearnerNode:
					if _, ok := members[ch.GetNodeId()]; !ok {
						members[ch.GetNodeId()] = true
					}
				case raftpb.ConfChangeRemoveNode:
					delete(members, ch.GetNodeId())
				}
			}
		}
	}
	if learner, ok := members[n.id]; !ok || learner {
		return errors.New("consensus: --force-new-cluster: this member is not a voting member of its cluster")
	}
	var others []uint64
	for id := range members {
		if id != n.id {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	ents := make([]*raftpb.Entry, 0, len(others))
	for i, id := range others {
		data, err := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)})
		if err != nil {
			return err
		}
		ents = append(ents, &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: proto.Uint64(hs.GetTerm()),
			Index: proto.Uint64(last + 1 + uint64(i)), Data: data})
	}
	newHS := proto.Clone(hs).(*raftpb.HardState)
	newHS.Commit = proto.Uint64(last + uint64(len(ents)))
	if err := n.wal.Save(newHS, ents); err != nil {
		return err
	}
	if err := n.wal.Sync(); err != nil {
		return err
	}
	if err := n.storage.Append(ents); err != nil {
		return err
	}
	if err := n.storage.SetHardState(newHS); err != nil {
		return err
	}
	n.lg.Warn("forcing a new one-member cluster: removing every other member",
		zap.Uint64("commit-index", hs.GetCommit()), zap.Uint64("last-index", last), zap.Int("removed", len(others)),
		zap.String("members", fmt.Sprint(others)))
	return nil
}

// confChanges returns the changes of a conf change entry (none for other
// entries or ones that do not decode).
func confChanges(e *raftpb.Entry) []*raftpb.ConfChangeSingle {
	switch e.GetType() {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if proto.Unmarshal(e.GetData(), &cc) != nil {
			return nil
		}
		return cc.AsV2().GetChanges()
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if proto.Unmarshal(e.GetData(), &cc) != nil {
			return nil
		}
		return cc.GetChanges()
	}
	return nil
}
