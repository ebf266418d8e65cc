package manifests

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	schedvalidation "k8s.io/kubernetes/pkg/scheduler/apis/config/validation"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	// Registers ProvisionerArgs in kube-scheduler's config scheme, as
	// cmd/scheduler does, so --config decodes the Provisioner's args.
	_ "github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/scheme"
	provvalidation "github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/validation"
	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner"
)

const (
	// runbookSelector is how the seed runbook finds the autoscaler's pods:
	// kubectl logs -n kube-system -l app.kubernetes.io/name=karpenter
	runbookSelector  = "app.kubernetes.io/name=karpenter"
	runbookNamespace = "kube-system"

	serviceAccount = "fleet-scheduler"
	securePort     = 10259
	// The seed runbook's SSM parameters.
	seedTokenParameter = "/sesacthon/dev/karpenter/bootstrap-token"
	seedHashParameter  = "/sesacthon/dev/karpenter/ca-cert-hash"
)

var saSubject = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: runbookNamespace}

// deploymentBuild is what a build that runs fleet-scheduler as a
// Deployment must look like.
type deploymentBuild struct {
	dir         string
	replicas    int32
	verbosity   string
	clusterName string
	// ssm: join credentials from the seed's SSM parameters; otherwise minted
	// tokens, which need Secret access in kube-system and nothing else does.
	ssm bool
	pdb bool
	// spread: the replicas are kept on different nodes and zones.
	spread bool
}

var deploymentBuilds = []deploymentBuild{
	{dir: baseDir, replicas: 2, verbosity: "2", clusterName: "sesacthon-dev", ssm: true},
	{dir: devDir, replicas: 1, verbosity: "4", clusterName: "sesacthon-dev", ssm: true},
	{dir: prodDir, replicas: 2, verbosity: "2", clusterName: "sesacthon-prod", pdb: true, spread: true},
}

func TestDeploymentBuilds(t *testing.T) {
	for _, want := range deploymentBuilds {
		t.Run(want.dir, func(t *testing.T) {
			b := kustomize(t, want.dir)
			checkNamespaces(t, b)
			checkRBAC(t, b, saSubject, !want.ssm)
			dep := one[*appsv1.Deployment](t, b)
			checkDeployment(t, b, dep, want)
			checkRunbookSelector(t, b, dep, want.pdb)

			cfg := loadSchedulerConfig(t, b, dep)
			if le := cfg.LeaderElection; !le.LeaderElect || le.ResourceNamespace != "kube-system" || le.ResourceName != "fleet-scheduler" {
				t.Errorf("leaderElection %+v: want leaderElect in kube-system under the fleet-scheduler Lease (kube-scheduler's is the stock scheduler's)", le)
			}
			if len(cfg.Profiles) != 1 || cfg.Profiles[0].SchedulerName != "fleet-scheduler" {
				t.Fatalf("profiles %v, want the one profile fleet-scheduler", profileNames(cfg))
			}
			args := provisionerArgs(t, &cfg.Profiles[0])
			if args == nil {
				t.Fatal("the fleet-scheduler profile does not enable the Provisioner")
			}
			if args.ClusterName != want.clusterName {
				t.Errorf("clusterName %q, want %q", args.ClusterName, want.clusterName)
			}
			if args.Region == "" {
				t.Error("region is empty: the operator refuses to start without one")
			}
			tok, hash := args.Bootstrap.TokenSSMParameter, args.Bootstrap.CACertHashSSMParameter
			switch {
			case want.ssm && (tok != seedTokenParameter || hash != seedHashParameter):
				t.Errorf("bootstrap SSM parameters %q, %q; want the runbook's %q, %q", tok, hash, seedTokenParameter, seedHashParameter)
			case !want.ssm && args.Bootstrap.UsesSSM():
				t.Errorf("bootstrap uses SSM (%q, %q); want minted tokens", tok, hash)
			}
			if !want.ssm && args.Bootstrap.TokenTTL.Duration > args.RegistrationTTL.Duration {
				t.Errorf("minted token TTL %s outlives the registration TTL %s", args.Bootstrap.TokenTTL.Duration, args.RegistrationTTL.Duration)
			}
		})
	}
}

