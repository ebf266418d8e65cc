// Package nodeclaimtest is the harness the NodeClaim controller and cloud
// provider tests share: a real kube-apiserver with the CRDs, moto seeded the
// way the examples expect, the real provisioning operator (operator.New +
// Start) against both, NodeClaims created the way the Provisioner plugin
// creates them (nodepool.Creator), and Nodes registered the way a kubelet
// does from the claim's user data.
//
// It is for tests only: it starts servers and calls t.Fatal.
package nodeclaimtest

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclass"
	"github.com/fleet-scheduler/fleet-scheduler/provision/operator"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// ClusterName is the cluster every harness operator runs for.
const ClusterName = "test-cluster"

// Discovery is the karpenter.sh/discovery tag value of the seeded network
// and image, the one manifests/examples/ec2nodeclass.yaml selects.
const Discovery = "sesacthon-dev"

// NodeClassName is the example EC2NodeClass's name.
const NodeClassName = "default"

// Env is one apiserver and one moto_server, with the example EC2NodeClass.
type Env struct {
	Ctx   context.Context
	API   *env.APIServer
	Kube  kubernetes.Interface
	Karp  versioned.Interface
	Moto  *env.Moto
	World *env.AWSWorld
	// EC2 talks to moto directly, around any proxy: the test's view of EC2.
	EC2 *awsec2.Client
}

// Start brings up moto (seeded), the apiserver with the CRDs,
// kube-public/cluster-info and the example EC2NodeClass.
func Start(t *testing.T) *Env {
	t.Helper()
	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := env.StartMotoT(t)
	world, err := env.SeedAWS(ctx, m.AWSConfig(), Discovery)
	if err != nil {
		t.Fatal(err)
	}
	api := env.StartAPIServer(t)
	env.InstallCRDs(t, api.Config)
	jsonCfg := rest.CopyConfig(api.Config)
	jsonCfg.ContentType = "application/json"
	e := &Env{
		Ctx: ctx, API: api, Kube: api.Client, Karp: versioned.NewForConfigOrDie(jsonCfg),
		Moto: m, World: world, EC2: awsec2.NewFromConfig(m.AWSConfig()),
	}
	e.publishClusterInfo(t)
	e.applyExampleNodeClass(t)
	t.Logf("apiserver and moto up in %s", time.Since(began).Round(time.Millisecond))
	return e
}

// publishClusterInfo writes kube-public/cluster-info as kubeadm init does:
// the launch path reads the endpoint and CA from it.
func (e *Env) publishClusterInfo(t *testing.T) {
	t.Helper()
	cm, err := bootstrap.ClusterInfoConfigMap(e.API.Config.Host, e.API.Config.CAData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Kube.CoreV1().ConfigMaps(cm.Namespace).Create(e.Ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (e *Env) applyExampleNodeClass(t *testing.T) {
	t.Helper()
	class := &ec2v1.EC2NodeClass{}
	env.ReadExample(t, "ec2nodeclass.yaml", class)
	if _, err := e.Karp.EC2V1().EC2NodeClasses().Create(e.Ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Operator is a running operator.New + Start; Stop ends it as a crash would
// (its in-flight calls are cancelled).
type Operator struct {
	*operator.Operator
	Stop func()
}

// OperatorOptions are the settings a harness operator differs in.
type OperatorOptions struct {
	// RegistrationTTL; 15m when zero.
	RegistrationTTL time.Duration
	// AWSEndpoint is where its AWS calls go; moto when empty (a Proxy's URL
	// to inject faults).
	AWSEndpoint string
	// NoWait returns as soon as Start does, as a restarted scheduler
	// runs: the catalogue may still be loading.
	NoWait bool
	// InterruptionQueue turns interruption handling on with this queue.
	InterruptionQueue string
	// CallTimeouts bound its AWS calls; the operator's defaults when zero.
	CallTimeouts ec2.CallTimeouts
	// Passive runs everything but the controllers (their Lease is held by
	// another identity), for a test that drives controllers of its own;
	// the example EC2NodeClass is resolved once, as its controller would.
	Passive bool
}

// StartOperator runs the real operator, controllers without leader
// election (LeaseName ""), and waits until its instance catalogue is built
// and it sees the example EC2NodeClass Ready.
func (e *Env) StartOperator(t *testing.T, o OperatorOptions) *Operator {
	t.Helper()
	began := time.Now()
	if o.RegistrationTTL == 0 {
		o.RegistrationTTL = 15 * time.Minute
	}
	awsCfg := e.Moto.AWSConfig()
	if o.AWSEndpoint != "" {
		awsCfg.BaseEndpoint = aws.String(o.AWSEndpoint)
	}
	ctx, cancel := context.WithCancel(e.Ctx)
	t.Cleanup(cancel)
	opts := operator.Options{
		ClusterName:             ClusterName,
		RegistrationTTL:         o.RegistrationTTL,
		TokenTTL:                30 * time.Minute,
		VMMemoryOverheadPercent: 0.075,
		AWS:                     &awsCfg,
		InterruptionQueue:       o.InterruptionQueue,
		CallTimeouts:            o.CallTimeouts,
	}
	if o.Passive {
		opts.LeaseNamespace, opts.LeaseName = e.heldLease(t)
	}
	op, err := operator.New(ctx, e.API.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if o.NoWait {
		return &Operator{Operator: op, Stop: cancel}
	}
	if o.Passive {
		e.resolveNodeClass(t, op)
	}
	Eventually(t, 60*time.Second, "the operator's catalogue and a Ready EC2NodeClass", func() bool {
		built, _, _ := op.Catalog.Catalog.Status()
		class, err := op.Source.NodeClasses.Get(NodeClassName)
		return !built.IsZero() && err == nil && meta.IsStatusConditionTrue(class.Status.Conditions, ec2v1.ConditionTypeReady)
	})
	t.Logf("operator up in %s", time.Since(began).Round(time.Millisecond))
	return &Operator{Operator: op, Stop: cancel}
}

// heldLease is a Lease another identity holds for an hour.
func (e *Env) heldLease(t *testing.T) (namespace, name string) {
	t.Helper()
	name = "nodeclaimtest-passive-" + utilrand.String(5)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("another-process"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &metav1.MicroTime{Time: time.Now()}, RenewTime: &metav1.MicroTime{Time: time.Now()}}}
	if _, err := e.Kube.CoordinationV1().Leases(metav1.NamespaceSystem).Create(e.Ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return metav1.NamespaceSystem, name
}

// resolveNodeClass runs the EC2NodeClass controller's reconcile for the
// example class until it is Ready.
func (e *Env) resolveNodeClass(t *testing.T, op *operator.Operator) {
	t.Helper()
	nc := &nodeclass.Controller{Karpenter: op.Karpenter, NodeClasses: op.Source.NodeClasses, Resolver: op.Resolver,
		Recorder: op.Recorder, Profiles: op.Profiles}
	Eventually(t, 60*time.Second, "the example EC2NodeClass resolved", func() bool {
		_, _ = nc.Reconcile(e.Ctx, NodeClassName)
		class, err := op.Source.NodeClasses.Get(NodeClassName)
		return err == nil && meta.IsStatusConditionTrue(class.Status.Conditions, ec2v1.ConditionTypeReady)
	})
}

// Eventually polls cond every 100ms until it holds, failing the test after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Never fails the test if cond holds at any poll during d.
func Never(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			t.Fatalf("unexpectedly: %s", what)
		}
	}
}
