// Package planner makes a plan: the pools the scheduler would provision
// from (nodepool.Source over NodePools, EC2NodeClasses and a catalogue),
// the pods a set of workloads adds, and the scheduler's decision for them
// (provisioner.Simulation), in the words and figures kubectl fleet prints.
package planner

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	alphalisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"

	appslisters "k8s.io/client-go/listers/apps/v1"
)

// CatalogOptions say where instance types and prices come from.
type CatalogOptions struct {
	// Offline uses the embedded catalogue and price table.
	Offline bool
	// Region overrides the AWS SDK's default chain.
	Region string
	// VMMemoryOverheadPercent as the Provisioner args set it.
	VMMemoryOverheadPercent float64
}

// Catalog is the instance catalogue a plan uses, and what to say of it.
type Catalog struct {
	*catalog.ClassOptions
	Prices *pricing.Live
	Region string
	Zones  []string
	Source string
}

// LoadCatalog builds the catalogue as the scheduler does: from EC2
// (DescribeInstanceTypes, DescribeInstanceTypeOfferings, spot price
// history) with the embedded on-demand prices, or offline from the
// embedded snapshot, spot prices then estimated from on-demand ones.
func LoadCatalog(ctx context.Context, o CatalogOptions) (*Catalog, error) {
	overhead := o.VMMemoryOverheadPercent
	opts := catalog.Options{Region: o.Region, VMMemoryOverheadPercent: &overhead}
	out := &Catalog{}
	var cat *catalog.Catalog
	if o.Offline {
		prices, err := pricing.NewLive(nil)
		if err != nil {
			return nil, err
		}
		// No EC2 to ask: spot prices become on-demand less the default discount.
		_ = prices.RefreshSpot(ctx)
		if cat, err = catalog.NewOffline(prices, opts); err != nil {
			return nil, fmt.Errorf("--offline: %w (the embedded catalogue and prices are %s's; drop --region)", err, catalog.OfflineRegion)
		}
		out.Prices, out.Region = prices, catalog.OfflineRegion
		out.Source = fmt.Sprintf("offline: embedded %s instance types and on-demand prices; spot prices estimated at %.0f%% off", catalog.OfflineRegion, 100*pricing.DefaultSpotDiscount)
	} else {
		cfg, err := ec2.LoadDefaultConfig(ctx, o.Region)
		if err != nil {
			return nil, fmt.Errorf("loading the AWS configuration: %w (or plan with --offline)", err)
		}
		if cfg.Region == "" {
			return nil, fmt.Errorf("no AWS region: set --region or AWS_REGION, or plan with --offline")
		}
		client := ec2.NewEC2Client(cfg, ec2.RetryOptions{MaxAttempts: 3, MaxBackoff: 2 * time.Second})
		prices, err := pricing.NewLive(client)
		if err != nil {
			return nil, err
		}
		opts.Region = cfg.Region
		if cat, err = catalog.New(client, prices, opts); err != nil {
			return nil, err
		}
		cat.SpotRefresher = prices.RefreshSpot
		out.Prices, out.Region = prices, cfg.Region
		out.Source = "EC2 " + cfg.Region + ": instance types and offerings from DescribeInstanceTypes, embedded on-demand prices, spot prices from EC2"
	}
	if err := cat.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("%w: check the AWS credentials and region (the SDK's default chain: AWS_PROFILE, AWS_ACCESS_KEY_ID, ...), or plan with --offline", err)
	}
	if !o.Offline && out.Prices.SpotEstimated() {
		out.Source += " (spot prices estimated: DescribeSpotPriceHistory did not answer)"
	}
	types, _ := cat.Get(ctx)
	for _, it := range types {
		for _, off := range it.Offerings {
			if !slices.Contains(out.Zones, off.Zone) {
				out.Zones = append(out.Zones, off.Zone)
			}
		}
	}
	slices.Sort(out.Zones)
	out.ClassOptions = &catalog.ClassOptions{Catalog: cat}
	return out, nil
}

// PoolInputs are what the pools are built from.
type PoolInputs struct {
	NodePools   []*karpv1.NodePool
	NodeClasses []*ec2v1.EC2NodeClass
	// NodeOverlays is nil when the API is not served.
	NodeOverlays []*v1alpha1.NodeOverlay
	NodeClaims   []*karpv1.NodeClaim
	DaemonSets   []*appsv1.DaemonSet
}

// NewSource is the scheduler's pool source (nodepool.Source) over
// in-memory listers of the inputs.
func NewSource(in PoolInputs, cat nodepool.Catalog) *nodepool.Source {
	s := &nodepool.Source{
		NodePools:   karplisters.NewNodePoolLister(indexer(in.NodePools)),
		NodeClaims:  karplisters.NewNodeClaimLister(indexer(in.NodeClaims)),
		NodeClasses: ec2listers.NewEC2NodeClassLister(indexer(in.NodeClasses)),
		DaemonSets:  appslisters.NewDaemonSetLister(indexer(in.DaemonSets)),
		Catalog:     cat,
	}
	if in.NodeOverlays != nil {
		s.NodeOverlays = alphalisters.NewNodeOverlayLister(indexer(in.NodeOverlays))
	}
	return s
}

func indexer[T any](objs []*T) cache.Indexer {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		_ = idx.Add(o)
	}
	return idx
}

// resolveClasses gives EC2NodeClasses read from files the status the
// nodeclass controller would give them. A class of the same name in the
// cluster lends its status (its subnets, images and readiness); otherwise
// the class is taken as resolved to a subnet in every zone of the
// catalogue and images for amd64 and arm64, and a note says so.
func resolveClasses(files, inCluster []*ec2v1.EC2NodeClass, zones []string) ([]*ec2v1.EC2NodeClass, []string) {
	byName := map[string]*ec2v1.EC2NodeClass{}
	for _, c := range inCluster {
		byName[c.Name] = c
	}
	var notes []string
	for _, f := range files {
		c := f.DeepCopy()
		if len(c.Status.Conditions) == 0 {
			if live := byName[c.Name]; live != nil {
				c.Status = *live.Status.DeepCopy()
				notes = append(notes, fmt.Sprintf("EC2NodeClass %s: subnets, images and readiness as the cluster's %s resolves them", c.Name, c.Name))
			} else {
				c.Status = assumedStatus(zones)
				notes = append(notes, fmt.Sprintf("EC2NodeClass %s: not resolved against EC2; assumed a subnet in each of %d zones and images for amd64 and arm64", c.Name, len(zones)))
			}
		}
		byName[c.Name] = c
	}
	out := make([]*ec2v1.EC2NodeClass, 0, len(byName))
	for _, name := range sortedKeys(byName) {
		out = append(out, byName[name])
	}
	return out, notes
}

func assumedStatus(zones []string) ec2v1.EC2NodeClassStatus {
	st := ec2v1.EC2NodeClassStatus{}
	for _, z := range zones {
		st.Subnets = append(st.Subnets, ec2v1.Subnet{ID: "subnet-assumed-" + z, Zone: z})
	}
	for _, arch := range []string{"amd64", "arm64"} {
		st.AMIs = append(st.AMIs, ec2v1.AMI{ID: "ami-assumed-" + arch, Name: "assumed " + arch + " image",
			Requirements: []v1.NodeSelectorRequirement{{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{arch}}}})
	}
	st.Conditions = []metav1.Condition{{Type: ec2v1.ConditionTypeReady, Status: metav1.ConditionTrue, Reason: "Assumed",
		Message: "kubectl fleet plan: not resolved against EC2", LastTransitionTime: metav1.Now()}}
	return st
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
