package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/storage/backend"
)

// faultyEngine fails batch commits while armed, like a disk that returns
// I/O errors.
type faultyEngine struct {
	backend.Backend
	armed *atomic.Bool
}

type faultyBatch struct {
	backend.Batch
	armed *atomic.Bool
}

var errInjected = errors.New("injected: input/output error")

func (e faultyEngine) NewBatch() backend.Batch { return faultyBatch{e.Backend.NewBatch(), e.armed} }

func (b faultyBatch) Commit(sync bool) error {
	if b.armed.Load() {
		b.Batch.Close()
		return errInjected
	}
	return b.Batch.Commit(sync)
}

// A member whose storage fails while it applies a committed entry stops
// (Done, Err names the entry) before it applies anything after it; no
// client gets a success for a write the others do not hold; the others go
// on; restarted on its data, the member replays the entry and ends with
// the same HashKV as the others.
func TestStorageFailureInApplyStopsTheMemberAndRestartCatchesUp(t *testing.T) {
	ms := testcluster.Configs(t, 3)
	armed := make([]*atomic.Bool, len(ms))
	for i := range ms {
		armed[i] = &atomic.Bool{}
		ms[i].Opts = []server.Option{server.WithEngineWrapper(func(e backend.Backend) backend.Backend {
			return faultyEngine{e, armed[i]}
		})}
	}
	ms.Start()
	// The disk fails on a follower: were it the leader, the proposals
	// forwarded to it would wait for their deadline (as with etcd).
	st, err := testcluster.Client(t, ms[0]).Status(ctx(t), ms[0].Srv.ClientAddrs()[0])
	require.NoError(t, err)
	f := 0
	for ms[f].Srv.ID() == st.Leader {
		f++
	}
	var others testcluster.Members
	for i, m := range ms {
		if i != f {
			others = append(others, m)
		}
	}
	ms[2], ms[f] = ms[f], ms[2] // ms[2] is the faulty follower from here on
	armed[2], armed[f] = armed[f], armed[2]
	healthy := testcluster.Client(t, others...)
	for i := range 10 {
		_, err := healthy.Put(ctx(t), fmt.Sprint("before/", i), "v")
		require.NoError(t, err)
	}

	armed[2].Store(true)
	faulty := testcluster.Client(t, ms[2])
	_, err = faulty.Put(ctx(t), "through-the-faulty-member", "v")
	require.Error(t, err, "a write the faulty member could not apply is never acknowledged by it")
	select {
	case <-ms[2].Srv.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the member with a failing disk did not stop")
	}
	var ae *consensus.ApplyError
	require.ErrorAs(t, ms[2].Srv.Err(), &ae)
	require.ErrorIs(t, ae, errInjected)

	// The majority goes on.
	var last int64
	for i := range 10 {
		// Retried: should leadership move to the stopped member before it
		// stops, a proposal forwarded to it waits out its deadline.
		require.Eventually(t, func() bool {
			pctx, cancel := context.WithTimeout(ctx(t), 3*time.Second)
			defer cancel()
			resp, err := healthy.Put(pctx, fmt.Sprint("after/", i), "v")
			if err == nil {
				last = resp.Header.Revision
			}
			return err == nil
		}, 30*time.Second, 10*time.Millisecond)
	}

	ms[2].Srv.Stop()
	armed[2].Store(false)
	ms[2].Opts = nil
	ms[2].Start()
	select {
	case <-ms[2].Srv.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("restarted member not ready")
	}
	restarted := testcluster.Client(t, ms[2])
	require.Eventually(t, func() bool {
		r, err := restarted.Get(ctx(t), "after/9", clientv3.WithSerializable())
		return err == nil && r.Header.Revision >= last && len(r.Kvs) == 1
	}, 20*time.Second, 20*time.Millisecond, "the restarted member catches up")
	testcluster.RequireSameHashKV(t, ms, last, "the member that stopped holds exactly what the others hold")
	for _, m := range ms {
		r, err := testcluster.Client(t, m).Get(ctx(t), "before/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		require.NoError(t, err)
		require.EqualValues(t, 10, r.Count)
	}
}
