package storage

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Key-space prefixes. See the package documentation for the layout.
const (
	prefixLatest  byte = 'k' // latest version of each key
	prefixVersion byte = 'v' // older versions
	prefixHistory byte = 'h'
	prefixLease   byte = 'l'
	prefixMeta    byte = 'm'
	prefixAux     byte = 'a' // service state beside the key space (auxbucket.go)
)

// Meta keys.
var (
	metaFormat          = []byte("mformat")
	metaRev             = []byte("mrev")
	metaConsistentIndex = []byte("mconsistent-index")
	metaCompactSched    = []byte("mcompact-scheduled")
	metaCompactDone     = []byte("mcompact-finished")
	metaRestoring       = []byte("mrestoring")
)

// formatVersion is written into a new store and checked on open.
const formatVersion = "1"

// revLen is the encoded length of a revision.
const revLen = 16

// Revision identifies one change: Main counts write transactions, Sub counts
// changes inside one transaction, from 0.
type Revision struct {
	Main int64
	Sub  int64
}

// GreaterThan reports whether r is after o.
func (r Revision) GreaterThan(o Revision) bool {
	return r.Main > o.Main || (r.Main == o.Main && r.Sub > o.Sub)
}

// escapeKey appends key to dst so that byte order is preserved and the result
// is followed by a terminator no key byte sequence can produce: 0x00 becomes
// 0x00 0xFF, and the terminator is 0x00 0x01.
func escapeKey(dst, key []byte) []byte {
	for _, c := range key {
		if c == 0 {
			dst = append(dst, 0, 0xff)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

func unescapeKey(esc []byte) ([]byte, error) {
	out := make([]byte, 0, len(esc))
	for i := 0; i < len(esc); i++ {
		c := esc[i]
		if c == 0 {
			if i+1 >= len(esc) || esc[i+1] != 0xff {
				return nil, fmt.Errorf("%w: bad key escape", ErrCorrupt)
			}
			i++
		}
		out = append(out, c)
	}
	return out, nil
}

// latestKey is the engine key of key's latest version: 'k' key. Raw keys
// keep their byte order under a fixed prefix.
func latestKey(key []byte) []byte {
	return appendLatestKey(make([]byte, 0, len(key)+1), key)
}

// appendLatestKey appends latestKey(key) to b.
func appendLatestKey(b, key []byte) []byte {
	b = append(b, prefixLatest)
	return append(b, key...)
}

// latestSpaceEnd bounds the whole 'k' key space.
var latestSpaceEnd = []byte{prefixLatest + 1}

// keyPrefix returns 'v' escaped(key) 0x00 0x01: every older version of key
// starts with it, and nothing else does.
func keyPrefix(key []byte) []byte {
	return appendKeyPrefix(make([]byte, 0, len(key)+3+revLen), key)
}

func appendKeyPrefix(b, key []byte) []byte {
	b = append(b, prefixVersion)
	b = escapeKey(b, key)
	return append(b, 0, 1)
}

// keyPrefixEnd returns the smallest encoded key after every version of key.
func keyPrefixEnd(key []byte) []byte {
	b := keyPrefix(key)
	b[len(b)-1] = 2
	return b
}

func appendInvRev(b []byte, r Revision) []byte {
	b = binary.BigEndian.AppendUint64(b, ^uint64(r.Main))
	return binary.BigEndian.AppendUint64(b, ^uint64(r.Sub))
}

// versionKey is the engine key of key's older version at r.
func versionKey(key []byte, r Revision) []byte {
	return appendInvRev(keyPrefix(key), r)
}

// appendVersionKey appends versionKey(key, r) to b.
func appendVersionKey(b, key []byte, r Revision) []byte {
	return appendInvRev(appendKeyPrefix(b, key), r)
}

// splitVersionKey returns the 'v' escaped(key) 0x00 0x01 prefix and the
// revision of an engine key from the 'v' space.
func splitVersionKey(ek []byte) (prefix []byte, r Revision, err error) {
	if len(ek) < 1+2+revLen || ek[0] != prefixVersion {
		return nil, Revision{}, fmt.Errorf("%w: bad version key", ErrCorrupt)
	}
	p := len(ek) - revLen
	r.Main = int64(^binary.BigEndian.Uint64(ek[p:]))
	r.Sub = int64(^binary.BigEndian.Uint64(ek[p+8:]))
	return ek[:p], r, nil
}

func appendRev(b []byte, r Revision) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(r.Main))
	return binary.BigEndian.AppendUint64(b, uint64(r.Sub))
}

func parseRev(b []byte) Revision {
	return Revision{Main: int64(binary.BigEndian.Uint64(b)), Sub: int64(binary.BigEndian.Uint64(b[8:]))}
}

// historyKey is the engine key of the history entry at r.
func historyKey(r Revision) []byte {
	return appendHistoryKey(make([]byte, 0, 1+revLen), r)
}

// appendHistoryKey appends historyKey(r) to b.
func appendHistoryKey(b []byte, r Revision) []byte {
	return appendRev(append(b, prefixHistory), r)
}

func parseHistoryKey(ek []byte) (Revision, error) {
	if len(ek) != 1+revLen || ek[0] != prefixHistory {
		return Revision{}, fmt.Errorf("%w: bad history key", ErrCorrupt)
	}
	return parseRev(ek[1:]), nil
}

// leasePrefix returns 'l' lease, the prefix of every key attached to lease.
func leasePrefix(lease int64) []byte {
	b := make([]byte, 1, 9)
	b[0] = prefixLease
	return binary.BigEndian.AppendUint64(b, uint64(lease))
}

func leaseKey(lease int64, key []byte) []byte {
	return append(leasePrefix(lease), key...)
}

// appendLeaseKey appends leaseKey(lease, key) to b.
func appendLeaseKey(b []byte, lease int64, key []byte) []byte {
	b = binary.BigEndian.AppendUint64(append(b, prefixLease), uint64(lease))
	return append(b, key...)
}

// prefixEnd returns the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// maxSub sorts, inverted, before every change of a revision: seeking to
// versionKey(key, Revision{rev, maxSub}) finds the newest version <= rev.
const maxSub = math.MaxInt64