// TestStaticPod checks the kubeadm replacement: RBAC for the
// system:kube-scheduler user, the static pod and both of its configs.
func TestStaticPod(t *testing.T) {
	b := kustomize(t, staticPodDir)
	checkNamespaces(t, b)
	checkRBAC(t, b, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:kube-scheduler"}, false)
	if n := len(all[*appsv1.Deployment](b)); n != 0 {
		t.Errorf("%d Deployments: the static-pod build is RBAC only", n)
	}

	pod, ok := decodeFile(t, path.Join(staticPodDir, "kube-scheduler.yaml")).typed.(*corev1.Pod)
	if !ok {
		t.Fatal("kube-scheduler.yaml is not a Pod")
	}
	if want := makeVariable(t, "IMAGE_REPO") + ":" + makeVariable(t, "VERSION"); pod.Spec.Containers[0].Image != want {
		t.Errorf("static pod image %q, want %q (make image)", pod.Spec.Containers[0].Image, want)
	}
	// kubeadm's scheduler.conf is 0600 root; the image's own user (65532) cannot read it.
	if sc := pod.Spec.Containers[0].SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Error("the static pod must run as root (runAsUser: 0) to read kubeadm's scheduler.conf")
	}
	if pod.Namespace != runbookNamespace || pod.Name != "kube-scheduler" || !pod.Spec.HostNetwork {
		t.Errorf("static pod %s/%s hostNetwork=%v: want kube-system/kube-scheduler on the host network, as kubeadm's", pod.Namespace, pod.Name, pod.Spec.HostNetwork)
	}
	sel, _ := labels.Parse(runbookSelector)
	if !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("static pod labels %v do not match the runbook's -l %s", pod.Labels, runbookSelector)
	}
	c := pod.Spec.Containers[0]
	if len(c.Command) == 0 || c.Command[0] != "fleet-scheduler" {
		t.Fatalf("command %v: want fleet-scheduler and its flags", c.Command)
	}
	flags := parseSchedulerFlags(t, c.Command[1:])
	configPath := flags["config"]
	mounted := map[string]string{} // mount path -> hostPath
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil {
				mounted[m.MountPath] = v.HostPath.Path
			}
		}
	}
	for _, p := range []string{configPath, "/etc/kubernetes/scheduler.conf"} {
		if mounted[p] != p {
			t.Errorf("%s is not mounted from the same host path (mounts %v)", p, mounted)
		}
	}
	for _, f := range []string{"authentication-kubeconfig", "authorization-kubeconfig"} {
		if flags[f] != "/etc/kubernetes/scheduler.conf" {
			t.Errorf("--%s=%q, want /etc/kubernetes/scheduler.conf", f, flags[f])
		}
	}

	for file, wantProvisioner := range map[string]map[string]bool{
		"fleet-scheduler.yaml":             {"default-scheduler": true},
		"fleet-scheduler-per-profile.yaml": {"default-scheduler": false, "fleet-scheduler": true},
	} {
		t.Run(file, func(t *testing.T) {
			raw := readRepoFile(t, staticPodDir, file)
			cfg := loadConfigData(t, string(raw))
			if cfg.ClientConnection.Kubeconfig != "/etc/kubernetes/scheduler.conf" {
				t.Errorf("clientConnection.kubeconfig %q, want kubeadm's /etc/kubernetes/scheduler.conf", cfg.ClientConnection.Kubeconfig)
			}
			if le := cfg.LeaderElection; !le.LeaderElect || le.ResourceName != "kube-scheduler" {
				t.Errorf("leaderElection %+v: a replacement keeps kube-scheduler's Lease", le)
			}
			got := map[string]bool{}
			for i := range cfg.Profiles {
				got[cfg.Profiles[i].SchedulerName] = provisionerArgs(t, &cfg.Profiles[i]) != nil
			}
			if !mapsEqual(got, wantProvisioner) {
				t.Errorf("profiles with the Provisioner %v, want %v", got, wantProvisioner)
			}
		})
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkNamespaces: everything namespaced is in kube-system, except the
// cluster-info reader in kube-public.
func checkNamespaces(t *testing.T, b *build) {
	t.Helper()
	for _, o := range b.objects {
		switch ns := o.u.GetNamespace(); {
		case ns == runbookNamespace:
		case ns == "kube-public" && strings.Contains(o.u.GetName(), "cluster-info") && (o.kind() == "Role" || o.kind() == "RoleBinding"):
		case ns == "" && isClusterScoped(o.kind()):
		default:
			t.Errorf("%s: unexpected namespace %q", o.id(), ns)
		}
	}
}

func isClusterScoped(kind string) bool {
	switch kind {
	case "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CustomResourceDefinition":
		return true
	}
	return false
}

// upstreamRoles are the roles kube-apiserver bootstraps that a second
// scheduler is bound to, per the upstream "Configure Multiple Schedulers" guide.
var upstreamRoles = map[string]bool{
	"ClusterRole/system:kube-scheduler":                          true,
	"ClusterRole/system:volume-scheduler":                        true,
	"Role/kube-system/extension-apiserver-authentication-reader": true,
}

// checkRBAC: no wildcards, no privilege-granting verbs, Secrets only in
// kube-system Roles and only when wanted, every binding to subject and to a
// role that exists.
func checkRBAC(t *testing.T, b *build, subject rbacv1.Subject, wantSecrets bool) {
	t.Helper()
	roles := map[string][]rbacv1.PolicyRule{}
	for _, r := range all[*rbacv1.ClusterRole](b) {
		roles["ClusterRole/"+r.Name] = r.Rules
		if r.AggregationRule != nil {
			t.Errorf("ClusterRole %s aggregates other roles: its rules would not be what is written", r.Name)
		}
	}
	for _, r := range all[*rbacv1.Role](b) {
		roles["Role/"+r.Namespace+"/"+r.Name] = r.Rules
	}
	secrets := false
	for key, rules := range roles {
		for i, rule := range rules {
			where := fmt.Sprintf("%s rule %d", key, i)
			for _, list := range [][]string{rule.Verbs, rule.APIGroups, rule.Resources, rule.ResourceNames, rule.NonResourceURLs} {
				for _, v := range list {
					if strings.Contains(v, "*") {
						t.Errorf("%s: wildcard %q in %+v", where, v, rule)
					}
				}
			}
			if len(rule.Verbs) == 0 || (len(rule.Resources) == 0) == (len(rule.NonResourceURLs) == 0) {
				t.Errorf("%s: want verbs and either resources or nonResourceURLs: %+v", where, rule)
			}
			for _, v := range rule.Verbs {
				if slices.Contains([]string{"escalate", "bind", "impersonate", "deletecollection", "approve", "sign"}, v) {
					t.Errorf("%s: verb %q grants more than fleet-scheduler uses", where, v)
				}
			}
			for _, res := range rule.Resources {
				if slices.Contains(rule.APIGroups, "") && (res == "secrets" || strings.HasPrefix(res, "secrets/")) {
					secrets = true
					if !strings.HasPrefix(key, "Role/kube-system/") {
						t.Errorf("%s grants %s outside a kube-system Role", key, res)
					}
					// Minting creates, revoking deletes by name: no Secret
					// is ever read.
					for _, v := range rule.Verbs {
						if v != "create" && v != "delete" {
							t.Errorf("%s: %s on %s; fleet-scheduler reads no Secret (create and delete only)", where, v, res)
						}
					}
				}
				if slices.Contains([]string{"nodes/proxy", "pods/exec", "serviceaccounts/token", "certificatesigningrequests/approval"}, res) {
					t.Errorf("%s: %s is a privilege fleet-scheduler never uses", where, res)
				}
			}
		}
	}
	if secrets != wantSecrets {
		t.Errorf("Secret access granted: %v, want %v (only minted bootstrap tokens need it)", secrets, wantSecrets)
	}

	bound := map[string]bool{}
	check := func(id, ns string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		key := ref.Kind + "/" + ref.Name
		if ref.Kind == "Role" {
			key = "Role/" + ns + "/" + ref.Name
		}
		bound[key] = true
		if _, ok := roles[key]; !ok && !upstreamRoles[key] {
			t.Errorf("%s binds %s, which is neither in the build nor an upstream scheduler role", id, key)
		}
		if len(subjects) != 1 || subjects[0] != subject {
			t.Errorf("%s: subjects %+v, want only %+v", id, subjects, subject)
		}
	}
	for _, rb := range all[*rbacv1.ClusterRoleBinding](b) {
		check("ClusterRoleBinding "+rb.Name, "", rb.RoleRef, rb.Subjects)
	}
	for _, rb := range all[*rbacv1.RoleBinding](b) {
		check("RoleBinding "+rb.Namespace+"/"+rb.Name, rb.Namespace, rb.RoleRef, rb.Subjects)
	}
	for key := range roles {
		if !bound[key] && key != "ClusterRole/fleet-scheduler:metrics-reader" {
			t.Errorf("%s is bound to nothing", key)
		}
	}
	if subject.Kind == rbacv1.ServiceAccountKind {
		// The ServiceAccount starts with nothing: it needs the scheduler's
		// upstream roles too (kubeadm binds them to the static pod's user).
		for key := range upstreamRoles {
			if !bound[key] {
				t.Errorf("the ServiceAccount is not bound to %s", key)
			}
		}
		sas := all[*corev1.ServiceAccount](b)
		if len(sas) != 1 || sas[0].Name != subject.Name || sas[0].Namespace != subject.Namespace {
			t.Errorf("ServiceAccounts %v, want just %s/%s", sas, subject.Namespace, subject.Name)
		}
	}
}

func checkDeployment(t *testing.T, b *build, dep *appsv1.Deployment, want deploymentBuild) {
	t.Helper()
	if dep.Namespace != runbookNamespace {
		t.Errorf("Deployment in %q, want %s", dep.Namespace, runbookNamespace)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != want.replicas {
		t.Errorf("replicas %v, want %d", dep.Spec.Replicas, want.replicas)
	}
	spec := dep.Spec.Template.Spec
	if spec.ServiceAccountName != serviceAccount || (spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken) {
		t.Errorf("serviceAccountName %q automount %v: want %s with its token", spec.ServiceAccountName, spec.AutomountServiceAccountToken, serviceAccount)
	}
	if spec.SchedulerName != "" && spec.SchedulerName != corev1.DefaultSchedulerName {
		t.Errorf("schedulerName %q: the stock scheduler must place fleet-scheduler", spec.SchedulerName)
	}
	if _, ok := spec.NodeSelector["node-role.kubernetes.io/control-plane"]; !ok {
		t.Errorf("nodeSelector %v does not pin the pods to control-plane nodes", spec.NodeSelector)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.ToleratesTaint(klog.Background(), &corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}, false)
	}) {
		t.Errorf("tolerations %v do not tolerate the control-plane taint", spec.Tolerations)
	}
	if spec.PriorityClassName == "" {
		t.Error("no priorityClassName: the autoscaler would be preempted by what it scales for")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("host namespaces are not needed")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want non-root with a non-zero uid and seccomp RuntimeDefault", psc)
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("%d containers, %d init containers: want one container", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	// The image `make image` builds, at the version the Makefile sets.
	if want := makeVariable(t, "IMAGE_REPO") + ":" + makeVariable(t, "VERSION"); c.Image != want {
		t.Errorf("image %q, want %q (make image)", c.Image, want)
	}
	// The image's user: a pod running as another uid could not use its home.
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser != 65532 {
		t.Errorf("runAsUser %d, the image's user is 65532", *psc.RunAsUser)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || (sc.Privileged != nil && *sc.Privileged) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container securityContext %+v: want no privilege escalation, read-only root, all capabilities dropped", sc)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}

	if len(c.Command) != 1 || c.Command[0] != "fleet-scheduler" {
		t.Errorf("command %v, want [fleet-scheduler]", c.Command)
	}
	flags := parseSchedulerFlags(t, c.Args)
	if flags["leader-elect"] != "true" {
		t.Errorf("--leader-elect=%s: two replicas need leader election", flags["leader-elect"])
	}
	if flags["v"] != want.verbosity {
		t.Errorf("--v=%s, want %s", flags["v"], want.verbosity)
	}
	if flags["secure-port"] != "10259" {
		t.Errorf("--secure-port=%s, want 10259", flags["secure-port"])
	}

	if want.spread {
		checkSpread(t, dep)
	}

	port := func(p intstr.IntOrString) int32 {
		if p.Type == intstr.Int {
			return p.IntVal
		}
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return cp.ContainerPort
			}
		}
		return -1
	}
	for name, probe := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s probe %+v: want an HTTPS GET of /healthz", name, probe)
			continue
		}
		g := probe.HTTPGet
		if g.Path != "/healthz" || g.Scheme != corev1.URISchemeHTTPS || port(g.Port) != securePort {
			t.Errorf("%s probe %s %s port %v: want HTTPS /healthz on %d", name, g.Scheme, g.Path, g.Port.String(), securePort)
		}
	}
}

