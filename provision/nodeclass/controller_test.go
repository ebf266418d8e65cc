package nodeclass_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	clientscheme "github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned/scheme"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/instanceprofile"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclass"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

const discovery = "sesacthon-dev"

// harness is one apiserver, one moto and the controller running against
// both; subtests keep apart by class name.
type harness struct {
	iam   *iam.Client
	kube  kubernetes.Interface
	karp  versioned.Interface
	rec   *nodeclass.Controller
	world *env.AWSWorld
	// synced reports whether the lister has caught up with rv for a class.
	synced func(name, rv string) bool
}

func TestController(t *testing.T) {
	start := time.Now()
	api := env.StartAPIServer(t)
	env.InstallCRDs(t, api.Config)
	moto := env.StartMotoT(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	world, err := env.SeedAWS(ctx, moto.AWSConfig(), discovery)
	if err != nil {
		t.Fatal(err)
	}
	h := startController(t, ctx, api.Config, api.Client, moto.AWSConfig(), nil)
	h.world = world
	t.Logf("apiserver, moto and controller up in %s", time.Since(start).Round(time.Millisecond))

	t.Run("ExampleResolvesAndGoesReady", h.exampleGoesReady)
	t.Run("UnmatchedSubnetTermIsNotReady", h.unmatchedSubnetTerm)
	t.Run("NothingNotActedOn", h.nothingNotActedOn)
	t.Run("SwitchToRoleIsReported", h.switchToRole)
	t.Run("StatusNotRewrittenWhenUnchanged", h.noRewrite)
	t.Run("DeletionWaitsForClaimsThenRemovesTheProfile", h.deletion)
	t.Run("FailedCallsKeepResolvedStatus", func(t *testing.T) { h.failedCallsKeepStatus(t, moto.AWSConfig()) })
}

func startController(t *testing.T, ctx context.Context, cfg *rest.Config, kube kubernetes.Interface, awsCfg aws.Config, checker bootstrap.Checker) *harness {
	jsonCfg := rest.CopyConfig(cfg)
	jsonCfg.ContentType = "application/json" // custom resources have no protobuf
	karp := versioned.NewForConfigOrDie(jsonCfg)
	factory := externalversions.NewSharedInformerFactory(karp, 0)
	classes := factory.EC2().V1().EC2NodeClasses()

	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: kube.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	t.Cleanup(broadcaster.Shutdown)
	retry := ec2.RetryOptions{MaxAttempts: 2, MaxBackoff: 50 * time.Millisecond}
	rec := &nodeclass.Controller{
		Karpenter:   karp,
		NodeClasses: classes.Lister(),
		Resolver:    ec2.NewResolver(ec2.NewEC2Client(awsCfg, retry), ec2.NewSSMClient(awsCfg, retry), ec2.ResolverOptions{}),
		Recorder:    broadcaster.NewRecorder(clientscheme.Scheme, "fleet-scheduler"),
		Profiles:    &instanceprofile.Provider{IAM: ec2.NewIAMClient(awsCfg, retry), ClusterName: "test-cluster", Region: awsCfg.Region},
		NodeClaims:  factory.Karpenter().V1().NodeClaims().Lister(),
		Bootstrap:   checker,
	}
	ctl := controller.New(nodeclass.Name, rec)
	if err := nodeclass.Register(ctl, classes.Informer()); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go ctl.Run(ctx, 1)
	return &harness{iam: iam.NewFromConfig(awsCfg), kube: kube, karp: karp, rec: rec, synced: func(name, rv string) bool {
		got, err := classes.Lister().Get(name)
		return err == nil && got.ResourceVersion == rv
	}}
}

// exampleClass is the object in manifests/examples/ec2nodeclass.yaml.
func exampleClass(t *testing.T) *ec2v1.EC2NodeClass {
	class := &ec2v1.EC2NodeClass{}
	env.ReadExample(t, "ec2nodeclass.yaml", class)
	return class
}

func (h *harness) exampleGoesReady(t *testing.T) {
	class := h.create(t, exampleClass(t))
	got := h.waitCondition(t, class.Name, ec2v1.ConditionTypeReady, metav1.ConditionTrue)

	var subnets []string
	for _, s := range got.Status.Subnets {
		subnets = append(subnets, s.ID)
		if s.Zone == "" || s.ZoneID == "" {
			t.Errorf("subnet %s without zone or zone id: %+v", s.ID, s)
		}
	}
	if !sameSet(subnets, h.world.SubnetIDs) {
		t.Errorf("status.subnets = %v, want the seeded %v", subnets, h.world.SubnetIDs)
	}
	if len(got.Status.SecurityGroups) != 1 || got.Status.SecurityGroups[0].ID != h.world.SecurityGroupID {
		t.Errorf("status.securityGroups = %+v, want only %s", got.Status.SecurityGroups, h.world.SecurityGroupID)
	}
	if len(got.Status.AMIs) != 1 || got.Status.AMIs[0].ID != h.world.ImageID {
		t.Fatalf("status.amis = %+v, want only %s", got.Status.AMIs, h.world.ImageID)
	}
	if r := got.Status.AMIs[0].Requirements; len(r) != 1 || r[0].Key != "kubernetes.io/arch" || !slices.Equal(r[0].Values, []string{"amd64"}) {
		t.Errorf("AMI requirements = %+v, want kubernetes.io/arch In [amd64]", r)
	}
	for _, ct := range []string{ec2v1.ConditionTypeSubnetsReady, ec2v1.ConditionTypeSecurityGroupsReady, ec2v1.ConditionTypeAMIsReady, ec2v1.ConditionTypeInstanceProfileReady} {
		if c := got.GetCondition(ct); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != got.Generation {
			t.Errorf("condition %s = %+v, want True at generation %d", ct, c, got.Generation)
		}
	}
	// The example sets role and no instanceProfile: a profile holding the
	// role is made in IAM and named in status.
	if c := got.GetCondition(nodeclass.ConditionTypeFieldsNotActedOn); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("FieldsNotActedOn = %+v, want False", c)
	}
	h.checkProfile(t, got.Status.InstanceProfile, h.world.NodeRole)
}

