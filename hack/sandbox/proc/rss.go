package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RSSMeter samples the resident memory of this process and of every
// process in the children's process groups, and keeps the peak of the sum.
type RSSMeter struct {
	mu       sync.Mutex
	groups   map[int]string // pgid -> name
	peak     int64
	peakAt   map[string]int64 // breakdown at the peak
	maxEach  map[string]int64
	stop     chan struct{}
	stopped  chan struct{}
	pageSize int64
}

// NewRSSMeter starts sampling every interval.
func NewRSSMeter(interval time.Duration) *RSSMeter {
	m := &RSSMeter{
		groups: map[int]string{}, maxEach: map[string]int64{},
		stop: make(chan struct{}), stopped: make(chan struct{}), pageSize: int64(os.Getpagesize()),
	}
	go func() {
		defer close(m.stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Track adds a child's process group.
func (m *RSSMeter) Track(p *Process) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.groups[p.Pid()] = p.Name
}

// Stop ends sampling.
func (m *RSSMeter) Stop() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.stopped
}

// Current is the RSS now, by component, and its sum.
func (m *RSSMeter) Current() (map[string]int64, int64) {
	self := os.Getpid()
	m.mu.Lock()
	groups := make(map[int]string, len(m.groups))
	for k, v := range m.groups {
		groups[k] = v
	}
	m.mu.Unlock()
	by := map[string]int64{}
	var total int64
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name := ""
		if pid == self {
			name = "sandbox (etcd, node simulator)"
		} else {
			pgid, ok := processGroup(pid)
			if !ok {
				continue
			}
			if name, ok = groups[pgid]; !ok {
				continue
			}
		}
		rss := m.rss(pid)
		by[name] += rss
		total += rss
	}
	return by, total
}

func (m *RSSMeter) sample() {
	by, total := m.Current()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range by {
		if v > m.maxEach[k] {
			m.maxEach[k] = v
		}
	}
	if total > m.peak {
		m.peak, m.peakAt = total, by
	}
}

// Peak is the highest sum seen and its breakdown.
func (m *RSSMeter) Peak() (int64, map[string]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak, m.peakAt
}

// Summary formats the peak: "1234 MiB (kube-apiserver 400, ...)".
func (m *RSSMeter) Summary() string {
	peak, by := m.Peak()
	names := make([]string, 0, len(by))
	for k := range by {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return by[names[i]] > by[names[j]] })
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, by[n]>>20))
	}
	return fmt.Sprintf("%d MiB (%s MiB)", peak>>20, strings.Join(parts, ", "))
}

func (m *RSSMeter) rss(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "statm"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * m.pageSize
}

// processGroup reads the process group id from /proc/<pid>/stat.
func processGroup(pid int) (int, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return 0, false
	}
	pgid, err := strconv.Atoi(f[2])
	return pgid, err == nil
}
