package storage

import (
	"bytes"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage/backend"
)

// Importer fills an engine — one not opened by a Store — with a history in
// etcd's form: the pairs of etcd's key bucket in revision order, as
// ForEachEtcdKV gives them and an etcd backend file holds them, plus
// auxiliary-bucket entries. It is how etcd data (a snapshot, a member's
// db) becomes a store, keeping every revision, create revision, version
// and lease. Until Finish succeeds, Open reports ErrIncompleteRestore.
type Importer struct {
	be      backend.Backend
	wb      backend.Batch
	latest  map[string]importedLatest // keys written by the batch not yet committed
	last    Revision
	started bool
	err     error
}

type importedLatest struct {
	rev Revision
	rec record
	raw []byte
}

// NewImporter empties be and starts an import into it.
func NewImporter(be backend.Backend) (*Importer, error) {
	wb := be.NewBatch()
	wb.Set(metaRestoring, nil)
	if err := wb.Commit(true); err != nil {
		return nil, fmt.Errorf("storage: import: %w", err)
	}
	wb = be.NewBatch()
	wb.DeleteRange([]byte{0}, metaRestoring)
	wb.DeleteRange(append(bytes.Clone(metaRestoring), 0), []byte{0xff})
	if err := wb.Commit(false); err != nil {
		return nil, fmt.Errorf("storage: import: %w", err)
	}
	return &Importer{be: be, wb: be.NewBatch(), latest: map[string]importedLatest{}}, nil
}

func (im *Importer) fail(err error) error {
	if err != nil && im.err == nil {
		im.err = fmt.Errorf("storage: import: %w", err)
	}
	return im.err
}

// current returns key's latest version so far.
func (im *Importer) current(key []byte) (importedLatest, bool, error) {
	if l, ok := im.latest[string(key)]; ok {
		return l, true, nil
	}
	v, err := im.be.Get(latestKey(key))
	if errors.Is(err, backend.ErrNotFound) {
		return importedLatest{}, false, nil
	} else if err != nil {
		return importedLatest{}, false, err
	}
	rev, raw, err := splitLatest(v)
	if err != nil {
		return importedLatest{}, false, err
	}
	rec, err := decodeRecord(raw, false)
	return importedLatest{rev: rev, rec: rec, raw: raw}, err == nil, err
}

// PutEtcdKV adds one pair of etcd's key bucket: the revision key (with its
// 't' for a deletion) and the marshaled mvccpb.KeyValue. Pairs must come
// in increasing revision order.
func (im *Importer) PutEtcdKV(k, v []byte) error {
	if im.err != nil {
		return im.err
	}
	rev, tomb, err := ParseEtcdRevKey(k)
	if err != nil {
		return im.fail(err)
	}
	if im.started && !rev.GreaterThan(im.last) {
		return im.fail(fmt.Errorf("%w: revision %d/%d after %d/%d", ErrCorrupt, rev.Main, rev.Sub, im.last.Main, im.last.Sub))
	}
	im.started, im.last = true, rev
	if len(v) == 0 && !tomb {
		// `etcdutl snapshot restore --bump-revision` marks the bumped
		// revision with an empty value: the store's revision moves, no
		// key changes.
		return nil
	}
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(v, kv); err != nil {
		return im.fail(fmt.Errorf("%w: key-value at %d/%d: %v", ErrCorrupt, rev.Main, rev.Sub, err))
	}
	if len(kv.Key) == 0 || (!tomb && (kv.ModRevision != rev.Main || kv.CreateRevision <= 0 || kv.CreateRevision > rev.Main || kv.Version <= 0)) {
		return im.fail(fmt.Errorf("%w: bad key-value at %d/%d", ErrCorrupt, rev.Main, rev.Sub))
	}
	prev, exists, err := im.current(kv.Key)
	if err != nil {
		return im.fail(err)
	}
	rec := record{tombstone: true}
	if !tomb {
		rec = record{create: kv.CreateRevision, version: kv.Version, lease: kv.Lease, value: kv.Value}
	}
	if exists {
		im.wb.Set(versionKey(kv.Key, prev.rev), prev.raw)
		if !prev.rec.tombstone && prev.rec.lease != 0 && (tomb || prev.rec.lease != rec.lease) {
			im.wb.Delete(leaseKey(prev.rec.lease, kv.Key))
		}
	}
	if !tomb && rec.lease != 0 {
		im.wb.Set(leaseKey(rec.lease, kv.Key), nil)
	}
	raw := rec.encode()
	im.wb.Set(latestKey(kv.Key), latestValue(rev, raw))
	im.wb.Set(historyKey(rev), historyValue(kv.Key, tomb))
	rec.value = nil
	im.latest[string(kv.Key)] = importedLatest{rev: rev, rec: rec, raw: raw}
	return im.flushIfFull()
}

// PutAux adds an entry of an auxiliary bucket (see WriteTxn.PutAux). An
// error is returned by Finish.
func (im *Importer) PutAux(bucket string, key, value []byte) {
	if im.err == nil {
		im.wb.Set(auxKey(bucket, key), value)
		im.flushIfFull()
	}
}

// DeleteAux removes an entry of an auxiliary bucket written before.
func (im *Importer) DeleteAux(bucket string, key []byte) {
	if im.err == nil {
		im.wb.Delete(auxKey(bucket, key))
	}
}

func (im *Importer) flushIfFull() error {
	if im.wb.Size() < restoreBatchBytes {
		return nil
	}
	if err := im.wb.Commit(false); err != nil {
		return im.fail(err)
	}
	im.wb = im.be.NewBatch()
	clear(im.latest)
	return nil
}

// Finish records the compaction revision (<= 0: none) and the consistent
// index and makes the import durable; the engine can then be opened. The
// pairs may include versions that compaction at compactRev removes (an
// etcd file whose compaction had not finished): they are removed when the
// store opens.
func (im *Importer) Finish(compactRev int64, ci ConsistentIndex) error {
	if im.err != nil {
		im.wb.Close()
		return im.err
	}
	if compactRev > im.last.Main {
		return im.fail(fmt.Errorf("%w: compaction revision %d after the last revision %d", ErrCorrupt, compactRev, im.last.Main))
	}
	im.wb.Set(metaFormat, []byte(formatVersion))
	im.wb.Set(metaRev, encodeInt(max(im.last.Main, 1)))
	if compactRev > 0 {
		// Scheduled, not finished: the store compacts once more when it
		// opens, removing whatever the source had not removed yet.
		im.wb.Set(metaCompactSched, encodeInt(compactRev))
	}
	im.wb.Set(metaConsistentIndex, encodeCI(ci))
	im.wb.Delete(metaRestoring)
	if err := im.wb.Commit(true); err != nil {
		return im.fail(err)
	}
	return nil
}
