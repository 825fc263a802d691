// Package consensustest provides an in-memory network with partitions and
// message drops, a small key-value state machine, and a cluster harness,
// for testing consensus.Node without sockets.
package consensustest
