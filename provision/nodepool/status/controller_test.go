package status

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/yaml"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	clientscheme "github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned/scheme"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// harness is one apiserver with the controller running; subtests keep apart
// by pool name.
type harness struct {
	kube kubernetes.Interface
	karp versioned.Interface
	rec  *Controller
}

func TestController(t *testing.T) {
	start := time.Now()
	api := env.StartAPIServer(t)
	env.InstallCRDs(t, api.Config)
	h := startController(t, api.Config, api.Client)
	t.Logf("apiserver and controller up in %s", time.Since(start).Round(time.Millisecond))

	t.Run("ExamplePoolReadyOnceClassReady", h.examplePoolReady)
	t.Run("MissingClassIsNotReady", h.missingClass)
	t.Run("ResourcesAndNodesSumClaims", h.sumClaims)
	t.Run("InvalidPoolIsNotReady", h.invalidPool)
	t.Run("StatusNotRewrittenWhenUnchanged", h.noRewrite)
	t.Run("LaunchHealth", h.launchHealth)
}

func startController(t *testing.T, cfg *rest.Config, kube kubernetes.Interface) *harness {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	jsonCfg := rest.CopyConfig(cfg)
	jsonCfg.ContentType = "application/json" // custom resources have no protobuf
	karp := versioned.NewForConfigOrDie(jsonCfg)
	factory := externalversions.NewSharedInformerFactory(karp, 0)
	pools, claims := factory.Karpenter().V1().NodePools(), factory.Karpenter().V1().NodeClaims()
	classes := factory.EC2().V1().EC2NodeClasses()

	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: kube.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	t.Cleanup(broadcaster.Shutdown)
	rec := &Controller{
		Karpenter: karp, NodePools: pools.Lister(), NodeClaims: claims.Lister(), NodeClasses: classes.Lister(),
		Recorder: broadcaster.NewRecorder(clientscheme.Scheme, "fleet-scheduler"),
		Health:   launchhealth.New(launchhealth.Options{PauseAfter: 2}),
	}
	ctl := controller.New(Name, rec)
	rec.Health.SetChanged(ctl.Enqueue)
	if err := Register(ctl, pools.Informer(), claims.Informer(), classes.Informer()); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go ctl.Run(ctx, 1)
	return &harness{kube: kube, karp: karp, rec: rec}
}

func (h *harness) examplePoolReady(t *testing.T) {
	ctx := context.Background()
	h.createPool(t, examplePool(t))
	got := h.waitCondition(t, "default", karpv1.ConditionTypeReady, metav1.ConditionFalse)
	if c := got.GetCondition(karpv1.ConditionTypeNodeClassReady); c.Reason != "NodeClassNotFound" || !strings.Contains(c.Message, `"default"`) {
		t.Errorf("NodeClassReady before the class exists = %+v", c)
	}

	class, err := h.karp.EC2V1().EC2NodeClasses().Create(ctx, exampleClass(t), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.waitCondition(t, "default", karpv1.ConditionTypeNodeClassReady, metav1.ConditionUnknown)

	class = h.setClassReady(t, class, metav1.ConditionFalse, "no subnet matched: subnetSelectorTerms[0] {tags: {a: b}}")
	got = h.waitCondition(t, "default", karpv1.ConditionTypeNodeClassReady, metav1.ConditionFalse)
	if c := got.GetCondition(karpv1.ConditionTypeReady); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "no subnet matched") {
		t.Errorf("Ready with the class not ready = %+v, want False saying why", c)
	}

	class = h.setClassReady(t, class, metav1.ConditionTrue, "")
	got = h.waitCondition(t, "default", karpv1.ConditionTypeReady, metav1.ConditionTrue)
	for _, ct := range []string{karpv1.ConditionTypeValidationSucceeded, karpv1.ConditionTypeNodeClassReady} {
		if c := got.GetCondition(ct); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("%s = %+v, want True", ct, c)
		}
	}
	if got.Status.NodeClassObservedGeneration != class.Generation {
		t.Errorf("nodeClassObservedGeneration = %d, want %d", got.Status.NodeClassObservedGeneration, class.Generation)
	}
	// The example sets consolidateAfter and expireAfter, both acted on by scale-down.
	if c := got.GetCondition(ConditionTypeFieldsNotActedOn); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("FieldsNotActedOn = %+v, want False: the example sets nothing fleet-scheduler ignores", c)
	}
}

