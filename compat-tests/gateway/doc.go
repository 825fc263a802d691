// Package gateway checks etcd's HTTP/JSON gateway (/v3/*): the same
// sequence of JSON requests is sent to a fresh etcd 3.7.3 and a fresh
// bin/metastore, and every response — status code and body, after the
// identifiers that differ by nature (cluster and member IDs, lease IDs,
// sizes) are normalized — must be identical.
package gateway
