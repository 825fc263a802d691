package storage_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/metastore/metastore/storage"
)

// TestMVCCScripts runs the scripts in testdata/mvcc: each is a sequence of
// store operations and the answers etcd's MVCC gives to them (revisions,
// versions, counts, errors). Every script runs on every engine against the
// same expected output. Rewrite the expectations after a deliberate change
// with: go test -run TestMVCCScripts -rewrite (then review the diff).
//
// Commands (end=+ means "every key from k", etcd's end key "\x00"):
//
//	put k=<key> v=<value> [lease=<id>]           → rev
//	del k=<key> [end=<end>]                        → deleted, rev
//	range k=<key> [end=<end>] [rev=] [limit=] [keys-only] [count-only]
//	      [min-mod=] [max-mod=] [min-create=] [max-create=]
//	                                               → the KVs, then rev, count, more
//	txn                                            → one write transaction of the input's
//	                                                 lines (put k v | del k [end] | range k [end]),
//	                                                 each line's answer, then the committed rev
//	compact rev=<rev>                              → the store's revisions after it
//	lease-keys lease=<id>                          → the keys attached to the lease
//	rev                                            → current and compacted revision
func TestMVCCScripts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		datadriven.Walk(t, "testdata/mvcc", func(t *testing.T, path string) {
			s := newStore(t, e)
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				out, err := runMVCC(s, d)
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				return out
			})
		})
	})
}

func argStr(d *datadriven.TestData, name string) (string, bool) {
	for _, a := range d.CmdArgs {
		if a.Key == name {
			if len(a.Vals) == 0 {
				return "", true
			}
			return a.Vals[0], true
		}
	}
	return "", false
}

func argInt(d *datadriven.TestData, name string) int64 {
	v, ok := argStr(d, name)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d.Fatalf(nil, "%s=%q is not a number", name, v)
	}
	return n
}

// endKey turns a script's end argument into a range end.
func endKey(end string) []byte {
	switch end {
	case "":
		return nil
	case "+":
		return []byte{0}
	}
	return []byte(end)
}

func runMVCC(s *storage.Store, d *datadriven.TestData) (string, error) {
	k, _ := argStr(d, "k")
	end, _ := argStr(d, "end")
	switch d.Cmd {
	case "put":
		v, _ := argStr(d, "v")
		rev, err := s.Put([]byte(k), []byte(v), argInt(d, "lease"))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("rev=%d\n", rev), nil
	case "del":
		n, rev, err := s.DeleteRange([]byte(k), endKey(end))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("deleted=%d rev=%d\n", n, rev), nil
	case "range":
		res, err := s.Range([]byte(k), endKey(end), rangeOpts(d))
		if err != nil {
			return "", err
		}
		return formatRange(res), nil
	case "txn":
		return runTxn(s, d)
	case "compact":
		if _, err := s.Compact(argInt(d, "rev")); err != nil {
			return "", err
		}
		return fmt.Sprintf("rev=%d compacted=%d\n", s.Rev(), s.CompactRev()), nil
	case "lease-keys":
		ks, err := s.LeaseKeys(argInt(d, "lease"))
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, k := range ks {
			fmt.Fprintf(&b, "%s\n", k)
		}
		return b.String() + fmt.Sprintf("%d keys\n", len(ks)), nil
	case "rev":
		return fmt.Sprintf("rev=%d compacted=%d\n", s.Rev(), s.CompactRev()), nil
	}
	d.Fatalf(nil, "unknown command %q", d.Cmd)
	return "", nil
}

func rangeOpts(d *datadriven.TestData) storage.RangeOptions {
	_, keysOnly := argStr(d, "keys-only")
	_, countOnly := argStr(d, "count-only")
	return storage.RangeOptions{
		Rev: argInt(d, "rev"), Limit: argInt(d, "limit"), KeysOnly: keysOnly, CountOnly: countOnly,
		MinModRev: argInt(d, "min-mod"), MaxModRev: argInt(d, "max-mod"),
		MinCreateRev: argInt(d, "min-create"), MaxCreateRev: argInt(d, "max-create"),
	}
}

func formatRange(res *storage.RangeResult) string {
	var b strings.Builder
	for _, kv := range res.KVs {
		fmt.Fprintf(&b, "%s create=%d mod=%d ver=%d", kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version)
		if kv.Lease != 0 {
			fmt.Fprintf(&b, " lease=%d", kv.Lease)
		}
		if kv.Value != nil {
			fmt.Fprintf(&b, " value=%s", kv.Value)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "rev=%d count=%d more=%t\n", res.Rev, res.Count, res.More)
	return b.String()
}

// runTxn applies the input's lines in one write transaction.
func runTxn(s *storage.Store, d *datadriven.TestData) (string, error) {
	tw, err := s.Write()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		arg := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		fmt.Fprintf(&b, "%s: ", line)
		switch arg(0) {
		case "put":
			rev, err := tw.Put([]byte(arg(1)), []byte(arg(2)), 0)
			if err != nil {
				fmt.Fprintf(&b, "error: %v\n", err)
				continue
			}
			fmt.Fprintf(&b, "rev=%d\n", rev)
		case "del":
			n, err := tw.DeleteRange([]byte(arg(1)), endKey(arg(2)))
			if err != nil {
				fmt.Fprintf(&b, "error: %v\n", err)
				continue
			}
			fmt.Fprintf(&b, "deleted=%d\n", n)
		case "range":
			res, err := tw.Range([]byte(arg(1)), endKey(arg(2)), storage.RangeOptions{})
			if err != nil {
				fmt.Fprintf(&b, "error: %v\n", err)
				continue
			}
			b.WriteString("\n" + formatRange(res))
		default:
			tw.Abort()
			d.Fatalf(nil, "unknown txn op %q", line)
		}
	}
	rev, err := tw.End()
	if err != nil {
		return "", err
	}
	return b.String() + fmt.Sprintf("committed rev=%d\n", rev), nil
}
