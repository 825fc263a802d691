package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/compat-tests/internal/procs"
	"github.com/metastore/metastore/tools/etcdtest"
)

// step is one gateway request; stream reads that many JSON messages from
// a streaming response.
type step struct {
	path, body string
	stream     int
}

var steps = []step{
	{"/v3/kv/put", `{"key":"Zm9v","value":"YmFy"}`, 0},
	{"/v3/kv/put", `{"key":"Zm9v","value":"YmF6","prev_kv":true}`, 0},
	{"/v3/kv/range", `{"key":"Zm9v"}`, 0},
	{"/v3/kv/range", `{"key":"Zg==","range_end":"Zw==","keys_only":true}`, 0},
	{"/v3/kv/range", `{"key":"Zm9v","revision":"100"}`, 0},
	{"/v3/kv/range", `{"key":""}`, 0},
	{"/v3/kv/range", `not json`, 0},
	{"/v3/kv/txn", `{"compare":[{"key":"Zm9v","target":"VALUE","result":"EQUAL","value":"YmF6"}],"success":[{"request_put":{"key":"dA==","value":"MQ=="}}],"failure":[{"request_range":{"key":"Zm9v"}}]}`, 0},
	{"/v3/kv/txn", `{"success":[{"Request":{"RequestPut":{"key":"Zm9v","value":"YmFy"}}}]}`, 0}, // unknown fields: an empty op
	{"/v3/kv/deleterange", `{"key":"dA==","prev_kv":true}`, 0},
	{"/v3/kv/compaction", `{"revision":"2"}`, 0},
	{"/v3/kv/range", `{"key":"Zm9v","revision":"1"}`, 0},
	{"/v3/lease/grant", `{"TTL":"60"}`, 0},
	{"/v3/lease/leases", `{}`, 0},
	{"/v3/kv/lease/leases", `{}`, 0},
	{"/v3/lease/timetolive", `{"ID":"1234"}`, 0},
	{"/v3/lease/revoke", `{"ID":"1234"}`, 0},
	{"/v3/watch", `{"create_request":{"key":"Zm9v","start_revision":"3"}}`, 2},
	{"/v3/lease/grant", `{"TTL":"60","ID":"9029"}`, 0},
	{"/v3/lock/lock", `{"name":"bG9jaw==","lease":"9029"}`, 0},
	{"/v3/lock/unlock", `{"key":"bG9jay8yMzQ1"}`, 0},
	{"/v3/lock/lock", `{"name":"bG9jaw==","lease":"1"}`, 0},
	{"/v3/election/campaign", `{"name":"ZWxlY3Rpb24=","lease":"9029","value":"djE="}`, 0},
	{"/v3/election/leader", `{"name":"ZWxlY3Rpb24="}`, 0},
	{"/v3/election/proclaim", `{"leader":{"name":"ZWxlY3Rpb24=","key":"ZWxlY3Rpb24vMjM0NQ==","rev":"8","lease":"9029"},"value":"djI="}`, 0},
	{"/v3/election/observe", `{"name":"ZWxlY3Rpb24="}`, 1},
	{"/v3/election/resign", `{"leader":{"name":"ZWxlY3Rpb24=","key":"ZWxlY3Rpb24vMjM0NQ==","rev":"8","lease":"9029"}}`, 0},
	{"/v3/election/leader", `{"name":"ZWxlY3Rpb24="}`, 0},
	{"/v3/election/proclaim", `{"value":"djM="}`, 0},
	{"/v3/cluster/member/list", `{}`, 0},
	{"/v3/maintenance/alarm", `{"action":"GET"}`, 0},
	{"/v3/auth/status", `{}`, 0},
	{"/v3/auth/user/add", `{"name":"root","password":"pw"}`, 0},
	{"/v3/auth/user/grant", `{"user":"root","role":"root"}`, 0},
	{"/v3/auth/role/add", `{"name":"r"}`, 0},
	{"/v3/auth/role/grant", `{"name":"r","perm":{"key":"YQ==","range_end":"Yg==","permType":"READ"}}`, 0},
	{"/v3/auth/user/list", `{}`, 0},
	{"/v3/auth/role/get", `{"role":"r"}`, 0},
	{"/v3/auth/enable", `{}`, 0},
	{"/v3/kv/range", `{"key":"Zm9v"}`, 0},
	{"/v3/auth/authenticate", `{"name":"root","password":"wrong"}`, 0},
	{"/v3/auth/authenticate", `{"name":"root","password":"pw"}`, 0}, // the token is used below
	{"/v3/kv/range", `{"key":"Zm9v"}`, 0},
	{"/v3/auth/disable", `{}`, 0},
	{"/v3/nope", `{}`, 0},
}

// normalize drops what differs between two fresh clusters by nature.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			switch k {
			case "cluster_id", "member_id", "ID", "leader", "token", "dbSize", "dbSizeInUse", "dbSizeQuota", "peerURLs", "clientURLs", "name", "raft_term":
				out[k] = "<" + k + ">"
			default:
				out[k] = normalize(val)
			}
		}
		return out
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	}
	return v
}

func canon(t *testing.T, raw string) string {
	var v any
	if json.Unmarshal([]byte(raw), &v) != nil {
		return strings.TrimSpace(raw)
	}
	b, err := json.Marshal(normalize(v))
	require.NoError(t, err)
	return string(b)
}

func run(t *testing.T, endpoint string) []string {
	var out []string
	token := ""
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+endpoint+s.path, strings.NewReader(s.body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var got []string
		if s.stream > 0 {
			rd := bufio.NewReader(resp.Body)
			dec := json.NewDecoder(rd)
			for range s.stream {
				var m json.RawMessage
				require.NoError(t, dec.Decode(&m))
				got = append(got, canon(t, string(m)))
			}
		} else {
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			got = append(got, canon(t, string(b)))
			var auth struct{ Token string }
			if strings.HasSuffix(s.path, "/authenticate") && json.Unmarshal(b, &auth) == nil && auth.Token != "" {
				token = auth.Token
			}
		}
		resp.Body.Close()
		cancel()
		out = append(out, fmt.Sprintf("%s %s -> %d %s", s.path, s.body, resp.StatusCode, strings.Join(got, " ")))
	}
	return out
}

func TestGatewayMatchesEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs bin/metastore: make test runs it after the build")
	}
	want := run(t, etcdtest.StartT(t, etcdtest.Config{}).Endpoints[0])
	got := run(t, procs.StartMetastore(t, 1).Endpoints[0])
	require.Equal(t, want, got)
}

// healthAnswers are the /livez and /readyz answers, lines sorted (etcd
// lists the checks in map order).
func healthAnswers(t *testing.T, endpoint string) []string {
	var out []string
	for _, q := range []string{
		"/livez", "/livez?verbose", "/readyz", "/readyz?verbose", "/readyz?verbose&exclude=linearizable_read",
		"/readyz?verbose&exclude=nope", "/readyz/non_learner", "/readyz/data_corruption?verbose", "/livez/serializable_read",
		"/readyz/nope",
	} {
		resp, err := http.Get("http://" + endpoint + q)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		sort.Strings(lines)
		out = append(out, fmt.Sprintf("%s -> %d %q", q, resp.StatusCode, lines))
	}
	return out
}

func TestHealthEndpointsMatchEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs bin/metastore: make test runs it after the build")
	}
	want := healthAnswers(t, etcdtest.StartT(t, etcdtest.Config{}).Endpoints[0])
	got := healthAnswers(t, procs.StartMetastore(t, 1).Endpoints[0])
	require.Equal(t, want, got)
}
