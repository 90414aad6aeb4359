module wasmesh.test/etcd

go 1.26

// build.sh builds this in a copy, with its requirements.
