// Package examples holds runnable programs that show how to use MetaStore
// with the clients people already have; each has a test that runs it
// against etcd 3.7.3 and, in make test, against bin/metastore.
package examples
