package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/nodesim"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/test/sandboxtest"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestWorldUp checks the seeded world: the nodes, kubeadm's cluster-info
// and the token in SSM, the moto resources the EC2NodeClass selects, the
// Karpenter objects and the seed's workload.
func TestWorldUp(t *testing.T) {
	ctx := testContext(t, time.Minute)
	c := sandbox.Client

	t.Run("nodes", func(t *testing.T) {
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]corev1.Node{}
		for _, n := range nodes.Items {
			byName[n.Name] = n
		}
		cp, ok := byName[sandbox.ControlPlaneNode]
		if !ok {
			t.Fatalf("no control-plane node %s", sandbox.ControlPlaneNode)
		}
		if !hasTaint(cp, seed.ControlPlaneTaint) {
			t.Errorf("control-plane node taints %v, want %v", cp.Spec.Taints, seed.ControlPlaneTaint)
		}
		if _, ok := cp.Labels["node-role.kubernetes.io/control-plane"]; !ok {
			t.Errorf("control-plane node has no node-role label: %v", cp.Labels)
		}
		for _, name := range sandbox.Workers {
			n, ok := byName[name]
			if !ok {
				t.Errorf("no worker %s", name)
				continue
			}
			if !world.Schedulable(&n) {
				t.Errorf("worker %s not Ready and schedulable: %v %v", name, n.Status.Conditions, n.Spec.Taints)
			}
			if _, managed := n.Labels["managed-by"]; managed {
				t.Errorf("worker %s carries managed-by: fleet-scheduler must not manage it", name)
			}
			if got := n.Labels[corev1.LabelInstanceTypeStable]; got != "t3.large" {
				t.Errorf("worker %s instance type %q, want t3.large", name, got)
			}
			if cpu := n.Status.Allocatable.Cpu().MilliValue(); cpu != 2000 {
				t.Errorf("worker %s allocatable cpu %dm, want 2000m (t3.large)", name, cpu)
			}
		}
	})

	t.Run("cluster-info and SSM", func(t *testing.T) {
		// kubeadm's anonymous discovery path.
		anon, err := kubernetes.NewForConfig(rest.AnonymousClientConfig(sandbox.Admin))
		if err != nil {
			t.Fatal(err)
		}
		info, err := bootstrap.DiscoverClusterInfo(ctx, anon, bootstrap.ClusterInfoOverrides{})
		if err != nil {
			t.Fatalf("anonymous cluster-info: %v", err)
		}
		if info.Endpoint != sandbox.Endpoint {
			t.Errorf("cluster-info endpoint %s, want %s", info.Endpoint, sandbox.Endpoint)
		}
		cm, err := c.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		token := ssmValue(ctx, t, seed.TokenParameter, ssmtypes.ParameterTypeSecureString)
		hash := ssmValue(ctx, t, seed.CACertHashParameter, ssmtypes.ParameterTypeString)
		id, _, _ := strings.Cut(token, ".")
		if _, ok := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]; !ok {
			t.Errorf("cluster-info carries no signature for the SSM token %s", id)
		}
		if strings.HasPrefix(hash, "sha256:") || len(hash) != 64 {
			t.Errorf("SSM CA hash %q: want 64 hex digits without sha256:, as the runbook stores it", hash)
		}
		if len(info.CACertHashes) != 1 || info.CACertHashes[0] != "sha256:"+hash {
			t.Errorf("SSM CA hash sha256:%s, cluster-info CA hashes %v", hash, info.CACertHashes)
		}
		secret, err := c.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, bootstrapapi.BootstrapTokenSecretPrefix+id, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("bootstrap token secret: %v", err)
		}
		want := map[string]string{
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      "system:bootstrappers:kubeadm:default-node-token",
		}
		for k, v := range want {
			if got := string(secret.Data[k]); got != v {
				t.Errorf("token secret %s=%q, want %q", k, got, v)
			}
		}
	})

	t.Run("moto resources the EC2NodeClass selects", func(t *testing.T) {
		filter := []ec2types.Filter{{Name: aws.String("tag:" + seed.DiscoveryTag), Values: []string{world.ClusterName}}}
		subnets, err := sandbox.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: filter})
		if err != nil {
			t.Fatal(err)
		}
		zones := map[string]bool{}
		for _, s := range subnets.Subnets {
			zones[aws.ToString(s.AvailabilityZone)] = true
		}
		if len(zones) != 3 {
			t.Errorf("tagged subnets in zones %v, want 3 zones", zones)
		}
		sgs, err := sandbox.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filter})
		if err != nil || len(sgs.SecurityGroups) != 1 {
			t.Errorf("tagged security groups: %v, %v", sgs, err)
		}
		images, err := sandbox.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: append(filter,
			ec2types.Filter{Name: aws.String("state"), Values: []string{"available"}})})
		if err != nil || len(images.Images) != 1 || images.Images[0].Architecture != ec2types.ArchitectureValuesX8664 {
			t.Errorf("tagged images: %+v, %v", images, err)
		}
	})

	t.Run("the runbook's kubectl logs of the autoscaler", func(t *testing.T) {
		// kubectl logs -n kube-system -l app.kubernetes.io/name=karpenter:
		// the API server reaches the control-plane node's (simulated)
		// kubelet through the egress proxy; the log is fleet-scheduler's.
		pods, err := c.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=karpenter"})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("pods labelled app.kubernetes.io/name=karpenter: %v, %v", pods, err)
		}
		logs, err := c.CoreV1().Pods(metav1.NamespaceSystem).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{TailLines: ptr.To[int64](200)}).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs of %s: %v", pods.Items[0].Name, err)
		}
		if !strings.Contains(string(logs), "Successfully bound pod") {
			t.Errorf("fleet-scheduler's log has no binding: %q", tail(string(logs), 500))
		}
	})

	t.Run("karpenter objects and the workload", func(t *testing.T) {
		dyn := dynamic.NewForConfigOrDie(sandbox.Admin)
		for _, r := range []struct {
			gvr  schema.GroupVersionResource
			name string
		}{
			{schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodepools"}, "default"},
			{schema.GroupVersionResource{Group: "karpenter.k8s.aws", Version: "v1", Resource: "ec2nodeclasses"}, "default"},
		} {
			if _, err := dyn.Resource(r.gvr).Get(ctx, r.name, metav1.GetOptions{}); err != nil {
				t.Errorf("%s %s: %v", r.gvr.Resource, r.name, err)
			}
		}
		if n := runningScanWorkers(ctx, t); n != seed.ScanReplicas {
			t.Errorf("%d scan-worker pods running, want %d", n, seed.ScanReplicas)
		}
	})
}

