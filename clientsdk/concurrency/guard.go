package concurrency

import (
	"context"
	"errors"

	v3 "go.etcd.io/etcd/client/v3"
)

// ErrLockLost is returned by a guarded transaction whose caller no longer
// owns the lock: its writes were not applied.
var ErrLockLost = errors.New("mutex: lock lost, write refused")

// GuardedTxn is a transaction that applies only while its owner still
// holds the lock or leadership it was built from. Use If, Then and Else as
// on v3.Txn; Commit checks ownership on the server, in the same
// transaction as the writes.
type GuardedTxn struct {
	ctx     context.Context
	kv      v3.KV
	owner   v3.Cmp
	lostErr error
	cmps    []v3.Cmp
	thenOps []v3.Op
	elseOps []v3.Op
}

// If adds conditions of the caller's own, evaluated after ownership.
func (g *GuardedTxn) If(cs ...v3.Cmp) *GuardedTxn {
	g.cmps = append(g.cmps, cs...)
	return g
}

// Then adds the operations to run when ownership and the conditions hold.
func (g *GuardedTxn) Then(ops ...v3.Op) *GuardedTxn {
	g.thenOps = append(g.thenOps, ops...)
	return g
}

// Else adds the operations to run when ownership holds but a condition
// given with If does not.
func (g *GuardedTxn) Else(ops ...v3.Op) *GuardedTxn {
	g.elseOps = append(g.elseOps, ops...)
	return g
}

// Commit runs the transaction. If the caller no longer owns the lock,
// nothing is applied and Commit returns ErrLockLost (ErrElectionNotLeader
// for elections). Otherwise it returns the response of the caller's own
// If/Then/Else, as v3.Txn would.
func (g *GuardedTxn) Commit() (*v3.TxnResponse, error) {
	inner := v3.OpTxn(g.cmps, g.thenOps, g.elseOps)
	resp, err := g.kv.Txn(g.ctx).If(g.owner).Then(inner).Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, g.lostErr
	}
	out := (*v3.TxnResponse)(resp.Responses[0].GetResponseTxn())
	out.Header = resp.Header
	return out, nil
}
