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

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
)

// Provider implements cloudprovider.CloudProvider on EC2.
type Provider struct {
	ClusterName string
	// Endpoint overrides the API server endpoint read from cluster-info.
	Endpoint    string
	EC2         *ec2.Provider
	Catalog     *nodepool.EC2Catalog
	Pools       *nodepool.Source
	NodeClasses ec2listers.EC2NodeClassLister
	Tokens      bootstrap.TokenSource
	Kube        kubernetes.Interface
	// UnavailableTTL is how long an offering EC2 had no capacity for stays out of use.
	UnavailableTTL time.Duration

	mu          sync.Mutex
	clusterInfo *bootstrap.ClusterInfo
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
