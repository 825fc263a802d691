package memory_test

import (
	"testing"

	"github.com/metastore/metastore/storage/backend"
	"github.com/metastore/metastore/storage/backend/backendtest"
	"github.com/metastore/metastore/storage/memory"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(testing.TB) backend.Backend { return memory.New() })
}
