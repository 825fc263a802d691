package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// etcd's /livez and /readyz: a registry of named checks per endpoint.
// /livez runs serializable_read; /readyz runs data_corruption,
// serializable_read, linearizable_read and non_learner. ?exclude=name
// skips a check (an unknown name is logged and ignored, as etcd),
// ?verbose lists every check's result, /readyz/<name> runs one. A failed
// check answers 503 with the list; otherwise "ok". Each run is counted in
// etcd_server_healthcheck{type,name} and etcd_server_healthchecks_total.

type healthCheck func(ctx context.Context) error

type healthChecks struct {
	typ    string // "livez" or "readyz"
	checks map[string]healthCheck
}

func (s *Server) healthRegistries() []healthChecks {
	return []healthChecks{
		{"livez", map[string]healthCheck{"serializable_read": s.readCheck(true)}},
		{"readyz", map[string]healthCheck{
			"data_corruption":   s.alarmCheck(pb.AlarmType_CORRUPT),
			"serializable_read": s.readCheck(true),
			"linearizable_read": s.readCheck(false),
			"non_learner": func(context.Context) error {
				if s.node.Status().IsLearner {
					return fmt.Errorf("not supported for learner")
				}
				return nil
			},
		}},
	}
}

func (s *Server) readCheck(serializable bool) healthCheck {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout(s.cfg))
		defer cancel()
		_, err := (&kvBackend{s: s}).Range(ctx, &pb.RangeRequest{Key: []byte{0}, KeysOnly: true, Limit: 1, Serializable: serializable})
		return err
	}
}

func (s *Server) alarmCheck(at pb.AlarmType) healthCheck {
	return func(context.Context) error {
		if s.alarms.Active(at) {
			return fmt.Errorf("alarm activated: %s", at.String())
		}
		return nil
	}
}

// healthMetrics are etcd's per-check gauge and counter.
type healthMetrics struct {
	result *prometheus.GaugeVec
	runs   *prometheus.CounterVec
}

func newHealthMetrics() healthMetrics {
	return healthMetrics{
		result: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "server", Name: "healthcheck", Help: "The result of each kind of healthcheck.",
		}, []string{"type", "name"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "healthchecks_total", Help: "The total number of each kind of healthcheck.",
		}, []string{"type", "name", "status"}),
	}
}

// run runs the named checks in name order and returns whether all passed
// and the per-check lines.
func (hc healthChecks) run(ctx context.Context, m healthMetrics, names []string) (bool, string) {
	sort.Strings(names)
	ok := true
	var out bytes.Buffer
	for _, name := range names {
		status, v := "success", 1.0
		if err := hc.checks[name](ctx); err != nil {
			fmt.Fprintf(&out, "[-]%s failed: %v\n", name, err)
			ok, status, v = false, "error", 0
		} else {
			fmt.Fprintf(&out, "[+]%s ok\n", name)
		}
		m.result.WithLabelValues(hc.typ, name).Set(v)
		m.runs.WithLabelValues(hc.typ, name, status).Inc()
	}
	return ok, out.String()
}

func (s *Server) installHealthChecks(mux *http.ServeMux) {
	for _, hc := range s.healthRegistries() {
		root := "/" + hc.typ
		mux.Handle(root, s.healthHandler(root, func(r *http.Request) (bool, string) {
			excluded := map[string]bool{}
			for _, v := range r.URL.Query()["exclude"] {
				for _, name := range strings.Split(v, ",") {
					excluded[name] = true
				}
			}
			var names []string
			for name := range hc.checks {
				if excluded[name] {
					delete(excluded, name)
					continue
				}
				names = append(names, name)
			}
			if len(excluded) > 0 {
				var unknown []string
				for name := range excluded {
					unknown = append(unknown, fmt.Sprintf("%q", name))
				}
				sort.Strings(unknown)
				s.lg.Warn("some health checks cannot be excluded", zap.String("missing-health-checks", strings.Join(unknown, ",")))
			}
			return hc.run(r.Context(), s.metrics.health, names)
		}))
		for name := range hc.checks {
			sub := path.Join(root, name)
			mux.Handle(sub, s.healthHandler(sub, func(r *http.Request) (bool, string) {
				return hc.run(r.Context(), s.metrics.health, []string{name})
			}))
		}
	}
}

func (s *Server) healthHandler(path string, check func(*http.Request) (bool, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		ok, reason := check(r)
		if !ok {
			http.Error(w, reason, http.StatusServiceUnavailable)
			s.lg.Error("Health check error", zap.String("path", path), zap.String("reason", reason), zap.Int("status-code", http.StatusServiceUnavailable))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if _, verbose := r.URL.Query()["verbose"]; verbose {
			fmt.Fprint(w, reason)
		}
		fmt.Fprint(w, "ok\n")
	}
}
