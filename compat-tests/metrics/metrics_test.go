package metrics

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/compat-tests/internal/procs"
	"github.com/metastore/metastore/tools/etcdtest"
)

var update = flag.Bool("update", false, "rewrite testdata/missing.txt with what MetaStore lacks today")

const missingFile = "testdata/missing.txt"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// workload touches what the metrics count: puts, ranges, a txn, a delete,
// a watch with events, a lease with a keepalive, a compaction, a defrag,
// a status and a member list.
func workload(t *testing.T, ep string) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()
	wctx, stop := context.WithCancel(ctx(t))
	defer stop()
	w := c.Watch(wctx, "k", clientv3.WithPrefix())
	for i := range 20 {
		_, err := c.Put(ctx(t), fmt.Sprint("k", i), "v")
		require.NoError(t, err)
	}
	<-w
	_, err = c.Get(ctx(t), "k", clientv3.WithPrefix())
	require.NoError(t, err)
	_, err = c.Get(ctx(t), "k1", clientv3.WithSerializable())
	require.NoError(t, err)
	_, err = c.Txn(ctx(t)).Then(clientv3.OpPut("t", "1")).Commit()
	require.NoError(t, err)
	_, err = c.Delete(ctx(t), "k0")
	require.NoError(t, err)
	l, err := c.Grant(ctx(t), 60)
	require.NoError(t, err)
	_, err = c.KeepAliveOnce(ctx(t), l.ID)
	require.NoError(t, err)
	r, err := c.Put(ctx(t), "leased", "v", clientv3.WithLease(l.ID))
	require.NoError(t, err)
	_, err = c.Compact(ctx(t), r.Header.Revision)
	require.NoError(t, err)
	_, err = c.Defragment(ctx(t), ep)
	require.NoError(t, err)
	_, err = c.Status(ctx(t), ep)
	require.NoError(t, err)
	_, err = c.MemberList(ctx(t))
	require.NoError(t, err)
}

// scrape returns each metric family's name with its label names
// ("name{a,b}"), histogram and summary suffixes folded into the family.
func scrape(t *testing.T, ep string) map[string]string {
	resp, err := http.Get("http://" + ep + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]string{}
	for name, f := range fams {
		labels := map[string]bool{}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				labels[l.GetName()] = true
			}
		}
		var ls []string
		for l := range labels {
			ls = append(ls, l)
		}
		sort.Strings(ls)
		out[name] = strings.Join(ls, ",")
	}
	return out
}

// ownMetric reports names that are the process's and not the server's:
// the Go runtime's and the process collector's depend on the binary.
func ownMetric(name string) bool {
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_")
}

// readMissing reads the documented gap: one name per line, optionally
// followed by why it is missing.
func readMissing(t *testing.T) map[string]string {
	f, err := os.Open(missingFile)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, why, _ := strings.Cut(line, " ")
		out[name] = strings.TrimSpace(why)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestMetricSetMatchesEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs bin/metastore: make test runs it after the build (make metrics-diff)")
	}
	etcdEP := etcdtest.StartT(t, etcdtest.Config{}).Endpoints[0]
	msEP := procs.StartMetastore(t, 1).Endpoints[0]
	workload(t, etcdEP)
	workload(t, msEP)
	etcd, ms := scrape(t, etcdEP), scrape(t, msEP)

	// What etcd has that MetaStore lacks: a name, or label names on a
	// name both have ("name{labels}").
	var lacks []string
	etcdOwn := 0
	for name, labels := range etcd {
		if ownMetric(name) {
			continue
		}
		etcdOwn++
		got, ok := ms[name]
		switch {
		case !ok:
			lacks = append(lacks, name)
		case got != labels:
			lacks = append(lacks, fmt.Sprintf("%s{%s}", name, labels))
		}
	}
	sort.Strings(lacks)
	msOwn := 0
	for name := range ms {
		if !ownMetric(name) {
			msOwn++
		}
	}
	t.Logf("metric names outside go_/process_: etcd %d, MetaStore %d, etcd's missing on MetaStore %d", etcdOwn, msOwn, len(lacks))
	if *update {
		header := "# etcd 3.7.3 metric names (or name{label names}) MetaStore does not expose, each\n" +
			"# with why when it does not apply to MetaStore; written by go test ./metrics -update\n" +
			"# (reasons kept), checked by TestMetricSetMatchesEtcd.\n"
		old := readMissing(t)
		var lines []string
		for _, l := range lacks {
			lines = append(lines, strings.TrimSpace(l+" "+old[l]))
		}
		require.NoError(t, os.WriteFile(filepath.Clean(missingFile), []byte(header+strings.Join(lines, "\n")+"\n"), 0o644))
	}
	known := readMissing(t)
	var unexpected []string
	for _, l := range lacks {
		if _, ok := known[l]; !ok {
			unexpected = append(unexpected, l)
		}
		delete(known, l)
	}
	require.Empty(t, unexpected, "etcd has these and MetaStore does not (and they are not in %s)", missingFile)
	var stale []string
	for l := range known {
		stale = append(stale, l)
	}
	sort.Strings(stale)
	require.Empty(t, stale, "listed in %s but MetaStore has them now: remove them", missingFile)
}
