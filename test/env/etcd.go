// Package env starts the real parts tests run against: an embedded etcd, an
// in-process kube-apiserver on it, and moto_server for the AWS APIs.
package env

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
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
	dir, err := os.MkdirTemp("", "fleet-etcd")
	if err != nil {
		return nil, err
	}
	clientURL, err := freeURL()
	if err != nil {
		return nil, err
	}
	peerURL, err := freeURL()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "fleet-test"
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.LogLevel = "error"
	// Tests write little; a small backend keeps memory low.
	cfg.QuotaBackendBytes = 2 << 30
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded etcd not ready within 60s")
	}
	return &Etcd{ClientURL: clientURL.String(), server: e, dir: dir}, nil
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

func freeURL() (*url.URL, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