// checkSpread: no two replicas on one node (required anti-affinity on the
// hostname), an even spread over zones (DoNotSchedule), both selecting the
// Deployment's own pods, and a rollout that needs no third node.
func checkSpread(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	spec := dep.Spec.Template.Spec
	podLabels := labels.Set(dep.Spec.Template.Labels)
	selects := func(ls *metav1.LabelSelector) bool {
		sel, err := metav1.LabelSelectorAsSelector(ls)
		return err == nil && !sel.Empty() && sel.Matches(podLabels)
	}
	hostname := false
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			hostname = hostname || term.TopologyKey == corev1.LabelHostname && selects(term.LabelSelector)
		}
	}
	if !hostname {
		t.Errorf("affinity %+v: want a required pod anti-affinity on %s selecting the replicas", spec.Affinity, corev1.LabelHostname)
	}
	zone := false
	for _, c := range spec.TopologySpreadConstraints {
		zone = zone || c.TopologyKey == corev1.LabelTopologyZone && c.MaxSkew == 1 && c.WhenUnsatisfiable == corev1.DoNotSchedule && selects(c.LabelSelector)
	}
	if !zone {
		t.Errorf("topologySpreadConstraints %+v: want maxSkew 1 over %s, DoNotSchedule, selecting the replicas", spec.TopologySpreadConstraints, corev1.LabelTopologyZone)
	}
	if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 0 {
		t.Errorf("rolling update %+v: a surge replica would need a node no replica runs on; want maxSurge 0", ru)
	}
}

