package consensustest

import (
	"encoding/json"
	"strings"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// KV is a tiny state machine for tests: payloads are "key=value"; Apply
// stores them and returns the entry's index. It records every applied
// payload in order, so tests can compare logs across members.
type KV struct {
	mu       sync.Mutex
	Data     map[string]string
	Applied  uint64
	Log      []string // payloads applied, in order, since the last restore
	Restores int      // how many snapshots were restored
	Members  []uint64 // voters after the last conf change
}

// NewKV returns an empty KV.
func NewKV() *KV { return &KV{Data: map[string]string{}} }

// AppliedIndex implements consensus.StateMachine.
func (k *KV) AppliedIndex() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.Applied
}

// Apply implements consensus.StateMachine.
func (k *KV) Apply(index, term uint64, data []byte) any {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, val, ok := strings.Cut(string(data), "="); ok {
		k.Data[key] = val
	}
	k.Log = append(k.Log, string(data))
	k.Applied = index
	return index
}

// ApplyConfChange implements consensus.StateMachine.
func (k *KV) ApplyConfChange(index, term uint64, cc *raftpb.ConfChangeV2, state *raftpb.ConfState) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Members = append([]uint64(nil), state.GetVoters()...)
	k.Applied = index
}

type kvSnapshot struct {
	Data    map[string]string
	Applied uint64
}

// Snapshot implements consensus.StateMachine.
func (k *KV) Snapshot() ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return json.Marshal(kvSnapshot{Data: k.Data, Applied: k.Applied})
}

// Restore implements consensus.StateMachine.
func (k *KV) Restore(index, term uint64, data []byte) error {
	var s kvSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Data, k.Applied, k.Log = s.Data, index, nil
	if k.Data == nil {
		k.Data = map[string]string{}
	}
	k.Restores++
	return nil
}

// Get returns the value of key.
func (k *KV) Get(key string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.Data[key]
	return v, ok
}

// Len returns the number of keys.
func (k *KV) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.Data)
}

// Copy returns a copy of the data.
func (k *KV) Copy() map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]string, len(k.Data))
	for key, v := range k.Data {
		out[key] = v
	}
	return out
}
