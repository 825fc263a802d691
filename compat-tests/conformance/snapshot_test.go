package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// Maintenance.Snapshot streams etcd's backend file: a bbolt database whose
// "key" bucket holds every revision by etcd's revision key, followed by
// the SHA-256 of the file (the trailer etcdctl checks). The snapshot is
// of the member asked, which may lag the one that took the put (in etcd
// too): the test asks one member, and a linearizable read on it first
// makes it apply the put.
func TestSnapshotIsEtcdBackendFile(t *testing.T) {
	c, p := newClient(t, endpoints[0]), prefix(t)
	put, err := c.Put(ctx(t), p+"snap", "shot")
	require.NoError(t, err)
	_, err = c.Get(ctx(t), p+"snap")
	require.NoError(t, err)
	rc, err := c.Snapshot(ctx(t))
	skipIfUnimplemented(t, err)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	rc.Close()
	skipIfUnimplemented(t, err)
	require.NoError(t, err)
	require.Equal(t, sha256.Size, len(b)%512, "a whole number of pages plus the SHA-256 trailer")
	db, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	want := sha256.Sum256(db)
	require.Equal(t, want[:], sum)

	path := filepath.Join(t.TempDir(), "snap.db")
	require.NoError(t, os.WriteFile(path, db, 0o600))
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer bdb.Close()
	k := binary.BigEndian.AppendUint64(nil, uint64(put.Header.Revision))
	k = append(k, '_')
	k = binary.BigEndian.AppendUint64(k, 0)
	require.NoError(t, bdb.View(func(tx *bolt.Tx) error {
		for _, name := range []string{"key", "meta", "lease", "members", "auth"} {
			require.NotNil(t, tx.Bucket([]byte(name)), "bucket %s", name)
		}
		v := tx.Bucket([]byte("key")).Get(k)
		require.NotNil(t, v, "the put at revision %d", put.Header.Revision)
		kv := &mvccpb.KeyValue{}
		require.NoError(t, proto.Unmarshal(v, kv))
		require.Equal(t, p+"snap", string(kv.Key))
		require.Equal(t, "shot", string(kv.Value))
		require.Equal(t, put.Header.Revision, kv.ModRevision)
		require.True(t, bytes.Equal(tx.Bucket([]byte("meta")).Get([]byte("storageVersion"))[:2], []byte("3.")))
		return nil
	}))
}
