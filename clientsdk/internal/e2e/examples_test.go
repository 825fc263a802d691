package e2e

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	examples "github.com/metastore/metastore/clientsdk/examples/concurrency"
)

func TestExampleFencing(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, examples.RunFencing(ctx(t), newClient(t), prefix(t), &out))
	require.Contains(t, out.String(), "Lost() fired")
	require.Contains(t, out.String(), "worker 1's guarded write: mutex: lock lost, write refused")
	require.Contains(t, out.String(), `config = "from worker 2"`)
	fmt.Print(out.String())
}

func TestExampleElection(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, examples.RunElection(ctx(t), newClient(t), prefix(t), &out))
	require.Equal(t, "observed leader node-a\nobserved leader node-b\nfencing token grew: true\n"+
		"node-a's guarded write after resigning: election: not leader\n", out.String())
}
