package procs

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// frame is one HTTP/2 frame: a 9-byte header and its payload.
func frame(typ, flags byte, stream uint32, payload []byte) []byte {
	b := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags}
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, payload...)
}

// grpcHello is a gRPC message holding a BytesValue with a transport
// hello from member from.
func grpcHello(from uint64) []byte {
	v := []byte{0x00}
	v = binary.BigEndian.AppendUint64(v, 0xc1)
	v = binary.BigEndian.AppendUint64(v, from)
	v = binary.BigEndian.AppendUint64(v, 0xd2)
	msg := append([]byte{0x0a, byte(len(v))}, v...)
	b := []byte{0}
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

func TestSenderID(t *testing.T) {
	h2 := append([]byte{}, http2Preface...)
	h2 = append(h2, frame(0x4, 0, 0, nil)...)                                                       // SETTINGS
	h2 = append(h2, frame(0x1, 0x4, 1, []byte("hpack"))...)                                         // HEADERS
	h2 = append(h2, frame(0x0, 0, 1, []byte{0, 0, 0, 0, 2, 0x0a, 0})...)                            // a DATA frame that is no hello
	h2 = append(h2, frame(0x0, 0x8, 1, append(append([]byte{3}, grpcHello(0xabc)...), 0, 0, 0))...) // PADDED
	for _, tc := range []struct {
		name string
		in   []byte
		id   uint64
		ok   bool
	}{
		{"metastore hello", h2, 0xabc, true},
		{"metastore, hello not yet in", h2[:len(h2)-10], 0, false},
		{"preface not yet in", http2Preface[:10], 0, false},
		{"etcd stream", []byte("GET /raft/stream/message/8e9e05c52164694d HTTP/1.1\r\nHost: x\r\nX-Server-From: 8e9e05c52164694d\r\nX-Raft-To: 1\r\n\r\n"), 0x8e9e05c52164694d, true},
		{"etcd, header case", []byte("POST /raft HTTP/1.1\r\nx-server-from:  ff \r\n\r\nbody"), 0xff, true},
		{"etcd, headers not yet in", []byte("POST /raft HTTP/1.1\r\nX-Server-From: ff\r\n"), 0, false},
		{"no sender", []byte("GET /version HTTP/1.1\r\nHost: x\r\n\r\n"), 0, false},
		{"bad hex", []byte("GET / HTTP/1.1\r\nX-Server-From: zz\r\n\r\n"), 0, false},
	} {
		id, ok := senderID(tc.in)
		if id != tc.id || ok != tc.ok {
			t.Errorf("%s: senderID = %x, %v; want %x, %v", tc.name, id, ok, tc.id, tc.ok)
		}
	}
}

// partitionLeader checks the peer proxies on a 3-member cluster: every
// connection between members is named, a blackholed leader is replaced
// and answers no linearizable read while cut off, and after Heal every
// member serves again.
func partitionLeader(t *testing.T, c *Cluster) {
	deadline := time.Now().Add(10 * time.Second)
	for j := range 3 {
		for len(c.Net.Senders(j)) != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("member m%d: connections named by %v, want the 2 others", j, c.Net.Senders(j))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	lead := -1
	for lead < 0 {
		for i := range 3 {
			st, err := client(t, c.Endpoints[i]).Status(context.Background(), c.Endpoints[i])
			if err == nil && st.Leader == st.Header.MemberId {
				lead = i
			}
		}
	}
	c.Net.Isolate(lead, Link{Blackhole: true})
	old := client(t, c.Endpoints[lead])
	newLeader := func() bool {
		for i := range 3 {
			if i == lead {
				continue
			}
			st, err := client(t, c.Endpoints[i]).Status(context.Background(), c.Endpoints[i])
			if err == nil && st.Leader == st.Header.MemberId {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(15 * time.Second); !newLeader(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no other member leads 15s after the leader was cut off")
		}
	}
	if _, err := get(t, old, "k", 2*time.Second); err == nil || err.Error() == "not found" {
		t.Fatalf("the cut-off old leader answered a linearizable read (%v)", err)
	}
	c.Net.Heal()
	for i := range 3 {
		cl := client(t, c.Endpoints[i])
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := get(t, cl, "k", time.Second); err == nil || err.Error() == "not found" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("m%d serves no linearizable read 15s after Heal: %v", i, err)
			}
		}
	}
}

func TestMetastorePeerProxies(t *testing.T) {
	if _, err := MetastoreBin(); err != nil {
		t.Skip(err)
	}
	partitionLeader(t, Metastore(t, 3, Options{PeerProxies: true}))
}

func TestEtcdPeerProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s; TestSenderID covers etcd's header under -short")
	}
	if _, err := EtcdBin(); err != nil {
		t.Skip(err)
	}
	partitionLeader(t, Etcd(t, 3, Options{PeerProxies: true}))
}

