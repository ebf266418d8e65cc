package disruption

import (
	"context"
	"time"

	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
)

// machineRefresh is how old the machine list may get. Subnet and
// security-group drift is not urgent; one DescribeInstances a minute is
// what it costs.
const machineRefresh = time.Minute

// MachineLister lists the cluster's live machines (the cloud provider).
type MachineLister interface {
	List(ctx context.Context) ([]*cloudprovider.Machine, error)
}

// machineCache is the machine list by provider ID, refreshed on use once
// it is older than machineRefresh. It is used by the loop's goroutine only.
type machineCache struct {
	lister MachineLister
	at     time.Time
	byID   map[string]*cloudprovider.Machine
}

// get returns the machine with the provider ID, or nil when it is not
// known (no lister, not listed, or the list failed).
func (c *machineCache) get(ctx context.Context, providerID string, now time.Time) *cloudprovider.Machine {
	if c.lister == nil || providerID == "" {
		return nil
	}
	if now.Sub(c.at) >= machineRefresh {
		c.at = now // a failure is retried after machineRefresh too
		list, err := c.lister.List(ctx)
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Listing machines for drift; subnet and security-group drift not judged", "err", err)
			c.byID = nil
		} else {
			c.byID = make(map[string]*cloudprovider.Machine, len(list))
			for _, m := range list {
				c.byID[m.ProviderID] = m
			}
		}
	}
	return c.byID[providerID]
}
