package crds

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

var (
	nodePools      = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodepools"}
	nodeClaims     = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodeclaims"}
	ec2NodeClasses = schema.GroupVersionResource{Group: "karpenter.k8s.aws", Version: "v1", Resource: "ec2nodeclasses"}
)

func resourceFor(t testing.TB, u *unstructured.Unstructured) schema.GroupVersionResource {
	t.Helper()
	switch u.GetKind() {
	case "NodePool":
		return nodePools
	case "NodeClaim":
		return nodeClaims
	case "EC2NodeClass":
		return ec2NodeClasses
	}
	t.Fatalf("unexpected kind %q", u.GetKind())
	return schema.GroupVersionResource{}
}

// cluster is a kube-apiserver with the generated CRDs installed.
type cluster struct {
	config  *rest.Config
	dynamic dynamic.Interface
	typed   versioned.Interface
	crds    map[string]*apiextensionsv1.CustomResourceDefinition // by resource plural
}

// TestCRDs runs every check against one apiserver: starting one costs more
// than all the checks together.
func TestCRDs(t *testing.T) {
	start := time.Now()
	api := env.StartAPIServer(t)
	t.Logf("apiserver up in %v", time.Since(start).Round(time.Millisecond))
	// The test server's config asks for protobuf, which custom resources do
	// not speak.
	cfg := rest.CopyConfig(api.Config)
	cfg.ContentType = "application/json"
	c := &cluster{
		config:  cfg,
		dynamic: dynamic.NewForConfigOrDie(cfg),
		typed:   versioned.NewForConfigOrDie(cfg),
	}
	start = time.Now()
	// A CEL rule that does not compile or is over the cost budget fails here.
	c.crds = env.InstallCRDs(t, cfg)
	for _, want := range []string{"nodepools", "nodeclaims", "ec2nodeclasses"} {
		if c.crds[want] == nil {
			t.Fatalf("no CRD for %s in %s", want, crdDir)
		}
	}
	t.Logf("CRDs established in %v", time.Since(start).Round(time.Millisecond))

	t.Run("Examples", c.testExamples)
	t.Run("FullObjects", c.testFullObjects)
	t.Run("FixturesCoverSchema", c.testFixturesCoverSchema)
	t.Run("Defaults", c.testDefaults)
	t.Run("WellKnownLabels", c.testWellKnownLabels)
	t.Run("Invalid", c.testInvalid)
	t.Run("Immutable", c.testImmutable)
	t.Run("PrinterColumns", c.testPrinterColumns)
	t.Run("ClientInformer", c.testClientInformer)
}

