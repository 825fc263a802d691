package concurrency

import (
	"context"

	v3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// STM is software transactional memory over etcd: apply functions read and
// write keys and are retried until they commit without conflict.
type STM = concurrency.STM

// Isolation is an STM isolation level.
type Isolation = concurrency.Isolation

// STMOption configures an STM.
type STMOption = concurrency.STMOption

// Isolation levels.
const (
	SerializableSnapshot = concurrency.SerializableSnapshot
	Serializable         = concurrency.Serializable
	RepeatableReads      = concurrency.RepeatableReads
	ReadCommitted        = concurrency.ReadCommitted
)

// NewSTM runs apply as a transaction, retrying on conflict.
func NewSTM(c *v3.Client, apply func(STM) error, so ...STMOption) (*v3.TxnResponse, error) {
	return concurrency.NewSTM(c, apply, so...)
}

// WithIsolation sets the isolation level (default SerializableSnapshot).
func WithIsolation(lvl Isolation) STMOption { return concurrency.WithIsolation(lvl) }

// WithAbortContext aborts the STM when ctx is done.
func WithAbortContext(ctx context.Context) STMOption { return concurrency.WithAbortContext(ctx) }

// WithPrefetch fetches keys before apply runs.
func WithPrefetch(keys ...string) STMOption { return concurrency.WithPrefetch(keys...) }

// NewSTMRepeatable runs apply with repeatable reads.
func NewSTMRepeatable(ctx context.Context, c *v3.Client, apply func(STM) error) (*v3.TxnResponse, error) {
	return concurrency.NewSTMRepeatable(ctx, c, apply)
}

// NewSTMSerializable runs apply with serializable isolation.
func NewSTMSerializable(ctx context.Context, c *v3.Client, apply func(STM) error) (*v3.TxnResponse, error) {
	return concurrency.NewSTMSerializable(ctx, c, apply)
}

// NewSTMReadCommitted runs apply with read-committed isolation.
func NewSTMReadCommitted(ctx context.Context, c *v3.Client, apply func(STM) error) (*v3.TxnResponse, error) {
	return concurrency.NewSTMReadCommitted(ctx, c, apply)
}
