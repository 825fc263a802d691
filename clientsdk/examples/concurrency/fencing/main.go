// Command fencing shows the failure mode fencing prevents: a lock holder
// whose lease expires while it is paused, and who resumes believing it
// still holds the lock. Its write through Mutex.Txn is refused; a plain
// write would have gone through.
//
//	go run ./clientsdk/examples/concurrency/fencing --endpoints 127.0.0.1:2379
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	v3 "go.etcd.io/etcd/client/v3"

	examples "github.com/metastore/metastore/clientsdk/examples/concurrency"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated etcd or MetaStore endpoints")
	flag.Parse()
	c, err := v3.New(v3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := examples.RunFencing(ctx, c, "/examples/fencing", os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
