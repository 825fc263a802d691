package auth

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// BenchmarkSimpleTokenInfo is the per-request cost of checking a simple
// token (an HMAC-SHA256 and a map lookup).
func BenchmarkSimpleTokenInfo(b *testing.B) {
	h := enabledWithKey(b)
	tk, _ := NewTokens(h.st, "simple", time.Hour, nil)
	tok, err := tk.Assign("alice", h.st.Revision())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := tk.Info(tok); !ok {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkIsPermitted is the per-request permission check of a user with
// 100 prefix grants, for one key and for a range.
func BenchmarkIsPermitted(b *testing.B) {
	h := newHarness(b)
	h.enable()
	var perms []*authpb.Permission
	for i := range 100 {
		perms = append(perms, perm(authpb.READWRITE, fmt.Sprintf("p%03d/", i), fmt.Sprintf("p%03d0", i)))
	}
	h.addRole("many", perms...)
	h.addUser("u", "pw", "many")
	ai := &AuthInfo{Username: "u", Revision: h.st.Revision()}
	for _, c := range []struct{ name, key, end string }{{"key", "p050/x", ""}, {"range", "p050/", "p0500"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := h.st.IsPermitted(ai, false, []byte(c.key), []byte(c.end)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyUserAdd is the apply cost of a user change (with the
// permission cache rebuild), with 1000 users.
func BenchmarkApplyUserAdd(b *testing.B) {
	h := newHarness(b)
	pw := hash(b, "pw")
	for i := range 1000 {
		h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: fmt.Sprint("u", i), HashedPassword: pw}})
	}
	i := 0
	for b.Loop() {
		i++
		h.st.Apply(h.aux, &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: fmt.Sprint("new", i), HashedPassword: pw}})
	}
}