// checkProfile asserts the instance profile exists in IAM holding only role.
func (h *harness) checkProfile(t *testing.T, name, role string) {
	t.Helper()
	if !strings.HasPrefix(name, "test-cluster_") {
		t.Fatalf("status.instanceProfile = %q, want the one made for the role", name)
	}
	out, err := h.iam.GetInstanceProfile(context.Background(), &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if err != nil {
		t.Fatalf("instance profile %s: %v", name, err)
	}
	if r := out.InstanceProfile.Roles; len(r) != 1 || aws.ToString(r[0].RoleName) != role {
		t.Errorf("instance profile %s holds roles %+v, want only %s", name, r, role)
	}
}

func (h *harness) unmatchedSubnetTerm(t *testing.T) {
	class := plainClass("nowhere")
	class.Spec.SubnetSelectorTerms = []ec2v1.SubnetSelectorTerm{{Tags: map[string]string{env.DiscoveryTagKey: "nowhere"}}}
	h.create(t, class)
	got := h.waitCondition(t, class.Name, ec2v1.ConditionTypeReady, metav1.ConditionFalse)

	term := "subnetSelectorTerms[0] {tags: {karpenter.sh/discovery: nowhere}}"
	if c := got.GetCondition(ec2v1.ConditionTypeReady); !strings.Contains(c.Message, term) {
		t.Errorf("Ready message %q does not name %s", c.Message, term)
	}
	if c := got.GetCondition(ec2v1.ConditionTypeSubnetsReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "SubnetsNotFound" {
		t.Errorf("SubnetsReady = %+v, want False/SubnetsNotFound", c)
	}
	if c := got.GetCondition(ec2v1.ConditionTypeSecurityGroupsReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("SecurityGroupsReady = %+v, want True: only the subnet term is wrong", c)
	}
	if len(got.Status.Subnets) != 0 {
		t.Errorf("status.subnets = %+v, want none", got.Status.Subnets)
	}
	h.waitEvent(t, class.Name, "NotReady", term)

	// Fixing the term makes it Ready.
	got.Spec.SubnetSelectorTerms[0].Tags[env.DiscoveryTagKey] = discovery
	if _, err := h.karp.EC2V1().EC2NodeClasses().Update(context.Background(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	fixed := h.waitCondition(t, class.Name, ec2v1.ConditionTypeReady, metav1.ConditionTrue)
	if len(fixed.Status.Subnets) != len(h.world.SubnetIDs) {
		t.Errorf("status.subnets after the fix = %+v", fixed.Status.Subnets)
	}
}

func (h *harness) nothingNotActedOn(t *testing.T) {
	class := h.create(t, plainClass("plain"))
	got := h.waitCondition(t, class.Name, ec2v1.ConditionTypeReady, metav1.ConditionTrue)
	if c := got.GetCondition(nodeclass.ConditionTypeFieldsNotActedOn); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("FieldsNotActedOn = %+v, want False", c)
	}
	if got.Status.InstanceProfile != "NodeProfile" {
		t.Errorf("status.instanceProfile = %q, want NodeProfile", got.Status.InstanceProfile)
	}
}

// switchToRole: replacing instanceProfile by a role that does not exist
// makes the class not ready, naming the role; once the role exists a
// profile is made for it.
func (h *harness) switchToRole(t *testing.T) {
	h.waitCondition(t, "plain", ec2v1.ConditionTypeReady, metav1.ConditionTrue)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		class := h.get(t, "plain")
		class.Spec.InstanceProfile, class.Spec.Role = nil, "NodeRole"
		_, err := h.karp.EC2V1().EC2NodeClasses().Update(context.Background(), class, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := h.waitCondition(t, "plain", ec2v1.ConditionTypeReady, metav1.ConditionFalse)
	if c := got.GetCondition(ec2v1.ConditionTypeInstanceProfileReady); c == nil || c.Reason != "RoleNotFound" || !strings.Contains(c.Message, `IAM role "NodeRole"`) {
		t.Errorf("InstanceProfileReady = %+v, want False/RoleNotFound naming the role", c)
	}
	if got.Status.InstanceProfile != "" {
		t.Errorf("status.instanceProfile = %q after instanceProfile was removed", got.Status.InstanceProfile)
	}
	h.waitEvent(t, "plain", "NotReady", `IAM role "NodeRole" (spec.role) not found`)

	if _, err := h.iam.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String("NodeRole"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[]}`)}); err != nil {
		t.Fatal(err)
	}
	// The controller resolves again within its resync; don't wait a minute.
	// (A conflict with the running controller's own write is retried.)
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := h.rec.Reconcile(ctx, "plain")
		return err == nil, nil
	}); err != nil {
		t.Fatal("resolving the class again kept failing")
	}
	ready := h.waitCondition(t, "plain", ec2v1.ConditionTypeReady, metav1.ConditionTrue)
	h.checkProfile(t, ready.Status.InstanceProfile, "NodeRole")
}

func (h *harness) noRewrite(t *testing.T) {
	before := h.waitCondition(t, "default", ec2v1.ConditionTypeReady, metav1.ConditionTrue)
	h.waitSynced(t, before)
	for i := 0; i < 2; i++ {
		if _, err := h.rec.Reconcile(context.Background(), "default"); err != nil {
			t.Fatal(err)
		}
	}
	after := h.get(t, "default")
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("resourceVersion %s -> %s: status rewritten with nothing changed", before.ResourceVersion, after.ResourceVersion)
	}
}

// failedCallsKeepStatus: when AWS does not answer, a Ready class keeps its
// subnets, groups and images instead of dropping out of service.
func (h *harness) failedCallsKeepStatus(t *testing.T, awsCfg aws.Config) {
	before := h.waitCondition(t, "default", ec2v1.ConditionTypeReady, metav1.ConditionTrue)
	h.waitSynced(t, before)
	down := awsCfg.Copy()
	down.BaseEndpoint = aws.String("http://127.0.0.1:1") // nothing listens there
	retry := ec2.RetryOptions{MaxAttempts: 1}
	broken := *h.rec
	broken.Resolver = ec2.NewResolver(ec2.NewEC2Client(down, retry), ec2.NewSSMClient(down, retry), ec2.ResolverOptions{})
	if _, err := broken.Reconcile(context.Background(), "default"); err == nil {
		t.Error("Reconcile with AWS unreachable returned no error; it should be retried")
	}
	after := h.get(t, "default")
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("status rewritten while AWS was unreachable: Ready=%+v", after.GetCondition(ec2v1.ConditionTypeReady))
	}
}

// plainClass selects the seeded resources and sets nothing fleet-scheduler
// ignores.
func plainClass(name string) *ec2v1.EC2NodeClass {
	tags := func() map[string]string { return map[string]string{env.DiscoveryTagKey: discovery} }
	return &ec2v1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: ec2v1.EC2NodeClassSpec{
			AMIFamily:                  ptr.To(ec2v1.AMIFamilyCustom),
			AMISelectorTerms:           []ec2v1.AMISelectorTerm{{Tags: tags()}},
			SubnetSelectorTerms:        []ec2v1.SubnetSelectorTerm{{Tags: tags()}},
			SecurityGroupSelectorTerms: []ec2v1.SecurityGroupSelectorTerm{{Tags: tags()}},
			InstanceProfile:            ptr.To("NodeProfile"),
		},
	}
}

func (h *harness) create(t *testing.T, class *ec2v1.EC2NodeClass) *ec2v1.EC2NodeClass {
	t.Helper()
	got, err := h.karp.EC2V1().EC2NodeClasses().Create(context.Background(), class, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating EC2NodeClass %s: %v", class.Name, err)
	}
	return got
}

func (h *harness) get(t *testing.T, name string) *ec2v1.EC2NodeClass {
	t.Helper()
	got, err := h.karp.EC2V1().EC2NodeClasses().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitCondition waits until the class's condition has the status at its
// current generation.
func (h *harness) waitCondition(t *testing.T, name, conditionType string, status metav1.ConditionStatus) *ec2v1.EC2NodeClass {
	t.Helper()
	var got *ec2v1.EC2NodeClass
	poll(t, func(ctx context.Context) (bool, error) {
		var err error
		got, err = h.karp.EC2V1().EC2NodeClasses().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return env.HasCondition(got, conditionType, status), nil
	}, func() string {
		return "EC2NodeClass " + name + " " + conditionType + "=" + string(status) + "; conditions: " + dump(got)
	})
	return got
}

// waitSynced waits until the controller's lister holds class's version, so
// a direct Reconcile sees what the server has.
func (h *harness) waitSynced(t *testing.T, class *ec2v1.EC2NodeClass) {
	t.Helper()
	poll(t, func(context.Context) (bool, error) { return h.synced(class.Name, class.ResourceVersion), nil },
		func() string { return "lister to reach resourceVersion " + class.ResourceVersion })
}

// waitEvent waits for an event about the class with the reason and a note
// containing text.
func (h *harness) waitEvent(t *testing.T, name, reason, text string) {
	t.Helper()
	env.WaitEvent(t, h.kube, "EC2NodeClass", name, reason, text, 30*time.Second)
}

func poll(t *testing.T, cond wait.ConditionWithContextFunc, what func() string) {
	t.Helper()
	// 60s: the controller checks the token again every 15s, and a loaded CI
	// machine (sandboxes beside this package) has taken over 30s for two.
	env.Poll(t, 60*time.Second, cond, what)
}

func dump(class *ec2v1.EC2NodeClass) string {
	if class == nil {
		return "<none>"
	}
	var parts []string
	for _, c := range class.Status.Conditions {
		parts = append(parts, c.Type+"="+string(c.Status)+" ("+c.Message+")")
	}
	return strings.Join(parts, ", ")
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// deletion: a deleted class stays while a NodeClaim launched from it does,
// then goes, and the instance profile made for its role goes with it.
func (h *harness) deletion(t *testing.T) {
	ctx := context.Background()
	class := plainClass("doomed")
	class.Spec.InstanceProfile, class.Spec.Role = nil, h.world.NodeRole
	h.create(t, class)
	ready := h.waitCondition(t, "doomed", ec2v1.ConditionTypeReady, metav1.ConditionTrue)
	if !slices.Contains(ready.Finalizers, ec2v1.TerminationFinalizer) {
		t.Fatalf("finalizers = %v, want %s", ready.Finalizers, ec2v1.TerminationFinalizer)
	}
	profile := ready.Status.InstanceProfile
	h.checkProfile(t, profile, h.world.NodeRole)

	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "doomed-claim"}, Spec: karpv1.NodeClaimSpec{
		Requirements: []karpv1.NodeSelectorRequirementWithMinValues{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"amd64"}}},
		NodeClassRef: &karpv1.NodeClassReference{Group: ec2v1.GroupName, Kind: "EC2NodeClass", Name: "doomed"},
	}}
	if _, err := h.karp.KarpenterV1().NodeClaims().Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the claim into the controller's cache
	if err := h.karp.EC2V1().EC2NodeClasses().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(t, "doomed", "WaitingOnNodeClaims", "1 NodeClaim(s) launched from this class")
	if _, err := h.karp.EC2V1().EC2NodeClasses().Get(ctx, "doomed", metav1.GetOptions{}); err != nil {
		t.Fatalf("the class went while a NodeClaim used it: %v", err)
	}
	h.checkProfile(t, profile, h.world.NodeRole)

	if err := h.karp.KarpenterV1().NodeClaims().Delete(ctx, "doomed-claim", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, err := h.karp.EC2V1().EC2NodeClasses().Get(ctx, "doomed", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatal("the class was not let go once its NodeClaim was gone")
	}
	if _, err := h.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(profile)}); err == nil {
		t.Errorf("instance profile %s still exists after its class was deleted", profile)
	}
}
