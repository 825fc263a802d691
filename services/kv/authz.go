package kv

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Authorizer is the authorization check point every KV operation passes:
// may the caller (identified by ctx) read (write=false) or write the keys
// in [key, end)? end follows etcd's range conventions (nil: the key only).
// It returns nil or the etcd error to answer with (such as
// rpctypes.ErrGRPCPermissionDenied). The server installs one for every
// service.
type Authorizer interface {
	Authorize(ctx context.Context, write bool, key, end []byte) error
}

// LeaseKeyLister lists the keys attached to a lease: attaching a key to a
// lease needs write permission on the keys already attached, as in etcd.
type LeaseKeyLister interface {
	LeaseKeys(id int64) ([][]byte, error)
}

// WithAuthorizer makes every request pass a (nil: allow everything); lk is
// used for lease attachments and may be nil when a is.
func (s *Server) WithAuthorizer(a Authorizer, lk LeaseKeyLister) *Server {
	if a == nil {
		a = allowAll{}
	}
	s.auth, s.leaseKeys = a, lk
	return s
}

// Enabler is an optional Authorizer ability: while Enabled reports false
// every request is allowed, so the lease keys of a put are not listed.
type Enabler interface{ Enabled() bool }

func enabled(a Authorizer) bool {
	e, ok := a.(Enabler)
	return !ok || e.Enabled()
}

type allowAll struct{}

func (allowAll) Enabled() bool { return false }

func (allowAll) Authorize(context.Context, bool, []byte, []byte) error { return nil }

func (s *Server) authorizeRange(ctx context.Context, r *pb.RangeRequest) error {
	return s.auth.Authorize(ctx, false, r.Key, r.RangeEnd)
}

func (s *Server) authorizePut(ctx context.Context, r *pb.PutRequest) error {
	if err := s.auth.Authorize(ctx, true, r.Key, nil); err != nil {
		return err
	}
	if r.PrevKv {
		if err := s.auth.Authorize(ctx, false, r.Key, nil); err != nil {
			return err
		}
	}
	if r.Lease != 0 && s.leaseKeys != nil && enabled(s.auth) {
		keys, err := s.leaseKeys.LeaseKeys(r.Lease)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := s.auth.Authorize(ctx, true, k, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) authorizeDeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) error {
	if err := s.auth.Authorize(ctx, true, r.Key, r.RangeEnd); err != nil {
		return err
	}
	if r.PrevKv {
		return s.auth.Authorize(ctx, false, r.Key, r.RangeEnd)
	}
	return nil
}

// authorizeTxn checks the compares (read) and every op of both branches,
// nested transactions included, as etcd does.
func (s *Server) authorizeTxn(ctx context.Context, r *pb.TxnRequest) error {
	for _, c := range r.Compare {
		if err := s.auth.Authorize(ctx, false, c.Key, c.RangeEnd); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			var err error
			switch {
			case op.GetRequestRange() != nil:
				err = s.authorizeRange(ctx, op.GetRequestRange())
			case op.GetRequestPut() != nil:
				err = s.authorizePut(ctx, op.GetRequestPut())
			case op.GetRequestDeleteRange() != nil:
				err = s.authorizeDeleteRange(ctx, op.GetRequestDeleteRange())
			case op.GetRequestTxn() != nil:
				err = s.authorizeTxn(ctx, op.GetRequestTxn())
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
