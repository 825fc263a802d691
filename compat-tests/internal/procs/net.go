package procs

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Link is the state of the network from one member to another. The zero
// Link is a healthy one. Net.Set sets it in both directions, Net.SetFrom
// in one (a one-way partition: the bytes one member sends the other
// wait, its replies flow).
type Link struct {
	// Blackhole stops every byte between the two: bytes already sent
	// wait, as in a partition shorter than TCP's timeouts, and flow again
	// when the link heals.
	Blackhole bool
	// Delay holds each chunk of bytes Delay ± Jitter before it is passed
	// on; order is kept.
	Delay, Jitter time.Duration
	// Loss loses each chunk of bytes with this probability, as a lossy
	// link loses packets; like TCP the proxy sends it again after a
	// retransmission timeout (200 ms, Linux's least, doubled on every
	// loss in a row), and the bytes behind it wait. No byte goes missing:
	// TCP never loses bytes, it stalls.
	Loss float64
}

// Net is the peer network of a cluster started with Options.PeerProxies.
// Every member advertises the address of its own proxy as its peer URL,
// so every connection between two members goes through the proxy of the
// member it is made to. The proxy learns which member a connection comes
// from by the first request on it — the X-Server-From header of etcd's
// rafthttp, the hello frame MetaStore's transport sends first on each
// stream — and applies the Link set between the two. A connection that
// never names its sender (a health check, a hash comparison) passes
// untouched. Client connections do not go through it.
type Net struct {
	mu      sync.Mutex
	changed chan struct{}   // closed and replaced on every change
	links   map[[2]int]Link // by [from, to]
	ids     map[uint64]int  // member ID → index
	proxies []*proxy
	// roll draws what decides a loss (a test makes it deterministic).
	roll func() float64
}

func newNet() *Net {
	return &Net{changed: make(chan struct{}), links: map[[2]int]Link{}, ids: map[uint64]int{}, roll: rand.Float64}
}

// Set sets the link between members a and b, both ways.
func (n *Net) Set(a, b int, l Link) {
	n.set(l, [2]int{a, b}, [2]int{b, a})
}

// SetFrom sets the link from member from to member to only: on every
// connection between the two, whichever of them made it, the bytes from
// sends to wait as l says, while to's bytes to from flow as before.
func (n *Net) SetFrom(from, to int, l Link) {
	n.set(l, [2]int{from, to})
}

func (n *Net) set(l Link, dirs ...[2]int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, d := range dirs {
		if l == (Link{}) {
			delete(n.links, d)
		} else {
			n.links[d] = l
		}
	}
	close(n.changed)
	n.changed = make(chan struct{})
}

// Isolate sets l on every link of member i, both ways.
func (n *Net) Isolate(i int, l Link) {
	for j := range n.proxies {
		if j != i {
			n.Set(i, j, l)
		}
	}
}

// IsolateOut sets l on every link from member i: what it sends waits,
// what the others send it flows.
func (n *Net) IsolateOut(i int, l Link) {
	for j := range n.proxies {
		if j != i {
			n.SetFrom(i, j, l)
		}
	}
}

// IsolateIn sets l on every link to member i: what the others send it
// waits, what it sends flows.
func (n *Net) IsolateIn(i int, l Link) {
	for j := range n.proxies {
		if j != i {
			n.SetFrom(j, i, l)
		}
	}
}

// SetAll sets l on every link.
func (n *Net) SetAll(l Link) {
	for i := range n.proxies {
		for j := i + 1; j < len(n.proxies); j++ {
			n.Set(i, j, l)
		}
	}
}

// Heal makes every link healthy again.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.links)
	close(n.changed)
	n.changed = make(chan struct{})
}

// Disconnect closes every connection to member i and every connection
// member i made, as every connection has timed out after a long
// partition: what was in flight on them is lost, and the members must
// connect again (through whatever the links let pass by then).
func (n *Net) Disconnect(i int) {
	n.mu.Lock()
	ids := n.ids
	n.mu.Unlock()
	for j, p := range n.proxies {
		p.mu.Lock()
		var doomed []*pconn
		for c := range p.conns {
			if src, ok := ids[c.sender()]; j == i || (ok && src == i) {
				doomed = append(doomed, c)
			}
		}
		p.mu.Unlock()
		for _, c := range doomed {
			c.close()
		}
	}
}