func (h *harness) missingClass(t *testing.T) {
	np := examplePool(t)
	np.Name = "orphan"
	np.Spec.Template.Spec.NodeClassRef.Name = "missing"
	h.createPool(t, np)
	got := h.waitCondition(t, "orphan", karpv1.ConditionTypeReady, metav1.ConditionFalse)
	want := `EC2NodeClass "missing" not found`
	if c := got.GetCondition(karpv1.ConditionTypeReady); !strings.Contains(c.Message, want) {
		t.Errorf("Ready message %q does not say %s", c.Message, want)
	}
	if c := got.GetCondition(karpv1.ConditionTypeNodeClassReady); c.Status != metav1.ConditionFalse || c.Reason != "NodeClassNotFound" || !strings.Contains(c.Message, want) {
		t.Errorf("NodeClassReady = %+v", c)
	}
	if c := got.GetCondition(karpv1.ConditionTypeValidationSucceeded); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("ValidationSucceeded = %+v, want True", c)
	}
}

func (h *harness) sumClaims(t *testing.T) {
	np := examplePool(t)
	np.Name = "counted"
	h.createPool(t, np)
	h.createClaim(t, "counted-a", "counted", v1.ResourceList{"cpu": resource.MustParse("2"), "memory": resource.MustParse("4Gi"), "pods": resource.MustParse("17")})
	h.createClaim(t, "counted-b", "counted", v1.ResourceList{"cpu": resource.MustParse("4"), "memory": resource.MustParse("16Gi"), "pods": resource.MustParse("58")})
	h.createClaim(t, "counted-planned", "counted", nil)                                       // not launched: not a node yet
	h.createClaim(t, "elsewhere", "default", v1.ResourceList{"cpu": resource.MustParse("8")}) // another pool's

	h.waitResources(t, "counted", 2, v1.ResourceList{"cpu": resource.MustParse("6"), "memory": resource.MustParse("20Gi"),
		"pods": resource.MustParse("75"), "ephemeral-storage": resource.MustParse("0"), "nodes": resource.MustParse("2")})
	if err := h.karp.KarpenterV1().NodeClaims().Delete(context.Background(), "counted-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitResources(t, "counted", 1, v1.ResourceList{"cpu": resource.MustParse("4"), "memory": resource.MustParse("16Gi"),
		"pods": resource.MustParse("58"), "ephemeral-storage": resource.MustParse("0"), "nodes": resource.MustParse("1")})
}

func (h *harness) invalidPool(t *testing.T) {
	np := examplePool(t)
	np.Name = "tainted-twice"
	taint := v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}
	np.Spec.Template.Spec.Taints = []v1.Taint{taint, taint}
	h.createPool(t, np)
	got := h.waitCondition(t, "tainted-twice", karpv1.ConditionTypeValidationSucceeded, metav1.ConditionFalse)
	if c := got.GetCondition(karpv1.ConditionTypeValidationSucceeded); c.Reason != "NodePoolValidationFailed" || !strings.Contains(c.Message, "taints[1]: Duplicate value") {
		t.Errorf("ValidationSucceeded = %+v", c)
	}
	if c := got.GetCondition(karpv1.ConditionTypeReady); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "ValidationSucceeded=False") {
		t.Errorf("Ready = %+v, want False naming ValidationSucceeded", c)
	}
}

