// Package testcluster runs MetaStore members in-process for the server's
// tests: members on loopback ports with fresh data dirs, started, stopped
// and restarted on the same disk, and optionally with every peer link
// through a bridge a test can cut to partition a member. It is the one
// place the server's tests build clusters.
package testcluster
