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
	"os"
	"testing"
	"time"

	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
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
// kube-public/cluster-info and the example EC2NodeClass. It sets the AWS
// environment variables the operator reads, so t must not be parallel.
func Start(t *testing.T) *Env {
	t.Helper()
	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := env.StartMotoT(t)
	m.SetEnv(t)
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
	endpoint := o.AWSEndpoint
	if endpoint == "" {
		endpoint = e.Moto.Endpoint
	}
	// LoadDefaultConfig reads the endpoint during operator.New only; Start
	// registered restoring the variable when the test ends.
	os.Setenv("AWS_ENDPOINT_URL", endpoint)
	ctx, cancel := context.WithCancel(e.Ctx)
	t.Cleanup(cancel)
	op, err := operator.New(ctx, e.API.Config, operator.Options{
		ClusterName:             ClusterName,
		RegistrationTTL:         o.RegistrationTTL,
		TokenTTL:                30 * time.Minute,
		VMMemoryOverheadPercent: 0.075,
	})
	os.Setenv("AWS_ENDPOINT_URL", e.Moto.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if o.NoWait {
		return &Operator{Operator: op, Stop: cancel}
	}
	Eventually(t, 60*time.Second, "the operator's catalogue and a Ready EC2NodeClass", func() bool {
		built, _, _ := op.Catalog.Catalog.Status()
		class, err := op.Source.NodeClasses.Get(NodeClassName)
		return !built.IsZero() && err == nil && meta.IsStatusConditionTrue(class.Status.Conditions, ec2v1.ConditionTypeReady)
	})
	t.Logf("operator up in %s", time.Since(began).Round(time.Millisecond))
	return &Operator{Operator: op, Stop: cancel}
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
