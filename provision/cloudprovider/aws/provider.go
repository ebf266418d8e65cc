// Package aws is the CloudProvider for EC2: it launches a NodeClaim's
// instance with EC2 Fleet from the claim's surviving options, with user data
// that runs `kubeadm join` under the claim's node name.
package aws

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeoverlay"
)

// Provider implements cloudprovider.CloudProvider on EC2.
type Provider struct {
	ClusterName string
	// Endpoint overrides the API server endpoint read from cluster-info.
	Endpoint    string
	EC2         *ec2.Provider
	Catalog     *catalog.ClassOptions
	NodePools   karplisters.NodePoolLister
	NodeClasses ec2listers.EC2NodeClassLister
	Tokens      bootstrap.TokenSource
	Kube        kubernetes.Interface
	// Overlays is the NodeOverlays' latest evaluation, which
	// nodepool.Source publishes; nil: no overlay applies.
	Overlays *nodeoverlay.Store
	// UnavailableTTL is how long an offering EC2 had no capacity for stays out of use.
	UnavailableTTL time.Duration
	// Health backs off the launches of NodePools whose launches fail for
	// reasons a retry does not fix soon (quota, permissions, bad
	// parameters); nil: no backoff.
	Health *launchhealth.Tracker

	mu          sync.Mutex
	clusterInfo *bootstrap.ClusterInfo

	locksMu sync.Mutex
	locks   map[string]*claimLock
	// launched remembers the instance this process launched (or found) for
	// each claim until the claim's Delete: DescribeInstances is eventually
	// consistent and may not list an instance launched a moment ago.
	launched map[string]launchedInstance
}

type launchedInstance struct {
	claimUID, instanceID string
}

func (p *Provider) remember(nc *karpv1.NodeClaim, instanceID string) {
	p.locksMu.Lock()
	defer p.locksMu.Unlock()
	if p.launched == nil {
		p.launched = map[string]launchedInstance{}
	}
	p.launched[nc.Name] = launchedInstance{claimUID: string(nc.UID), instanceID: instanceID}
}

// remembered is the instance launched for the claim, or "".
func (p *Provider) remembered(nc *karpv1.NodeClaim) string {
	p.locksMu.Lock()
	defer p.locksMu.Unlock()
	if l, ok := p.launched[nc.Name]; ok && (l.claimUID == string(nc.UID) || nc.UID == "") {
		return l.instanceID
	}
	return ""
}

func (p *Provider) forget(nc *karpv1.NodeClaim) {
	p.locksMu.Lock()
	defer p.locksMu.Unlock()
	delete(p.launched, nc.Name)
}

// claimLockWait bounds how long a call waits for another call about the
// same claim: a worker is never held longer; the claim is retried later.
const claimLockWait = 5 * time.Second

// claimLock is a mutex whose Lock gives up (a channel of one token).
type claimLock struct {
	held chan struct{}
	refs int
}

// lockClaim serialises the calls about one claim (Create and Delete run
// in different controllers) and returns the unlock. It waits at most
// claimLockWait (or until ctx ends), then fails with a BusyError. No AWS
// call lasts longer than its deadline, so a lock is never held by a hung call
// for longer than that.
func (p *Provider) lockClaim(ctx context.Context, name string) (unlock func(), err error) {
	p.locksMu.Lock()
	if p.locks == nil {
		p.locks = map[string]*claimLock{}
	}
	l := p.locks[name]
	if l == nil {
		l = &claimLock{held: make(chan struct{}, 1)}
		p.locks[name] = l
	}
	l.refs++
	p.locksMu.Unlock()
	release := func() {
		p.locksMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(p.locks, name)
		}
		p.locksMu.Unlock()
	}
	timer := time.NewTimer(claimLockWait)
	defer timer.Stop()
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	case <-timer.C:
		release()
		return nil, &cloudprovider.BusyError{Err: fmt.Errorf("another launch or deletion of NodeClaim %s is under way", name)}
	}
}

var _ cloudprovider.CloudProvider = &Provider{}

// endpoint is the API server nodes join, discovered once from
// kube-public/cluster-info unless set explicitly.
func (p *Provider) endpoint(ctx context.Context) (string, error) {
	if p.Endpoint != "" {
		return p.Endpoint, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clusterInfo == nil {
		ci, err := bootstrap.DiscoverClusterInfo(ctx, p.Kube, bootstrap.ClusterInfoOverrides{})
		if err != nil {
			return "", fmt.Errorf("discovering the API server endpoint: %w", err)
		}
		p.clusterInfo = ci
	}
	return p.clusterInfo.Endpoint, nil
}
