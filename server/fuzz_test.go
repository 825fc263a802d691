package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	v3electionpb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	lpb "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	etcderrors "go.etcd.io/etcd/server/v3/etcdserver/errors"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/server/internal/testcluster"
	"github.com/metastore/metastore/services/auth"
)

// rpc is one method of the served gRPC API, by its full name.
type rpc struct {
	name string
	desc *grpc.StreamDesc // nil for a unary method
	// blocks is set for the methods that may wait for another client
	// (Lock, Campaign) or stream until cancelled (Watch, Observe…): their
	// deadline is short and reaching it is not a hang.
	blocks bool
}

// servedRPCs lists every method of the eight etcd services, in a fixed
// order (a fuzz input names its method by index).
func servedRPCs() []rpc {
	var rpcs []rpc
	for _, sd := range []*grpc.ServiceDesc{
		&pb.KV_ServiceDesc, &pb.Watch_ServiceDesc, &pb.Lease_ServiceDesc, &pb.Cluster_ServiceDesc,
		&pb.Maintenance_ServiceDesc, &pb.Auth_ServiceDesc, &lpb.Lock_ServiceDesc, &v3electionpb.Election_ServiceDesc,
	} {
		for _, m := range sd.Methods {
			name := "/" + sd.ServiceName + "/" + m.MethodName
			rpcs = append(rpcs, rpc{name: name, blocks: m.MethodName == "Lock" || m.MethodName == "Campaign"})
		}
		for i := range sd.Streams {
			s := &sd.Streams[i]
			rpcs = append(rpcs, rpc{name: "/" + sd.ServiceName + "/" + s.StreamName, desc: s, blocks: true})
		}
	}
	return rpcs
}

// rawCodec sends and receives messages as the bytes they are, so that a
// fuzz input reaches the server's own decoding unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// splitMessages cuts a stream's input into messages: each starts with a
// length byte (the last one takes what is left), at most four.
func splitMessages(data []byte) [][]byte {
	var msgs [][]byte
	for len(data) > 0 && len(msgs) < 4 {
		n := int(data[0])
		data = data[1:]
		if n > len(data) || len(msgs) == 3 {
			n = len(data)
		}
		msgs = append(msgs, data[:n])
		data = data[n:]
	}
	return msgs
}

