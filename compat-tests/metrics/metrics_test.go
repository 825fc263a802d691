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
// Compaction and defrag run only with first set (once per cluster).
func workload(t *testing.T, ep string, first bool) {
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
	if first {
		_, err = c.Compact(ctx(t), r.Header.Revision)
		require.NoError(t, err)
		_, err = c.Defragment(ctx(t), ep)
		require.NoError(t, err)
	}
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

// union adds from's names to into, with the union of their label names.
func union(into, from map[string]string) {
	for name, labels := range from {
		if old, ok := into[name]; ok && old != labels {
			set := map[string]bool{}
			for _, l := range strings.Split(old+","+labels, ",") {
				if l != "" {
					set[l] = true
				}
			}
			var ls []string
			for l := range set {
				ls = append(ls, l)
			}
			sort.Strings(ls)
			labels = strings.Join(ls, ",")
		}
		into[name] = labels
	}
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
	// One member and three: a member of a cluster also has the peer
	// network's series, the leader's and the followers' own. Every
	// member is scraped; the sets are the union over a cluster's members.
	lackSet := map[string]bool{}
	for _, n := range []int{1, 3} {
		etcdEPs := etcdtest.StartT(t, etcdtest.Config{Members: n}).Endpoints
		msEPs := procs.StartMetastore(t, n).Endpoints
		etcd, ms := map[string]string{}, map[string]string{}
		for i := range n {
			workload(t, etcdEPs[i], i == 0)
			workload(t, msEPs[i], i == 0)
		}
		for i := range n {
			union(etcd, scrape(t, etcdEPs[i]))
			union(ms, scrape(t, msEPs[i]))
		}
		// What etcd has that MetaStore lacks: a name, or label names on
		// a name both have ("name{labels}").
		etcdOwn, lacks := 0, 0
		for name, labels := range etcd {
			if ownMetric(name) {
				continue
			}
			etcdOwn++
			got, ok := ms[name]
			switch {
			case !ok:
				lackSet[name] = true
				lacks++
			case got != labels:
				lackSet[fmt.Sprintf("%s{%s}", name, labels)] = true
				lacks++
			}
		}
		msOwn := 0
		for name := range ms {
			if !ownMetric(name) {
				msOwn++
			}
		}
		t.Logf("%d member(s): metric names outside go_/process_: etcd %d, MetaStore %d, etcd's missing on MetaStore %d", n, etcdOwn, msOwn, lacks)
	}
	var lacks []string
	for l := range lackSet {
		lacks = append(lacks, l)
	}
	sort.Strings(lacks)
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
