package transport

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodeBatch feeds arbitrary bytes to the decoder of a peer's
// message batch (what arrives on a peer stream after its frame byte): it
// returns messages or an error, never panics, and what it returns encodes
// back to a batch that decodes to the same messages.
func FuzzDecodeBatch(f *testing.F) {
	for _, msgs := range [][]*raftpb.Message{
		nil,
		{{Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: proto.Uint64(2), From: proto.Uint64(1), Term: proto.Uint64(3)}},
		{
			{Type: raftpb.MessageType_MsgApp.Enum(), To: proto.Uint64(2), From: proto.Uint64(1), Term: proto.Uint64(3), Index: proto.Uint64(7),
				Entries: []*raftpb.Entry{{Term: proto.Uint64(3), Index: proto.Uint64(8), Data: []byte("put")}}},
			{Type: raftpb.MessageType_MsgProp.Enum(), Entries: []*raftpb.Entry{{Data: []byte("x")}}},
		},
	} {
		b, err := encodeBatch(msgs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[1:])
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := decodeBatch(b)
		if err != nil {
			return
		}
		again, err := encodeBatch(msgs)
		if err != nil {
			t.Fatalf("decoded messages do not encode: %v", err)
		}
		back, err := decodeBatch(again[1:])
		if err != nil {
			t.Fatalf("a re-encoded batch does not decode: %v", err)
		}
		if len(back) != len(msgs) {
			t.Fatalf("%d messages came back as %d", len(msgs), len(back))
		}
		for i := range msgs {
			if !proto.Equal(msgs[i], back[i]) {
				t.Fatalf("message %d changed: %v -> %v", i, msgs[i], back[i])
			}
		}
	})
}

// FuzzAccept feeds arbitrary bytes to the check of a peer's hello frame:
// only a frame of this cluster, for this member, from a member not
// removed is accepted, and it names its sender.
func FuzzAccept(f *testing.F) {
	const cluster, self = 0xc1, 0x2
	f.Add(hello(cluster, 1, self))
	f.Add(hello(cluster, 3, self))
	f.Add(hello(cluster+1, 1, self))
	f.Add(hello(cluster, 1, self+1))
	f.Add([]byte{frameHello})
	tr := New(Config{ClusterID: cluster, ID: self})
	defer tr.Close()
	tr.AddRemoved(3)
	f.Fuzz(func(t *testing.T, frame []byte) {
		from, err := tr.accept(frame)
		if err != nil {
			return
		}
		if want := hello(cluster, from, self); string(frame) != string(want) || from == 3 {
			t.Fatalf("accepted %x from %x", frame, from)
		}
	})
}