// FuzzRPCs sends arbitrary bytes as the request (or, for streams, up to
// four requests) of any method of the served API to one running member,
// through gRPC as a client would. Every request must be answered — a
// response or an error, never a panic (the member runs in the test's
// process) — unary methods that do not wait for other clients must not
// hang, every error carries etcd's code (Internal only for bytes gRPC
// cannot decode, Unknown only where etcd's lock and election services
// use it), and the member must still serve a read afterwards.
//
// Three requests are not sent, because they would stop the fuzzing rather
// than test anything: AuthEnable (its request is empty; once enabled,
// every later request is refused), MemberRemove of the member itself and
// MemberAdd of a voting member (no quorum until it starts).
// Alarms a request raised are disarmed after it.
func FuzzRPCs(f *testing.F) {
	rpcs := servedRPCs()
	index := map[string]byte{}
	for i, r := range rpcs {
		index[r.name] = byte(i)
		f.Add(byte(i), []byte{})
	}
	seed := func(method string, msgs ...proto.Message) {
		i, ok := index[method]
		if !ok {
			f.Fatalf("no method %s", method)
		}
		var data []byte
		for _, m := range msgs {
			b, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			if rpcs[i].desc != nil { // a stream: length-prefixed messages
				if len(b) > 255 {
					f.Fatalf("seed message of %s too long", method)
				}
				data = append(data, byte(len(b)))
			}
			data = append(data, b...)
		}
		f.Add(i, data)
	}
	seed("/etcdserverpb.KV/Range", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 1, Revision: 2, SortTarget: pb.RangeRequest_MOD})
	seed("/etcdserverpb.KV/Put", &pb.PutRequest{Key: []byte("a"), Value: []byte("1"), PrevKv: true})
	seed("/etcdserverpb.KV/Txn", &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_MOD, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_ModRevision{ModRevision: 9}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Value: []byte("2")}}}},
	})
	seed("/etcdserverpb.KV/Compact", &pb.CompactionRequest{Revision: 2, Physical: true})
	seed("/etcdserverpb.KV/RangeStream", &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	seed("/etcdserverpb.Watch/Watch",
		&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
			Key: []byte("a"), RangeEnd: []byte("b"), StartRevision: 1, ProgressNotify: true, PrevKv: true, Fragment: true,
			Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}, WatchId: 7}}},
		&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}},
		&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}})
	seed("/etcdserverpb.Lease/LeaseGrant", &pb.LeaseGrantRequest{TTL: 5, ID: 7})
	seed("/etcdserverpb.Lease/LeaseRevoke", &pb.LeaseRevokeRequest{ID: 7})
	seed("/etcdserverpb.Lease/LeaseTimeToLive", &pb.LeaseTimeToLiveRequest{ID: 7, Keys: true})
	seed("/etcdserverpb.Lease/LeaseKeepAlive", &pb.LeaseKeepAliveRequest{ID: 7}, &pb.LeaseKeepAliveRequest{ID: 8})
	seed("/etcdserverpb.Cluster/MemberAdd", &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:1"}, IsLearner: true})
	seed("/etcdserverpb.Cluster/MemberList", &pb.MemberListRequest{Linearizable: true})
	seed("/etcdserverpb.Cluster/MemberPromote", &pb.MemberPromoteRequest{ID: 7})
	seed("/etcdserverpb.Cluster/MemberUpdate", &pb.MemberUpdateRequest{ID: 7, PeerURLs: []string{"http://[::1"}})
	seed("/etcdserverpb.Maintenance/Alarm", &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, Alarm: pb.AlarmType_NOSPACE, MemberID: 7})
	seed("/etcdserverpb.Maintenance/HashKV", &pb.HashKVRequest{Revision: 1})
	seed("/etcdserverpb.Maintenance/MoveLeader", &pb.MoveLeaderRequest{TargetID: 7})
	seed("/etcdserverpb.Maintenance/Downgrade", &pb.DowngradeRequest{Action: pb.DowngradeRequest_VALIDATE, Version: "3.6"})
	seed("/etcdserverpb.Auth/UserAdd", &pb.AuthUserAddRequest{Name: "u", Password: "p", Options: &authpb.UserAddOptions{NoPassword: false}})
	seed("/etcdserverpb.Auth/UserGrantRole", &pb.AuthUserGrantRoleRequest{User: "u", Role: "r"})
	seed("/etcdserverpb.Auth/RoleAdd", &pb.AuthRoleAddRequest{Name: "r"})
	seed("/etcdserverpb.Auth/RoleGrantPermission", &pb.AuthRoleGrantPermissionRequest{Name: "r",
		Perm: &authpb.Permission{PermType: authpb.READWRITE, Key: []byte("a"), RangeEnd: []byte{0}}})
	seed("/etcdserverpb.Auth/RoleRevokePermission", &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("a"), RangeEnd: []byte{0}})
	seed("/etcdserverpb.Auth/Authenticate", &pb.AuthenticateRequest{Name: "u", Password: "p"})
	seed("/etcdserverpb.Auth/UserChangePassword", &pb.AuthUserChangePasswordRequest{Name: "u", Password: "q"})
	seed("/v3lockpb.Lock/Lock", &lpb.LockRequest{Name: []byte("l"), Lease: 7})
	seed("/v3lockpb.Lock/Unlock", &lpb.UnlockRequest{Key: []byte("l/7")})
	seed("/v3electionpb.Election/Campaign", &v3electionpb.CampaignRequest{Name: []byte("e"), Lease: 7, Value: []byte("v")})
	seed("/v3electionpb.Election/Proclaim", &v3electionpb.ProclaimRequest{
		Leader: &v3electionpb.LeaderKey{Name: []byte("e"), Key: []byte("e/7"), Rev: 2, Lease: 7}, Value: []byte("w")})
	seed("/v3electionpb.Election/Observe", &v3electionpb.LeaderRequest{Name: []byte("e")})

	// The member logs errors to stderr: the test's log cannot be written
	// from inside the fuzz function.
	ms := testcluster.Configs(f, 1)
	lc := zap.NewDevelopmentConfig()
	lc.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	lg, err := lc.Build()
	if err != nil {
		f.Fatal(err)
	}
	ms[0].Logger = lg
	ms.Start()
	self := ms[0].Srv.ID()
	conn, err := grpc.NewClient(strings.TrimPrefix(ms[0].Cfg.AdvertiseClientURLs, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = conn.Close() })

	f.Fuzz(func(t *testing.T, method byte, data []byte) {
		r := rpcs[int(method)%len(rpcs)]
		switch r.name {
		case "/etcdserverpb.Auth/AuthEnable":
			return
		case "/etcdserverpb.Cluster/MemberRemove":
			req := &pb.MemberRemoveRequest{}
			if proto.Unmarshal(data, req) == nil && req.ID == self {
				return
			}
		case "/etcdserverpb.Cluster/MemberAdd":
			// A voting member added to one member leaves no quorum until
			// it starts (etcd allows it too, to restore a cluster).
			req := &pb.MemberAddRequest{}
			if proto.Unmarshal(data, req) == nil && !req.IsLearner {
				return
			}
		}
		timeout := 10 * time.Second
		if r.blocks {
			timeout = 100 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		err := call(ctx, conn, r, data)
		st := status.Convert(err)
		switch {
		case strings.Contains(strings.ToLower(st.Message()), "panic"):
			t.Fatalf("%s: %v", r.name, err)
		case st.Code() == codes.Internal && !strings.HasPrefix(st.Message(), "grpc: "):
			// Internal is gRPC's own answer to bytes that do not decode.
			t.Fatalf("%s: an internal error reached the client: %v", r.name, err)
		case st.Code() == codes.Unknown && !etcdUnknown(r.name, st.Message()):
			t.Fatalf("%s: an error without an etcd code: %v", r.name, err)
		}
		if status.Code(err) == codes.DeadlineExceeded && !r.blocks {
			t.Fatalf("%s did not answer in %v", r.name, timeout)
		}
		if r.name == "/etcdserverpb.Maintenance/Alarm" {
			disarm(t, conn)
		}
		if err := alive(t, conn); err != nil {
			t.Fatalf("after %s (%x): the member does not serve a read: %v", r.name, data, err)
		}
	})
}

