package examples

import (
	"context"
	"fmt"
	"io"

	v3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/clientsdk/concurrency"
)

// RunElection plays the scenario under prefix and narrates it to out.
func RunElection(ctx context.Context, c *v3.Client, prefix string, out io.Writer) error {
	sessions := make([]*concurrency.Session, 3)
	for i := range sessions {
		s, err := concurrency.NewSession(c)
		if err != nil {
			return err
		}
		defer s.Close()
		sessions[i] = s
	}
	obsCtx, stop := context.WithCancel(ctx)
	defer stop()
	observed := concurrency.NewElection(sessions[2], prefix).Observe(obsCtx)

	a := concurrency.NewElection(sessions[0], prefix)
	if err := a.Campaign(ctx, "node-a"); err != nil {
		return err
	}
	fmt.Fprintf(out, "observed leader %s\n", (<-observed).Kvs[0].Value)
	if _, err := a.Txn(ctx).Then(v3.OpPut(prefix+"-state", "written by node-a")).Commit(); err != nil {
		return err
	}
	tokenA := a.FencingToken()

	b := concurrency.NewElection(sessions[1], prefix)
	elected := make(chan error, 1)
	go func() { elected <- b.Campaign(ctx, "node-b") }()
	if err := a.Resign(ctx); err != nil {
		return err
	}
	if err := <-elected; err != nil {
		return err
	}
	fmt.Fprintf(out, "observed leader %s\n", (<-observed).Kvs[0].Value)
	fmt.Fprintf(out, "fencing token grew: %v\n", b.FencingToken() > tokenA)
	_, err := a.Txn(ctx).Then(v3.OpPut(prefix+"-state", "stale write by node-a")).Commit()
	fmt.Fprintf(out, "node-a's guarded write after resigning: %v\n", err)
	return b.Resign(ctx)
}
