//go:build failpoints

package failpoint

import (
	"sync"

	"go.etcd.io/gofail/runtime"
)

var (
	mu  sync.RWMutex
	fps = map[string]*runtime.Failpoint{}
)

// Register makes the named failpoints known to gofail (listed by
// GOFAIL_HTTP, armed by GOFAIL_FAILPOINTS); a package calls it from init.
func Register(names ...string) {
	mu.Lock()
	defer mu.Unlock()
	for _, name := range names {
		if fps[name] == nil {
			fps[name] = runtime.NewFailpoint(name)
		}
	}
}

// Eval evaluates the named failpoint's terms: a panic term crashes the
// member here, a sleep term stalls it.
func Eval(name string) { _ = Armed(name) }

// Armed evaluates the named failpoint and reports whether a term gave a
// value (return(...), or any term that fired).
func Armed(name string) bool {
	mu.RLock()
	fp := fps[name]
	mu.RUnlock()
	if fp == nil {
		return false
	}
	_, err := fp.Acquire()
	return err == nil
}
