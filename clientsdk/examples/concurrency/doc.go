// Package examples holds runnable examples of the clientsdk: each
// subdirectory is a program (go run ./clientsdk/examples/concurrency/NAME
// --endpoints host:port) whose scenario is a Run function here, which the
// e2e tests also run against a real etcd.
package examples