// etcdUnknown tells whether etcd answers this error with codes.Unknown
// too: its lock and election services send their own errors so
// ("election: not leader"), and a few of its plain errors have no
// rpctypes code. Any other Unknown is an error MetaStore did not expect
// (rpcerr sends those as Unknown).
func etcdUnknown(method, msg string) bool {
	switch {
	case strings.HasPrefix(method, "/v3lockpb."), strings.HasPrefix(method, "/v3electionpb."):
		return true
	case msg == etcderrors.ErrUnknownMethod.Error(), msg == auth.ErrNoPasswordUser.Error():
		return true
	}
	return false
}

// call sends data to one method and reads what comes back until the
// stream ends or ctx does.
func call(ctx context.Context, conn *grpc.ClientConn, r rpc, data []byte) error {
	if r.desc == nil {
		var out []byte
		return conn.Invoke(ctx, r.name, &data, &out)
	}
	s, err := conn.NewStream(ctx, r.desc, r.name)
	if err != nil {
		return err
	}
	msgs := splitMessages(data)
	if !r.desc.ClientStreams && len(msgs) > 1 {
		msgs = msgs[:1]
	}
	if len(msgs) == 0 {
		msgs = [][]byte{nil}
	}
	for _, m := range msgs {
		if err := s.SendMsg(&m); err != nil {
			break // the server ended the stream: RecvMsg says why
		}
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		var out []byte
		if err := s.RecvMsg(&out); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// disarm deactivates every alarm raised, so that one fuzz input does not
// make every later write fail.
func disarm(t *testing.T, conn *grpc.ClientConn) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out []byte
	get, _ := proto.Marshal(&pb.AlarmRequest{Action: pb.AlarmRequest_GET})
	if err := conn.Invoke(ctx, "/etcdserverpb.Maintenance/Alarm", &get, &out); err != nil {
		t.Fatalf("alarm list: %v", err)
	}
	resp := &pb.AlarmResponse{}
	if err := proto.Unmarshal(out, resp); err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.Alarms {
		req, _ := proto.Marshal(&pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: a.MemberID, Alarm: a.Alarm})
		if err := conn.Invoke(ctx, "/etcdserverpb.Maintenance/Alarm", &req, &out); err != nil {
			t.Fatalf("disarm %v: %v", a, err)
		}
	}
}

// alive reads one key linearizably: the member still serves.
func alive(t *testing.T, conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := proto.Marshal(&pb.RangeRequest{Key: []byte("alive")})
	var out []byte
	if err := conn.Invoke(ctx, "/etcdserverpb.KV/Range", &req, &out); err != nil {
		return fmt.Errorf("range: %w", err)
	}
	return nil
}
