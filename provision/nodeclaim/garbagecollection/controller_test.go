package garbagecollection_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	clientscheme "github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned/scheme"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
	cpaws "github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider/aws"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/garbagecollection"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

const cluster = "gc-test"

type harness struct {
	ctx   context.Context
	kube  kubernetes.Interface
	karp  versioned.Interface
	ec2   *awsec2.Client
	world *env.AWSWorld
}

// TestGarbageCollection runs the collector against a real apiserver and
// moto_server, through the real EC2 cloud provider.
func TestGarbageCollection(t *testing.T) {
	api := env.StartAPIServer(t)
	env.InstallCRDs(t, api.Config)
	m := env.StartMotoT(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	world, err := env.SeedAWS(ctx, m.AWSConfig(), "gc")
	if err != nil {
		t.Fatal(err)
	}
	jsonCfg := rest.CopyConfig(api.Config)
	jsonCfg.ContentType = "application/json"
	karp := versioned.NewForConfigOrDie(jsonCfg)
	factory := externalversions.NewSharedInformerFactory(karp, 0)
	claims := factory.Karpenter().V1().NodeClaims()
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: api.Client.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	t.Cleanup(broadcaster.Shutdown)
	ec2Client := ec2.NewEC2Client(m.AWSConfig(), ec2.RetryOptions{})
	gc := &garbagecollection.Controller{
		Karpenter: karp, NodeClaims: claims.Lister(),
		Cloud:    &cpaws.Provider{ClusterName: cluster, EC2: ec2.NewProvider(ec2Client, ec2.ProviderOptions{})},
		Recorder: broadcaster.NewRecorder(clientscheme.Scheme, "fleet-scheduler"),
		Interval: 300 * time.Millisecond, OrphanGrace: 2 * time.Second, LaunchedGrace: time.Second,
	}
	ctl := controller.New(garbagecollection.Name, gc)
	if err := garbagecollection.Register(ctl); err != nil {
		t.Fatal(err)
	}
	_ = claims.Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go ctl.Run(ctx, 1)
	h := &harness{ctx: ctx, kube: api.Client, karp: karp, ec2: awsec2.NewFromConfig(m.AWSConfig()), world: world}

	t.Run("OrphanInstanceTerminated", h.orphan)
	t.Run("ClaimWhoseInstanceVanishedDeleted", h.vanished)
	t.Run("SecondInstanceOfALiveClaimTerminated", h.duplicate)
	t.Run("LaunchTemplateOfAGoneClaimDeleted", h.launchTemplates)
}

// duplicate: a claim that names one instance while a second is tagged
// with it (a retried launch that could not see the first yet) keeps the
// one it names; the other is terminated, and nothing else of the claim.
func (h *harness) duplicate(t *testing.T) {
	keptID, keptPID := h.launch(t, "twice")
	h.claim(t, "twice", keptPID)
	extraID, extraPID := h.launch(t, "twice")
	h.createLaunchTemplate(t, "twice")
	poll(t, h.ctx, 30*time.Second, "the second instance terminated", func() bool {
		s := h.state(t, extraID)
		return s == ec2types.InstanceStateNameTerminated || s == ec2types.InstanceStateNameShuttingDown
	})
	if s := h.state(t, keptID); s != ec2types.InstanceStateNameRunning {
		t.Errorf("the instance the claim names is %s", s)
	}
	if _, err := h.karp.KarpenterV1().NodeClaims().Get(h.ctx, "twice", metav1.GetOptions{}); err != nil {
		t.Errorf("the claim: %v", err)
	}
	if !h.launchTemplateExists(t, "twice") {
		t.Error("the live claim's launch template was deleted with its second instance")
	}
	h.waitEvent(t, "twice", "DuplicateInstanceTerminated", extraPID)
}

// launchTemplates: a launch template made for a claim that is gone (and
// has no instance) is deleted after the grace; one of a live claim stays.
func (h *harness) launchTemplates(t *testing.T) {
	_, pid := h.launch(t, "kept-lt")
	h.claim(t, "kept-lt", pid)
	h.createLaunchTemplate(t, "kept-lt")
	h.createLaunchTemplate(t, "gone-lt")
	poll(t, h.ctx, 30*time.Second, "the gone claim's launch template deleted", func() bool { return !h.launchTemplateExists(t, "gone-lt") })
	if !h.launchTemplateExists(t, "kept-lt") {
		t.Error("the live claim's launch template was deleted")
	}
}

// createLaunchTemplate makes a launch template tagged the way the launcher
// tags a claim's.
func (h *harness) createLaunchTemplate(t *testing.T, claim string) {
	t.Helper()
	_, err := h.ec2.CreateLaunchTemplate(h.ctx, &awsec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(ec2.LaunchTemplateName(cluster, claim)),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(h.world.ImageID)},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate, Tags: []ec2types.Tag{
			{Key: aws.String(ec2.TagManagedLaunchTemplate), Value: aws.String(cluster)},
			{Key: aws.String(ec2.TagNodeClaim), Value: aws.String(claim)},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) launchTemplateExists(t *testing.T, claim string) bool {
	t.Helper()
	out, err := h.ec2.DescribeLaunchTemplates(h.ctx, &awsec2.DescribeLaunchTemplatesInput{Filters: []ec2types.Filter{
		{Name: aws.String("launch-template-name"), Values: []string{ec2.LaunchTemplateName(cluster, claim)}}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.LaunchTemplates) > 0
}

func (h *harness) waitEvent(t *testing.T, name, reason, text string) {
	t.Helper()
	poll(t, h.ctx, 10*time.Second, "a "+reason+" event", func() bool {
		list, err := h.kube.EventsV1().Events(metav1.NamespaceAll).List(h.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range list.Items {
			if e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, text) {
				return true
			}
		}
		return false
	})
}

// launch starts an instance tagged the way the launcher tags a claim's.
func (h *harness) launch(t *testing.T, claim string) (id, providerID string) {
	t.Helper()
	out, err := h.ec2.RunInstances(h.ctx, &awsec2.RunInstancesInput{
		ImageId: aws.String(h.world.ImageID), InstanceType: ec2types.InstanceTypeT3Medium, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(h.world.SubnetIDs[0]),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String(ec2.ClusterTagKey(cluster)), Value: aws.String("owned")},
			{Key: aws.String(ec2.TagNodeClaim), Value: aws.String(claim)},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Instances[0]
	return aws.ToString(inst.InstanceId), ec2.FormatProviderID(aws.ToString(inst.Placement.AvailabilityZone), aws.ToString(inst.InstanceId))
}

func (h *harness) state(t *testing.T, id string) ec2types.InstanceStateName {
	t.Helper()
	out, err := h.ec2.DescribeInstances(h.ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Reservations[0].Instances[0].State.Name
}

// claim makes a launched NodeClaim for the instance, as the lifecycle
// controller leaves it.
func (h *harness) claim(t *testing.T, name, providerID string) *karpv1.NodeClaim {
	t.Helper()
	nc := &karpv1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{karpv1.NodePoolLabelKey: "default"}},
		Spec: karpv1.NodeClaimSpec{
			Requirements: []karpv1.NodeSelectorRequirementWithMinValues{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"amd64"}}},
			NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
		},
	}
	nc, err := h.karp.KarpenterV1().NodeClaims().Create(h.ctx, nc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nc.Status.ProviderID = providerID
	nc.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeLaunched, Status: metav1.ConditionTrue, Reason: "Launched"})
	if nc, err = h.karp.KarpenterV1().NodeClaims().UpdateStatus(h.ctx, nc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return nc
}

func (h *harness) orphan(t *testing.T) {
	orphanID, _ := h.launch(t, "ghost")
	keptID, keptPID := h.launch(t, "alive")
	h.claim(t, "alive", keptPID)
	start := time.Now()
	poll(t, h.ctx, 30*time.Second, "the orphan terminated", func() bool {
		s := h.state(t, orphanID)
		return s == ec2types.InstanceStateNameTerminated || s == ec2types.InstanceStateNameShuttingDown
	})
	// The grace runs from the instance's launch time, which EC2 gives to
	// the second.
	if took := time.Since(start); took < time.Second {
		t.Errorf("terminated %s after launch, inside the 2s grace", took)
	}
	if s := h.state(t, keptID); s != ec2types.InstanceStateNameRunning {
		t.Errorf("the instance of a live claim is %s", s)
	}
}

func (h *harness) vanished(t *testing.T) {
	id, pid := h.launch(t, "vanishing")
	h.claim(t, "vanishing", pid)
	time.Sleep(2 * time.Second) // several passes: a live instance keeps its claim
	if _, err := h.karp.KarpenterV1().NodeClaims().Get(h.ctx, "vanishing", metav1.GetOptions{}); err != nil {
		t.Fatalf("the claim of a running instance: %v", err)
	}
	if _, err := h.ec2.TerminateInstances(h.ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	poll(t, h.ctx, 30*time.Second, "the claim deleted", func() bool {
		_, err := h.karp.KarpenterV1().NodeClaims().Get(h.ctx, "vanishing", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	poll(t, h.ctx, 10*time.Second, "an InstanceGone event", func() bool {
		list, err := h.kube.EventsV1().Events(metav1.NamespaceAll).List(h.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range list.Items {
			if e.Regarding.Name == "vanishing" && e.Reason == "InstanceGone" && strings.Contains(e.Note, id) {
				return true
			}
		}
		return false
	})
}

func poll(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	}); err != nil {
		t.Fatalf("%s: not within %s", what, timeout)
	}
}
