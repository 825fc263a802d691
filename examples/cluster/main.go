// Command cluster walks through runtime membership on real server
// processes — metastore, or etcd (the same flags and the same answers):
// it grows a one-member cluster to three (a learner added, caught up and
// promoted, then a voter), replaces a member whose data dir was lost, and
// shrinks the cluster back to one, writing and reading all along.
//
//	go run ./cluster -bin ../bin/metastore
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() { os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr)) }

// cli runs the example with command-line args and returns the exit code.
func cli(args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(errOut)
	bin := fs.String("bin", "metastore", "server binary (metastore or etcd)")
	dir := fs.String("dir", "", "directory for the data dirs and logs (default: a temporary one, removed after)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "cluster-example")
		if err != nil {
			fmt.Fprintln(errOut, "cluster example:", err)
			return 1
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	ex := &example{bin: *bin, dir: *dir, out: out}
	defer ex.stopAll()
	if err := ex.run(); err != nil {
		fmt.Fprintln(errOut, "cluster example:", err)
		return 1
	}
	return 0
}

type member struct {
	name, client, peer, dataDir string
	id                          uint64
	cmd                         *exec.Cmd
	exited                      chan error
}

type example struct {
	bin, dir string
	out      io.Writer
	members  []*member
	seq      int
	steps    int // step keys written
}

func (ex *example) say(format string, args ...any) { fmt.Fprintf(ex.out, format+"\n", args...) }

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (ex *example) newMember(name string) (*member, error) {
	c, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ex.seq++
	return &member{name: name, client: "http://" + c, peer: "http://" + p,
		dataDir: filepath.Join(ex.dir, fmt.Sprintf("%s-%d", name, ex.seq))}, nil
}

// start runs m with the given --initial-cluster and state and waits until
// it answers.
func (ex *example) start(m *member, initial, state string) error {
	log, err := os.Create(m.dataDir + ".log")
	if err != nil {
		return err
	}
	m.cmd = exec.Command(ex.bin, "--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", initial, "--initial-cluster-state", state,
		"--heartbeat-interval", "50", "--election-timeout", "500")
	m.cmd.Stdout, m.cmd.Stderr = log, log
	if err := m.cmd.Start(); err != nil {
		return err
	}
	m.exited = make(chan error, 1)
	go func() { m.exited <- m.cmd.Wait(); log.Close() }()
	c, err := connect(m)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		st, err := c.Status(ctx, strings.TrimPrefix(m.client, "http://"))
		if err == nil && st.Leader != 0 {
			m.id = st.Header.MemberId
			return nil
		}
		select {
		case err := <-m.exited:
			return fmt.Errorf("%s exited: %v (log: %s.log)", m.name, err, m.dataDir)
		case <-ctx.Done():
			return fmt.Errorf("%s did not start (log: %s.log)", m.name, m.dataDir)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func connect(ms ...*member) (*clientv3.Client, error) {
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.client)
	}
	return clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// retry calls f until it stops failing with the refusals that pass with
// time: --strict-reconfig-check wants links up for 5 s, promotion a
// learner that caught up.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if !errors.Is(err, rpctypes.ErrUnhealthy) && !errors.Is(err, rpctypes.ErrMemberLearnerNotReady) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// add adds a new member named name (as a learner if asked) through c and
// starts it with the --initial-cluster the answer gives, as etcdctl
// member add prints it.
func (ex *example) add(ctx context.Context, c *clientv3.Client, name string, learner bool) (*member, error) {
	m, err := ex.newMember(name)
	if err != nil {
		return nil, err
	}
	var resp *clientv3.MemberAddResponse
	err = retry(ctx, func() error {
		var err error
		if learner {
			resp, err = c.MemberAddAsLearner(ctx, []string{m.peer})
		} else {
			resp, err = c.MemberAdd(ctx, []string{m.peer})
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("member add %s: %w", name, err)
	}
	var initial []string
	for _, o := range resp.Members {
		n := o.Name
		if o.ID == resp.Member.ID {
			n = name
		}
		for _, u := range o.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	if err := ex.start(m, strings.Join(initial, ","), "existing"); err != nil {
		return nil, err
	}
	ex.members = append(ex.members, m)
	ex.say("added %s (%x)%s", name, m.id, map[bool]string{true: " as a learner", false: ""}[learner])
	return m, nil
}

func (ex *example) remove(ctx context.Context, c *clientv3.Client, m *member) error {
	if err := retry(ctx, func() error { _, err := c.MemberRemove(ctx, m.id); return err }); err != nil {
		return fmt.Errorf("member remove %s: %w", m.name, err)
	}
	for i, o := range ex.members {
		if o == m {
			ex.members = append(ex.members[:i], ex.members[i+1:]...)
		}
	}
	if m.exited != nil {
		select {
		case <-m.exited:
			ex.say("removed %s (%x): it stopped by itself", m.name, m.id)
		case <-time.After(20 * time.Second):
			return fmt.Errorf("%s still runs after its removal", m.name)
		}
	} else {
		ex.say("removed %s (%x)", m.name, m.id)
	}
	return nil
}

func (ex *example) list(ctx context.Context, c *clientv3.Client) error {
	r, err := c.MemberList(ctx)
	if err != nil {
		return err
	}
	ms := append([]*pb.Member(nil), r.Members...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	var parts []string
	for _, m := range ms {
		role := "voter"
		if m.IsLearner {
			role = "learner"
		}
		parts = append(parts, m.Name+" "+role)
	}
	ex.say("members: %s", strings.Join(parts, ", "))
	return nil
}

func (ex *example) check(ctx context.Context, c *clientv3.Client, key string) error {
	if _, err := c.Put(ctx, key, "written"); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	ex.steps++
	for _, m := range ex.members {
		mc, err := connect(m)
		if err != nil {
			return err
		}
		r, err := mc.Get(ctx, "step/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		mc.Close()
		if err != nil {
			return fmt.Errorf("get from %s: %w", m.name, err)
		}
		if r.Count != int64(ex.steps) {
			return fmt.Errorf("%s serves %d of the %d keys written", m.name, r.Count, ex.steps)
		}
	}
	ex.say("wrote %s; every member serves all %d keys", key, ex.steps)
	return nil
}

func (ex *example) run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// 1. One member.
	m0, err := ex.newMember("m0")
	if err != nil {
		return err
	}
	if err := ex.start(m0, "m0="+m0.peer, "new"); err != nil {
		return err
	}
	ex.members = append(ex.members, m0)
	ex.say("started m0 (%x) alone", m0.id)
	c, err := connect(m0)
	if err != nil {
		return err
	}
	defer func() { c.Close() }()
	if err := ex.check(ctx, c, "step/1"); err != nil {
		return err
	}

	// 2. Grow to three: a learner that catches up and is promoted, then a voter.
	m1, err := ex.add(ctx, c, "m1", true)
	if err != nil {
		return err
	}
	if err := retry(ctx, func() error { _, err := c.MemberPromote(ctx, m1.id); return err }); err != nil {
		return fmt.Errorf("member promote m1: %w", err)
	}
	ex.say("promoted m1")
	if _, err := ex.add(ctx, c, "m2", false); err != nil {
		return err
	}
	if err := ex.list(ctx, c); err != nil {
		return err
	}
	if err := ex.check(ctx, c, "step/2"); err != nil {
		return err
	}

	// 3. m1 loses its disk: remove it, add a new member in its place.
	_ = m1.cmd.Process.Kill()
	<-m1.exited
	m1.exited = nil
	if err := os.RemoveAll(m1.dataDir); err != nil {
		return err
	}
	ex.say("m1 lost its data dir")
	if err := ex.remove(ctx, c, m1); err != nil {
		return err
	}
	if _, err := ex.add(ctx, c, "m1", false); err != nil {
		return err
	}
	if err := ex.list(ctx, c); err != nil {
		return err
	}
	if err := ex.check(ctx, c, "step/3"); err != nil {
		return err
	}

	// 4. Shrink back to one.
	for len(ex.members) > 1 {
		if err := ex.remove(ctx, c, ex.members[len(ex.members)-1]); err != nil {
			return err
		}
	}
	if err := ex.list(ctx, c); err != nil {
		return err
	}
	return ex.check(ctx, c, "step/4")
}

func (ex *example) stopAll() {
	for _, m := range ex.members {
		if m.cmd != nil && m.exited != nil {
			_ = m.cmd.Process.Signal(os.Interrupt)
			select {
			case <-m.exited:
			case <-time.After(10 * time.Second):
				_ = m.cmd.Process.Kill()
			}
		}
	}
}
