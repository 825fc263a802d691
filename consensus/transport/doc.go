// Package transport carries Raft messages between consensus nodes over
// gRPC on the peer URLs.
//
// Each peer gets one outgoing bidirectional stream ("metastore.raft.Peer/
// Stream") fed by a bounded queue: messages queued while a frame is being
// sent go out together in the next frame, so a busy leader sends few, large
// frames. A broken stream is re-opened with exponential backoff; while a
// peer is unreachable its queue drops messages (Raft retries) and the node
// is told with ReportUnreachable.
//
// The first frame of a stream is a hello carrying the cluster ID and the
// sender's and receiver's member IDs: a member of another cluster, a
// message meant for another member, or one from a removed member is
// refused. Snapshots travel in 1 MiB chunks on their own stream
// ("metastore.raft.Peer/Snapshot") and are reported to the node when done.
// Pings on the message stream measure each peer's round-trip time.
//
// Frames are wrapperspb.BytesValue messages holding:
//
//	hello:  0x00 clusterID(8) from(8) to(8)
//	batch:  0x01 uvarint(count) { uvarint(len) raftpb.Message }...
//	ping:   0x02 unix-nanos(8) [sent-bytes(8)]
//	                              (echoed by the receiver as pong 0x03;
//	                               sent-bytes, the batch bytes sent on the
//	                               stream before the ping, lets the sender
//	                               tell a busy receiver from a dead one)
//	chunk:  0x04 data             (snapshot stream; the first chunk is the
//	                               message with its data removed)
package transport
