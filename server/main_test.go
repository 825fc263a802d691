package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started: members, clients, listeners.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