// TestTokenFromSSMJoins launches an instance in moto whose user data is
// bootstrap.Render's, with the credentials the SSM token source reads (the
// runbook's parameters) and the endpoint from cluster-info; the simulator
// boots it from its user data alone and it joins: kubeadm discovery with
// the CA pin, an auto-approved CSR, a Node registered with its own
// credentials and the labels NodeRestriction lets a kubelet set. When moto
// terminates the instance, the node goes NotReady.
func TestTokenFromSSMJoins(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	creds := ssmCredentials(ctx, t)
	node := "e2e-join-ok"
	labels := map[string]string{
		corev1.LabelInstanceTypeStable: "t3.large",
		corev1.LabelTopologyZone:       "us-east-1b",
		"karpenter.sh/capacity-type":   "on-demand",
		"team":                         "e2e",
		// Not kubelet-settable: Render must leave it to the registration
		// controller, or NodeRestriction refuses the Node.
		"node-role.kubernetes.io/worker": "",
	}
	userData := render(ctx, t, node, creds, labels)
	id := launch(ctx, t, "t3.large", "us-east-1b", userData)

	m := waitMachine(ctx, t, id, func(m nodesim.MachineStatus) bool {
		return m.Phase == nodesim.PhaseJoined || m.Phase == nodesim.PhaseFailed
	})
	if m.Phase != nodesim.PhaseJoined {
		t.Fatalf("instance %s did not join: %s", id, m.Error)
	}
	n, err := sandbox.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node %s: %v", node, err)
	}
	for k, v := range labels {
		settable := bootstrap.IsKubeletSettableLabel(k)
		got, has := n.Labels[k]
		switch {
		case settable && (!has || got != v):
			t.Errorf("label %s=%q missing from the node (%v)", k, v, n.Labels)
		case !settable && has:
			t.Errorf("label %s is not kubelet-settable but the node registered with it", k)
		}
	}
	if !hasTaint(*n, bootstrap.UnregisteredTaint) {
		t.Errorf("node taints %v lack %v", n.Spec.Taints, bootstrap.UnregisteredTaint)
	}
	if got := n.Status.Allocatable.Cpu().MilliValue(); got != 2000 {
		t.Errorf("allocatable cpu %dm, want 2000m (t3.large from DescribeInstanceTypes)", got)
	}
	// The CSR came from the token and was approved by the controller manager.
	csrs, err := sandbox.Client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, csr := range csrs.Items {
		if csr.Spec.Username == "system:bootstrap:"+creds.TokenID() && csr.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName &&
			approved(csr) && len(csr.Status.Certificate) > 0 && strings.Contains(csrSubject(t, csr), "CN=system:node:"+node) {
			found = true
		}
	}
	if !found {
		t.Errorf("no approved, issued kubelet client CSR for system:node:%s from system:bootstrap:%s", node, creds.TokenID())
	}
	waitFor(ctx, t, "node Ready", 30*time.Second, func() bool {
		n, err := sandbox.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && readyStatus(n) == corev1.ConditionTrue
	})

	// Switch the machine off.
	if _, err := sandbox.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "node NotReady after the instance terminated", 90*time.Second, func() bool {
		n, err := sandbox.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && readyStatus(n) != corev1.ConditionTrue
	})
	_ = sandbox.Client.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{})
}

