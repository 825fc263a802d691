package storage_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/memory"
)

func etcdPair(t *testing.T, r storage.Revision, tomb bool, kv *mvccpb.KeyValue) (k, v []byte) {
	v, err := proto.Marshal(kv)
	require.NoError(t, err)
	return storage.EtcdRevKey(r, tomb), v
}

// A store exported with ForEachEtcdKV and imported again is the same
// store: the same pairs, revision, hash at every revision, lease index.
func TestExportImportRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		src := newStore(t, e)
		for i := range 50 {
			_, err := src.Put([]byte{'a' + byte(i%7)}, []byte{byte(i)}, int64(i%3))
			require.NoError(t, err)
			if i%9 == 0 {
				_, _, err = src.DeleteRange([]byte{'a' + byte(i%5)}, nil)
				require.NoError(t, err)
			}
		}
		done, err := src.Compact(src.Rev() - 20)
		require.NoError(t, err)
		<-done
		sn, err := src.Snapshot()
		require.NoError(t, err)
		defer sn.Close()
		eng := memory.New()
		im, err := storage.NewImporter(eng)
		require.NoError(t, err)
		var pairs [][]byte
		require.NoError(t, sn.ForEachEtcdKV(func(k, v []byte) error {
			pairs = append(pairs, bytes.Clone(k), bytes.Clone(v))
			return im.PutEtcdKV(k, v)
		}))
		require.NoError(t, im.Finish(sn.CompactRev(), storage.ConsistentIndex{Index: 9, Term: 1}))
		dst, err := storage.Open(eng, storage.Config{})
		require.NoError(t, err)
		defer dst.Close()
		require.Equal(t, src.Rev(), dst.Rev())
		for r := sn.CompactRev() + 1; r <= src.Rev(); r++ {
			a, err := src.HashKV(r)
			require.NoError(t, err)
			b, err := dst.HashKV(r)
			require.NoError(t, err)
			require.Equal(t, a, b, "HashKV at %d", r)
			ra, err := src.Range([]byte{0}, []byte{0}, storage.RangeOptions{Rev: r})
			require.NoError(t, err)
			rb, err := dst.Range([]byte{0}, []byte{0}, storage.RangeOptions{Rev: r})
			require.NoError(t, err)
			require.Equal(t, ra.KVs, rb.KVs, "range at %d", r)
		}
		for l := int64(1); l < 3; l++ {
			a, err := src.LeaseKeys(l)
			require.NoError(t, err)
			b, err := dst.LeaseKeys(l)
			require.NoError(t, err)
			require.Equal(t, a, b, "keys of lease %d", l)
		}
		sn2, err := dst.Snapshot()
		require.NoError(t, err)
		defer sn2.Close()
		var back [][]byte
		require.NoError(t, sn2.ForEachEtcdKV(func(k, v []byte) error {
			back = append(back, bytes.Clone(k), bytes.Clone(v))
			return nil
		}))
		require.Equal(t, pairs, back)
	})
}

// etcdutl's --bump-revision leaves an empty value at the bumped revision:
// the revision moves, nothing else.
func TestImportRevisionMarker(t *testing.T) {
	eng := memory.New()
	im, err := storage.NewImporter(eng)
	require.NoError(t, err)
	kv := &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("v"), CreateRevision: 2, ModRevision: 2, Version: 1}
	k, v := etcdPair(t, storage.Revision{Main: 2}, false, kv)
	require.NoError(t, im.PutEtcdKV(k, v))
	require.NoError(t, im.PutEtcdKV(storage.EtcdRevKey(storage.Revision{Main: 1002}, false), nil))
	require.NoError(t, im.Finish(1002, storage.ConsistentIndex{}))
	s, err := storage.Open(eng, storage.Config{})
	require.NoError(t, err)
	defer s.Close()
	require.EqualValues(t, 1002, s.Rev())
	r, err := s.Range([]byte("a"), nil, storage.RangeOptions{})
	require.NoError(t, err)
	require.Len(t, r.KVs, 1)
	rev, err := s.Put([]byte("b"), []byte("v"), 0)
	require.NoError(t, err)
	require.EqualValues(t, 1003, rev)
}

func TestImportRefusesBadInput(t *testing.T) {
	kv := &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("v"), CreateRevision: 2, ModRevision: 2, Version: 1}
	k2, v2 := etcdPair(t, storage.Revision{Main: 2}, false, kv)
	for name, feed := range map[string]func(im *storage.Importer) error{
		"out of order": func(im *storage.Importer) error {
			require.NoError(t, im.PutEtcdKV(k2, v2))
			return im.PutEtcdKV(k2, v2)
		},
		"bad key":   func(im *storage.Importer) error { return im.PutEtcdKV([]byte("nope"), v2) },
		"bad value": func(im *storage.Importer) error { return im.PutEtcdKV(k2, []byte{0xff, 0xff}) },
		"mod revision not the key's": func(im *storage.Importer) error {
			k, v := etcdPair(t, storage.Revision{Main: 3}, false, kv)
			return im.PutEtcdKV(k, v)
		},
		"compaction after the end": func(im *storage.Importer) error {
			require.NoError(t, im.PutEtcdKV(k2, v2))
			return im.Finish(5, storage.ConsistentIndex{})
		},
	} {
		t.Run(name, func(t *testing.T) {
			eng := memory.New()
			im, err := storage.NewImporter(eng)
			require.NoError(t, err)
			require.ErrorIs(t, feed(im), storage.ErrCorrupt)
			require.Error(t, im.Finish(0, storage.ConsistentIndex{}), "a failed import does not finish")
			_, err = storage.Open(eng, storage.Config{})
			require.ErrorIs(t, err, storage.ErrIncompleteRestore, "a failed import is never mistaken for data")
		})
	}
}
