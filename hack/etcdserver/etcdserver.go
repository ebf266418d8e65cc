// Package etcdserver starts etcd embedded in this process on free loopback
// ports: the storage of the sandbox's API server and of the tests'.
package etcdserver

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Options configure one server.
type Options struct {
	// Dir holds its data; Name is its member name.
	Dir, Name string
	// LogLevel and LogOutputs are etcd's logger settings.
	LogLevel   string
	LogOutputs []string
	// UnsafeNoFsync skips fsync, for data that is thrown away anyway.
	UnsafeNoFsync bool
}

// Start starts etcd and waits (a minute at most) until it serves; it
// returns the server and its client URL. etcd binds the ports itself, so
// another process may take one between FreePort and the bind: the error
// then says "address already in use" and a caller may try again.
func Start(o Options) (*embed.Etcd, string, error) {
	clientURL, err := freeURL()
	if err != nil {
		return nil, "", err
	}
	peerURL, err := freeURL()
	if err != nil {
		return nil, "", err
	}
	cfg := embed.NewConfig()
	cfg.Dir, cfg.Name = o.Dir, o.Name
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.LogLevel = o.LogLevel
	if len(o.LogOutputs) > 0 {
		cfg.LogOutputs = o.LogOutputs
	}
	cfg.UnsafeNoFsync = o.UnsafeNoFsync
	// Tests and the sandbox write little; a small backend keeps memory low.
	cfg.QuotaBackendBytes = 2 << 30
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("starting embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("embedded etcd not ready within 60s")
	}
	return e, clientURL.String(), nil
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
