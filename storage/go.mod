module github.com/metastore/metastore/storage

go 1.26.0

require (
	github.com/linxGnu/grocksdb v1.7.15
	github.com/stretchr/testify v1.12.1
	github.com/tidwall/btree v1.8.2
)

require (
	go.etcd.io/etcd/api/v3 v3.7.3 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
