package manifests

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"k8s.io/utils/ptr"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/join"
	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	fleetec2 "github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// runAsServiceAccount runs bin/fleet-scheduler the way the build's
// Deployment does - its flags, its ConfigMap's config unchanged but for the
// kubeconfig, as its ServiceAccount - against the apiserver and moto, and
// takes one NodeClaim from a pending pod to a terminated instance:
// nomination, claim, launch with a minted token, registration,
// initialization, binding, deletion, token revocation.
func runAsServiceAccount(t *testing.T, api *env.APIServer, b *build) {
	ctx := context.Background()
	dep := one[*appsv1.Deployment](t, b)
	cfgData, _ := schedulerConfig(t, b, dep)
	cfg := loadConfigData(t, cfgData)
	profile := cfg.Profiles[0].SchedulerName
	args := provisionerArgs(t, &cfg.Profiles[0])

	// AWS: moto in the config's region, with the network and image the
	// example EC2NodeClass selects.
	moto, err := env.StartMoto(args.Region)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Close)
	if _, err := env.SeedAWS(ctx, moto.AWSConfig(), "sesacthon-dev"); err != nil {
		t.Fatal(err)
	}
	ec2c := awsec2.NewFromConfig(moto.AWSConfig())
	// The interruption queue the config names, as manifests/interruption
	// makes it: the binary finds it and long-polls it.
	if args.InterruptionQueue != "" {
		if _, err := sqs.NewFromConfig(moto.AWSConfig()).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(args.InterruptionQueue)}); err != nil {
			t.Fatal(err)
		}
	}

	// The cluster as kubeadm leaves it: cluster-info, a tainted control
	// plane node; the seed's NodePool and EC2NodeClass.
	kube := api.Client
	clusterInfo(t, api)
	controlPlaneNode(t, api)
	jsonCfg := rest.CopyConfig(api.Config)
	jsonCfg.ContentType = "application/json"
	karp := versioned.NewForConfigOrDie(jsonCfg)
	applyExamples(t, karp)

	// The Deployment's config and flags, pointed at this apiserver with the
	// ServiceAccount's identity.
	kubeconfig := env.WriteKubeconfig(t, api.Config, saUser)
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(cfgData), &raw); err != nil {
		t.Fatal(err)
	}
	raw["clientConnection"] = map[string]any{"kubeconfig": kubeconfig}
	edited, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := env.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		switch {
		case strings.HasPrefix(a, "--config="):
			a = "--config=" + cfgFile
		case strings.HasPrefix(a, "--secure-port="):
			a = fmt.Sprintf("--secure-port=%d", port)
		}
		flags = append(flags, a)
	}
	// In a pod these default to the in-cluster config. -v=6 logs every
	// API request: no token may show up even so.
	flags = append(flags, "--bind-address=127.0.0.1", "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig, "--v=6")

	bin := buildScheduler(t)
	logPath := filepath.Join(t.TempDir(), "fleet-scheduler.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, flags...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL="+moto.Endpoint, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			lines := strings.Split(string(out), "\n")
			if len(lines) > 150 {
				lines = lines[len(lines)-150:]
			}
			t.Logf("fleet-scheduler %v\n...%s", flags, strings.Join(lines, "\n"))
		}
	})
	step := func(what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
		t.Helper()
		begin := time.Now()
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			select {
			case err := <-exited:
				return false, fmt.Errorf("fleet-scheduler exited: %v", err)
			default:
			}
			return cond(ctx)
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%-55s %6s", what, time.Since(begin).Round(10*time.Millisecond))
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)

	step("serving /healthz", 3*time.Minute, func(context.Context) (bool, error) {
		code, _, err := httpsGet(base+"/healthz", "")
		return err == nil && code == 200, nil
	})
	t.Logf("fleet-scheduler healthy %s after start", time.Since(started).Round(100*time.Millisecond))
	step("holds both Leases", time.Minute, func(ctx context.Context) (bool, error) {
		for _, name := range []string{"fleet-scheduler", "fleet-scheduler-provisioning"} {
			l, err := kube.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
				return false, nil
			}
		}
		return true, nil
	})

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "scan-worker", Namespace: metav1.NamespaceDefault},
		Spec: corev1.PodSpec{
			SchedulerName: profile,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			}}},
		},
	}
	if _, err := kube.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var claim *karpv1.NodeClaim
	step("pending pod -> NodeClaim launched", 3*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || p.Status.NominatedNodeName == "" {
			return false, nil
		}
		nc, err := karp.KarpenterV1().NodeClaims().Get(ctx, p.Status.NominatedNodeName, metav1.GetOptions{})
		if err != nil || !meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeLaunched) {
			return false, nil
		}
		claim = nc
		return true, nil
	})
	tokenSecrets := func(ctx context.Context) ([]corev1.Secret, error) {
		l, err := kube.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=fleet-scheduler"})
		if err != nil {
			return nil, err
		}
		return l.Items, nil
	}
	// One token, minted for the launch; its ID, and nothing more of it, on
	// the claim; its secret in the instance's user data (only there).
	s, err := tokenSecrets(ctx)
	if err != nil || len(s) != 1 || s[0].Type != corev1.SecretTypeBootstrapToken {
		t.Fatalf("minted token Secrets %v (%v): want one bootstrap token for the claim", s, err)
	}
	ids := bootstrap.TokenIDs(claim.Annotations)
	if len(ids) != 1 || s[0].Name != "bootstrap-token-"+ids[0] {
		t.Fatalf("token IDs on the claim %v, want the one minted (%s)", ids, s[0].Name)
	}
	secret := string(s[0].Data["token-secret"])
	if strings.Contains(fmt.Sprint(claim.Annotations, claim.Labels, claim.Status), secret) {
		t.Errorf("the claim carries the token's secret")
	}
	if j := userDataJoin(t, ctx, ec2c, args.ClusterName, claim.Name); j.Token != ids[0]+"."+secret || j.ConfigFile == "" {
		t.Errorf("the user data joins with %v (config file %q), want the minted token in a JoinConfiguration", j, j.ConfigFile)
	}
	checkLaunchTags(t, ctx, ec2c, args.ClusterName, claim.Name)

	// The instance boots and `kubeadm join`s under the claim's name with
	// the unregistered taint, as its user data says.
	rl := claim.Status.Allocatable
	if len(rl) == 0 {
		rl = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}
	}
	rl = rl.DeepCopy()
	rl[corev1.ResourcePods] = resource.MustParse("110")
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: claim.Name, Labels: map[string]string{
			corev1.LabelHostname: claim.Name, corev1.LabelArchStable: "amd64", corev1.LabelOSStable: "linux",
		}},
		Spec: corev1.NodeSpec{ProviderID: claim.Status.ProviderID, Taints: []corev1.Taint{{Key: karpv1.UnregisteredTaintKey, Effect: corev1.TaintEffectNoExecute}}},
	}
	created, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Registration updates the Node as soon as it appears: retry on its writes, as a kubelet does.
	err = updateNode(ctx, kube, created.Name, func(n *corev1.Node) {
		n.Status = corev1.NodeStatus{Capacity: rl, Allocatable: rl, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	}, kube.CoreV1().Nodes().UpdateStatus)
	if err != nil {
		t.Fatal(err)
	}
	// kube-controller-manager's node lifecycle controller would lift the
	// not-ready taint the TaintNodesByCondition admission plugin put on the
	// new Node; there is none here.
	err = updateNode(ctx, kube, claim.Name, func(n *corev1.Node) {
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(tt corev1.Taint) bool { return tt.Key == corev1.TaintNodeNotReady })
	}, kube.CoreV1().Nodes().Update)
	if err != nil {
		t.Fatal(err)
	}
	step("node joined -> registered, initialized", time.Minute, func(ctx context.Context) (bool, error) {
		nc, err := karp.KarpenterV1().NodeClaims().Get(ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeInitialized), nil
	})
	step("token revoked once the node joined", 30*time.Second, func(ctx context.Context) (bool, error) {
		s, err := tokenSecrets(ctx)
		return err == nil && len(s) == 0, nil
	})
	n, err := kube.CoreV1().Nodes().Get(ctx, claim.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.OwnerReferences) != 1 || n.OwnerReferences[0].Kind != "NodeClaim" || n.Labels[karpv1.NodeInitializedLabelKey] != "true" ||
		slices.ContainsFunc(n.Spec.Taints, func(tt corev1.Taint) bool { return tt.Key == karpv1.UnregisteredTaintKey }) {
		t.Errorf("node after registration: owners %v labels %v taints %v", n.OwnerReferences, n.Labels, n.Spec.Taints)
	}
	step("nominated pod bound to the new node", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Spec.NodeName == claim.Name, nil
	})
	step("events recorded", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := kube.EventsV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == pod.Name && e.Reason == "Nominated" {
				return true, nil
			}
		}
		return false, nil
	})
	code, body, err := httpsGet(base+"/metrics", api.Config.BearerToken)
	if err != nil || code != 200 {
		t.Fatalf("/metrics (authenticated and authorized through the apiserver as the ServiceAccount): %d %v %.300s", code, err, body)
	}
	if missing := containsAll(body, "karpenter_nodeclaims_created_total", "karpenter_nodeclaims_launched_total",
		"karpenter_nodeclaims_registered_total", "karpenter_nodeclaims_initialized_total",
		"karpenter_provisioner_scheduling_duration_seconds_bucket", "scheduler_pending_pods"); len(missing) > 0 {
		t.Errorf("/metrics lacks %v", missing)
	}

	// Scale-down's end: the claim is deleted, its node, instance, launch
	// template and token go, then its finalizer.
	if err := karp.KarpenterV1().NodeClaims().Delete(ctx, claim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	step("NodeClaim deleted -> node, instance, token gone", time.Minute, func(ctx context.Context) (bool, error) {
		// No kubelet runs here: remove the pods the drain evicted, as the kubelet would once they stop.
		pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + claim.Name})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				_ = kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
			}
		}
		if _, err := karp.KarpenterV1().NodeClaims().Get(ctx, claim.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		if _, err := kube.CoreV1().Nodes().Get(ctx, claim.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		s, err := tokenSecrets(ctx)
		return err == nil && len(s) == 0, nil
	})
	_, id, err := fleetec2.ParseProviderID(claim.Status.ProviderID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ec2c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) != 1 {
		t.Fatalf("DescribeInstances %s: %v", id, err)
	}
	if st := out.Reservations[0].Instances[0].State.Name; st != ec2types.InstanceStateNameTerminated && st != ec2types.InstanceStateNameShuttingDown {
		t.Errorf("instance %s is %s after its claim was deleted", id, st)
	}
	if metricsBody, err := scrape(base, api.Config.BearerToken); err == nil {
		if missing := containsAll(metricsBody, "karpenter_nodeclaims_terminated_total"); len(missing) > 0 {
			t.Errorf("/metrics lacks %v", missing)
		}
	}
	// Everything the binary wrote at -v=6 (every API request logged) holds
	// the token's ID at most, never its secret.
	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), "round_trippers.go") {
		t.Errorf("the log has no API requests in it: -v=6 did not take")
	}
	if strings.Contains(string(logged), secret) {
		t.Errorf("fleet-scheduler's output at -v=6 carries the bootstrap token's secret")
	}
}

