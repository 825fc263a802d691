// Package auth is etcd's authentication and role-based access control for
// MetaStore: the replicated auth store (users, roles, permissions, the
// enabled flag and the auth revision, kept in storage auxiliary buckets in
// the same batch as the key space and the consistent index), the
// permission checks every operation passes, tokens, and etcd's Auth gRPC
// service.
//
// State changes are applied from the Raft log (Store.Apply), so every
// member holds the same auth state and revision. Passwords are hashed with
// bcrypt by the member that receives the request, outside the apply step,
// and only the hash is replicated, as etcd does. Permission checks follow
// etcd v3.7 exactly (go.etcd.io/etcd/pkg/v3/adt interval sets per user).
//
// Tokens: "simple" tokens are signed with a key kept in the replicated
// state, so — unlike etcd's, which live in one member's memory — a token
// issued by one member is accepted by every member, survives restarts and
// snapshots, and stops working everywhere at once when its user is deleted
// or changes password. "jwt" tokens are etcd's (github.com/golang-jwt/jwt).
package auth
