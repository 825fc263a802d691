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

// Started on a stopped etcd member's data dir, metastore imports etcd's db
// into <data-dir>/metastore and serves its data at etcd's revisions,
// without changing any file of etcd's: etcd serves the same data from it
// afterwards. A restart serves the imported dir again. (Long ago it
// truncated etcd's 64 MB WAL as a "torn tail" and served an empty store.)
func TestAdoptsEtcdDataDirAndChangesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, embed.DefaultName)
	ep, stop := startEtcd(t, parent)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	put, err := cli.Put(ctx, "etcd-key", "etcd-value")
	require.NoError(t, err)
	cli.Close()
	stop()

	before := treeSums(t, dir)
	require.Contains(t, before, filepath.Join("member", "snap", "db"))
	client, peer := freePort(t), freePort(t)
	serve := func(check func(c *clientv3.Client)) {
		done := make(chan int, 1)
		go func() {
			code, out := runCaptured(t, "--data-dir", dir,
				"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
				"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
				"--initial-cluster", "default=http://"+peer)
			if code != 0 {
				t.Logf("metastore: %s", out)
			}
			done <- code
		}()
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			defer ccancel()
			_, err := c.Get(cctx, "etcd-key")
			return err == nil
		}, 30*time.Second, 50*time.Millisecond, "metastore serves etcd's data dir")
		check(c)
		c.Close()
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		require.Equal(t, 0, <-done)
	}
	serve(func(c *clientv3.Client) {
		r, err := c.Get(ctx, "etcd-key")
		require.NoError(t, err)
		require.Len(t, r.Kvs, 1)
		require.Equal(t, "etcd-value", string(r.Kvs[0].Value))
		require.Equal(t, put.Header.Revision, r.Kvs[0].ModRevision, "etcd's revisions are kept")
		_, err = c.Put(ctx, "metastore-key", "v")
		require.NoError(t, err)
	})
	serve(func(c *clientv3.Client) {
		r, err := c.Get(ctx, "metastore-key")
		require.NoError(t, err)
		require.Len(t, r.Kvs, 1, "a restart serves the imported data dir again")
	})
	after := treeSums(t, dir)
	for f := range after {
		if strings.HasPrefix(f, "metastore"+string(filepath.Separator)) {
			delete(after, f)
		}
	}
	require.Equal(t, before, after, "no file of etcd's data dir changed")

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
