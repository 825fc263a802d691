package server

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/soheilhy/cmux"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"
	"go.uber.org/zap"
)

// The HTTP endpoints etcd serves beside gRPC: on every client URL (the
// port is shared with gRPC through cmux, as etcd does) and on each
// --listen-metrics-urls listener.
//
//	/health   {"health":"true","reason":""}; 503 with the reason (ALARM
//	          NOSPACE, RAFT NO LEADER, RANGE ERROR:…) otherwise;
//	          ?serializable=true checks this member only, ?exclude=NOSPACE
//	          ignores an alarm
//	/livez    etcd's live checks (serializable_read), ?verbose, ?exclude=
//	/readyz   etcd's ready checks (data_corruption, serializable_read,
//	          linearizable_read, non_learner), /readyz/<check> (healthz.go)
//	/version  {"etcdserver":"3.7.3","etcdcluster":"3.7.0","storage":"3.7.0"}
//	/metrics  Prometheus metrics under etcd's names where one exists
//	/debug/vars  the process's expvar variables (cmdline, memstats), as etcd
//	/debug/pprof/  Go profiles, with --enable-pprof

// Health is etcd's /health answer.
type Health struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

func (s *Server) checkHealth(ctx context.Context, exclude map[string]bool, serializable bool) Health {
	for _, a := range s.alarms.Get(pb.AlarmType_NONE) {
		if exclude[a.Alarm.String()] {
			continue
		}
		reason := "ALARM UNKNOWN"
		switch a.Alarm {
		case pb.AlarmType_NOSPACE:
			reason = "ALARM NOSPACE"
		case pb.AlarmType_CORRUPT:
			reason = "ALARM CORRUPT"
		}
		return Health{"false", reason}
	}
	if !serializable && s.node.Leader() == 0 {
		return Health{"false", "RAFT NO LEADER"}
	}
	if err := s.readCheck(serializable)(ctx); err != nil {
		return Health{"false", fmt.Sprintf("RANGE ERROR:%s", err)}
	}
	return Health{"true", ""}
}

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		exclude := map[string]bool{}
		for _, v := range r.URL.Query()["exclude"] {
			exclude[v] = true
		}
		h := s.checkHealth(r.Context(), exclude, r.URL.Query().Get("serializable") == "true")
		if h.Health == "true" {
			s.metrics.healthOK.Inc()
		} else {
			s.metrics.healthFailed.Inc()
		}
		d, _ := json.Marshal(h)
		if h.Health != "true" {
			http.Error(w, string(d), http.StatusServiceUnavailable)
			return
		}
		w.Write(d)
	})
	s.installHealthChecks(mux)
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(version.Versions{Server: s.cfg.EmulatedEtcdVersion, Cluster: s.cfg.clusterVersion(), Storage: s.cfg.clusterVersion()})
		w.Write(b)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	// etcd's /debug/vars: the process's expvar variables (Go's handler
	// writes etcd's format).
	mux.HandleFunc("/debug/vars", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		expvar.Handler().ServeHTTP(w, r)
	})
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if s.gateway != nil {
		mux.Handle("/v3/", s.gateway)
		mux.Handle("/v3beta/", s.gateway)
	}
	return s.gatewayAccess(mux)
}

// metrics are collected on scrape from the server's state, so the hot
// paths carry no instrumentation.
type metrics struct {
	reg                    *prometheus.Registry
	healthOK, healthFailed prometheus.Counter
	health                 healthMetrics
}