// userDataJoin is the join the claim's launch template tells the instance
// to perform.
func userDataJoin(t *testing.T, ctx context.Context, ec2c *awsec2.Client, cluster, claim string) join.JoinScript {
	t.Helper()
	v := "$Latest"
	out, err := ec2c.DescribeLaunchTemplateVersions(ctx, &awsec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(fleetec2.LaunchTemplateName(cluster, claim)), Versions: []string{v}})
	if err != nil || len(out.LaunchTemplateVersions) != 1 {
		t.Fatalf("launch template of claim %s: %v", claim, err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.LaunchTemplateVersions[0].LaunchTemplateData.UserData))
	if err != nil {
		t.Fatal(err)
	}
	j, err := join.ParseJoin(string(raw))
	if err != nil {
		t.Fatalf("the user data of %s: %v", claim, err)
	}
	return j
}

func scrape(base, token string) (string, error) {
	code, body, err := httpsGet(base+"/metrics", token)
	if err == nil && code != 200 {
		err = fmt.Errorf("HTTP %d", code)
	}
	return body, err
}

// checkLaunchTags evaluates the IAM policy's tag conditions against the
// tags fleet-scheduler really put on the claim's instance and launch
// template: on AWS, the launch and the later terminate are allowed only
// if they hold.
func checkLaunchTags(t *testing.T, ctx context.Context, ec2c *awsec2.Client, cluster, claim string) {
	t.Helper()
	old := policyPlaceholders["CLUSTER_NAME"]
	policyPlaceholders["CLUSTER_NAME"] = cluster
	_, doc := readPolicy(t, true)
	policyPlaceholders["CLUSTER_NAME"] = old

	inst, err := ec2c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + fleetec2.TagNodeClaim), Values: []string{claim}},
	}})
	if err != nil || len(inst.Reservations) != 1 || len(inst.Reservations[0].Instances) != 1 {
		t.Fatalf("instances of claim %s: %v %v", claim, inst, err)
	}
	lts, err := ec2c.DescribeLaunchTemplates(ctx, &awsec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{fleetec2.LaunchTemplateName(cluster, claim)}})
	if err != nil || len(lts.LaunchTemplates) != 1 {
		t.Fatalf("launch template of claim %s: %v", claim, err)
	}
	tags := map[string]map[string]string{
		"instance/":        tagMap(inst.Reservations[0].Instances[0].Tags),
		"launch-template/": tagMap(lts.LaunchTemplates[0].Tags),
	}
	checked := 0
	for _, st := range doc.Statement {
		for kind, tm := range tags {
			if !containsFunc(st.Resource, func(r string) bool { return strings.Contains(r, ":"+kind) }) {
				continue
			}
			for op, conds := range st.Condition {
				for key, values := range conds {
					tagKey, ok := strings.CutPrefix(key, "aws:RequestTag/")
					if !ok {
						if tagKey, ok = strings.CutPrefix(key, "aws:ResourceTag/"); !ok {
							continue
						}
					}
					checked++
					v, present := tm[tagKey]
					if !present || !containsFunc(values, func(want string) bool { return iamMatch(op, want, v) }) {
						t.Errorf("%s on %s: condition %s %s=%v fails: the %s is tagged %v", st.Sid, kind, op, key, values, strings.TrimSuffix(kind, "/"), tm)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no tag condition was checked")
	}
}

func tagMap(tags []ec2types.Tag) map[string]string {
	out := map[string]string{}
	for _, tg := range tags {
		out[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return out
}

func containsFunc(list []string, f func(string) bool) bool {
	for _, s := range list {
		if f(s) {
			return true
		}
	}
	return false
}

// iamMatch implements the IAM string condition operators the policy uses.
func iamMatch(op, pattern, value string) bool {
	switch op {
	case "StringEquals":
		return pattern == value
	case "StringLike":
		re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
		return regexp.MustCompile(re).MatchString(value)
	}
	return false
}

// buildScheduler builds cmd/scheduler, the binary the image runs.
func buildScheduler(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "fleet-scheduler")
	start := time.Now()
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/scheduler")
	cmd.Dir = env.RepoRoot()
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build ./cmd/scheduler: %v\n%s", err, out.String())
	}
	t.Logf("built cmd/scheduler in %s", time.Since(start).Round(100*time.Millisecond))
	return bin
}

// clusterInfo publishes kube-public/cluster-info as `kubeadm init` does.
func clusterInfo(t *testing.T, api *env.APIServer) {
	t.Helper()
	cm, err := bootstrap.ClusterInfoConfigMap(api.Config.Host, api.Config.CAData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Client.CoreV1().ConfigMaps(cm.Namespace).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// controlPlaneNode is kubeadm's control-plane node: Ready and tainted, so
// pods fit nowhere and PostFilter runs.
func controlPlaneNode(t *testing.T, api *env.APIServer) {
	t.Helper()
	ctx := context.Background()
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "control-plane", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}},
	}
	created, err := api.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.NodeStatus{Capacity: rl, Allocatable: rl, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	if _, err := api.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// applyExamples creates manifests/examples, the seed's NodePool and EC2NodeClass.
func applyExamples(t *testing.T, karp versioned.Interface) {
	t.Helper()
	ctx := context.Background()
	class, pool := &ec2v1.EC2NodeClass{}, &karpv1.NodePool{}
	env.ReadExample(t, "ec2nodeclass.yaml", class)
	env.ReadExample(t, "nodepool.yaml", pool)
	if _, err := karp.EC2V1().EC2NodeClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := karp.KarpenterV1().NodePools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
