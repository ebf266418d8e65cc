// Package rabbitmq runs the sandbox's message broker - Debian's
// rabbitmq-server, the broker the runbook's scan queue lives on - on
// loopback ports, and speaks AMQP 0-9-1 to it (github.com/rabbitmq/amqp091-go)
// to publish to and read the scan queue.
//
// The broker is a child process like the control plane: its own state
// directory (config, Mnesia, Erlang cookie) under the sandbox's, its own
// epmd on a free port (a machine-wide epmd would outlive the sandbox), and
// no plugins (no management UI: KEDA's rabbitmq trigger reads the queue over
// AMQP). beam.smp is started the way systemd starts it (NOTIFY_SOCKET set),
// which makes the start script exec the VM rather than wait on it: the VM is
// then the sandbox's direct child, dies with it (parent-death signal), stops
// cleanly on SIGTERM, and reports READY=1 on the socket once it serves.
package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fleet-scheduler/fleet-scheduler/hack/etcdserver"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
)

// Where Debian's packages put the broker's start script and epmd.
const (
	ServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	erlangBin    = "/usr/lib/erlang/bin"
)

// InstallHint says how to get the broker where it is missing.
const InstallHint = "rabbitmq-server not found (" + ServerScript + "): `make run KEDA=1` and `make test` install " +
	"Debian's rabbitmq-server package (hack/ensure-deb.sh); elsewhere run: apt-get install rabbitmq-server"

// User is the broker's one user; its password is made per sandbox.
const User = "sandbox"

// Binaries finds the start script and epmd.
func Binaries() (server, epmd string, err error) {
	if _, err := os.Stat(ServerScript); err != nil {
		return "", "", errors.New(InstallHint)
	}
	epmd = filepath.Join(erlangBin, "epmd")
	if _, err := os.Stat(epmd); err != nil {
		if epmd, err = exec.LookPath("epmd"); err != nil {
			return "", "", fmt.Errorf("epmd not found in %s or on PATH (Debian's erlang-base package): %w", erlangBin, err)
		}
	}
	return ServerScript, epmd, nil
}

// Options configure a broker.
type Options struct {
	// Dir holds its configuration and data; it should be empty.
	Dir string
	// LogDir receives rabbitmq.log and epmd.log.
	LogDir string
	// Timeout bounds the start (default 3m: a cold VM on a busy machine
	// takes 15-30 s).
	Timeout time.Duration
}

// Broker is a running rabbitmq-server.
type Broker struct {
	// URL is the AMQP URL with the credentials (amqp://sandbox:<password>@127.0.0.1:<port>/%2F).
	URL string
	// Port is the AMQP port on 127.0.0.1.
	Port int
	// Epmd and Server are the two processes (the server is beam.smp).
	Epmd, Server *proc.Process
}

// Start starts epmd and rabbitmq-server and waits until the broker has
// said READY=1 and accepts an AMQP login. The broker binds the ports it is
// given itself, so another process may take one first; a start that exits
// before it is ready is tried again with fresh ports, twice.
func Start(ctx context.Context, o Options) (*Broker, error) {
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	server, epmdPath, err := Binaries()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		b, err := start(ctx, o, server, epmdPath)
		if err == nil || attempt == 3 || !errors.Is(err, errExited) || ctx.Err() != nil {
			return b, err
		}
	}
}

// errExited marks a broker or epmd that exited during the start.
var errExited = errors.New("exited before it was ready")

