// Command backup runs the backup, restore and migration procedures of
// docs/OPERATIONS.md step by step with the real binaries — etcd 3.7.3,
// etcdctl, etcdutl and metastore — and checks after every move that the
// data is the same: every key with its value, create and mod revisions,
// version and lease; the compaction revision; HashKV; the leases; the users
// and their passwords.
//
//  1. etcd → MetaStore: `etcdctl snapshot save` from etcd, `etcdutl
//     snapshot status`, `metastore snapshot restore` of the same file on
//     each of three members, and the new cluster serves it.
//  2. MetaStore → etcd: `etcdctl snapshot save` from MetaStore, `etcdutl
//     snapshot restore`, etcd serves it.
//  3. In place: metastore started on the stopped etcd member's own data
//     dir with the flags etcd ran with; etcd's files are left unchanged.
//
// Every command it runs is printed first, as a user would type it:
//
//	go run ./backup -metastore ../bin/metastore -etcd ~/.cache/metastore/etcd-v3.7.3/etcd \
//	  -etcdctl ~/.cache/metastore/etcdctl-v3.7.3/etcdctl -etcdutl ~/.cache/metastore/etcdutl-v3.7.3/etcdutl
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() { os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr)) }

// cli runs the example with command-line args and returns the exit code.
func cli(args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(errOut)
	ex := &example{out: out}
	fs.StringVar(&ex.metastore, "metastore", "metastore", "metastore binary")
	fs.StringVar(&ex.etcd, "etcd", "etcd", "etcd 3.7 binary")
	fs.StringVar(&ex.etcdctl, "etcdctl", "etcdctl", "etcdctl binary")
	fs.StringVar(&ex.etcdutl, "etcdutl", "etcdutl", "etcdutl binary")
	fs.StringVar(&ex.dir, "dir", "", "directory for the data dirs, snapshots and logs (default: a temporary one, removed after)")
	fs.IntVar(&ex.keys, "keys", 2000, "keys to write before the first snapshot")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, bin := range []*string{&ex.metastore, &ex.etcd, &ex.etcdctl, &ex.etcdutl} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			fmt.Fprintln(errOut, "backup example:", err)
			return 1
		}
		*bin = p
	}
	if ex.dir == "" {
		d, err := os.MkdirTemp("", "backup-example")
		if err != nil {
			fmt.Fprintln(errOut, "backup example:", err)
			return 1
		}
		defer os.RemoveAll(d)
		ex.dir = d
	}
	defer ex.stop()
	if err := ex.run(); err != nil {
		fmt.Fprintln(errOut, "backup example:", err)
		return 1
	}
	return 0
}

const (
	rootPassword = "root-secret"
	appPassword  = "app-secret"
)

type example struct {
	metastore, etcd, etcdctl, etcdutl, dir string
	keys                                   int
	out                                    io.Writer

	servers []*server // the running members
}

// server is one running member: etcd or metastore.
type server struct {
	name, client string
	cmd          *exec.Cmd
	exited       chan error
	log          string
}

// flags are the member flags both servers take; restores and the in-place
// start repeat them.
type flags struct {
	name, dataDir, client, peer, initialCluster string
}

func (f flags) args() []string {
	return []string{"--name", f.name, "--data-dir", f.dataDir,
		"--listen-client-urls", f.client, "--advertise-client-urls", f.client,
		"--listen-peer-urls", f.peer, "--initial-advertise-peer-urls", f.peer,
		"--initial-cluster", f.initialCluster}
}

