// Package opsguide runs docs/OPERATIONS.md: every ```sh ops-test block,
// in the order the guide gives them, as one shell session against real
// bin/metastore processes and etcdctl 3.7.3, with the guide's three
// machines (10.0.0.1–3) mapped to loopback ports. A `metastore` command
// in a block starts a member in the background; an HTML comment
// `<!-- ops-test: restart mN -->` stops member mN with SIGTERM and starts
// it again with the same command, as the guide's rolling upgrade does.
package opsguide
