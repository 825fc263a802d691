// Command election runs two candidates: the first leads, writes through
// its leadership guard and resigns; the second takes over with a larger
// fencing token, and an observer sees both in order.
//
//	go run ./clientsdk/examples/concurrency/election --endpoints 127.0.0.1:2379
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
	if err := examples.RunElection(ctx, c, "/examples/election", os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
