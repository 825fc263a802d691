package wal

import "github.com/metastore/metastore/consensus/internal/failpoint"

// fpWalSkipSync, armed with any value term in a build with the failpoints
// tag (GOFAIL_FAILPOINTS=walSkipSync=return(true)), makes Sync skip the
// fdatasync: a deliberately broken member whose acknowledged writes a
// power loss takes. It is the negative control of the power-loss test
// (compat-tests/robustness TestPowerLoss), which must catch it.
const fpWalSkipSync = "walSkipSync"

func init() { failpoint.Register(fpWalSkipSync) }
