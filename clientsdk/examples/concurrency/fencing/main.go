// Command fencing shows the failure mode fencing prevents: a lock holder
// whose lease expires while it is paused, and who resumes believing it
// still holds the lock. Its write through Mutex.Txn is refused; a plain
// write would have gone through.
//
//	go run ./clientsdk/examples/concurrency/fencing --endpoints 127.0.0.1:2379
package main

import examples "github.com/metastore/metastore/clientsdk/examples/concurrency"

func main() { examples.Main("/examples/fencing", examples.RunFencing) }
