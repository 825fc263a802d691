// Package etcddb writes etcd v3.7 backend files: the bbolt database etcd
// keeps in member/snap/db and streams as Maintenance.Snapshot, with etcd's
// bucket layout and encodings (key, meta, lease, members,
// members_removed, cluster, alarm, auth, authUsers, authRoles). Bucket and
// key names come from etcd's schema package and values are encoded with
// etcd's own types, so that etcdutl and etcd read the file as one of
// their own.
package etcddb
