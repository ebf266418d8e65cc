// Package proc runs the sandbox's child processes so that none outlives the
// sandbox: each runs in its own process group (so it is stopped with
// everything it forked) with the parent-death signal set (so it dies with
// the sandbox even when the sandbox is killed with SIGKILL).
package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Process is a running child.
type Process struct {
	Name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error

	stopOnce sync.Once
	stopping chan struct{}
}

// Spec describes a child.
type Spec struct {
	Name string
	Path string
	Args []string
	// Env is the whole environment of the child.
	Env []string
	// Dir is the working directory; empty means the sandbox's.
	Dir string
	// LogPath receives the child's stdout and stderr.
	LogPath string
	// ExtraFiles are inherited as descriptors 3, 4, ...
	ExtraFiles []*os.File
}

// Start starts the child.
func Start(s Spec) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o755); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = s.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", s.Name, err)
	}
	p := &Process{Name: s.Name, cmd: cmd, log: log, done: make(chan struct{}), stopping: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id (and its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the child exited; valid after Done.
func (p *Process) Err() error { return p.err }

// Stopping reports whether Stop was called.
func (p *Process) Stopping() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the child's process group, waits up to grace for the
// child to exit, then kills the group. Whatever the child left in its group
// is killed too.
func (p *Process) Stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		close(p.stopping)
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	})
}

// Wait waits until the child exits or ctx ends.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ExitError describes an unexpected exit.
func (p *Process) ExitError() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	if p.err == nil {
		return fmt.Errorf("%s exited", p.Name)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return fmt.Errorf("%s exited: %s", p.Name, ee.ProcessState)
	}
	return fmt.Errorf("%s: %w", p.Name, p.err)
}

// Await calls check every 200ms until it succeeds, p exits, or timeout
// passes; then the error names p, what it did not become and check's last
// answer.
func (p *Process) Await(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		if exit := p.ExitError(); exit != nil {
			return exit
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not %s after %s: %v", p.Name, what, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Started are those of ps that were started (not nil).
func Started(ps ...*Process) []*Process {
	var out []*Process
	for _, p := range ps {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}