// newCluster makes the flags of n members named prefix-1 … prefix-n.
func (ex *example) newCluster(prefix string, n int) ([]flags, error) {
	var fs []flags
	var initial []string
	for i := 1; i <= n; i++ {
		c, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("%s-%d", prefix, i)
		fs = append(fs, flags{name: name, dataDir: filepath.Join(ex.dir, name), client: "http://" + c, peer: "http://" + p})
		initial = append(initial, name+"=http://"+p)
	}
	for i := range fs {
		fs[i].initialCluster = strings.Join(initial, ",")
	}
	return fs, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (ex *example) say(format string, args ...any) { fmt.Fprintf(ex.out, format+"\n", args...) }

// sh prints a command as a user would type it, runs it and returns its
// output.
func (ex *example) sh(bin string, args ...string) (string, error) {
	ex.say("$ %s %s", filepath.Base(bin), strings.Join(args, " "))
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ctl runs etcdctl against the first running member as root.
func (ex *example) ctl(args ...string) (string, error) {
	return ex.sh(ex.etcdctl, append([]string{"--endpoints", ex.servers[0].client, "--user", "root:" + rootPassword}, args...)...)
}

// start runs bin with the flags of every member (in the background, as a
// user starts them on their machines) and waits until they all serve.
func (ex *example) start(bin string, fs ...flags) error {
	done := make(chan error, len(fs))
	for _, f := range fs {
		s, err := ex.startOne(bin, f)
		if err != nil {
			return err
		}
		ex.servers = append(ex.servers, s)
		go func() { done <- s.ready(bin) }()
	}
	for range fs {
		if err := <-done; err != nil {
			return err
		}
	}
	return nil
}

func (ex *example) startOne(bin string, f flags) (*server, error) {
	log := filepath.Join(ex.dir, f.name+"-"+filepath.Base(bin)+".log")
	lf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	ex.say("$ %s %s &", filepath.Base(bin), strings.Join(f.args(), " "))
	s := &server{name: f.name, client: f.client, log: log, cmd: exec.Command(bin, f.args()...)}
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	if err := s.cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait(); lf.Close() }()
	return s, nil
}

// ready waits until s logs that it serves.
func (s *server) ready(bin string) error {
	deadline := time.After(60 * time.Second)
	for {
		b, _ := os.ReadFile(s.log)
		if strings.Contains(string(b), "ready to serve client requests") {
			return nil
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			return fmt.Errorf("%s %s exited: %v (log: %s)", filepath.Base(bin), s.name, err, s.log)
		case <-deadline:
			return fmt.Errorf("%s %s did not start (log: %s)", filepath.Base(bin), s.name, s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop stops the running members cleanly (SIGTERM, as systemd does).
func (ex *example) stop() {
	for _, s := range ex.servers {
		_ = s.cmd.Process.Signal(os.Interrupt)
	}
	for _, s := range ex.servers {
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	ex.servers = nil
}

func client(s *server, user, password string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{s.client}, DialTimeout: 5 * time.Second,
		Username: user, Password: password, Logger: zap.NewNop()})
}

// state is what a migration must keep.
type state struct {
	Revision, CompactRevision int64
	Hash                      uint32
	KVs                       []kv
	Leases                    map[int64]int64 // ID → granted TTL
	Users                     []string
}

type kv struct {
	Key, Value                    string
	Create, Mod, Version, LeaseID int64
}

// read reads the state of every running member, requires them to agree,
// and checks that the app user logs in with its password and not with
// another.
func (ex *example) read(ctx context.Context) (*state, error) {
	var first *state
	for _, s := range ex.servers {
		st, err := readOne(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if first == nil {
			first = st
		} else if err := ex.same(s.name+" and "+ex.servers[0].name, first, st, false); err != nil {
			return nil, err
		}
	}
	return first, nil
}

func readOne(ctx context.Context, s *server) (*state, error) {
	c, err := client(s, "root", rootPassword)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := c.Get(ctx, "", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	st := &state{Revision: r.Header.Revision, Leases: map[int64]int64{}}
	for _, x := range r.Kvs {
		st.KVs = append(st.KVs, kv{string(x.Key), string(x.Value), x.CreateRevision, x.ModRevision, x.Version, x.Lease})
	}
	h, err := c.HashKV(ctx, strings.TrimPrefix(s.client, "http://"), 0)
	if err != nil {
		return nil, fmt.Errorf("hashkv: %w", err)
	}
	st.Hash, st.CompactRevision = h.Hash, h.CompactRevision
	ls, err := c.Leases(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease list: %w", err)
	}
	for _, l := range ls.Leases {
		ttl, err := c.TimeToLive(ctx, l.ID)
		if err != nil {
			return nil, fmt.Errorf("lease timetolive: %w", err)
		}
		st.Leases[int64(l.ID)] = ttl.GrantedTTL
	}
	us, err := c.UserList(ctx)
	if err != nil {
		return nil, fmt.Errorf("user list: %w", err)
	}
	st.Users = us.Users
	sort.Strings(st.Users)
	if err := checkLogin(ctx, s); err != nil {
		return nil, err
	}
	return st, nil
}

func checkLogin(ctx context.Context, s *server) error {
	app, err := client(s, "app", appPassword)
	if err != nil {
		return fmt.Errorf("app logs in with its password: %w", err)
	}
	_, err = app.Get(ctx, "app/0")
	app.Close()
	if err != nil {
		return fmt.Errorf("app reads app/0: %w", err)
	}
	if bad, err := client(s, "app", "wrong"); err == nil {
		_, err = bad.Get(ctx, "app/0")
		bad.Close()
		if err == nil {
			return errors.New("app logs in with a wrong password")
		}
	}
	return nil
}

// same compares the state after a move with the one before it (or two
// members' states) and says so when told to.
func (ex *example) same(what string, want, got *state, say bool) error {
	if !reflect.DeepEqual(want, got) {
		w, _ := json.Marshal(summary(want))
		g, _ := json.Marshal(summary(got))
		return fmt.Errorf("%s: the state differs\nbefore: %s\nafter:  %s", what, w, g)
	}
	if !say {
		return nil
	}
	ex.say("# %s: the same %d keys (values, create/mod revisions, versions, leases), revision %d, compaction revision %d, HashKV %d, %d leases, users %v",
		what, len(got.KVs), got.Revision, got.CompactRevision, got.Hash, len(got.Leases), got.Users)
	return nil
}

func summary(s *state) map[string]any {
	first := func(kvs []kv) any {
		if len(kvs) == 0 {
			return nil
		}
		return kvs[0]
	}
	return map[string]any{"revision": s.Revision, "compact": s.CompactRevision, "hash": s.Hash,
		"keys": len(s.KVs), "first": first(s.KVs), "leases": s.Leases, "users": s.Users}
}

// seed writes a history with overwrites, deletes, a compaction, a lease
// with keys, and auth (root and an app user with a role on app/).
func (ex *example) seed(ctx context.Context) error {
	c, err := client(ex.servers[0], "", "")
	if err != nil {
		return err
	}
	defer c.Close()
	for i := 0; i < ex.keys; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("app/%d", i%(ex.keys/2+1)), fmt.Sprintf("v%d", i)); err != nil {
			return err
		}
	}
	if _, err := c.Delete(ctx, "app/1"); err != nil {
		return err
	}
	mid, err := c.Get(ctx, "app/0")
	if err != nil {
		return err
	}
	if _, err := c.Compact(ctx, mid.Header.Revision-int64(ex.keys/4)); err != nil {
		return err
	}
	l, err := c.Grant(ctx, 3600)
	if err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("session/%d", i), "alive", clientv3.WithLease(l.ID)); err != nil {
			return err
		}
	}
	ex.say("# wrote %d puts, a delete, a compaction, lease %x with 3 keys", ex.keys, l.ID)
	for _, step := range [][]string{
		{"user", "add", "root:" + rootPassword},
		{"user", "grant-role", "root", "root"},
		{"role", "add", "app"},
		{"role", "grant-permission", "app", "--prefix=true", "readwrite", "app/"},
		{"user", "add", "app:" + appPassword},
		{"user", "grant-role", "app", "app"},
		{"auth", "enable"},
	} {
		if _, err := ex.sh(ex.etcdctl, append([]string{"--endpoints", ex.servers[0].client}, step...)...); err != nil {
			return err
		}
	}
	return nil
}

// fileHashes maps every file under dir to its SHA-256.
func fileHashes(dir string) (map[string][32]byte, error) {
	hs := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hs[rel] = sha256.Sum256(b)
		return nil
	})
	return hs, err
}

