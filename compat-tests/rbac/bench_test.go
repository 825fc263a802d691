package rbac

import (
	"context"
	"sort"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/metastore/metastore/compat-tests/internal/procs"
	"github.com/metastore/metastore/tools/etcdtest"
)

// BenchmarkAuth measures, on etcd 3.7.3 and bin/metastore with auth on
// at the default bcrypt cost: Authenticate (one client, p50/p99), and a
// serializable one-key range with a token against the same range with
// auth off (the cost of checking a token and a permission per request).
func BenchmarkAuth(b *testing.B) {
	for _, target := range []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"etcd", func(b *testing.B) string { return etcdtest.StartT(b, etcdtest.Config{}).Endpoints[0] }},
		{"metastore", func(b *testing.B) string { return procs.StartMetastore(b, 1).Endpoints[0] }},
	} {
		b.Run(target.name, func(b *testing.B) {
			ep := target.start(b)
			conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ctx := context.Background()
			kv, au := pb.NewKVClient(conn), pb.NewAuthClient(conn)
			if _, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
				b.Fatal(err)
			}
			get := func(ctx context.Context) {
				if _, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), Serializable: true}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("range-auth-off", func(b *testing.B) {
				for b.Loop() {
					get(ctx)
				}
			})
			for _, f := range []func() error{
				func() error {
					_, err := au.UserAdd(ctx, &pb.AuthUserAddRequest{Name: "root", Password: "pw"})
					return err
				},
				func() error {
					_, err := au.UserGrantRole(ctx, &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"})
					return err
				},
				func() error { _, err := au.AuthEnable(ctx, &pb.AuthEnableRequest{}); return err },
			} {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			login, err := au.Authenticate(ctx, &pb.AuthenticateRequest{Name: "root", Password: "pw"})
			if err != nil {
				b.Fatal(err)
			}
			tok := login.Token
			b.Run("authenticate", func(b *testing.B) {
				var lat []time.Duration
				for b.Loop() {
					start := time.Now()
					if _, err := au.Authenticate(ctx, &pb.AuthenticateRequest{Name: "root", Password: "pw"}); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
			tctx := metadata.AppendToOutgoingContext(ctx, "token", tok)
			b.Run("range-auth-on", func(b *testing.B) {
				for b.Loop() {
					get(tctx)
				}
			})
		})
	}
}
