// Package rpcerr maps MetaStore's internal errors (storage, consensus,
// context) to the gRPC errors etcd returns, so clients recognise them
// (clientv3 matches on message text: the values come from etcd's rpctypes,
// never retyped). Every service maps its errors here, once.
package rpcerr
