package server_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/server"
)

func TestLoadConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etcd.yml")
	require.NoError(t, os.WriteFile(path, []byte(`
name: infra0
data-dir: /var/lib/etcd
listen-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379
initial-cluster: infra0=http://10.0.0.1:2380
heartbeat-interval: 50
election-timeout: 500
quota-backend-bytes: 8589934592
log-outputs: [stderr]
watch-progress-notify-interval: 5s
strict-reconfig-check: true
enable-v2: false
proxy: 'off'
`), 0o600))
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.AddFlags(fs)
	warnings, err := server.LoadConfigFile(fs, path)
	require.NoError(t, err)
	require.Equal(t, "infra0", cfg.Name)
	require.Equal(t, "/var/lib/etcd", cfg.DataDir)
	require.Equal(t, "http://10.0.0.1:2379,http://127.0.0.1:2379", cfg.ListenClientURLs)
	require.EqualValues(t, 50, cfg.HeartbeatIntervalMs)
	require.EqualValues(t, 8<<30, cfg.QuotaBackendBytes)
	require.Equal(t, "stderr", cfg.LogOutputs)
	require.Equal(t, 5*time.Second, cfg.WatchProgressNotifyInterval)
	require.Len(t, warnings, 2, "keys etcd 3.7 no longer knows are reported, not fatal: %v", warnings)
	require.Contains(t, warnings[0], `unknown key "enable-v2"`)
	require.NoError(t, cfg.Validate())
	require.Empty(t, cfg.Warnings(), "strict-reconfig-check=true is etcd's default")
}

func TestEtcdOnlyFlags(t *testing.T) {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.AddFlags(fs)
	require.NoError(t, fs.Parse([]string{"--enable-pprof", "--max-wals", "9", "--snapshot", "x", "--trusted-ca-file", ""}))
	require.NoError(t, cfg.Validate(), "harmless flags and refused ones at their default are accepted")
	require.Equal(t, []string{
		"--max-wals=9 has no effect in MetaStore: WAL retention is managed by the consensus module",
	}, cfg.Warnings())
	require.NoError(t, fs.Parse([]string{"--discovery-token", "x"}))
	require.ErrorContains(t, cfg.Validate(), "--discovery-token=x: discovery is not supported")
}

// The sample config file the repository ships loads without a warning
// and validates: every key in it is one MetaStore implements.
func TestSampleConfigFileLoads(t *testing.T) {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("metastore", flag.ContinueOnError)
	cfg.AddFlags(fs)
	warnings, err := server.LoadConfigFile(fs, filepath.Join("..", "metastore.conf.yml.sample"))
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.NoError(t, cfg.Validate())
	require.Equal(t, "default", cfg.Name)
	require.Equal(t, "default.metastore", cfg.DataDir)
	require.Equal(t, "default=http://localhost:2380", cfg.InitialCluster)
}