// roundTrip creates obj (and its status, if it has one) and returns what the
// server stores, as read through the dynamic client and as read through the
// typed client and marshaled back.
func (c *cluster) roundTrip(t *testing.T, obj *unstructured.Unstructured) (stored, typed map[string]any) {
	t.Helper()
	ctx := context.Background()
	gvr := resourceFor(t, obj)
	client := c.dynamic.Resource(gvr)
	created, err := client.Create(ctx, obj.DeepCopy(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
	t.Cleanup(func() { _ = client.Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{}) })
	if status, ok := obj.Object["status"]; ok {
		created.Object["status"] = status
		if _, err := client.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update status of %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	got, err := client.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var typedObj runtime.Object
	switch gvr {
	case nodePools:
		typedObj, err = c.typed.KarpenterV1().NodePools().Get(ctx, obj.GetName(), metav1.GetOptions{})
	case nodeClaims:
		typedObj, err = c.typed.KarpenterV1().NodeClaims().Get(ctx, obj.GetName(), metav1.GetOptions{})
	case ec2NodeClasses:
		typedObj, err = c.typed.EC2V1().EC2NodeClasses().Get(ctx, obj.GetName(), metav1.GetOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	return got.Object, toMap(t, typedObj)
}

// checkIntact fails for every field of want missing or changed in got.
func checkIntact(t *testing.T, what string, want, got map[string]any) {
	t.Helper()
	for _, part := range []string{"spec", "status"} {
		if w, ok := want[part]; ok {
			for _, d := range contains(w, got[part], part) {
				t.Errorf("%s: %s", what, d)
			}
		}
	}
	wantMeta, _ := want["metadata"].(map[string]any)
	for _, key := range []string{"labels", "annotations"} {
		if w, ok := wantMeta[key]; ok {
			for _, d := range contains(w, got["metadata"].(map[string]any)[key], "metadata."+key) {
				t.Errorf("%s: %s", what, d)
			}
		}
	}
}

func (c *cluster) testExamples(t *testing.T) {
	for _, file := range []string{"ec2nodeclass.yaml", "nodepool.yaml"} {
		for _, obj := range readObjects(t, filepath.Join(examplesDir, file)) {
			t.Run(obj.GetKind(), func(t *testing.T) {
				want := obj.DeepCopy().Object
				stored, typed := c.roundTrip(t, obj)
				checkIntact(t, "stored", want, stored)
				checkIntact(t, "typed client", want, typed)
			})
		}
	}
}

func (c *cluster) testFullObjects(t *testing.T) {
	for _, file := range []string{"ec2nodeclasses.yaml", "nodepools.yaml", "nodeclaims.yaml"} {
		for _, obj := range readObjects(t, filepath.Join(testdataDir, file)) {
			t.Run(obj.GetKind()+"/"+obj.GetName(), func(t *testing.T) {
				want := obj.DeepCopy().Object
				stored, typed := c.roundTrip(t, obj)
				checkIntact(t, "stored", want, stored)
				checkIntact(t, "typed client", want, typed)
			})
		}
	}
}

// testFixturesCoverSchema checks that the fixtures above set every field the
// CRDs define, so the round trip really covers the whole API.
func (c *cluster) testFixturesCoverSchema(t *testing.T) {
	fixtures := map[string]string{
		"nodepools":      "nodepools.yaml",
		"nodeclaims":     "nodeclaims.yaml",
		"ec2nodeclasses": "ec2nodeclasses.yaml",
	}
	for plural, file := range fixtures {
		t.Run(plural, func(t *testing.T) {
			root := c.crds[plural].Spec.Versions[0].Schema.OpenAPIV3Schema
			inSchema := map[string]bool{}
			for _, part := range []string{"spec", "status"} {
				schemaPaths(root.Properties[part], part, inSchema)
			}
			inData := map[string]bool{}
			for _, obj := range readObjects(t, filepath.Join(testdataDir, file)) {
				for _, part := range []string{"spec", "status"} {
					s := root.Properties[part]
					dataPaths(obj.Object[part], &s, part, inData)
				}
			}
			var missing []string
			for p := range inSchema {
				if !inData[p] {
					missing = append(missing, p)
				}
			}
			sort.Strings(missing)
			for _, p := range missing {
				t.Errorf("no fixture in testdata/%s sets %s", file, p)
			}
			for p := range inData {
				if !inSchema[p] {
					t.Errorf("testdata/%s sets %s, which the schema does not have", file, p)
				}
			}
		})
	}
}

// testDefaults checks the defaults Karpenter's CRDs apply.
func (c *cluster) testDefaults(t *testing.T) {
	ctx := context.Background()
	np := &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
		Spec: karpv1.NodePoolSpec{Template: karpv1.NodeClaimTemplate{Spec: karpv1.NodeClaimTemplateSpec{
			Requirements: []karpv1.NodeSelectorRequirementWithMinValues{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"amd64"}}},
			NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
		}}},
	}
	// A zero NillableDuration means Never and is sent as "Never"; leave the
	// fields out of the request to see the server's defaults.
	u := &unstructured.Unstructured{Object: toMap(t, np)}
	unstructured.RemoveNestedField(u.Object, "spec", "template", "spec", "expireAfter")
	unstructured.RemoveNestedField(u.Object, "spec", "disruption")
	u.SetAPIVersion("karpenter.sh/v1")
	u.SetKind("NodePool")
	if _, err := c.dynamic.Resource(nodePools).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.typed.KarpenterV1().NodePools().Delete(context.Background(), "defaults", metav1.DeleteOptions{})
	})
	got, err := c.typed.KarpenterV1().NodePools().Get(ctx, "defaults", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Spec.Template.Spec.ExpireAfter.String(); s != "720h" {
		t.Errorf("expireAfter = %q, want 720h", s)
	}
	if s := got.Spec.Disruption.ConsolidateAfter.String(); s != "0s" {
		t.Errorf("consolidateAfter = %q, want 0s", s)
	}
	if p := got.Spec.Disruption.ConsolidationPolicy; p != karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized {
		t.Errorf("consolidationPolicy = %q", p)
	}
	if b := got.Spec.Disruption.Budgets; len(b) != 1 || b[0].Nodes != "10%" {
		t.Errorf("budgets = %+v, want one of 10%%", b)
	}

	nc := &ec2v1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
		Spec: ec2v1.EC2NodeClassSpec{
			AMISelectorTerms:           []ec2v1.AMISelectorTerm{{Alias: "al2023@latest"}},
			SubnetSelectorTerms:        []ec2v1.SubnetSelectorTerm{{ID: "subnet-1"}},
			SecurityGroupSelectorTerms: []ec2v1.SecurityGroupSelectorTerm{{ID: "sg-1"}},
			Role:                       "node-role",
		},
	}
	created, err := c.typed.EC2V1().EC2NodeClasses().Create(ctx, nc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.typed.EC2V1().EC2NodeClasses().Delete(context.Background(), "defaults", metav1.DeleteOptions{})
	})
	mo := created.Spec.MetadataOptions
	if mo == nil || deref(mo.HTTPEndpoint) != "enabled" || deref(mo.HTTPProtocolIPv6) != "disabled" ||
		deref(mo.HTTPTokens) != "required" || mo.HTTPPutResponseHopLimit == nil || *mo.HTTPPutResponseHopLimit != 1 {
		t.Errorf("metadataOptions = %+v, want enabled/disabled/required/1", toMap(t, mo))
	}
	// A partial metadataOptions gets the missing fields defaulted.
	partial := nc.DeepCopy()
	partial.Name = "defaults-partial"
	partial.Spec.MetadataOptions = &ec2v1.MetadataOptions{HTTPPutResponseHopLimit: ptr(int64(2))}
	created, err = c.typed.EC2V1().EC2NodeClasses().Create(ctx, partial, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.typed.EC2V1().EC2NodeClasses().Delete(context.Background(), "defaults-partial", metav1.DeleteOptions{})
	})
	if mo := created.Spec.MetadataOptions; deref(mo.HTTPTokens) != "required" || *mo.HTTPPutResponseHopLimit != 2 {
		t.Errorf("partial metadataOptions = %+v", toMap(t, mo))
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

// invalidCase changes a valid object at path (or, with no path, at each path
// of the map in value) and expects the server to refuse it with an error
// naming field and containing message.
type invalidCase struct {
	name    string
	path    string
	value   any
	field   string
	message string
}

func (c *cluster) testInvalid(t *testing.T) {
	type group struct {
		base  string // file the valid base object comes from
		cases []invalidCase
	}
	tmpl := "spec.template.spec."
	groups := []group{{
		base: filepath.Join(examplesDir, "nodepool.yaml"),
		cases: []invalidCase{
			{"weight 0", "spec.weight", int64(0), "spec.weight", "greater than or equal to 1"},
			{"weight 101", "spec.weight", int64(101), "spec.weight", "less than or equal to 100"},
			{"bad consolidationPolicy", "spec.disruption.consolidationPolicy", "WhenIdle", "spec.disruption.consolidationPolicy", "Unsupported value"},
			{"bad consolidateAfter", "spec.disruption.consolidateAfter", "1d", "spec.disruption.consolidateAfter", "should match"},
			{"consolidationThreshold without Balanced", "spec.disruption.consolidationThreshold", int64(2), "spec.disruption", "consolidationThreshold may only be set with consolidationPolicy Balanced"},
			{"consolidationThreshold 4", "", map[string]any{"spec.disruption.consolidationPolicy": "Balanced", "spec.disruption.consolidationThreshold": int64(4)},
				"spec.disruption.consolidationThreshold", "less than or equal to 3"},
			{"bad expireAfter", tmpl + "expireAfter", "forever", tmpl + "expireAfter", "should match"},
			{"bad terminationGracePeriod", tmpl + "terminationGracePeriod", "Never", tmpl + "terminationGracePeriod", "should match"},
			{"In without values", tmpl + "requirements[0].values", deleteValue{}, tmpl + "requirements", "requirements with operator 'In' must have a value defined"},
			{"bad operator", tmpl + "requirements[0].operator", "Matches", tmpl + "requirements[0].operator", "Unsupported value"},
			{"Gt without values", tmpl + "requirements[4]", map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt"}, tmpl + "requirements", "must have a single positive integer value"},
			{"Gt not a number", tmpl + "requirements[4]", map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": []any{"four"}}, tmpl + "requirements", "must have a single positive integer value"},
			{"Gt with two values", tmpl + "requirements[4]", map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": []any{"1", "2"}}, tmpl + "requirements", "must have a single positive integer value"},
			{"Lte negative", tmpl + "requirements[4]", map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lte", "values": []any{"-1"}}, tmpl + "requirements", "must have a single positive integer value"},
			{"minValues above values", tmpl + "requirements[2].minValues", int64(3), tmpl + "requirements", "must have at least that many values"},
			{"minValues 0", tmpl + "requirements[2].minValues", int64(0), tmpl + "requirements[2].minValues", "greater than or equal to 1"},
			{"requirement on karpenter.sh/nodepool", tmpl + "requirements[4]", map[string]any{"key": "karpenter.sh/nodepool", "operator": "In", "values": []any{"other"}}, tmpl + "requirements", `label "karpenter.sh/nodepool" is restricted`},
			{"requirement on karpenter.sh domain", tmpl + "requirements[4]", map[string]any{"key": "karpenter.sh/custom", "operator": "Exists"}, tmpl + "requirements[4].key", `label domain "karpenter.sh" is restricted`},
			{"requirement on karpenter.sh subdomain", tmpl + "requirements[4]", map[string]any{"key": "sub.karpenter.sh/custom", "operator": "Exists"}, tmpl + "requirements[4].key", `label domain "karpenter.sh" is restricted`},
			{"requirement on hostname", tmpl + "requirements[4]", map[string]any{"key": "kubernetes.io/hostname", "operator": "Exists"}, tmpl + "requirements[4].key", `label "kubernetes.io/hostname" is restricted`},
			{"requirement on karpenter.k8s.aws domain", tmpl + "requirements[4]", map[string]any{"key": "karpenter.k8s.aws/custom", "operator": "Exists"}, tmpl + "requirements[4].key", `label domain "karpenter.k8s.aws" is restricted`},
			{"requirement key not a label key", tmpl + "requirements[4]", map[string]any{"key": "bad key", "operator": "Exists"}, tmpl + "requirements[4].key", "should match"},
			{"requirement value not a label value", tmpl + "requirements[0].values[0]", "amd64!", tmpl + "requirements[0].values[0]", "should match"},
			{"template label karpenter.sh/nodepool", "spec.template.metadata.labels.\"karpenter.sh/nodepool\"", "x", "spec.template.metadata.labels", `label "karpenter.sh/nodepool" is restricted`},
			{"template label karpenter.sh domain", "spec.template.metadata.labels.\"karpenter.sh/foo\"", "x", "spec.template.metadata.labels", `label domain "karpenter.sh" is restricted`},
			{"template label karpenter.k8s.aws domain", "spec.template.metadata.labels.\"karpenter.k8s.aws/foo\"", "x", "spec.template.metadata.labels", `label domain "karpenter.k8s.aws" is restricted`},
			{"template label hostname", "spec.template.metadata.labels.\"kubernetes.io/hostname\"", "x", "spec.template.metadata.labels", `label "kubernetes.io/hostname" is restricted`},
			{"template label value too long", "spec.template.metadata.labels.team", strings.Repeat("a", 64), "spec.template.metadata.labels.team", "may not be more than 63"},
			{"taint bad effect", tmpl + "taints", []any{map[string]any{"key": "a", "effect": "NoRun"}}, tmpl + "taints[0].effect", "Unsupported value"},
			{"taint empty key", tmpl + "taints", []any{map[string]any{"key": "", "effect": "NoSchedule"}}, tmpl + "taints[0].key", "at least 1 chars long"},
			{"startup taint bad value", tmpl + "startupTaints", []any{map[string]any{"key": "a", "value": "not ok", "effect": "NoSchedule"}}, tmpl + "startupTaints[0].value", "should match"},
			{"nodeClassRef without name", tmpl + "nodeClassRef.name", "", tmpl + "nodeClassRef.name", "name may not be empty"},
			{"nodeClassRef group with slash", tmpl + "nodeClassRef.group", "karpenter.k8s.aws/v1", tmpl + "nodeClassRef.group", "should match"},
			{"no nodeClassRef", tmpl + "nodeClassRef", deleteValue{}, tmpl + "nodeClassRef", "Required value"},
			{"budget nodes 101%", "spec.disruption.budgets", []any{map[string]any{"nodes": "101%"}}, "spec.disruption.budgets[0].nodes", "should match"},
			{"budget schedule without duration", "spec.disruption.budgets", []any{map[string]any{"nodes": "1", "schedule": "@daily"}}, "spec.disruption.budgets", "'schedule' must be set with 'duration'"},
			{"budget duration in seconds", "spec.disruption.budgets", []any{map[string]any{"nodes": "1", "schedule": "@daily", "duration": "30s"}}, "spec.disruption.budgets[0].duration", "should match"},
			{"budget bad reason", "spec.disruption.budgets", []any{map[string]any{"nodes": "1", "reasons": []any{"Expired"}}}, "spec.disruption.budgets[0].reasons[0]", "Unsupported value"},
			{"static pool with weight", "", map[string]any{"spec.replicas": int64(2), "spec.limits": map[string]any{"nodes": "3"}, "spec.weight": int64(10)},
				"spec", "'weight' is not supported on static NodePools"},
			{"static pool with cpu limit", "spec.replicas", int64(2), "spec", "only 'limits.nodes' is supported on static NodePools"},
		},
	}, {
		base: filepath.Join(examplesDir, "ec2nodeclass.yaml"),
		cases: []invalidCase{
			{"httpTokens bogus", "spec.metadataOptions.httpTokens", "sometimes", "spec.metadataOptions.httpTokens", "Unsupported value"},
			{"httpEndpoint bogus", "spec.metadataOptions.httpEndpoint", "on", "spec.metadataOptions.httpEndpoint", "Unsupported value"},
			{"hop limit 65", "spec.metadataOptions.httpPutResponseHopLimit", int64(65), "spec.metadataOptions.httpPutResponseHopLimit", "less than or equal to 64"},
			{"role and instanceProfile", "spec.instanceProfile", "profile", "spec", "must specify exactly one of ['role', 'instanceProfile']"},
			{"neither role nor instanceProfile", "spec.role", deleteValue{}, "spec", "must specify exactly one of ['role', 'instanceProfile']"},
			{"empty role", "spec.role", "", "spec.role", "role cannot be empty"},
			{"no amiSelectorTerms", "spec.amiSelectorTerms", []any{}, "spec.amiSelectorTerms", "at least 1 items"},
			{"empty ami term", "spec.amiSelectorTerms[0]", map[string]any{}, "spec.amiSelectorTerms", "expected at least one, got none"},
			{"alias with another term", "spec.amiSelectorTerms[1]", map[string]any{"alias": "al2023@latest"}, "spec.amiSelectorTerms", "'alias' is mutually exclusive"},
			{"bad alias family", "spec.amiSelectorTerms", []any{map[string]any{"alias": "ubuntu@latest"}}, "spec.amiSelectorTerms[0].alias", "family is not supported"},
			{"windows alias pinned", "spec.amiSelectorTerms", []any{map[string]any{"alias": "windows2022@v1"}}, "spec.amiSelectorTerms[0].alias", "windows families may only specify version 'latest'"},
			{"alias with other family", "", map[string]any{"spec.amiSelectorTerms": []any{map[string]any{"alias": "bottlerocket@latest"}}, "spec.amiFamily": "AL2023"},
				"spec", "amiFamily must be 'Bottlerocket' or 'Custom'"},
			{"no amiFamily without alias", "spec.amiFamily", deleteValue{}, "spec", "must specify amiFamily if amiSelectorTerms does not contain an alias"},
			{"bad amiFamily", "spec.amiFamily", "Ubuntu", "spec.amiFamily", "Unsupported value"},
			{"ami id with tags", "spec.amiSelectorTerms[0].id", "ami-123", "spec.amiSelectorTerms", "'id' is mutually exclusive"},
			{"no subnet terms", "spec.subnetSelectorTerms", []any{}, "spec.subnetSelectorTerms", "subnetSelectorTerms cannot be empty"},
			{"bad subnet id", "spec.subnetSelectorTerms[0]", map[string]any{"id": "vpc-123"}, "spec.subnetSelectorTerms[0].id", "should match"},
			{"subnet tag empty value", "spec.subnetSelectorTerms[0].tags.Name", "", "spec.subnetSelectorTerms[0].tags", "empty tag keys or values aren't supported"},
			{"security group id and name", "spec.securityGroupSelectorTerms[0]", map[string]any{"id": "sg-1", "name": "x"}, "spec.securityGroupSelectorTerms", "'id' is mutually exclusive"},
			{"restricted cluster tag", "spec.tags.\"kubernetes.io/cluster/other\"", "owned", "spec.tags", "restricted tag matching kubernetes.io/cluster/"},
			{"restricted nodepool tag", "spec.tags.\"karpenter.sh/nodepool\"", "x", "spec.tags", "restricted tag matching karpenter.sh/nodepool"},
			{"two root volumes", "spec.blockDeviceMappings", []any{
				map[string]any{"rootVolume": true, "ebs": map[string]any{"volumeSize": "20Gi"}},
				map[string]any{"rootVolume": true, "ebs": map[string]any{"volumeSize": "20Gi"}},
			}, "spec.blockDeviceMappings", "must have only one blockDeviceMappings with rootVolume"},
			{"volume without size or snapshot", "spec.blockDeviceMappings[0].ebs.volumeSize", deleteValue{}, "spec.blockDeviceMappings[0].ebs", "snapshotID or volumeSize must be defined"},
			{"volume size in Mi", "spec.blockDeviceMappings[0].ebs.volumeSize", "30000Mi", "spec.blockDeviceMappings[0].ebs.volumeSize", "should match"},
			{"bad volume type", "spec.blockDeviceMappings[0].ebs.volumeType", "gp4", "spec.blockDeviceMappings[0].ebs.volumeType", "Unsupported value"},
			{"kubeReserved bad key", "spec.kubelet", map[string]any{"kubeReserved": map[string]any{"gpu": "1"}}, "spec.kubelet.kubeReserved", "valid keys for kubeReserved are"},
			{"kubeReserved bad quantity", "spec.kubelet", map[string]any{"kubeReserved": map[string]any{"cpu": "lots"}}, "spec.kubelet.kubeReserved.cpu", "should match"},
			{"evictionSoft without grace period", "spec.kubelet", map[string]any{"evictionSoft": map[string]any{"memory.available": "5%"}}, "spec.kubelet", "evictionSoft OwnerKey does not have a matching evictionSoftGracePeriod"},
			{"image GC thresholds reversed", "spec.kubelet", map[string]any{"imageGCHighThresholdPercent": int64(50), "imageGCLowThresholdPercent": int64(60)}, "spec.kubelet", "imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent"},
			{"bad instanceStorePolicy", "spec.instanceStorePolicy", "RAID1", "spec.instanceStorePolicy", "Unsupported value"},
			{"no primary interface", "spec.networkInterfaces", []any{map[string]any{"networkCardIndex": int64(1), "deviceIndex": int64(0), "interfaceType": "interface"}}, "spec.networkInterfaces", "must include a primary interface"},
			{"empty connectionTracking", "spec.connectionTracking", map[string]any{}, "spec.connectionTracking", "at least one of tcpEstablishedTimeout"},
			{"placement group name and id", "spec.placementGroupSelector", map[string]any{"name": "a", "id": "pg-1"}, "spec.placementGroupSelector", "'name' and 'id' are mutually exclusive"},
		},
	}}
	ctx := context.Background()
	for _, g := range groups {
		base := readObjects(t, g.base)[0]
		for i, tc := range g.cases {
			t.Run(base.GetKind()+"/"+tc.name, func(t *testing.T) {
				obj := base.DeepCopy()
				obj.SetName(fmt.Sprintf("invalid-%d", i))
				if tc.path == "" {
					for path, value := range tc.value.(map[string]any) {
						set(t, obj.Object, path, value)
					}
				} else {
					set(t, obj.Object, tc.path, tc.value)
				}
				_, err := c.dynamic.Resource(resourceFor(t, obj)).Create(ctx, obj, metav1.CreateOptions{})
				if err == nil {
					_ = c.dynamic.Resource(resourceFor(t, obj)).Delete(ctx, obj.GetName(), metav1.DeleteOptions{})
					t.Fatalf("accepted; want an error on %s: %s", tc.field, tc.message)
				}
				if !apierrors.IsInvalid(err) {
					t.Fatalf("want Invalid, got %v", err)
				}
				t.Log(err)
				if !hasCause(err, tc.field, tc.message) {
					t.Errorf("want an error on %s containing %q, got: %v", tc.field, tc.message, err)
				}
			})
		}
	}
}

// hasCause reports whether the Invalid error has a cause for field whose
// message contains message.
func hasCause(err error, field, message string) bool {
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		return false
	}
	for _, cause := range status.Status().Details.Causes {
		if cause.Field == field && strings.Contains(cause.Message, message) {
			return true
		}
	}
	return false
}

// testImmutable checks the update rules: a NodeClaim's spec never changes,
// a NodePool's nodeClassRef keeps its group and kind, and a NodePool cannot
// switch between static and dynamic.
func (c *cluster) testImmutable(t *testing.T) {
	ctx := context.Background()
	claim := readObjects(t, filepath.Join(testdataDir, "nodeclaims.yaml"))[0]
	claim.SetName("immutable")
	delete(claim.Object, "status")
	claims := c.dynamic.Resource(nodeClaims)
	created, err := claims.Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = claims.Delete(context.Background(), "immutable", metav1.DeleteOptions{}) })

	pool := readObjects(t, filepath.Join(examplesDir, "nodepool.yaml"))[0]
	pool.SetName("immutable")
	pools := c.dynamic.Resource(nodePools)
	createdPool, err := pools.Create(ctx, pool, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Delete(context.Background(), "immutable", metav1.DeleteOptions{}) })

	cases := []struct {
		name    string
		obj     *unstructured.Unstructured
		path    string
		value   any
		field   string
		message string
	}{
		{"nodeclaim nodeClassRef", created, "spec.nodeClassRef.name", "other", "spec", "spec is immutable"},
		{"nodeclaim requirements", created, "spec.requirements[1].values", []any{"t3.large"}, "spec", "spec is immutable"},
		{"nodeclaim expireAfter", created, "spec.expireAfter", "Never", "spec", "spec is immutable"},
		{"nodepool nodeClassRef kind", createdPool, "spec.template.spec.nodeClassRef.kind", "OtherNodeClass", "spec.template.spec.nodeClassRef", "nodeClassRef.kind is immutable"},
		{"nodepool nodeClassRef group", createdPool, "spec.template.spec.nodeClassRef.group", "example.com", "spec.template.spec.nodeClassRef", "nodeClassRef.group is immutable"},
		{"nodepool to static", createdPool, "spec.replicas", int64(1), "spec", "Cannot transition NodePool between static (replicas set) and dynamic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj.DeepCopy()
			set(t, obj.Object, tc.path, tc.value)
			if tc.name == "nodepool to static" {
				set(t, obj.Object, "spec.limits", map[string]any{"nodes": "3"})
			}
			_, err := c.dynamic.Resource(resourceFor(t, obj)).Update(ctx, obj, metav1.UpdateOptions{})
			if err == nil {
				t.Fatalf("update accepted; want an error on %s: %s", tc.field, tc.message)
			}
			if !hasCause(err, tc.field, tc.message) {
				t.Errorf("want an error on %s containing %q, got: %v", tc.field, tc.message, err)
			}
		})
	}

	// The NodePool nodeClassRef name may change.
	obj := createdPool.DeepCopy()
	set(t, obj.Object, "spec.template.spec.nodeClassRef.name", "other")
	if _, err := pools.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Errorf("changing nodeClassRef.name: %v", err)
	}
	// Labels and status of a NodeClaim may change.
	obj = created.DeepCopy()
	obj.SetLabels(map[string]string{"extra": "label"})
	if _, err := claims.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Errorf("relabeling a NodeClaim: %v", err)
	}
}

