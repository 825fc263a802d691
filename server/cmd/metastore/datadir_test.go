package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metastore/metastore/tools/etcdtest"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startEtcd runs a real etcd 3.7.3 member on parent/default until the
// returned stop.
func startEtcd(t *testing.T, parent string) (endpoint string, stop func()) {
	t.Helper()
	e := etcdtest.StartT(t, etcdtest.Config{Dir: parent})
	return e.Endpoints[0], e.Close
}

// treeSums maps every file under dir to its size and SHA-256.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	}))
	return out
}

// Started on a stopped etcd member's data dir, metastore refuses with one
// line naming what it found, and changes no file: etcd serves the same
// data from it afterwards. (Before, it truncated etcd's 64 MB WAL as a
// "torn tail" and served an empty store.)
func TestRefusesEtcdDataDirAndChangesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, embed.DefaultName)
	ep, stop := startEtcd(t, parent)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = cli.Put(ctx, "etcd-key", "etcd-value")
	require.NoError(t, err)
	cli.Close()
	stop()

	before := treeSums(t, dir)
	require.Contains(t, before, filepath.Join("member", "snap", "db"))
	client, peer := freePort(t), freePort(t)
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := runCaptured(t, "--data-dir", dir,
			"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
			"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
			"--initial-cluster", "default=http://"+peer)
		done <- result{code, out}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		// It started serving instead of refusing: stop it (run handles
		// SIGTERM) and fail.
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		r = <-done
		t.Fatalf("metastore served etcd's data dir instead of refusing it:\n%s", r.out)
	}
	code, out := r.code, r.out
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "is an etcd data dir (member/snap/db): MetaStore does not open it and changed nothing")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(out), "\n")+1-strings.Count(out, `"level":"warn"`), "one line (besides flag warnings):\n%s", out)
	require.Equal(t, before, treeSums(t, dir), "no file of etcd's data dir changed")

	ep, stop = startEtcd(t, parent)
	defer stop()
	cli, err = clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	resp, err := cli.Get(ctx, "etcd-key")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, "etcd-value", string(resp.Kvs[0].Value))
}
