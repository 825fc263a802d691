// Command election runs two candidates: the first leads, writes through
// its leadership guard and resigns; the second takes over with a larger
// fencing token, and an observer sees both in order.
//
//	go run ./clientsdk/examples/concurrency/election --endpoints 127.0.0.1:2379
package main

import examples "github.com/metastore/metastore/clientsdk/examples/concurrency"

func main() { examples.Main("/examples/election", examples.RunElection) }