// checkRunbookSelector: `kubectl logs -n kube-system -l
// app.kubernetes.io/name=karpenter` finds the pods, and every selector in
// the build that should select them does.
func checkRunbookSelector(t *testing.T, b *build, dep *appsv1.Deployment, wantPDB bool) {
	t.Helper()
	podLabels := labels.Set(dep.Spec.Template.Labels)
	runbook, err := labels.Parse(runbookSelector)
	if err != nil {
		t.Fatal(err)
	}
	if dep.Namespace != runbookNamespace || !runbook.Matches(podLabels) {
		t.Errorf("pods %s with labels %v: `kubectl logs -n %s -l %s` would not find them", dep.Namespace, podLabels, runbookNamespace, runbookSelector)
	}
	if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector %v does not match its pod template: %v", dep.Spec.Selector, err)
	}
	for _, svc := range all[*corev1.Service](b) {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selects %v, not the scheduler pods", svc.Name, svc.Spec.Selector)
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.String() != "https" && p.TargetPort.IntValue() != securePort {
				t.Errorf("Service %s port %s targets %s, not the secure port", svc.Name, p.Name, p.TargetPort.String())
			}
		}
	}
	pdbs := all[*policyv1.PodDisruptionBudget](b)
	if (len(pdbs) == 1) != wantPDB || len(pdbs) > 1 {
		t.Fatalf("%d PodDisruptionBudgets, want one: %v", len(pdbs), wantPDB)
	}
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(podLabels) || pdb.Namespace != dep.Namespace {
			t.Errorf("PDB %s/%s selector %v does not select the scheduler pods: %v", pdb.Namespace, pdb.Name, pdb.Spec.Selector, err)
		}
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || int32(pdb.Spec.MinAvailable.IntValue()) >= *dep.Spec.Replicas {
			t.Errorf("PDB minAvailable %v with %d replicas: want at least 1 and room to drain one", pdb.Spec.MinAvailable, *dep.Spec.Replicas)
		}
	}
}

