package consensustest

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// KV is a tiny state machine for tests: payloads are "key=value"; Apply
// stores them and returns the entry's index. It records every applied
// payload in order, so tests can compare logs across members. It is safe
// for concurrent use.
type KV struct {
	mu       sync.Mutex
	data     map[string]string
	applied  uint64
	log      []string      // payloads applied, in order, since the last restore
	restores int           // how many snapshots were restored
	members  []uint64      // voters after the last conf change
	gate     chan struct{} // when set, Apply waits for it to close
	failAt   uint64        // Apply of this index fails with failErr, once
	failErr  error
	refuse   map[uint64]bool // node IDs whose changes ValidateConfChange refuses
	refused  map[uint64]bool // indexes of refused changes
}

// ErrRefused is what ValidateConfChange answers for a refused node.
var ErrRefused = errors.New("consensustest: membership change refused")

// Refuse makes ValidateConfChange refuse every later change of node id.
func (k *KV) Refuse(id uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.refuse == nil {
		k.refuse = map[uint64]bool{}
	}
	k.refuse[id] = true
}

// ValidateConfChange implements consensus.ConfChangeValidator: changes of
// refused nodes are refused, and a replay answers as the first time.
func (k *KV) ValidateConfChange(index uint64, cc *raftpb.ConfChangeV2) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if index <= k.applied {
		if k.refused[index] {
			return ErrRefused
		}
		return nil
	}
	for _, ch := range cc.GetChanges() {
		if k.refuse[ch.GetNodeId()] {
			if k.refused == nil {
				k.refused = map[uint64]bool{}
			}
			k.refused[index] = true
			return ErrRefused
		}
	}
	return nil
}

// FailAt makes the Apply of entry index fail with err once, like a disk
// error in the middle of applying: the entry is not applied.
func (k *KV) FailAt(index uint64, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failAt, k.failErr = index, err
}

// Hold makes Apply wait until the returned release is called, like a
// slow state machine.
func (k *KV) Hold() (release func()) {
	gate := make(chan struct{})
	k.mu.Lock()
	k.gate = gate
	k.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			k.gate = nil
			k.mu.Unlock()
			close(gate)
		})
	}
}

// NewKV returns an empty KV.
func NewKV() *KV { return &KV{data: map[string]string{}} }

// AppliedIndex implements consensus.StateMachine.
func (k *KV) AppliedIndex() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.applied
}

// Apply implements consensus.StateMachine: it answers the entry's index.
func (k *KV) Apply(index, term uint64, data []byte) (uint64, error) {
	k.mu.Lock()
	if gate := k.gate; gate != nil {
		k.mu.Unlock()
		<-gate
		k.mu.Lock()
	}
	defer k.mu.Unlock()
	if k.failAt != 0 && index == k.failAt {
		k.failAt = 0
		return 0, k.failErr
	}
	if key, val, ok := strings.Cut(string(data), "="); ok {
		k.data[key] = val
	}
	k.log = append(k.log, string(data))
	k.applied = index
	return index, nil
}

// ApplyConfChange implements consensus.StateMachine.
func (k *KV) ApplyConfChange(index, term uint64, cc *raftpb.ConfChangeV2, state *raftpb.ConfState) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.members = append([]uint64(nil), state.GetVoters()...)
	k.applied = index
	return nil
}

type kvSnapshot struct {
	Data    map[string]string
	Applied uint64
}

// SnapshotTo implements consensus.StateMachine.
func (k *KV) SnapshotTo(w io.Writer) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return json.NewEncoder(w).Encode(kvSnapshot{Data: k.data, Applied: k.applied})
}

// Restore implements consensus.StateMachine.
func (k *KV) Restore(index, term uint64, r io.Reader) error {
	var s kvSnapshot
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return err
	}
	// Read to EOF so the stream's checksum is verified.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.data, k.applied, k.log = s.Data, index, nil
	if k.data == nil {
		k.data = map[string]string{}
	}
	k.restores++
	return nil
}

// Log returns the payloads applied since the last restore, in order.
func (k *KV) Log() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.log...)
}

// Members returns the voters after the last applied conf change.
func (k *KV) Members() []uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]uint64(nil), k.members...)
}

// Restores returns how many snapshots were restored since creation.
func (k *KV) Restores() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.restores
}

// Get returns the value of key.
func (k *KV) Get(key string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.data[key]
	return v, ok
}

// Len returns the number of keys.
func (k *KV) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.data)
}

// Copy returns a copy of the data.
func (k *KV) Copy() map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]string, len(k.data))
	for key, v := range k.data {
		out[key] = v
	}
	return out
}
