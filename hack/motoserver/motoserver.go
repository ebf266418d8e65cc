// Package motoserver starts moto_server, the EC2 and SSM emulator the tests
// and the sandbox run against, on a loopback socket this process binds and
// hands over.
//
// Binding here rather than picking a "free" port and letting moto bind it
// closes a race: with test packages running in parallel, two processes could
// pick the same port, one moto would fail to bind, and its owner would then
// talk to the other's moto (seen in CI as a subnet CIDR conflict). Werkzeug,
// which moto serves with, takes an already-bound socket through the same
// environment variables its reloader uses.
package motoserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// InstallHint is printed wherever moto_server is missing.
const InstallHint = "moto_server not found on PATH or in ~/.pyenv/shims; install it with: pip install 'moto[server]'"

// Binary finds moto_server on PATH or in the pyenv shims directory.
func Binary() (string, error) {
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".pyenv", "shims", "moto_server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s", InstallHint)
}

// Socket is a listening loopback TCP socket for one moto_server.
type Socket struct {
	// Endpoint is the server's URL, http://127.0.0.1:<port>.
	Endpoint string
	port     int
	file     *os.File
}

// Listen binds a free loopback port and keeps it bound until the child that
// inherits it serves on it.
func Listen() (*Socket, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("binding a loopback port for moto_server: %w", err)
	}
	defer l.Close() // the duplicate below keeps the socket open
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		return nil, fmt.Errorf("duplicating moto_server's socket: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return &Socket{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), port: port, file: f}, nil
}

// Args are moto_server's arguments; the port is the socket's, which moto
// also uses when it builds URLs of its own.
func (s *Socket) Args() []string {
	return []string{"-H", "127.0.0.1", "-p", fmt.Sprint(s.port)}
}

// Env is what the child's environment must add: werkzeug serves on the
// inherited descriptor 3 (the first of exec.Cmd.ExtraFiles) instead of
// binding.
func (s *Socket) Env() []string {
	return []string{"WERKZEUG_RUN_MAIN=true", "WERKZEUG_SERVER_FD=3", fmt.Sprintf("MOTO_PORT=%d", s.port)}
}

// File is the socket, to pass as the child's only ExtraFiles entry.
func (s *Socket) File() *os.File { return s.file }

// Close releases this process's copy once the child has started.
func (s *Socket) Close() error { return s.file.Close() }

// WaitReady polls the server until it answers, the context ends, or
// exited (when not nil) reports that the child is gone.
func WaitReady(ctx context.Context, endpoint string, exited func() error) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/moto-api/", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if exited != nil {
			if exit := exited(); exit != nil {
				return fmt.Errorf("moto_server exited before answering: %w", exit)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("moto_server on %s did not answer: %w", endpoint, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
