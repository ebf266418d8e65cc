// Package nodepool turns NodePools, their EC2NodeClasses, the instance
// catalogue and the cluster's DaemonSets into the pools the Provisioner packs
// pods onto, and the NodeClaims still on their way into in-flight claims.
package nodepool

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	appslisters "k8s.io/client-go/listers/apps/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	alphalisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeoverlay"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Catalog answers, from memory and without calling the cloud, which launch
// options a node class can launch: every instance type in every zone (where
// the class has a subnet) and capacity type, of the architectures it has
// images for, with the class's kubelet settings applied to allocatable.
// Generation changes whenever the answer may have changed.
type Catalog interface {
	Launchable(class *ec2v1.EC2NodeClass) ([]*packing.Option, error)
	Generation() uint64
}

// Source is the live view of what may be provisioned. It caches each
// pool's options by the versions of its inputs, so a scheduling cycle
// only pays for what changed.
type Source struct {
	NodePools   karplisters.NodePoolLister
	NodeClaims  karplisters.NodeClaimLister
	NodeClasses ec2listers.EC2NodeClassLister
	DaemonSets  appslisters.DaemonSetLister
	Catalog     Catalog
	// NodeOverlays change the options' prices and capacity; nil when the
	// karpenter.sh/v1alpha1 API is not served.
	NodeOverlays alphalisters.NodeOverlayLister
	// OverlayStore receives each evaluation of the NodeOverlays, for the
	// cloud provider to launch claims with; nil: none is published.
	OverlayStore *nodeoverlay.Store

	mu       sync.Mutex
	pools    map[string]*cachedPool
	inFlight map[string]*cachedClaim
	tracker  *usageTracker
	overlays *overlayState
}

type cachedPool struct {
	key  string
	pool *packing.Pool
}

type cachedClaim struct {
	key     string
	options []*packing.PoolOption
}

// Pools returns every NodePool, heaviest first (then by name), each with
// its options or the reason it cannot provision now.
func (s *Source) Pools() []*packing.Pool {
	nodePools, err := s.NodePools.List(labels.Everything())
	if err != nil {
		return nil
	}
	sort.Slice(nodePools, func(i, j int) bool {
		wi, wj := weight(nodePools[i]), weight(nodePools[j])
		if wi != wj {
			return wi > wj
		}
		return nodePools[i].Name < nodePools[j].Name
	})
	daemonSets, _ := s.DaemonSets.List(labels.Everything())
	overlays := s.listOverlays()
	usage := s.usage()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pools == nil {
		s.pools = map[string]*cachedPool{}
	}
	seen := map[string]bool{}
	for _, np := range nodePools {
		seen[np.Name] = true
		class, classErr := s.nodeClass(np)
		key := s.cacheKey(np, class, daemonSets)
		cached := s.pools[np.Name]
		if cached == nil || cached.key != key {
			cached = &cachedPool{key: key, pool: s.build(np, class, classErr, daemonSets)}
			s.pools[np.Name] = cached
		}
	}
	for name := range s.pools {
		if !seen[name] {
			delete(s.pools, name)
		}
	}
	evaluated := s.evaluateOverlays(overlays, s.pools)
	out := make([]*packing.Pool, 0, len(nodePools))
	for _, np := range nodePools {
		cached := s.pools[np.Name]
		pool := *cached.pool // shallow copy: Remaining changes with usage, the rest is shared
		if opts, ok := evaluated.result.Options[np.Name]; ok {
			pool.Options = opts
		}
		pool.Version = cached.key + "/" + strconv.FormatUint(evaluated.generation, 10)
		pool.Remaining = remaining(np, usage[np.Name])
		out = append(out, &pool)
	}
	return out
}

func weight(np *karpv1.NodePool) int32 {
	if np.Spec.Weight == nil {
		return 0
	}
	return *np.Spec.Weight
}

func (s *Source) nodeClass(np *karpv1.NodePool) (*ec2v1.EC2NodeClass, error) {
	ref := np.Spec.Template.Spec.NodeClassRef
	if ref == nil {
		return nil, fmt.Errorf("spec.template.spec.nodeClassRef is not set")
	}
	if ref.Kind != "EC2NodeClass" || (ref.Group != "" && ref.Group != ec2v1.GroupName) {
		return nil, fmt.Errorf("nodeClassRef %s/%s is not an EC2NodeClass of %s", ref.Group, ref.Kind, ec2v1.GroupName)
	}
	class, err := s.NodeClasses.Get(ref.Name)
	if err != nil {
		return nil, fmt.Errorf("EC2NodeClass %q: %w", ref.Name, err)
	}
	if c := meta.FindStatusCondition(class.Status.Conditions, ec2v1.ConditionTypeReady); c == nil || c.Status != "True" {
		reason := "its status is not resolved yet"
		if c != nil && c.Message != "" {
			reason = c.Message
		}
		return class, fmt.Errorf("EC2NodeClass %q is not ready: %s", ref.Name, reason)
	}
	return class, nil
}

// cacheKey changes whenever anything a pool's options depend on changes.
func (s *Source) cacheKey(np *karpv1.NodePool, class *ec2v1.EC2NodeClass, daemonSets []*appsv1.DaemonSet) string {
	var b strings.Builder
	// Generation, not resourceVersion: status writes must not rebuild options.
	fmt.Fprintf(&b, "%d/%d", np.Generation, s.Catalog.Generation())
	if c := meta.FindStatusCondition(np.Status.Conditions, karpv1.ConditionTypeValidationSucceeded); c != nil {
		b.WriteString("/" + string(c.Status))
	}
	if paused, _ := launchhealth.Paused(np); paused {
		b.WriteString("/paused")
	}
	if class != nil {
		b.WriteString("/" + class.ResourceVersion)
	}
	for _, ds := range daemonSets {
		b.WriteString("/" + string(ds.UID) + ":" + ds.ResourceVersion)
	}
	return b.String()
}
