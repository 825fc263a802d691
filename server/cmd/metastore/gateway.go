package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/proxy/tcpproxy"
	"go.uber.org/zap"
)

// runGateway is `metastore gateway start`, etcd's gateway: a TCP proxy
// that forwards client connections to the cluster's endpoints, skipping
// ones that fail for --retry-delay (etcd's own proxy code, tcpproxy).
func runGateway(args []string, errOut io.Writer) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	stop := make(chan struct{})
	go func() {
		<-sig
		close(stop)
	}()
	return gateway(args, errOut, stop, nil)
}

// gateway runs the proxy until stop is closed; ready, if set, gets the
// listen address once it listens.
func gateway(args []string, errOut io.Writer, stop <-chan struct{}, ready chan<- string) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen-addr", "127.0.0.1:23790", "listen address")
	endpoints := fs.String("endpoints", "127.0.0.1:2379", "comma separated etcd cluster endpoints")
	retry := fs.Duration("retry-delay", time.Minute, "duration of delay before retrying failed endpoints")
	for _, name := range []string{"discovery-srv", "discovery-srv-name", "trusted-ca-file"} {
		fs.String(name, "", "not supported by MetaStore's gateway")
	}
	fs.Bool("insecure-discovery", false, "not supported by MetaStore's gateway")
	// etcd's cobra command takes the flags before or after "start".
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			fmt.Fprintln(errOut, "metastore gateway:", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) != 1 || rest[0] != "start" {
		fmt.Fprintln(errOut, "metastore gateway: usage: metastore gateway start [--endpoints=...] [--listen-addr=...]")
		return 2
	}
	if fs.Lookup("discovery-srv").Value.String() != "" {
		fmt.Fprintln(errOut, "metastore gateway: --discovery-srv: DNS discovery is not supported in MetaStore")
		return 2
	}
	var srvs []*net.SRV
	for _, ep := range strings.Split(*endpoints, ",") {
		ep = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(ep), "http://"), "https://")
		h, p, err := net.SplitHostPort(ep)
		if err != nil {
			fmt.Fprintf(errOut, "metastore gateway: --endpoints: %q: %v\n", ep, err)
			return 2
		}
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			fmt.Fprintf(errOut, "metastore gateway: --endpoints: %q: bad port\n", ep)
			return 2
		}
		srvs = append(srvs, &net.SRV{Target: h, Port: uint16(port)})
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(errOut, "metastore gateway: --listen-addr:", err)
		return 1
	}
	lg, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(errOut, "metastore gateway:", err)
		return 1
	}
	tp := &tcpproxy.TCPProxy{Logger: lg, Listener: l, Endpoints: srvs, MonitorInterval: *retry}
	go func() {
		<-stop
		tp.Stop()
	}()
	if ready != nil {
		ready <- l.Addr().String()
	}
	if err := tp.Run(); err != nil && !strings.Contains(err.Error(), "use of closed network connection") {
		fmt.Fprintln(errOut, "metastore gateway:", err)
		return 1
	}
	return 0
}