// parseSchedulerFlags parses args with kube-scheduler's own flag set (the
// one cmd/scheduler runs with): every flag must exist and parse.
func parseSchedulerFlags(t *testing.T, args []string) map[string]string {
	t.Helper()
	cmd := app.NewSchedulerCommand(app.WithPlugin(provisioner.Name, provisioner.New))
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("kube-scheduler rejects %v: %v", args, err)
	}
	out := map[string]string{}
	for _, name := range []string{"config", "leader-elect", "v", "secure-port", "authentication-kubeconfig", "authorization-kubeconfig", "bind-address"} {
		if f := cmd.Flags().Lookup(name); f != nil {
			out[name] = f.Value.String()
		}
	}
	return out
}

// schedulerConfig returns the KubeSchedulerConfiguration file the
// Deployment's --config names, from the ConfigMap mounted there.
func schedulerConfig(t *testing.T, b *build, dep *appsv1.Deployment) (string, *corev1.ConfigMap) {
	t.Helper()
	c := dep.Spec.Template.Spec.Containers[0]
	file, ok := flagValue(c.Args, "config")
	if !ok {
		t.Fatalf("no --config in %v", c.Args)
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(file) {
			continue
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			for _, cm := range all[*corev1.ConfigMap](b) {
				if cm.Name == v.ConfigMap.Name && cm.Namespace == dep.Namespace {
					data, ok := cm.Data[path.Base(file)]
					if !ok {
						t.Fatalf("ConfigMap %s has no key %s", cm.Name, path.Base(file))
					}
					return data, cm
				}
			}
			t.Fatalf("volume %s names ConfigMap %s, which is not in the build", v.Name, v.ConfigMap.Name)
		}
	}
	t.Fatalf("--config=%s is not in a ConfigMap volume", file)
	return "", nil
}

