// Package env starts the real parts tests run against: an embedded etcd, an
// in-process kube-apiserver on it, and moto_server for the AWS APIs.
package env

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/fleet-scheduler/fleet-scheduler/hack/etcdserver"
)

// Etcd is an embedded etcd server listening on loopback.
type Etcd struct {
	ClientURL string
	server    *embed.Etcd
	dir       string
}

// StartEtcd starts an etcd server in this process with its data in a fresh
// temporary directory. Stop it with Close. etcd binds the ports itself, so
// another process may take one between FreePort and the bind; that is
// retried on fresh ports.
func StartEtcd() (*Etcd, error) {
	var err error
	for range 3 {
		var e *Etcd
		if e, err = startEtcd(); err == nil {
			return e, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}

func startEtcd() (*Etcd, error) {
	removeOrphans()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	// The data is thrown away with the test process, so fsync buys nothing.
	e, clientURL, err := etcdserver.Start(etcdserver.Options{Dir: dir, Name: "fleet-test", LogLevel: "error", UnsafeNoFsync: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Etcd{ClientURL: clientURL, server: e, dir: dir}, nil
}

// dirPrefix names data directories "fleet-etcd-<pid>-<random>", so a later
// test process can tell whose they are.
const dirPrefix = "fleet-etcd-"

// removeOrphans deletes the data directories of test processes that are gone.
// The shared server lives as long as its test binary, and Go has no exit hook
// to remove its ~125 MB of WAL and database, so without this every package's
// run would leave one behind and a few hundred runs fill the disk.
func removeOrphans() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), dirPrefix), "-", 2)[0])
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// Close stops the server and removes its data.
func (e *Etcd) Close() {
	e.server.Close()
	os.RemoveAll(e.dir)
}

var (
	sharedOnce sync.Once
	shared     *Etcd
	sharedErr  error
)

// SharedEtcd returns one etcd per test process; apiservers on it use
// distinct key prefixes so they never see each other's objects.
func SharedEtcd() (*Etcd, error) {
	sharedOnce.Do(func() { shared, sharedErr = StartEtcd() })
	return shared, sharedErr
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) { return etcdserver.FreePort() }
