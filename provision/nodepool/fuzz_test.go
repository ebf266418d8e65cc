package nodepool

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// fixedCatalog offers the same options to every class.
type fixedCatalog []*packing.Option

func (c fixedCatalog) Launchable(*ec2v1.EC2NodeClass) ([]*packing.Option, error) { return c, nil }
func (c fixedCatalog) Generation() uint64                                        { return 1 }

func fuzzCatalog() fixedCatalog {
	var out fixedCatalog
	for _, o := range []struct {
		name, zone, arch, capacity, cpu string
		price                           float64
	}{
		{"t3.medium", "us-east-1a", "amd64", "on-demand", "2", 0.0416},
		{"t3.medium", "us-east-1b", "amd64", "spot", "2", 0.0125},
		{"m5.large", "us-east-1a", "amd64", "on-demand", "2", 0.096},
		{"m5.xlarge", "us-east-1c", "amd64", "on-demand", "4", 0.192},
		{"m6g.large", "us-east-1a", "arm64", "on-demand", "2", 0.077},
		{"g4dn.xlarge", "us-east-1b", "amd64", "on-demand", "4", 0.526},
	} {
		opt := opt(o.name, o.zone, o.arch)
		opt.CapacityType, opt.Price = o.capacity, o.price
		opt.Labels[karpv1.CapacityTypeLabelKey] = o.capacity
		opt.Labels["karpenter.k8s.aws/instance-cpu"] = o.cpu
		opt.Capacity = v1.ResourceList{v1.ResourceCPU: resource.MustParse(o.cpu), v1.ResourceMemory: resource.MustParse("4Gi"), v1.ResourcePods: resource.MustParse("110")}
		opt.Allocatable = opt.Capacity
		out = append(out, opt)
	}
	return out
}

// FuzzBuildPool: no NodePool spec - as decoded from JSON, before any
// validation - makes building its pool panic, and every option a pool
// offers carries the pool's labels and satisfies each In, NotIn, Exists
// and DoesNotExist requirement (checked here label by label, not with the
// selector the build uses).
func FuzzBuildPool(f *testing.F) {
	if raw, err := os.ReadFile("../../manifests/examples/nodepool.yaml"); err == nil {
		var np karpv1.NodePool
		if yaml.Unmarshal(raw, &np) == nil {
			seed, _ := json.Marshal(np.Spec)
			f.Add(seed)
		}
	}
	f.Add([]byte(`{"template":{"metadata":{"labels":{"managed-by":"karpenter"}},"spec":{"requirements":[{"key":"kubernetes.io/arch","operator":"In","values":["amd64"]},{"key":"karpenter.k8s.aws/instance-cpu","operator":"Gt","values":["2"]}],"nodeClassRef":{"group":"karpenter.k8s.aws","kind":"EC2NodeClass","name":"default"}}}}`))
	f.Add([]byte(`{"template":{"spec":{"requirements":[{"key":"node.kubernetes.io/instance-type","operator":"NotIn","values":["t3.medium"],"minValues":3},{"key":"team","operator":"In","values":["scan"]}],"taints":[{"key":"a","effect":"NoSchedule"}]}},"limits":{"cpu":"10"}}`))
	f.Add([]byte(`{"template":{"spec":{"requirements":[{"key":"karpenter.k8s.aws/instance-cpu","operator":"Gte","values":["x"]},{"key":"","operator":"Exists"}]}},"weight":-3,"replicas":2}`))
	class := &ec2v1.EC2NodeClass{Status: ec2v1.EC2NodeClassStatus{
		Subnets: []ec2v1.Subnet{{ID: "subnet-a", Zone: "us-east-1a"}, {ID: "subnet-b", Zone: "us-east-1b"}},
		AMIs: []ec2v1.AMI{{ID: "ami-1", Requirements: []v1.NodeSelectorRequirement{
			{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"amd64", "arm64"}}}}},
	}}
	catalog := fuzzCatalog()
	f.Fuzz(func(t *testing.T, spec []byte) {
		np := &karpv1.NodePool{}
		if err := json.Unmarshal(spec, &np.Spec); err != nil {
			return
		}
		np.Name = "fuzz"
		pool := (&Source{Catalog: catalog}).build(np, class, nil, nil)
		if pool.Unavailable != "" {
			return
		}
		for _, o := range pool.Options {
			labels := o.Node.Labels
			if labels[karpv1.NodePoolLabelKey] != "fuzz" {
				t.Fatalf("option %s/%s lacks the pool label: %v", o.InstanceType, o.Zone, labels)
			}
			for k, v := range np.Spec.Template.Labels {
				if labels[k] != v {
					t.Fatalf("option %s/%s lacks template label %s=%s: %v", o.InstanceType, o.Zone, k, v, labels)
				}
			}
			for _, r := range np.Spec.Template.Spec.Requirements {
				v, has := labels[r.Key]
				ok := true
				switch r.Operator {
				case v1.NodeSelectorOpIn:
					ok = has && slices.Contains(r.Values, v)
				case v1.NodeSelectorOpNotIn:
					ok = !has || !slices.Contains(r.Values, v)
				case v1.NodeSelectorOpExists:
					ok = has
				case v1.NodeSelectorOpDoesNotExist:
					ok = !has
				}
				if !ok {
					t.Fatalf("option %s/%s (labels %v) offered against requirement %s %s %v", o.InstanceType, o.Zone, labels, r.Key, r.Operator, r.Values)
				}
			}
		}
	})
}