func (s *Server) newMetrics() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(subsystem, name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: subsystem, Name: name, Help: help}, f))
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge("server", "has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", func() float64 { return b2f(s.node.Leader() != 0) })
	gauge("server", "is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", func() float64 { return b2f(s.leading()) })
	gauge("server", "is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.", func() float64 { return b2f(s.node.Status().IsLearner) })
	gauge("server", "proposals_committed_total", "The total number of consensus proposals committed.", func() float64 { return float64(s.node.Status().Commit) })
	gauge("server", "proposals_applied_total", "The total number of consensus proposals applied.", func() float64 { return float64(s.node.Status().Applied) })
	gauge("server", "quota_backend_bytes", "Current backend storage quota size in bytes.", func() float64 { return float64(s.quotaBytes()) })
	gauge("mvcc", "db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", func() float64 { return float64(s.dbSize()) })
	gauge("mvcc", "db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.", func() float64 {
		sz, err := s.store.Load().Sizes()
		if err != nil {
			return 0
		}
		return float64(sz.Logical)
	})
	gauge("debugging", "mvcc_current_revision", "The current revision of store.", func() float64 { return float64(s.store.Load().Rev()) })
	gauge("debugging", "mvcc_compact_revision", "The revision of the last compaction in store.", func() float64 { return float64(s.store.Load().CompactRev()) })
	gauge("debugging", "lease_total", "The number of leases.", func() float64 { return float64(len(s.lessor.IDs())) })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "version", Help: "Which version is running. 1 for 'server_version' label with current version.",
		ConstLabels: prometheus.Labels{"server_version": s.cfg.EmulatedEtcdVersion},
	}, func() float64 { return 1 }))
	s.metrics.healthOK = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "health_success", Help: "The total number of successful health checks"})
	s.metrics.healthFailed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "health_failures", Help: "The total number of failed health checks"})
	reg.MustRegister(s.metrics.healthOK, s.metrics.healthFailed)
	s.metrics.health = newHealthMetrics()
	reg.MustRegister(s.metrics.health.result, s.metrics.health.runs)
	s.registerInstruments(reg)
	s.metrics.reg = reg
}

// serveClient serves gRPC and HTTP on one client listener, split by cmux:
// HTTP/2 goes to gRPC, the rest to HTTP.
func (s *Server) serveClient(l net.Listener) {
	if s.cfg.ListenClientHTTPURLs != "" {
		s.serve(s.clientSrv, l) // HTTP has listeners of its own
		return
	}
	if s.tlsLis[l] {
		s.serveClientTLS(l)
		return
	}
	m := cmux.New(l)
	hs := &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(s.lg)}
	// As etcd on an insecure listener: HTTP/2 is gRPC (whatever the
	// client's content-type: grpc-go sends application/grpc, other
	// clients application/grpc+proto), everything else is HTTP.
	grpcL := m.Match(cmux.HTTP2())
	httpL := m.Match(cmux.Any())
	s.httpServers = append(s.httpServers, hs)
	s.serve(s.clientSrv, grpcL)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = hs.Serve(httpL)
	}()
	go func() {
		defer s.wg.Done()
		if err := m.Serve(); err != nil && !isClosedErr(err) {
			s.lg.Warn("client listener stopped", zap.Error(err))
		}
	}()
}

// serveClientTLS serves a TLS client listener as etcd does: one HTTP
// server (HTTP/2 negotiated by ALPN, HTTP/1.1 otherwise) whose gRPC
// requests go to the gRPC server's ServeHTTP and the rest to the HTTP
// endpoints and the gateway. Telling gRPC apart from other HTTP/2 on a
// shared TLS port needs the request's headers, which only the HTTP/2
// server can read without disturbing the connection.
func (s *Server) serveClientTLS(l net.Listener) {
	web := s.httpHandler()
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				s.clientSrv.ServeHTTP(w, r)
				return
			}
			web.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(s.lg),
	}
	s.httpServers = append(s.httpServers, hs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !isClosedErr(err) {
			s.lg.Warn("client TLS listener stopped", zap.Error(err))
		}
	}()
}

// serveMetrics serves the HTTP endpoints on a --listen-metrics-urls or
// --listen-client-http-urls listener.
func (s *Server) serveMetrics(l net.Listener) {
	hs := &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(s.lg)}

	s.httpServers = append(s.httpServers, hs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = hs.Serve(l)
	}()
}

func isClosedErr(err error) bool {
	return strings.Contains(err.Error(), "use of closed network connection") || strings.Contains(err.Error(), "mux: server closed")
}