// TestFailedJoinNeverRegisters: user data with a wrong CA hash, a wrong
// token secret or an unknown token never makes a Node.
func TestFailedJoinNeverRegisters(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	good := ssmCredentials(ctx, t)
	otherCA := sha256.Sum256([]byte("not the cluster CA"))
	cases := []struct {
		name  string
		creds bootstrap.JoinCredentials
		want  string // in the machine's error
	}{
		{"wrong CA hash", bootstrap.JoinCredentials{Token: good.Token, CACertHashes: []string{"sha256:" + hex.EncodeToString(otherCA[:])}}, "pinned"},
		{"wrong token secret", bootstrap.JoinCredentials{Token: good.TokenID() + ".0123456789abcdef", CACertHashes: good.CACertHashes}, "JWS"},
		{"unknown token", bootstrap.JoinCredentials{Token: "zzzzzz.0123456789abcdef", CACertHashes: good.CACertHashes}, "zzzzzz"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node := fmt.Sprintf("e2e-join-bad-%d", i)
			id := launch(ctx, t, "t3.medium", "us-east-1c", render(ctx, t, node, tc.creds, nil))
			m := waitMachine(ctx, t, id, func(m nodesim.MachineStatus) bool {
				return m.Phase == nodesim.PhaseJoined || m.Phase == nodesim.PhaseFailed
			})
			if m.Phase != nodesim.PhaseFailed {
				t.Fatalf("instance %s with a %s: phase %s, want Failed", id, tc.name, m.Phase)
			}
			if !strings.Contains(m.Error, tc.want) {
				t.Errorf("failure %q does not say %q", m.Error, tc.want)
			}
			if strings.Contains(m.Error, strings.SplitN(tc.creds.Token, ".", 2)[1]) {
				t.Errorf("failure carries the token secret: %q", m.Error)
			}
			if _, err := sandbox.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("node %s exists (err %v): a failed join registered", node, err)
			}
			_, _ = sandbox.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		})
	}
}

