//go:build failpoints

package wal

import "go.etcd.io/gofail/runtime"

var fpSkipSync = runtime.NewFailpoint(fpWalSkipSync)

// skipSync reports whether the walSkipSync failpoint is armed.
func skipSync() bool {
	_, err := fpSkipSync.Acquire()
	return err == nil
}