// Senders returns the members whose connections to member dst named
// them so far: those its links apply to.
func (n *Net) Senders(dst int) []int {
	p := n.proxies[dst]
	p.mu.Lock()
	var froms []uint64
	for c := range p.conns {
		froms = append(froms, c.sender())
	}
	p.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := map[int]bool{}
	var out []int
	for _, f := range froms {
		if i, ok := n.ids[f]; ok && !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

func (n *Net) draw() float64 {
	n.mu.Lock()
	roll := n.roll
	n.mu.Unlock()
	return roll()
}

// setIDs tells the proxies which member ID is which member.
func (n *Net) setIDs(ids map[uint64]int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids = ids
}

// link returns the state of the link that bytes on a connection from the
// member with ID caller to member dst take — toward dst if forward, back
// to the caller if not — and a channel closed when any link changes.
func (n *Net) link(caller uint64, dst int, forward bool) (Link, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	src, ok := n.ids[caller]
	if !ok || caller == 0 {
		return Link{}, n.changed
	}
	if !forward {
		src, dst = dst, src
	}
	return n.links[[2]int{src, dst}], n.changed
}

func (n *Net) close() {
	for _, p := range n.proxies {
		p.close()
	}
}

// proxy forwards the connections made to member dst's advertised peer
// address to the address it listens on.
type proxy struct {
	n      *Net
	dst    int
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  map[*pconn]bool
	closed bool
	wg     sync.WaitGroup
}

func (n *Net) listen(dst int, target string) (*proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{n: n, dst: dst, l: l, target: target, conns: map[*pconn]bool{}}
	n.proxies = append(n.proxies, p)
	p.wg.Go(p.serve)
	return p, nil
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil { // the member is down: so is its listener
			in.Close()
			continue
		}
		c := &pconn{p: p, in: in, out: out, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.close()
			return
		}
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Go(func() { c.pipe(in, out, true) })
		p.wg.Go(func() { c.pipe(out, in, false) })
	}
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for c := range conns {
		c.close()
	}
	p.wg.Wait()
}

// pconn is one proxied connection; from is the ID of the member that
// made it, once its first request named it.
type pconn struct {
	p       *proxy
	in, out net.Conn
	done    chan struct{}
	once    sync.Once

	mu   sync.Mutex
	from uint64
	head []byte // the first bytes from the caller, until from is known
	gave bool   // gave up looking for the sender
}

func (c *pconn) close() {
	c.once.Do(func() {
		close(c.done)
		c.in.Close()
		c.out.Close()
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
}

func (c *pconn) sender() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.from
}

type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies src to dst through the link's state. A reader goroutine
// keeps taking bytes (the network holds them) while the writer waits on
// the link, up to a bound, past which the sender is held by TCP.
func (c *pconn) pipe(src, dst net.Conn, fromCaller bool) {
	defer c.close()
	ch := make(chan chunk, 256)
	go func() {
		defer close(ch)
		for {
			b := make([]byte, 32<<10)
			k, err := src.Read(b)
			if k > 0 {
				if fromCaller {
					c.sniff(b[:k])
				}
				select {
				case ch <- chunk{b[:k], time.Now()}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for ck := range ch {
		if !c.deliver(ck, fromCaller) {
			return
		}
		if _, err := dst.Write(ck.b); err != nil {
			return
		}
	}
}

// deliver waits as the link in the chunk's direction says; false means
// the connection closed.
func (c *pconn) deliver(ck chunk, fromCaller bool) bool {
	for {
		l, changed := c.p.n.link(c.sender(), c.p.dst, fromCaller)
		if l.Blackhole {
			select {
			case <-changed:
				continue
			case <-c.done:
				return false
			}
		}
		if l.Delay > 0 || l.Jitter > 0 {
			d := l.Delay
			if l.Jitter > 0 {
				d += time.Duration(rand.Int64N(int64(2*l.Jitter))) - l.Jitter
			}
			if wait := time.Until(ck.at.Add(d)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-changed:
					t.Stop()
					continue
				case <-c.done:
					t.Stop()
					return false
				}
			}
		}
		for rto := 200 * time.Millisecond; l.Loss > 0 && c.p.n.draw() < l.Loss; rto *= 2 {
			t := time.NewTimer(rto)
			select {
			case <-t.C:
			case <-c.done:
				t.Stop()
				return false
			}
		}
		return true
	}
}

// sniff looks for the sender's member ID in the first bytes the caller
// sent: up to 64 KiB, then it gives up.
func (c *pconn) sniff(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.from != 0 || c.gave {
		return
	}
	c.head = append(c.head, b...)
	if id, ok := senderID(c.head); ok {
		c.from, c.head = id, nil
	} else if len(c.head) > 64<<10 {
		c.gave, c.head = true, nil
	}
}

// http2Preface starts every HTTP/2 connection (gRPC's).
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// senderID finds the sending member's ID in the first bytes of a peer
// connection: the hello frame of MetaStore's transport in the first gRPC
// message of an HTTP/2 connection, or etcd's X-Server-From header (hex)
// in an HTTP/1.1 request.
func senderID(b []byte) (uint64, bool) {
	if !bytes.HasPrefix(b, http2Preface) {
		if len(b) < len(http2Preface) && bytes.HasPrefix(http2Preface, b) {
			return 0, false // more to come
		}
		return etcdSender(b)
	}
	b = b[len(http2Preface):]
	for len(b) >= 9 {
		size := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		typ, flags := b[3], b[4]
		if len(b) < 9+size {
			return 0, false
		}
		payload := b[9 : 9+size]
		b = b[9+size:]
		if typ != 0 { // not DATA
			continue
		}
		if flags&0x8 != 0 && len(payload) > 0 { // PADDED
			pad := int(payload[0])
			if pad >= len(payload) {
				continue
			}
			payload = payload[1 : len(payload)-pad]
		}
		if id, ok := helloSender(payload); ok {
			return id, true
		}
	}
	return 0, false
}

// helloSender decodes a gRPC message holding a BytesValue whose value is
// a transport hello: 0x00 cluster(8) from(8) to(8).
func helloSender(p []byte) (uint64, bool) {
	// compressed flag(1) length(4), then field 1, wire type 2, length 25.
	if len(p) < 5+2+25 || p[0] != 0 || p[5] != 0x0a || p[6] != 25 || p[7] != 0x00 {
		return 0, false
	}
	return binary.BigEndian.Uint64(p[7+9:]), true
}

func etcdSender(b []byte) (uint64, bool) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, false
	}
	for _, line := range bytes.Split(b[:end], []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte("X-Server-From")) {
			id, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return id, err == nil
		}
	}
	return 0, false
}
