package examples

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v3 "go.etcd.io/etcd/client/v3"
)

// Scenario is a runnable example: it plays out under prefix, narrating to out.
type Scenario func(ctx context.Context, c *v3.Client, prefix string, out io.Writer) error

// Main is the body of each example program: it parses --endpoints, connects
// and runs scenario under prefix, exiting non-zero on error.
func Main(prefix string, scenario Scenario) {
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
	if err := scenario(ctx, c, prefix, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		cancel()
		c.Close()
		os.Exit(1)
	}
}