// testPrinterColumns checks the NodeClaim columns in the CRD and in what the
// server sends `kubectl get nodeclaims`.
func (c *cluster) testPrinterColumns(t *testing.T) {
	want := []struct{ name, path string }{
		{"Type", `.metadata.labels.node\.kubernetes\.io/instance-type`},
		{"Capacity", `.metadata.labels.karpenter\.sh/capacity-type`},
		{"Zone", `.metadata.labels.topology\.kubernetes\.io/zone`},
		{"Node", `.status.nodeName`},
		{"Ready", `.status.conditions[?(@.type=="Ready")].status`},
		{"Age", `.metadata.creationTimestamp`},
	}
	cols := c.crds["nodeclaims"].Spec.Versions[0].AdditionalPrinterColumns
	var defaultCols []apiextensionsv1.CustomResourceColumnDefinition
	for _, col := range cols {
		if col.Priority == 0 {
			defaultCols = append(defaultCols, col)
		}
	}
	if len(defaultCols) != len(want) {
		t.Fatalf("NodeClaim default columns = %+v, want %+v", defaultCols, want)
	}
	for i, w := range want {
		if defaultCols[i].Name != w.name || defaultCols[i].JSONPath != w.path {
			t.Errorf("column %d = %s %s, want %s %s", i, defaultCols[i].Name, defaultCols[i].JSONPath, w.name, w.path)
		}
	}

	// Ask for the table kubectl prints.
	ctx := context.Background()
	claim := readObjects(t, filepath.Join(testdataDir, "nodeclaims.yaml"))[0]
	claim.SetName("printed")
	c.roundTrip(t, claim)
	raw, err := c.typed.KarpenterV1().RESTClient().Get().Resource("nodeclaims").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for i, col := range table.ColumnDefinitions {
		index[col.Name] = i
	}
	var row *metav1.TableRow
	for i := range table.Rows {
		if table.Rows[i].Cells[0] == "printed" {
			row = &table.Rows[i]
		}
	}
	if row == nil {
		t.Fatalf("no row for the NodeClaim in %+v", table.Rows)
	}
	for col, value := range map[string]string{
		"Type": "t3.large", "Capacity": "on-demand", "Zone": "us-east-1a",
		"Node": "ip-10-0-1-23.ec2.internal", "Ready": "True",
	} {
		i, ok := index[col]
		if !ok {
			t.Errorf("no %s column in %+v", col, table.ColumnDefinitions)
			continue
		}
		if got := fmt.Sprint(row.Cells[i]); got != value {
			t.Errorf("%s = %q, want %q", col, got, value)
		}
	}
	if _, ok := index["Age"]; !ok {
		t.Errorf("no Age column")
	}
}

// testWellKnownLabels checks that the restricted-domain rules let through
// every label the Go packages call well known, as requirement keys and as
// template labels.
func (c *cluster) testWellKnownLabels(t *testing.T) {
	ctx := context.Background()
	var reqs []any
	for _, key := range append(karpv1.WellKnownLabels(), ec2v1.WellKnownLabels()...) {
		if key == karpv1.NodePoolLabelKey {
			continue // a NodePool may not constrain its own name
		}
		reqs = append(reqs, map[string]any{"key": key, "operator": "Exists"})
	}
	labels := map[string]any{}
	for _, key := range ec2v1.WellKnownLabels() {
		labels[key] = "x"
	}
	labels[karpv1.CapacityTypeLabelKey] = "spot"
	pool := readObjects(t, filepath.Join(examplesDir, "nodepool.yaml"))[0]
	pool.SetName("well-known")
	set(t, pool.Object, "spec.template.spec.requirements", reqs)
	set(t, pool.Object, "spec.template.metadata.labels", labels)
	pools := c.dynamic.Resource(nodePools)
	if _, err := pools.Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatalf("well-known labels refused: %v", err)
	}
	_ = pools.Delete(ctx, "well-known", metav1.DeleteOptions{})
}