func loadSchedulerConfig(t *testing.T, b *build, dep *appsv1.Deployment) *schedconfig.KubeSchedulerConfiguration {
	t.Helper()
	data, _ := schedulerConfig(t, b, dep)
	return loadConfigData(t, data)
}

// loadConfigData loads a KubeSchedulerConfiguration the way kube-scheduler
// loads --config (strict decoding, defaults, the Provisioner's args
// converted), then validates it as kube-scheduler does at startup.
func loadConfigData(t *testing.T, data string) *schedconfig.KubeSchedulerConfiguration {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	logger, _ := ktesting.NewTestContext(t)
	cfg, err := options.LoadConfigFromFile(logger, file)
	if err != nil {
		t.Fatalf("kube-scheduler cannot load the config: %v", err)
	}
	if err := schedvalidation.ValidateKubeSchedulerConfiguration(cfg); err != nil {
		t.Fatalf("kube-scheduler rejects the config: %v", err)
	}
	return cfg
}

// provisionerArgs returns the Provisioner's validated args in a profile
// that enables it as a PostFilter plugin after DefaultPreemption (and as a
// Filter plugin), or nil when the profile does not enable it.
func provisionerArgs(t *testing.T, p *schedconfig.KubeSchedulerProfile) *config.ProvisionerArgs {
	t.Helper()
	post := p.Plugins.PostFilter
	if !slices.ContainsFunc(post.Enabled, func(pl schedconfig.Plugin) bool { return pl.Name == provisioner.Name }) {
		return nil
	}
	// The framework runs multiPoint plugins (the defaults, DefaultPreemption
	// among them) before those enabled only at postFilter, in order. The
	// Provisioner comes after DefaultPreemption and before DynamicResources,
	// whose PostFilter errors out for a pod an earlier PreFilter plugin
	// rejected: DynamicResources is taken off multiPoint at postFilter and,
	// if at all, enabled again after the Provisioner.
	names := make([]string, len(post.Enabled))
	for i, pl := range post.Enabled {
		names[i] = pl.Name
	}
	dra := func(pl schedconfig.Plugin) bool { return pl.Name == "DynamicResources" }
	if at := slices.Index(names, provisioner.Name); slices.Contains(names[:at], "DynamicResources") ||
		!slices.ContainsFunc(post.Disabled, dra) && !slices.ContainsFunc(p.Plugins.MultiPoint.Disabled, dra) {
		t.Errorf("profile %s: postFilter runs DynamicResources before the Provisioner (enabled %v, disabled %v)", p.SchedulerName, names, post.Disabled)
	}
	if !slices.ContainsFunc(p.Plugins.Filter.Enabled, func(pl schedconfig.Plugin) bool { return pl.Name == provisioner.Name }) {
		t.Errorf("profile %s: the Provisioner is not enabled at filter, so pods nominated to a node being launched may bind elsewhere", p.SchedulerName)
	}
	preempt := func(pl schedconfig.Plugin) bool { return pl.Name == "DefaultPreemption" }
	if !slices.ContainsFunc(p.Plugins.MultiPoint.Enabled, preempt) && !slices.ContainsFunc(post.Enabled, preempt) ||
		slices.ContainsFunc(post.Disabled, preempt) || slices.ContainsFunc(p.Plugins.MultiPoint.Disabled, preempt) {
		t.Errorf("profile %s: DefaultPreemption does not run before the Provisioner", p.SchedulerName)
	}
	for _, pc := range p.PluginConfig {
		if pc.Name != provisioner.Name {
			continue
		}
		args, ok := pc.Args.(*config.ProvisionerArgs)
		if !ok {
			t.Fatalf("profile %s: Provisioner args decoded as %T", p.SchedulerName, pc.Args)
		}
		if err := provvalidation.ValidateProvisionerArgs(field.NewPath("provisionerArgs"), args); err != nil {
			t.Fatalf("profile %s: the Provisioner rejects its args: %v", p.SchedulerName, err)
		}
		return args
	}
	t.Fatalf("profile %s: no Provisioner pluginConfig", p.SchedulerName)
	return nil
}

func profileNames(cfg *schedconfig.KubeSchedulerConfiguration) []string {
	var out []string
	for _, p := range cfg.Profiles {
		out = append(out, p.SchedulerName)
	}
	return out
}
