// Package mixin checks that the etcd mixin (etcd's Prometheus alerts and
// Grafana dashboards, contrib/mixin of go.etcd.io/etcd/v3@v3.6.8 on the
// module proxy) works on MetaStore: its alerts are rendered with
// go-jsonnet, and every metric and label name their expressions and the
// dashboards' queries use must be among the series a live three-member
// cluster exposes: etcd 3.7.3 first, then bin/metastore (except the names
// the test lists with the reason).
package mixin
