// Package powerfs is a FUSE file system for power-loss tests: a loopback
// over a backing directory (github.com/hanwen/go-fuse/v2) that forgets,
// when the "power" is cut, every write to a file not yet made durable by
// fsync or fdatasync, as a disk's volatile cache does. A member whose data
// dir is on it is SIGKILLed, the power cut, and the member started again
// on what a real machine would have kept. It needs root and /dev/fuse.
package powerfs
