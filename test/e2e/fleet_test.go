package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// kubectl fleet against the sandbox: the plan for scan-worker at 20
// replicas is made before the seed's scale-up and compared with what the
// sandbox then launches; the cost is compared with the launched nodes'
// prices. The plugin runs as a user runs it: the binary, with the
// sandbox's kubeconfig and AWS environment.

// fleetPlan is the part of `kubectl fleet plan -o json` compared here.
type fleetPlan struct {
	NodeClaims []struct {
		NodePool      string   `json:"nodePool"`
		InstanceTypes []string `json:"instanceTypes"`
		Pods          []string `json:"pods"`
	} `json:"nodeClaims"`
	Unplaced      []json.RawMessage `json:"unplaced"`
	PricePerHour  float64           `json:"pricePerHour"`
	ExistingNodes []struct {
		Node string   `json:"node"`
		Pods []string `json:"pods"`
	} `json:"existingNodes"`
}

var kubectlFleet = sync.OnceValues(func() (string, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(sandbox.Dir, "kubectl-fleet") // removed with the sandbox's state
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kubectl-fleet")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "building kubectl-fleet: " + e.err.Error() + "\n" + e.out }

// fleet runs kubectl-fleet with the sandbox's kubeconfig and AWS settings.
func fleet(ctx context.Context, t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	bin, err := kubectlFleet()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+sandbox.Kubeconfig, "AWS_ENDPOINT_URL="+sandbox.MotoEndpoint, "AWS_REGION="+world.Region,
		"AWS_ACCESS_KEY_ID="+world.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+world.SecretAccessKey, "AWS_EC2_METADATA_DISABLED=true")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl fleet %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// planScanWorker plans scan-worker at replicas as the runbook's user
// would: the Deployment as the cluster has it, replicas changed, piped in.
func planScanWorker(ctx context.Context, t *testing.T, replicas int32) fleetPlan {
	t.Helper()
	start := time.Now()
	d, err := sandbox.Client.AppsV1().Deployments(seed.ScanNamespace).Get(ctx, seed.ScanDeployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Replicas = &replicas
	d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	manifest, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	out := fleet(ctx, t, manifest, "plan", "-f", "-", "-o", "json")
	var plan fleetPlan
	if err := json.Unmarshal(out, &plan); err != nil {
		t.Fatalf("plan -o json is not a plan: %v\n%s", err, out)
	}
	t.Logf("kubectl fleet plan (%s): %d claims %v, $%g/h, on existing nodes %v", time.Since(start).Round(100*time.Millisecond),
		len(plan.NodeClaims), planTypes(plan), plan.PricePerHour, plan.ExistingNodes)
	if len(plan.Unplaced) > 0 {
		t.Errorf("plan leaves pods unplaced: %s", plan.Unplaced)
	}
	return plan
}

// planTypes are the plan's claims' cheapest types (what a launch picks).
func planTypes(p fleetPlan) []string {
	var out []string
	for _, c := range p.NodeClaims {
		out = append(out, c.InstanceTypes[0])
	}
	slices.Sort(out)
	return out
}

// comparePlan checks the sandbox launched what the plan said: as many
// claims, of the same instance types.
func comparePlan(t *testing.T, plan fleetPlan, claims []unstructured.Unstructured) {
	t.Helper()
	var launched []string
	for _, cl := range claims {
		launched = append(launched, cl.GetLabels()[corev1.LabelInstanceTypeStable])
	}
	slices.Sort(launched)
	if want := planTypes(plan); !slices.Equal(want, launched) {
		t.Errorf("kubectl fleet plan said %d claims %v; the sandbox launched %d: %v", len(want), want, len(launched), launched)
	}
}

// checkCost checks `kubectl fleet cost` against the claims' on-demand prices.
func checkCost(ctx context.Context, t *testing.T, claims []unstructured.Unstructured) {
	t.Helper()
	var report struct {
		PricePerHour float64 `json:"pricePerHour"`
		Nodes        []struct {
			Name string `json:"name"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(fleet(ctx, t, nil, "cost", "-o", "json"), &report); err != nil {
		t.Fatal(err)
	}
	// The prices the claims launched at: on-demand from the embedded
	// table, spot as EC2 (moto) reports it now.
	prices, err := pricing.NewLive(ec2.NewFromConfig(sandbox.AWS))
	if err != nil {
		t.Fatal(err)
	}
	if err := prices.RefreshSpot(ctx); err != nil {
		t.Logf("spot prices: %v (estimated from on-demand)", err)
	}
	want := 0.0
	for _, cl := range claims {
		l := cl.GetLabels()
		p, ok := prices.OnDemandPrice(l[corev1.LabelInstanceTypeStable])
		if l["karpenter.sh/capacity-type"] == "spot" {
			p, ok = prices.SpotPrice(l[corev1.LabelInstanceTypeStable], l[corev1.LabelTopologyZone])
		}
		if !ok {
			t.Fatalf("no price for claim %s (%v)", cl.GetName(), l)
		}
		want += p
	}
	if len(report.Nodes) != len(claims) || report.PricePerHour < want-1e-6 || report.PricePerHour > want+1e-6 {
		t.Errorf("kubectl fleet cost: %d nodes at $%.4f/h; the sandbox's %d claims cost $%.4f/h", len(report.Nodes), report.PricePerHour, len(claims), want)
	}
	t.Logf("kubectl fleet cost: %d nodes, $%g/h", len(report.Nodes), report.PricePerHour)
}