// TestLinkFaults checks a link's states on one proxied connection: a
// blackhole holds the bytes and delivers them once healed, a delay and a
// lossy link slow them, and none of them loses or reorders a byte.
func TestLinkFaults(t *testing.T) {
	n := newNet()
	n.setIDs(map[uint64]int{1: 0})
	p, err := n.listen(1, newEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	conn := dialEcho(t, p.addr(), "POST /raft HTTP/1.1\r\nX-Server-From: 1\r\n\r\n")
	trips := func(k int) time.Duration {
		t0 := time.Now()
		for i := range k {
			want := fmt.Sprintf("line %d\n", i)
			if got := conn.roundTrip(t, want); got != want {
				t.Fatalf("echo %q, want %q", got, want)
			}
		}
		return time.Since(t0)
	}
	trips(1)

	n.Set(0, 1, Link{Blackhole: true})
	if _, err := conn.c.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if b, err := conn.r.ReadString('\n'); err == nil {
		t.Fatalf("%q passed a blackhole", b)
	}
	n.Heal()
	_ = conn.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := conn.r.ReadString('\n'); err != nil || b != "held\n" {
		t.Fatalf("after Heal: %q, %v; want the held line", b, err)
	}

	n.Set(0, 1, Link{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond})
	if d := trips(4); d < 4*2*40*time.Millisecond {
		t.Errorf("4 round trips over a 50 ms link took %v", d)
	}
	// Two losses in a row of the first chunk, then none: 200 + 400 ms.
	var mu sync.Mutex
	rolls := []float64{0, 0}
	n.mu.Lock()
	n.roll = func() float64 {
		mu.Lock()
		defer mu.Unlock()
		if len(rolls) == 0 {
			return 1
		}
		r := rolls[0]
		rolls = rolls[1:]
		return r
	}
	n.mu.Unlock()
	n.Set(0, 1, Link{Loss: 0.5})
	if d := trips(4); d < 600*time.Millisecond || d > 3*time.Second {
		t.Errorf("4 round trips with two losses in a row took %v, want about 600 ms", d)
	}
	n.Heal()
	if d := trips(8); d > time.Second {
		t.Errorf("8 round trips over a healed link took %v", d)
	}
}

// newEcho starts a TCP server that sends back what it reads.
func newEcho(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

type echoConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialEcho connects to addr and sends head, reading its echo back.
func dialEcho(t *testing.T, addr, head string) *echoConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &echoConn{c: c, r: bufio.NewReader(c)}
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(e.r, make([]byte, len(head))); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *echoConn) roundTrip(t *testing.T, line string) string {
	_ = e.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := e.c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	got, err := e.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestOneWayLink checks that SetFrom holds the bytes of one direction
// only, whichever end made the connection.
func TestOneWayLink(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	n := newNet()
	n.setIDs(map[uint64]int{1: 0}) // the caller is member 0, the proxy's member 1
	p, err := n.listen(1, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	caller, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	head := "POST /raft HTTP/1.1\r\nX-Server-From: 1\r\n\r\n"
	if _, err := caller.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	callee := <-accepted
	defer callee.Close()
	cr, er := bufio.NewReader(caller), bufio.NewReader(callee)
	if _, err := io.ReadFull(er, make([]byte, len(head))); err != nil {
		t.Fatal(err)
	}
	// send writes line on from and tells whether it reaches r within d.
	send := func(from net.Conn, r *bufio.Reader, rc net.Conn, line string, d time.Duration) bool {
		t.Helper()
		if _, err := from.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		_ = rc.SetReadDeadline(time.Now().Add(d))
		got, err := r.ReadString('\n')
		if err == nil && got != line {
			t.Fatalf("read %q, want %q", got, line)
		}
		return err == nil
	}
	for _, tc := range []struct {
		from, to int
	}{{0, 1}, {1, 0}} {
		n.SetFrom(tc.from, tc.to, Link{Blackhole: true})
		held, heldR, heldC := caller, er, callee // member 0's bytes to member 1
		free, freeR, freeC := callee, cr, caller
		if tc.from == 1 {
			held, heldR, heldC, free, freeR, freeC = free, freeR, freeC, held, heldR, heldC
		}
		if send(held, heldR, heldC, "held\n", 300*time.Millisecond) {
			t.Fatalf("m%d -> m%d blackholed: a line passed", tc.from, tc.to)
		}
		if !send(free, freeR, freeC, "free\n", 5*time.Second) {
			t.Fatalf("m%d -> m%d blackholed: the other way was held too", tc.from, tc.to)
		}
		n.Heal()
		_ = heldC.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := heldR.ReadString('\n'); err != nil || got != "held\n" {
			t.Fatalf("after Heal: %q, %v; want the held line", got, err)
		}
	}
}
