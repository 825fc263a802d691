// Package e2e tests the clientsdk against a real etcd (embedded, started
// by the tests on loopback) — and, with -endpoints, against any endpoint
// such as a running MetaStore. It is a separate module so that clientsdk's
// users never inherit the etcd server dependency.
package e2e
