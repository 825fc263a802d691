// Package failpoint is the consensus module's hook into gofail: code points
// where a build with the failpoints tag (bin/metastore-failpoints) can be
// told to panic, sleep or return a value through GOFAIL_FAILPOINTS or
// GOFAIL_HTTP, as etcd's robustness suite does with etcd's. In the normal
// build every function is empty and compiles away.
package failpoint
