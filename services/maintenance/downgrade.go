package maintenance

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/coreos/go-semver/semver"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
	etcderrors "go.etcd.io/etcd/server/v3/etcdserver/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DowngradeBucket is the storage auxiliary bucket holding the downgrade
// state, under DowngradeKey, as etcd's "cluster" bucket holds it under
// "downgrade": JSON {"target-version": "3.6.0", "enabled": true}.
const DowngradeBucket = "downgrade"

// DowngradeKey is the key of the downgrade state in DowngradeBucket.
var DowngradeKey = []byte("downgrade")

// DowngradeInfo is etcd's downgrade state: whether a downgrade is
// enabled, and to which version (empty when none is).
type DowngradeInfo struct {
	TargetVersion string `json:"target-version"`
	Enabled       bool   `json:"enabled"`
}

// Downgrades is the replicated downgrade state. Apply runs in Raft log
// order in the apply loop; Info is safe concurrently.
type Downgrades struct {
	mu   sync.RWMutex
	info DowngradeInfo
}

// NewDowngrades returns the state of a cluster with no downgrade; Recover
// loads a store's.
func NewDowngrades() *Downgrades { return &Downgrades{} }

// Recover replaces the state with the one in r.
func (d *Downgrades) Recover(r AuxReader) error {
	info := DowngradeInfo{}
	err := r.ForEachAux(DowngradeBucket, func(k, v []byte) error {
		if string(k) != string(DowngradeKey) {
			return nil
		}
		if err := json.Unmarshal(v, &info); err != nil {
			return fmt.Errorf("maintenance: corrupt downgrade record %q: %w", v, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.info = info
	d.mu.Unlock()
	return nil
}

// Apply applies etcd's DowngradeInfoSetRequest: enable with a target
// version, or cancel.
func (d *Downgrades) Apply(tw AuxWriter, r *membershippb.DowngradeInfoSetRequest) {
	info := DowngradeInfo{Enabled: r.Enabled}
	if r.Enabled {
		info.TargetVersion = r.Ver
	}
	v, _ := json.Marshal(info) // a struct of a string and a bool always marshals
	tw.PutAux(DowngradeBucket, DowngradeKey, v)
	d.mu.Lock()
	d.info = info
	d.mu.Unlock()
}

// Info returns the current state.
func (d *Downgrades) Info() DowngradeInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.info
}

// DowngradeHost is what the Downgrade rules need from the member.
type DowngradeHost interface {
	// ClusterVersion is the cluster version (major.minor).
	ClusterVersion() *semver.Version
	// ReadIndex waits until the member applied everything committed
	// before the call, so the downgrade state read next is current.
	ReadIndex(ctx context.Context) error
	// DowngradeInfo is the replicated downgrade state.
	DowngradeInfo() DowngradeInfo
	// ProposeDowngrade replicates a DowngradeInfoSetRequest and waits
	// until it is applied.
	ProposeDowngrade(ctx context.Context, r *membershippb.DowngradeInfoSetRequest) error
}

// Downgrade runs etcd 3.7's Maintenance.Downgrade rules against h:
// VALIDATE and ENABLE accept only the minor version below the cluster
// version (patch ignored; "3.6" or "3.6.x"), refuse while a downgrade is
// enabled, and ENABLE replicates it; CANCEL ends an enabled downgrade and,
// as etcd, answers without an error when there is none. Every answer
// carries the cluster version.
func Downgrade(ctx context.Context, h DowngradeHost, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	resp := &pb.DowngradeResponse{Header: &pb.ResponseHeader{}, Version: version.Cluster(h.ClusterVersion().String())}
	switch r.Action {
	case pb.DowngradeRequest_VALIDATE, pb.DowngradeRequest_ENABLE:
		target, err := downgradeTarget(r.Version)
		if err != nil {
			return nil, err
		}
		if err := validateDowngrade(ctx, h, target); err != nil {
			return nil, err
		}
		if r.Action == pb.DowngradeRequest_ENABLE {
			if err := h.ProposeDowngrade(ctx, &membershippb.DowngradeInfoSetRequest{Enabled: true, Ver: target.String()}); err != nil {
				return nil, err
			}
		}
		return resp, nil
	case pb.DowngradeRequest_CANCEL:
		if err := h.ReadIndex(ctx); err != nil {
			return nil, err
		}
		if h.DowngradeInfo().Enabled {
			if err := h.ProposeDowngrade(ctx, &membershippb.DowngradeInfoSetRequest{Enabled: false}); err != nil {
				return nil, err
			}
		}
		return resp, nil
	default:
		// etcd's answer: its plain error, which gRPC reports as Unknown.
		return nil, status.Error(codes.Unknown, etcderrors.ErrUnknownMethod.Error())
	}
}

// downgradeTarget parses a target version as etcd does: semver, or
// major.minor; the patch is dropped.
func downgradeTarget(v string) (*semver.Version, error) {
	ver, err := semver.NewVersion(v)
	if err != nil {
		if ver, err = semver.NewVersion(v + ".0"); err != nil {
			return nil, rpctypes.ErrGRPCWrongDowngradeVersionFormat
		}
	}
	return &semver.Version{Major: ver.Major, Minor: ver.Minor}, nil
}

func validateDowngrade(ctx context.Context, h DowngradeHost, target *semver.Version) error {
	if err := h.ReadIndex(ctx); err != nil {
		return err
	}
	cv := h.ClusterVersion()
	if !target.Equal(semver.Version{Major: cv.Major, Minor: cv.Minor - 1}) {
		return rpctypes.ErrGRPCInvalidDowngradeTargetVersion
	}
	if h.DowngradeInfo().Enabled {
		return rpctypes.ErrGRPCDowngradeInProcess
	}
	return nil
}
