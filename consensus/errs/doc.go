// Package errs holds the consensus module's sentinel errors without its
// Raft dependency, so that error tables (services/rpcerr) can match them
// without linking go.etcd.io/raft. Package consensus returns these very
// values (consensus.ErrStopped is errs.ErrStopped), so errors.Is works
// with either name.
package errs
