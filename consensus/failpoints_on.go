//go:build failpoints

package consensus

import "go.etcd.io/gofail/runtime"

var failpoints = map[string]*runtime.Failpoint{}

func init() {
	for _, name := range failpointNames {
		failpoints[name] = runtime.NewFailpoint(name)
	}
}

// failpoint evaluates the named failpoint's terms: a panic term crashes
// the member here, a sleep term stalls it.
func failpoint(name string) {
	if fp := failpoints[name]; fp != nil {
		_, _ = fp.Acquire()
	}
}
