package storage_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage"
)

func TestRevisionsAndGenerations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		require.EqualValues(t, 1, s.Rev(), "a new store is at revision 1, as etcd")
		require.EqualValues(t, 2, put(t, s, "a", "1"))
		require.EqualValues(t, 3, put(t, s, "a", "2"))
		res, err := s.Range([]byte("a"), nil, storage.RangeOptions{})
		require.NoError(t, err)
		require.Equal(t, []*mvccpb.KeyValue{{Key: []byte("a"), Value: []byte("2"), CreateRevision: 2, ModRevision: 3, Version: 2}}, res.KVs)
		require.EqualValues(t, 3, res.Rev)
		require.EqualValues(t, 1, res.Count)

		n, rev, err := s.DeleteRange([]byte("a"), nil)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		require.EqualValues(t, 4, rev)
		_, ok := get(t, s, "a", 0)
		require.False(t, ok)

		require.EqualValues(t, 5, put(t, s, "a", "3"))
		res, err = s.Range([]byte("a"), nil, storage.RangeOptions{})
		require.NoError(t, err)
		require.Equal(t, []*mvccpb.KeyValue{{Key: []byte("a"), Value: []byte("3"), CreateRevision: 5, ModRevision: 5, Version: 1}}, res.KVs,
			"re-creating a deleted key starts a new generation")

		// Past revisions see the past.
		for rev, want := range map[int64]string{2: "1", 3: "2", 4: "", 5: "3"} {
			v, ok := get(t, s, "a", rev)
			require.Equal(t, want != "", ok, "rev %d", rev)
			require.Equal(t, want, v, "rev %d", rev)
		}
		// Deleting nothing does not move the revision.
		n, rev, err = s.DeleteRange([]byte("nothing"), nil)
		require.NoError(t, err)
		require.Zero(t, n)
		require.EqualValues(t, 5, rev)
		require.EqualValues(t, 5, s.Rev())
	})
}