func start(ctx context.Context, o Options, server, epmdPath string) (_ *Broker, err error) {
	// Free ports: AMQP, Erlang distribution (the VM listens there even
	// with no cluster), epmd.
	var ports [3]int
	for i := range ports {
		if ports[i], err = etcdserver.FreePort(); err != nil {
			return nil, err
		}
	}
	amqpPort, distPort, epmdPort := ports[0], ports[1], ports[2]
	password, err := randomPassword()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(o.Dir, "rabbitmq.conf")
	if err := os.WriteFile(conf, []byte(config(amqpPort, password)), 0o600); err != nil {
		return nil, err
	}
	plugins := filepath.Join(o.Dir, "enabled_plugins")
	if err := os.WriteFile(plugins, []byte("[].\n"), 0o644); err != nil {
		return nil, err
	}
	notify, err := listenNotify(filepath.Join(o.Dir, "notify.sock"))
	if err != nil {
		return nil, err
	}
	defer notify.Close()

	b := &Broker{Port: amqpPort}
	defer func() {
		if err != nil {
			b.Stop()
		}
	}()
	b.Epmd, err = proc.Start(proc.Spec{
		Name: "epmd", Path: epmdPath, Args: []string{"-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1"},
		Env: os.Environ(), LogPath: filepath.Join(o.LogDir, "epmd.log"),
	})
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"HOME="+o.Dir, // the Erlang cookie
		"NOTIFY_SOCKET="+notify.path,
		"RABBITMQ_CONF_ENV_FILE=/dev/null", // not /etc/rabbitmq/rabbitmq-env.conf
		"RABBITMQ_CONFIG_FILE="+conf,
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(o.Dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+plugins,
		"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(o.Dir, "plugins-expand"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(o.Dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+o.LogDir,
		"RABBITMQ_LOGS=-",
		fmt.Sprintf("RABBITMQ_NODENAME=sandbox-%d@localhost", amqpPort),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", amqpPort),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", distPort),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		fmt.Sprintf("ERL_EPMD_PORT=%d", epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
	b.Server, err = proc.Start(proc.Spec{
		Name: "rabbitmq", Path: server, Env: env, Dir: o.Dir, LogPath: filepath.Join(o.LogDir, "rabbitmq.log"),
	})
	if err != nil {
		return nil, err
	}
	// The path is the vhost, "/" escaped.
	b.URL = fmt.Sprintf("amqp://%s@%s/%%2F", url.UserPassword(User, password), net.JoinHostPort("127.0.0.1", strconv.Itoa(amqpPort)))

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := notify.waitReady(ctx, b.Server, b.Epmd); err != nil {
		return nil, fmt.Errorf("rabbitmq-server not ready: %w (see %s)", err, filepath.Join(o.LogDir, "rabbitmq.log"))
	}
	for {
		conn, err := amqp.Dial(b.URL)
		if err == nil {
			conn.Close()
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("rabbitmq-server said READY but refuses AMQP logins: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Processes are the broker's processes, for the sandbox to watch.
func (b *Broker) Processes() []*proc.Process {
	return proc.Started(b.Epmd, b.Server)
}

// Stop stops the broker (it flushes its queues within a few seconds), then
// epmd (which ignores SIGTERM).
func (b *Broker) Stop() {
	if b.Server != nil {
		b.Server.Stop(15 * time.Second)
	}
	if b.Epmd != nil {
		b.Epmd.Stop(100 * time.Millisecond)
	}
}

// config is rabbitmq.conf: one loopback listener, the sandbox's user (the
// default guest account is never created), logs to the console (the log
// file of the process).
func config(port int, password string) string {
	return fmt.Sprintf(`# The sandbox's broker (hack/sandbox/rabbitmq).
listeners.tcp.default = 127.0.0.1:%d
default_user = %s
default_pass = %s
default_vhost = /
loopback_users = none
log.console = true
log.console.level = info
log.file = false
`, port, User, password)
}

func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// notifySocket is the sd_notify socket the broker reports its state on.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

func listenNotify(path string) (*notifySocket, error) {
	_ = os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("the broker's notify socket: %w", err)
	}
	return &notifySocket{path: path, conn: conn}, nil
}

func (n *notifySocket) Close() {
	n.conn.Close()
	_ = os.Remove(n.path)
}

// waitReady reads notifications until READY=1, a process exits or ctx
// ends.
func (n *notifySocket) waitReady(ctx context.Context, procs ...*proc.Process) error {
	buf := make([]byte, 4096)
	status := ""
	for {
		for _, p := range procs {
			if err := p.ExitError(); err != nil {
				return fmt.Errorf("%w: %w", errExited, err)
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no READY=1 (last status %q): %w", status, ctx.Err())
		}
		_ = n.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		k, err := n.conn.Read(buf)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(buf[:k]), "\n") {
			switch {
			case line == "READY=1":
				return nil
			case strings.HasPrefix(line, "STATUS="):
				status = strings.TrimPrefix(line, "STATUS=")
			}
		}
	}
}
