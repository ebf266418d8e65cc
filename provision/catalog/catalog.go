package catalog

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// Catalog keeps the last good catalogue in memory. Get builds it on first
// use; Refresh and Run rebuild it. A failed rebuild keeps the previous copy.
type Catalog struct {
	api    EC2API
	prices pricing.Provider
	opts   Options
	// SpotRefresher, when set, runs before every rebuild (for example
	// (*pricing.Live).RefreshSpot). Its error is logged; stale prices are kept.
	SpotRefresher func(context.Context) error

	refreshMu sync.Mutex // one rebuild at a time

	mu      sync.RWMutex
	types   []*InstanceType
	stats   BuildStats
	built   time.Time
	lastErr error
	unavail map[offeringKey]time.Time // expiry of each unavailable mark
	clock   clock.PassiveClock
	// spotFailed: the last SpotRefresher call failed; Run retries sooner.
	spotFailed bool
}

// SpotRetryInterval is how soon Run rebuilds again after the spot prices
// could not be refreshed (when sooner than Options.RefreshInterval).
const SpotRetryInterval = 5 * time.Minute

type offeringKey struct{ instanceType, zone, capacityType string }

// New validates opts and returns an empty catalogue.
func New(api EC2API, prices pricing.Provider, opts Options) (*Catalog, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Catalog{api: api, prices: prices, opts: o, unavail: map[offeringKey]time.Time{}, clock: clock.RealClock{}}, nil
}

// Get returns the catalogue, building it if it was never built. Offerings
// marked unavailable are returned with Available=false. The slice and the
// types are shared: do not modify them.
func (c *Catalog) Get(ctx context.Context) ([]*InstanceType, error) {
	c.mu.RLock()
	built := c.types != nil
	c.mu.RUnlock()
	if !built {
		if err := c.buildOnce(ctx); err != nil {
			return nil, err
		}
	}
	return c.view(), nil
}

// buildOnce builds the catalogue unless a concurrent caller already did.
func (c *Catalog) buildOnce(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.mu.RLock()
	built := c.types != nil
	c.mu.RUnlock()
	if built {
		return nil
	}
	return c.refreshLocked(ctx)
}

// Refresh rebuilds the catalogue from EC2. On error the last good copy stays
// in place and the error is returned (and kept for Status).
func (c *Catalog) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	return c.refreshLocked(ctx)
}

func (c *Catalog) refreshLocked(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if c.SpotRefresher != nil {
		err := c.SpotRefresher(ctx)
		if err != nil {
			logger.Error(err, "Refreshing spot prices failed; keeping the previous prices (or estimating them from on-demand prices)", "retryIn", min(SpotRetryInterval, c.opts.RefreshInterval))
		}
		c.mu.Lock()
		c.spotFailed = err != nil
		c.mu.Unlock()
	}
	start := c.clock.Now()
	types, stats, err := Build(ctx, c.api, c.prices, c.opts)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastErr = fmt.Errorf("refreshing instance-type catalogue: %w", err)
		return c.lastErr
	}
	c.types, c.stats, c.built, c.lastErr = types, stats, c.clock.Now(), nil
	logger.V(2).Info("Refreshed instance-type catalogue", "types", stats.Kept, "described", stats.Described,
		"noOnDemandPrice", stats.NoOnDemandPrice, "unknownSpotPrices", stats.UnknownSpotPrices,
		"duration", c.built.Sub(start))
	return nil
}

// Run refreshes the catalogue every Options.RefreshInterval until ctx ends,
// and after SpotRetryInterval when the spot prices could not be refreshed.
// Errors are logged; the last good catalogue stays in use.
func (c *Catalog) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Instance-type catalogue refresh failed; serving the last good copy")
		}
		next := c.opts.RefreshInterval
		c.mu.RLock()
		if c.spotFailed {
			next = min(next, SpotRetryInterval)
		}
		c.mu.RUnlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// Status reports when the catalogue was last built, with what counts, and
// the error of the latest refresh if it failed.
func (c *Catalog) Status() (built time.Time, stats BuildStats, lastErr error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.built, c.stats, c.lastErr
}

// MarkUnavailable takes an offering out of use for ttl, for example after
// CreateFleet reported InsufficientInstanceCapacity for it.
func (c *Catalog) MarkUnavailable(instanceType, zone, capacityType string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unavail[offeringKey{instanceType, zone, capacityType}] = c.clock.Now().Add(ttl)
}

// view applies the unavailable marks to the current catalogue, copying only
// the types it changes.
func (c *Catalog) view() []*InstanceType {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	byType := map[string][]offeringKey{}
	for k, until := range c.unavail {
		if !now.Before(until) {
			delete(c.unavail, k)
			continue
		}
		byType[k.instanceType] = append(byType[k.instanceType], k)
	}
	if len(byType) == 0 {
		return c.types
	}
	out := make([]*InstanceType, len(c.types))
	for i, it := range c.types {
		keys, ok := byType[it.Name]
		if !ok {
			out[i] = it
			continue
		}
		cp := *it
		cp.Offerings = append([]Offering(nil), it.Offerings...)
		for j := range cp.Offerings {
			o := &cp.Offerings[j]
			for _, k := range keys {
				if o.Zone == k.zone && o.CapacityType == k.capacityType {
					o.Available = false
				}
			}
		}
		out[i] = &cp
	}
	return out
}
