package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckDataDir(t *testing.T) {
	write := func(t *testing.T, dir string, files map[string]string) {
		for name, content := range files {
			p := filepath.Join(dir, name)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
			require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // "" accepted, else a substring of the refusal
	}{
		{"missing", nil, ""},
		{"unrelated files beside member", map[string]string{"lost+found/x": "x"}, ""},
		{"ours", map[string]string{"member/metastore": dataDirMarkerContent, "member/kv/CURRENT": "MANIFEST-1\n"}, ""},
		{"ours before the marker", map[string]string{"member/kv/CURRENT": "MANIFEST-1\n", "member/wal/0000000000000000-0000000000000001.wal": ""}, ""},
		{"etcd", map[string]string{"member/snap/db": "bolt", "member/wal/0000000000000000-0000000000000000.wal": "etcd"}, "is an etcd data dir (member/snap/db)"},
		{"etcd with our marker too", map[string]string{"member/metastore": dataDirMarkerContent, "member/snap/db": "bolt"}, "is an etcd data dir"},
		{"newer version", map[string]string{"member/metastore": "metastore data dir v9\n"}, `unknown data dir version "metastore data dir v9"`},
		{"someone else's member dir", map[string]string{"member/wal/0000000000000000-0000000000000000.wal": "x", "member/other": "y"}, "is not a MetaStore data dir (member/ holds other, wal)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			write(t, dir, tc.files)
			err := checkDataDir(dir)
			if tc.want == "" {
				require.NoError(t, err)
				require.NoError(t, prepareDataDir(dir))
				b, err := os.ReadFile(filepath.Join(dir, "member", dataDirMarker))
				require.NoError(t, err)
				require.Equal(t, dataDirMarkerContent, string(b))
				require.NoError(t, checkDataDir(dir), "a prepared data dir is accepted")
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, "changed nothing")
		})
	}
}