func (h *harness) noRewrite(t *testing.T) {
	before := h.waitCondition(t, "default", karpv1.ConditionTypeReady, metav1.ConditionTrue)
	poll(t, func(context.Context) (bool, error) {
		got, err := h.rec.NodePools.Get("default")
		return err == nil && got.ResourceVersion == before.ResourceVersion, nil
	}, func() string { return "lister to reach resourceVersion " + before.ResourceVersion })
	for i := 0; i < 2; i++ {
		if _, err := h.rec.Reconcile(context.Background(), "default"); err != nil {
			t.Fatal(err)
		}
	}
	if after := h.getPool(t, "default"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("resourceVersion %s -> %s: status rewritten with nothing changed", before.ResourceVersion, after.ResourceVersion)
	}
}

// launchHealth: what the pool's launches said shows on it - a quota error
// as Launchable=False with an event, cleared by a launch; nodes that never
// registered as NodeRegistrationHealthy=False, which pauses the pool until
// it is edited.
func (h *harness) launchHealth(t *testing.T) {
	np := examplePool(t)
	np.Name = "health"
	h.createPool(t, np)
	standard := launchhealth.Bucket{CapacityType: karpv1.CapacityTypeOnDemand, Family: launchhealth.FamilyStandard}
	h.rec.Health.Failed("health", launchhealth.Failure{Reason: "VcpuLimitExceeded", NodeClaim: "health-abc", Bucket: standard,
		Message: "quota exceeded: t3.medium in us-east-1a (on-demand): VcpuLimitExceeded"})
	got := h.waitCondition(t, "health", ConditionTypeLaunchable, metav1.ConditionFalse)
	if c := got.GetCondition(ConditionTypeLaunchable); c.Reason != "VcpuLimitExceeded" || !strings.Contains(c.Message, "NodeClaim health-abc") ||
		!strings.Contains(c.Message, "quota-code L-1216C47A") {
		t.Errorf("Launchable = %+v", c)
	}
	h.waitEvent(t, "health", "VcpuLimitExceeded", "standard on-demand instances are held back until")
	h.rec.Health.Launched("health", standard)
	h.waitCondition(t, "health", ConditionTypeLaunchable, metav1.ConditionTrue)
	h.waitEvent(t, "health", ConditionTypeLaunchable, "Launchable is True again (was VcpuLimitExceeded")

	h.rec.Health.Registered("health")
	h.waitCondition(t, "health", karpv1.ConditionTypeNodeRegistrationHealthy, metav1.ConditionTrue)
	h.rec.Health.Unregistered("health", "health-1")
	h.rec.Health.Unregistered("health", "health-2")
	got = h.waitCondition(t, "health", karpv1.ConditionTypeNodeRegistrationHealthy, metav1.ConditionFalse)
	if paused, why := launchhealth.Paused(got); !paused || !strings.Contains(why, "2 nodes in a row") || !strings.Contains(why, "NodeClaim health-2") {
		t.Errorf("paused %v: %q", paused, why)
	}
	h.waitEvent(t, "health", launchhealth.ReasonNodesDidNotRegister, "launches of this NodePool are paused")

	// An edit may fix what kept nodes from joining: the count starts again.
	got.Spec.Template.Labels["edited"] = "true"
	if _, err := h.karp.KarpenterV1().NodePools().Update(context.Background(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got = h.waitCondition(t, "health", karpv1.ConditionTypeNodeRegistrationHealthy, metav1.ConditionUnknown)
	if paused, _ := launchhealth.Paused(got); paused || h.rec.Health.Status("health").Unregistered != 0 {
		t.Errorf("still paused after an edit: %+v", h.rec.Health.Status("health"))
	}
}

// exampleClass is the object in manifests/examples/ec2nodeclass.yaml.
func exampleClass(t *testing.T) *ec2v1.EC2NodeClass {
	t.Helper()
	class := &ec2v1.EC2NodeClass{}
	env.ReadExample(t, "ec2nodeclass.yaml", class)
	return class
}

// setClassReady stands in for the EC2NodeClass controller.
func (h *harness) setClassReady(t *testing.T, class *ec2v1.EC2NodeClass, status metav1.ConditionStatus, message string) *ec2v1.EC2NodeClass {
	t.Helper()
	class.SetCondition(metav1.Condition{Type: ec2v1.ConditionTypeReady, Status: status, Reason: "Test", Message: message})
	got, err := h.karp.EC2V1().EC2NodeClasses().UpdateStatus(context.Background(), class, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (h *harness) createPool(t *testing.T, np *karpv1.NodePool) {
	t.Helper()
	if _, err := h.karp.KarpenterV1().NodePools().Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating NodePool %s: %v", np.Name, err)
	}
}

func (h *harness) getPool(t *testing.T, name string) *karpv1.NodePool {
	t.Helper()
	got, err := h.karp.KarpenterV1().NodePools().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// createClaim makes a NodeClaim of the pool; with capacity it is launched.
func (h *harness) createClaim(t *testing.T, name, pool string, capacity v1.ResourceList) {
	t.Helper()
	ctx := context.Background()
	nc := &karpv1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{karpv1.NodePoolLabelKey: pool}},
		Spec: karpv1.NodeClaimSpec{
			Requirements: []karpv1.NodeSelectorRequirementWithMinValues{{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"amd64"}}},
			NodeClassRef: &karpv1.NodeClassReference{Group: ec2v1.GroupName, Kind: ec2v1.EC2NodeClassKind, Name: "default"},
		},
	}
	created, err := h.karp.KarpenterV1().NodeClaims().Create(ctx, nc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if capacity == nil {
		return
	}
	created.Status.ProviderID = "aws:///us-east-1a/i-" + name
	created.Status.Capacity = capacity
	if _, err := h.karp.KarpenterV1().NodeClaims().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) waitCondition(t *testing.T, name, conditionType string, status metav1.ConditionStatus) *karpv1.NodePool {
	t.Helper()
	return h.waitPool(t, name, conditionType+"="+string(status), func(got *karpv1.NodePool) bool {
		return env.HasCondition(got, conditionType, status)
	})
}

func (h *harness) waitResources(t *testing.T, name string, nodes int64, want v1.ResourceList) {
	t.Helper()
	h.waitPool(t, name, "resources", func(got *karpv1.NodePool) bool {
		if got.Status.Nodes == nil || *got.Status.Nodes != nodes || len(got.Status.Resources) != len(want) {
			return false
		}
		for k, q := range want {
			if have, ok := got.Status.Resources[k]; !ok || have.Cmp(q) != 0 {
				return false
			}
		}
		return true
	})
}

// waitPool waits until the pool is as wanted (what says how) and returns it.
func (h *harness) waitPool(t *testing.T, name, what string, wanted func(*karpv1.NodePool) bool) *karpv1.NodePool {
	t.Helper()
	var got *karpv1.NodePool
	poll(t, func(ctx context.Context) (bool, error) {
		var err error
		if got, err = h.karp.KarpenterV1().NodePools().Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		return wanted(got), nil
	}, func() string { return "NodePool " + name + " " + what + "; status: " + dump(got) })
	return got
}

// waitEvent waits for an event about the pool with the reason and a note
// containing text.
func (h *harness) waitEvent(t *testing.T, name, reason, text string) {
	t.Helper()
	env.WaitEvent(t, h.kube, "NodePool", name, reason, text, 30*time.Second)
}

func poll(t *testing.T, cond wait.ConditionWithContextFunc, what func() string) {
	t.Helper()
	env.Poll(t, 30*time.Second, cond, what)
}

func dump(np *karpv1.NodePool) string {
	if np == nil {
		return "<none>"
	}
	out, _ := yaml.Marshal(np.Status)
	return string(out)
}
