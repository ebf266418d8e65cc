package world

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
)

// The sandbox's child processes: their pid files, and what an unexpected
// exit means (a failure, or a scheduler replica's failover).

// watch writes p's pid file and reports an unexpected exit of p on
// Failed, except a scheduler's while another replica runs: that one takes
// over, as it would in a cluster.
func (w *World) watch(p *proc.Process) {
	w.procsMu.Lock()
	w.procs = append(w.procs, p)
	w.procsMu.Unlock()
	w.RSS.Track(p)
	if err := w.writeState("pids", p.Name, p.Pid()); err != nil {
		w.progress("warning: %v", err)
	}
	go func() {
		<-p.Done()
		if p.Stopping() {
			return
		}
		if others := w.runningSchedulers(p); w.isScheduler(p) && len(others) > 0 {
			w.progress("%v; %s still running", p.ExitError(), strings.Join(others, ", "))
			return
		}
		w.failed <- p.ExitError()
	}()
}

// stopSchedulers stops the running replicas, all at once.
func (w *World) stopSchedulers() {
	w.mu.Lock()
	defer w.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range w.schedulers {
		if p := s.proc; p != nil && p.ExitError() == nil {
			wg.Go(func() { p.Stop(10 * time.Second) })
		}
	}
	wg.Wait()
}

// isScheduler reports whether p is one of the fleet-scheduler replicas.
func (w *World) isScheduler(p *proc.Process) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.schedulers {
		if s.proc == p {
			return true
		}
	}
	return false
}

// runningSchedulers names the replicas other than p that have not exited.
func (w *World) runningSchedulers(p *proc.Process) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.schedulers {
		if s.proc != nil && s.proc != p && s.proc.ExitError() == nil {
			out = append(out, s.name)
		}
	}
	return out
}

// writeState writes value to Dir/<kind>/<name> (pids/, ports/), where
// scripts and `bin/sandbox leader` read it.
func (w *World) writeState(kind, name string, value int) error {
	dir := filepath.Join(w.Dir, kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("%d\n", value)), 0o644)
}

// Failed delivers an error when a component exits on its own.
func (w *World) Failed() <-chan error { return w.failed }

// Pids are the process ids of the child processes (each leads its group).
func (w *World) Pids() map[string]int {
	w.procsMu.Lock()
	defer w.procsMu.Unlock()
	out := map[string]int{}
	for _, p := range w.procs {
		out[p.Name] = p.Pid()
	}
	return out
}