// ssmCredentials reads the join credentials as the launch path does: the
// SSM token source over the runbook's parameters.
func ssmCredentials(ctx context.Context, t *testing.T) bootstrap.JoinCredentials {
	t.Helper()
	src, err := bootstrap.NewSSMTokenSource(sandbox.SSM, bootstrap.SSMConfig{
		TokenParameter: seed.TokenParameter, CACertHashParameter: seed.CACertHashParameter, CacheTTL: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := src.Credentials(ctx, "e2e")
	if err != nil {
		t.Fatalf("credentials from SSM: %v", err)
	}
	return creds
}

// render is the user data the launch path would write for node: the
// endpoint from anonymous cluster-info, the credentials, the labels and
// the example EC2NodeClass's userData.
func render(ctx context.Context, t *testing.T, node string, creds bootstrap.JoinCredentials, labels map[string]string) string {
	t.Helper()
	anon, err := kubernetes.NewForConfig(rest.AnonymousClientConfig(sandbox.Admin))
	if err != nil {
		t.Fatal(err)
	}
	info, err := bootstrap.DiscoverClusterInfo(ctx, anon, bootstrap.ClusterInfoOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	ud, err := bootstrap.Render(bootstrap.UserDataInput{
		APIServerEndpoint: info.Endpoint, Credentials: creds, NodeName: node, Labels: labels,
		UserData: "#!/bin/bash\nswapoff -a\n",
	})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return ud
}

// launch starts an instance tagged for the cluster (but for no NodeClaim)
// in the zone's subnet with the node image.
func launch(ctx context.Context, t *testing.T, instanceType, zone, userData string) string {
	t.Helper()
	out, err := sandbox.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(sandbox.Network.AMIID), InstanceType: ec2types.InstanceType(instanceType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(sandbox.Network.Subnets[zone]), SecurityGroupIds: []string{sandbox.Network.SecurityGroupID},
		UserData: aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String(nodesim.ClusterTagPrefix + world.ClusterName), Value: aws.String("owned")},
			{Key: aws.String("Name"), Value: aws.String("e2e-" + t.Name())},
		}}},
	})
	if err != nil {
		t.Fatalf("run-instances: %v", err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	t.Cleanup(func() {
		_, _ = sandbox.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	})
	return id
}

func waitMachine(ctx context.Context, t *testing.T, id string, done func(nodesim.MachineStatus) bool) nodesim.MachineStatus {
	t.Helper()
	var m nodesim.MachineStatus
	waitFor(ctx, t, "machine "+id, 60*time.Second, func() bool {
		var ok bool
		m, ok = sandbox.Sim.Machine(id)
		return ok && done(m)
	})
	return m
}

func waitFor(ctx context.Context, t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	sandboxtest.WaitFor(ctx, t, what, 250*time.Millisecond, timeout, cond)
}

func ssmValue(ctx context.Context, t *testing.T, name string, typ ssmtypes.ParameterType) string {
	t.Helper()
	out, err := sandbox.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatalf("ssm get-parameter %s: %v", name, err)
	}
	if out.Parameter.Type != typ {
		t.Errorf("SSM %s is a %s, want %s", name, out.Parameter.Type, typ)
	}
	return aws.ToString(out.Parameter.Value)
}

func runningScanWorkers(ctx context.Context, t *testing.T) int {
	t.Helper()
	pods, err := sandbox.Client.CoreV1().Pods(seed.ScanNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + seed.ScanDeployment})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

func hasTaint(n corev1.Node, want corev1.Taint) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == want.Key && t.Effect == want.Effect {
			return true
		}
	}
	return false
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

func approved(csr certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// csrSubject is the subject of a CSR's request.
func csrSubject(t *testing.T, csr certificatesv1.CertificateSigningRequest) string {
	t.Helper()
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return ""
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return ""
	}
	return req.Subject.String()
}
