package maintenance

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// AlarmBucket is the storage auxiliary bucket holding the alarm table.
const AlarmBucket = "alarm"

// AuxReader reads a storage auxiliary bucket (*storage.Store).
type AuxReader interface {
	ForEachAux(bucket string, fn func(key, value []byte) error) error
}

// AuxWriter writes a storage auxiliary bucket (*storage.WriteTxn).
type AuxWriter interface {
	PutAux(bucket string, key, value []byte)
	DeleteAux(bucket string, key []byte)
}

type alarmKey struct {
	member uint64
	alarm  pb.AlarmType
}

func (k alarmKey) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, k.member)
	return binary.BigEndian.AppendUint32(b, uint32(k.alarm))
}

// Alarms is the replicated alarm table (NOSPACE, CORRUPT per member).
// Apply runs in Raft log order in the apply loop; reads are safe
// concurrently.
type Alarms struct {
	mu  sync.RWMutex
	set map[alarmKey]struct{}
}

// NewAlarms returns an empty table; Recover loads a store's.
func NewAlarms() *Alarms { return &Alarms{set: map[alarmKey]struct{}{}} }

// Recover replaces the table with the one in r.
func (a *Alarms) Recover(r AuxReader) error {
	set := map[alarmKey]struct{}{}
	err := r.ForEachAux(AlarmBucket, func(k, _ []byte) error {
		if len(k) != 12 {
			return fmt.Errorf("maintenance: corrupt alarm record %x", k)
		}
		set[alarmKey{binary.BigEndian.Uint64(k), pb.AlarmType(binary.BigEndian.Uint32(k[8:]))}] = struct{}{}
		return nil
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.set = set
	a.mu.Unlock()
	return nil
}

// Apply applies an AlarmRequest as etcd does: GET lists the alarms of a
// type (NONE: all), ACTIVATE and DEACTIVATE return the alarm they changed
// (none when nothing changed). Unknown actions get a nil response.
func (a *Alarms) Apply(tw AuxWriter, r *pb.AlarmRequest) *pb.AlarmResponse {
	resp := &pb.AlarmResponse{Header: &pb.ResponseHeader{}}
	k := alarmKey{r.MemberID, r.Alarm}
	switch r.Action {
	case pb.AlarmRequest_GET:
		resp.Alarms = a.Get(r.Alarm)
	case pb.AlarmRequest_ACTIVATE:
		if r.Alarm == pb.AlarmType_NONE {
			break
		}
		a.mu.Lock()
		a.set[k] = struct{}{}
		a.mu.Unlock()
		tw.PutAux(AlarmBucket, k.encode(), nil)
		resp.Alarms = []*pb.AlarmMember{{MemberID: k.member, Alarm: k.alarm}}
	case pb.AlarmRequest_DEACTIVATE:
		a.mu.Lock()
		_, ok := a.set[k]
		delete(a.set, k)
		a.mu.Unlock()
		if !ok {
			break
		}
		tw.DeleteAux(AlarmBucket, k.encode())
		resp.Alarms = []*pb.AlarmMember{{MemberID: k.member, Alarm: k.alarm}}
	default:
		return nil
	}
	return resp
}

// Get returns the alarms of type t (NONE: every alarm), by member.
func (a *Alarms) Get(t pb.AlarmType) []*pb.AlarmMember {
	a.mu.RLock()
	var out []*pb.AlarmMember
	for k := range a.set {
		if t == pb.AlarmType_NONE || k.alarm == t {
			out = append(out, &pb.AlarmMember{MemberID: k.member, Alarm: k.alarm})
		}
	}
	a.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].MemberID != out[j].MemberID {
			return out[i].MemberID < out[j].MemberID
		}
		return out[i].Alarm < out[j].Alarm
	})
	return out
}

// Active reports whether any member raised an alarm of type t.
func (a *Alarms) Active(t pb.AlarmType) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for k := range a.set {
		if k.alarm == t {
			return true
		}
	}
	return false
}

// ImportAlarm writes an active alarm as the table persists it, for a store
// being filled from another one's data (an etcd snapshot).
func ImportAlarm(tw AuxWriter, a *pb.AlarmMember) {
	tw.PutAux(AlarmBucket, alarmKey{a.MemberID, a.Alarm}.encode(), nil)
}
