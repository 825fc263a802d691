package testcluster

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/server"
)

// Bridge forwards TCP connections to a target until cut: then it closes
// every connection and refuses new ones, until healed.
type Bridge struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

// NewBridge listens on a loopback port and forwards to target; it is
// closed at cleanup.
func NewBridge(t testing.TB, target string) *Bridge {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &Bridge{l: l, target: target, conns: map[net.Conn]struct{}{}}
	go b.serve()
	t.Cleanup(func() { l.Close(); b.SetCut(true) })
	return b
}

// Addr is the address to dial instead of the target.
func (b *Bridge) Addr() string { return b.l.Addr().String() }

func (b *Bridge) serve() {
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.cut {
			b.mu.Unlock()
			c.Close()
			continue
		}
		b.mu.Unlock()
		d, err := net.Dial("tcp", b.target)
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		b.conns[c], b.conns[d] = struct{}{}, struct{}{}
		b.mu.Unlock()
		go func() { _, _ = io.Copy(d, c); d.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, d); c.Close(); d.Close() }()
	}
}

// SetCut cuts (closing every open connection) or heals the link.
func (b *Bridge) SetCut(cut bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut = cut
	if cut {
		for c := range b.conns {
			c.Close()
		}
		b.conns = map[net.Conn]struct{}{}
	}
}

// Bridges holds the peer links of a bridged cluster: [i][j] carries member
// i's traffic to member j (nil on the diagonal).
type Bridges [][]*Bridge

// StartBridged starts n members (see Configs) whose peer traffic from
// member i to member j goes through bridges[i][j], and waits until each is
// ready.
func StartBridged(t testing.TB, n int, opts ...func(*server.Config)) (Members, Bridges) {
	t.Helper()
	ms := Configs(t, n, opts...)
	peerAddr := map[string]int{} // advertised peer URL -> member index
	for i, m := range ms {
		peerAddr[m.Cfg.InitialAdvertisePeerURLs] = i
	}
	bridges := make(Bridges, n)
	for i := range n {
		bridges[i] = make([]*Bridge, n)
		for j := range n {
			if i != j {
				bridges[i][j] = NewBridge(t, strings.TrimPrefix(ms[j].Cfg.ListenPeerURLs, "http://"))
			}
		}
	}
	for i, m := range ms {
		m.Opts = append(m.Opts, server.WithPeerAddrs(func(_ uint64, urls []string) []string {
			j, ok := peerAddr[urls[0]]
			if !ok || j == i {
				return nil
			}
			return []string{bridges[i][j].Addr()}
		}))
	}
	ms.Start()
	return ms, bridges
}

// Isolate cuts (or heals) every link from and to member i.
func (bs Bridges) Isolate(i int, cut bool) {
	for j := range bs {
		if j != i {
			bs[i][j].SetCut(cut)
			bs[j][i].SetCut(cut)
		}
	}
}