// steps runs functions in order until one fails ("errors are values"):
// the walk-through below reads as the procedure it follows.
type steps struct{ err error }

func (st *steps) do(f func() error) {
	if st.err == nil {
		st.err = f()
	}
}

func (ex *example) run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		st                                           steps
		e1, ms, e2                                   []flags
		inEtcd, inMetaStore, inEtcd2, inPlace, after *state
		before, afterFiles                           map[string][32]byte
		err                                          error
	)
	read := func(into **state) func() error {
		return func() error { *into, err = ex.read(ctx); return err }
	}
	cluster := func(into *[]flags, prefix string, n int) func() error {
		return func() error { *into, err = ex.newCluster(prefix, n); return err }
	}
	backup := filepath.Join(ex.dir, "backup.db")
	back := filepath.Join(ex.dir, "back.db")

	// 0. An etcd cluster with data.
	st.do(cluster(&e1, "etcd", 1))
	st.do(func() error { return ex.start(ex.etcd, e1...) })
	st.do(func() error { return ex.seed(ctx) })
	st.do(read(&inEtcd))

	// 1. etcd → a three-member MetaStore cluster through a snapshot: every
	// member restores the same file.
	st.do(func() error {
		ex.say("\n# 1. etcd -> MetaStore (three members)")
		_, err := ex.ctl("snapshot", "save", backup)
		return err
	})
	st.do(func() error { return ex.status(backup, inEtcd.Revision) })
	st.do(func() error { ex.stop(); return nil })
	st.do(cluster(&ms, "metastore", 3))
	st.do(func() error {
		for _, m := range ms {
			if _, err := ex.sh(ex.metastore, append([]string{"snapshot", "restore", backup}, restoreArgs(m)...)...); err != nil {
				return err
			}
		}
		return nil
	})
	st.do(func() error { return ex.start(ex.metastore, ms...) })
	st.do(read(&inMetaStore))
	st.do(func() error { return ex.same("etcd -> MetaStore", inEtcd, inMetaStore, true) })
	// Clients go on where they were: the next write is the next revision.
	st.do(func() error { _, err := ex.ctl("put", "app/after-move", "1"); return err })
	st.do(read(&inMetaStore))
	st.do(func() error {
		if inMetaStore.Revision != inEtcd.Revision+1 {
			return fmt.Errorf("a put after the move got revision %d, want %d", inMetaStore.Revision, inEtcd.Revision+1)
		}
		ex.say("# a put after the move: revision %d on every member", inMetaStore.Revision)
		return nil
	})

	// 2. MetaStore → etcd through a snapshot.
	st.do(func() error {
		ex.say("\n# 2. MetaStore -> etcd")
		_, err := ex.ctl("snapshot", "save", back)
		return err
	})
	st.do(func() error { return ex.status(back, inMetaStore.Revision) })
	st.do(func() error { ex.stop(); return nil })
	st.do(cluster(&e2, "etcd-restored", 1))
	st.do(func() error {
		_, err := ex.sh(ex.etcdutl, append([]string{"snapshot", "restore", back}, restoreArgs(e2[0])...)...)
		return err
	})
	st.do(func() error { return ex.start(ex.etcd, e2...) })
	st.do(read(&inEtcd2))
	st.do(func() error { return ex.same("MetaStore -> etcd", inMetaStore, inEtcd2, true) })

	// 3. In place: metastore on the stopped etcd member's data dir.
	st.do(func() error {
		ex.say("\n# 3. in place: metastore on etcd's own data dir")
		_, err := ex.ctl("put", "app/last-etcd-write", "1")
		return err
	})
	st.do(read(&after))
	st.do(func() error { ex.stop(); before, err = fileHashes(e2[0].dataDir); return err })
	st.do(func() error { return ex.start(ex.metastore, e2...) })
	st.do(read(&inPlace))
	st.do(func() error { return ex.same("etcd data dir -> MetaStore", after, inPlace, true) })
	st.do(func() error { ex.stop(); afterFiles, err = fileHashes(e2[0].dataDir); return err })
	st.do(func() error {
		for name, h := range before {
			if afterFiles[name] != h {
				return fmt.Errorf("etcd's %s changed", name)
			}
		}
		dir := e2[0].dataDir
		ex.say("# etcd's %d files in %s are unchanged; MetaStore's copy is in %s", len(before), dir, filepath.Join(dir, "metastore"))
		return nil
	})
	return st.err
}

// status runs `etcdutl snapshot status` and checks the file's revision.
func (ex *example) status(file string, rev int64) error {
	out, err := ex.sh(ex.etcdutl, "snapshot", "status", file, "-w", "json")
	if err != nil {
		return err
	}
	var status struct {
		Revision  int64 `json:"revision"`
		TotalKey  int   `json:"totalKey"`
		TotalSize int64 `json:"totalSize"`
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		return fmt.Errorf("etcdutl snapshot status: %w: %s", err, out)
	}
	if status.Revision != rev {
		return fmt.Errorf("etcdutl snapshot status: revision %d, the server served %d", status.Revision, rev)
	}
	ex.say("# snapshot at revision %d, %d keys, %d bytes", status.Revision, status.TotalKey, status.TotalSize)
	return nil
}

// restoreArgs are the flags `etcdutl snapshot restore` and `metastore
// snapshot restore` both take to make a member's data dir.
func restoreArgs(f flags) []string {
	return []string{"--data-dir", f.dataDir, "--name", f.name,
		"--initial-cluster", f.initialCluster, "--initial-advertise-peer-urls", f.peer}
}
