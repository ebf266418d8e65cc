package manifests

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// The identity the Deployment runs as, as the apiserver sees it.
var (
	saUser   = serviceaccount.MakeUsername(runbookNamespace, serviceAccount)
	saGroups = append(serviceaccount.MakeGroupNames(runbookNamespace), user.AllAuthenticated)
)

// auditPolicy records who did what, to find every request the
// ServiceAccount made and every one it was refused.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// TestAPIServer applies the builds to a real kube-apiserver with RBAC
// authorization and OwnerReferencesPermissionEnforcement on, then runs the
// real fleet-scheduler binary as the ServiceAccount through a whole
// NodeClaim lifecycle, with every request audited.
func TestAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver, moto_server and the scheduler binary")
	}
	dir := t.TempDir()
	auditLog := filepath.Join(dir, "audit.log")
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	api := env.StartAPIServer(t,
		"--authorization-mode=Node,RBAC",
		// Makes blockOwnerDeletion owner references (NodeClaim -> NodePool,
		// Node -> NodeClaim) need update on the owner's finalizers.
		"--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
		"--audit-policy-file="+policy, "--audit-log-path="+auditLog)
	env.InstallCRDs(t, api.Config)
	// Argo CD's Application and the Prometheus Operator's ServiceMonitor and
	// PrometheusRule, vendored (testdata/crds/README.md): their schemas judge
	// our Applications and monitoring objects as a cluster running them would.
	thirdParty, err := filepath.Glob(filepath.Join("testdata", "crds", "*.yaml"))
	if err != nil || len(thirdParty) != 3 {
		t.Fatalf("testdata/crds: %v %v", thirdParty, err)
	}
	env.InstallCRDObjects(t, api.Config, env.ReadCRDFiles(t, thirdParty...)...)
	if _, err := api.Client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "argocd"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver with CRDs up in %s", time.Since(start).Round(time.Millisecond))

	t.Run("every build is accepted (server-side dry run)", func(t *testing.T) {
		for _, d := range []string{baseDir, devDir, prodDir, staticPodDir,
			argocdDir + "/dev", argocdDir + "/prod", workloadsDir + "/dev", workloadsDir + "/prod"} {
			t.Run(d, func(t *testing.T) { createAll(t, api.Config, kustomize(t, d), true) })
		}
		for _, f := range []string{argocdDir + "/dev-karpenter-apps.yaml", argocdDir + "/prod-karpenter-apps.yaml"} {
			t.Run(f, func(t *testing.T) {
				createAll(t, api.Config, &build{dir: f, objects: []object{decodeFile(t, f)}}, true)
			})
		}
		t.Run("prod with the monitoring component", func(t *testing.T) {
			b := withComponent(t, prodDir, monitoringDir)
			if countKind(b, "ServiceMonitor") != 1 || countKind(b, "PrometheusRule") != 1 {
				t.Errorf("the monitoring component adds no ServiceMonitor and PrometheusRule")
			}
			createAll(t, api.Config, b, true)
		})
	})
	prod := kustomize(t, prodDir)
	t.Run("prod is created", func(t *testing.T) { createAll(t, api.Config, prod, false) })
	if t.Failed() {
		t.FailNow()
	}
	t.Run("ServiceAccount permissions", func(t *testing.T) { checkAccess(t, api.Client) })
	t.Run("fleet-scheduler runs as the ServiceAccount", func(t *testing.T) {
		runAsServiceAccount(t, api, prod)
		checkAudit(t, auditLog)
	})
	t.Run("bootstrap token admission policy", func(t *testing.T) { checkTokenPolicy(t, api) })
}

// createAll creates every object of a build with strict server-side field
// validation, for real or as a dry run.
func createAll(t *testing.T, cfg *rest.Config, b *build, dryRun bool) {
	t.Helper()
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kubernetes.NewForConfigOrDie(cfg).Discovery()))
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, o := range b.objects {
		gvk := o.u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s: the apiserver does not serve %s: %v", o.id(), gvk, err)
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if ns := o.u.GetNamespace(); ns != "" {
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		if _, err := ri.Create(ctx, o.u.DeepCopy(), opts); err != nil {
			t.Errorf("%s: %v", o.id(), err)
		}
	}
}

// access is one request, as a SubjectAccessReview asks about it.
type access struct{ verb, group, resource, sub, ns, name string }

func (a access) String() string {
	r := a.resource
	if a.sub != "" {
		r += "/" + a.sub
	}
	if a.group != "" {
		r += "." + a.group
	}
	where := a.ns
	if a.name != "" {
		where += "/" + a.name
	}
	return a.verb + " " + r + " " + where
}

// needed is every request fleet-scheduler makes, by the code that makes it.
var needed = []access{
	// kube-scheduler (system:kube-scheduler, system:volume-scheduler, auth reader)
	{verb: "watch", resource: "pods"},
	{verb: "watch", resource: "nodes"},
	{verb: "create", resource: "pods", sub: "binding", ns: "default"},
	{verb: "patch", resource: "pods", sub: "status", ns: "default"},
	{verb: "delete", resource: "pods", ns: "default"}, // preemption
	{verb: "watch", group: "storage.k8s.io", resource: "csinodes"},
	{verb: "watch", resource: "persistentvolumeclaims"},
	{verb: "watch", group: "storage.k8s.io", resource: "storageclasses"},
	{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
	{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews"},
	{verb: "get", resource: "configmaps", ns: "kube-system", name: "extension-apiserver-authentication"},
	{verb: "create", group: "coordination.k8s.io", resource: "leases", ns: "kube-system"},
	{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: "kube-system", name: "fleet-scheduler"},
	{verb: "get", group: "coordination.k8s.io", resource: "leases", ns: "kube-system", name: "fleet-scheduler-provisioning"},
	{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: "kube-system", name: "fleet-scheduler-provisioning"},
	// Provisioner and controllers (fleet-scheduler:provisioner)
	{verb: "watch", group: "karpenter.sh", resource: "nodepools"},
	{verb: "update", group: "karpenter.sh", resource: "nodepools", sub: "status"},
	{verb: "update", group: "karpenter.sh", resource: "nodepools", sub: "finalizers"},
	{verb: "watch", group: "karpenter.sh", resource: "nodeclaims"},
	{verb: "create", group: "karpenter.sh", resource: "nodeclaims"},
	{verb: "update", group: "karpenter.sh", resource: "nodeclaims"},
	{verb: "patch", group: "karpenter.sh", resource: "nodeclaims"},
	{verb: "delete", group: "karpenter.sh", resource: "nodeclaims"},
	{verb: "update", group: "karpenter.sh", resource: "nodeclaims", sub: "status"},
	{verb: "patch", group: "karpenter.sh", resource: "nodeclaims", sub: "status"},
	{verb: "update", group: "karpenter.sh", resource: "nodeclaims", sub: "finalizers"},
	{verb: "watch", group: "karpenter.sh", resource: "nodeoverlays"},
	{verb: "update", group: "karpenter.sh", resource: "nodeoverlays", sub: "status"},
	{verb: "watch", group: "karpenter.k8s.aws", resource: "ec2nodeclasses"},
	{verb: "update", group: "karpenter.k8s.aws", resource: "ec2nodeclasses", sub: "status"},
	{verb: "get", resource: "nodes"},
	{verb: "update", resource: "nodes"},
	{verb: "patch", resource: "nodes"},
	{verb: "delete", resource: "nodes"},
	{verb: "watch", group: "apps", resource: "daemonsets"},
	{verb: "create", resource: "pods", sub: "eviction", ns: "default"},
	{verb: "list", resource: "pods"},                  // drain
	{verb: "update", resource: "nodes"},               // drain: the disrupted taint
	{verb: "delete", resource: "nodes", name: "node"}, // termination, with a UID precondition
	{verb: "watch", group: "policy", resource: "poddisruptionbudgets"},
	{verb: "create", group: "events.k8s.io", resource: "events", ns: "default"},
	{verb: "patch", group: "events.k8s.io", resource: "events", ns: "default"},
	{verb: "create", resource: "events", ns: "kube-system"},
	{verb: "get", resource: "configmaps", ns: "kube-public", name: "cluster-info"},
	// minted bootstrap tokens (prod): created, then deleted by name
	{verb: "create", resource: "secrets", ns: "kube-system"},
	{verb: "delete", resource: "secrets", ns: "kube-system", name: "bootstrap-token-abcdef"},
}

// refused is what it must not be able to do.
var refused = []access{
	// No Secret is read, anywhere: not even the tokens it minted.
	{verb: "get", resource: "secrets", ns: "kube-system"},
	{verb: "get", resource: "secrets", ns: "kube-system", name: "bootstrap-token-abcdef"},
	{verb: "list", resource: "secrets", ns: "kube-system"},
	{verb: "watch", resource: "secrets", ns: "kube-system"},
	{verb: "get", resource: "secrets", ns: "default"},
	{verb: "list", resource: "secrets"},
	{verb: "watch", resource: "secrets"},
	{verb: "create", resource: "secrets", ns: "default"},
	{verb: "get", resource: "configmaps", ns: "kube-public", name: "other"},
	{verb: "list", resource: "configmaps", ns: "kube-public"},
	{verb: "create", resource: "pods", ns: "default"},
	{verb: "create", resource: "nodes"},
	{verb: "get", resource: "nodes", sub: "proxy"},
	{verb: "create", group: "karpenter.sh", resource: "nodepools"},
	{verb: "update", group: "karpenter.sh", resource: "nodepools"},
	{verb: "delete", group: "karpenter.sh", resource: "nodepools"},
	{verb: "create", group: "karpenter.k8s.aws", resource: "ec2nodeclasses"},
	{verb: "delete", group: "karpenter.k8s.aws", resource: "ec2nodeclasses"},
	{verb: "deletecollection", group: "karpenter.sh", resource: "nodeclaims"},
	{verb: "update", group: "karpenter.sh", resource: "nodeoverlays"},
	{verb: "update", group: "apps", resource: "daemonsets", ns: "kube-system"},
	{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: "kube-system", name: "kube-controller-manager"},
	{verb: "create", resource: "serviceaccounts", sub: "token", ns: "kube-system", name: serviceAccount},
	{verb: "impersonate", resource: "users"},
	{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
	{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
	{verb: "create", group: "certificates.k8s.io", resource: "certificatesigningrequests"},
}

func checkAccess(t *testing.T, client kubernetes.Interface) {
	ctx := context.Background()
	for _, want := range []struct {
		allowed bool
		list    []access
	}{{true, needed}, {false, refused}} {
		for _, a := range want.list {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: saUser, Groups: saGroups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub, Namespace: a.ns, Name: a.name,
				},
			}}
			got, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed != want.allowed {
				t.Errorf("%s: allowed=%v, want %v (%s)", a, got.Status.Allowed, want.allowed, got.Status.Reason)
			}
		}
	}
}

// saConfig is the admin's client config acting as the ServiceAccount.
func saConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: saUser}
	return c
}

type auditEvent struct {
	Stage            string
	Verb             string
	RequestURI       string
	User             struct{ Username string }
	ImpersonatedUser *struct{ Username string }
	ObjectRef        *struct{ Resource, Subresource, Namespace, Name, APIGroup string }
	ResponseStatus   *struct {
		Code    int
		Message string
	}
}

// checkAudit: the ServiceAccount was refused nothing, and every request it
// made is listed (what the RBAC is actually used for).
func checkAudit(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	used := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		// A watch that is still open has only its ResponseStarted event;
		// a refused one completes at once.
		counted := ev.Stage == "ResponseComplete" && (ev.Verb != "watch" || ev.ResponseStatus == nil || ev.ResponseStatus.Code != http.StatusOK) ||
			ev.Stage == "ResponseStarted" && ev.Verb == "watch"
		if !counted || ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != saUser {
			continue
		}
		what := ev.Verb + " " + ev.RequestURI
		if r := ev.ObjectRef; r != nil {
			res := r.Resource
			if r.Subresource != "" {
				res += "/" + r.Subresource
			}
			if r.APIGroup != "" {
				res += "." + r.APIGroup
			}
			what = ev.Verb + " " + res
			if r.Namespace != "" {
				what += " -n " + r.Namespace
			}
		}
		used[what]++
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code == http.StatusForbidden {
			t.Errorf("refused: %s %s: %s", ev.Verb, ev.RequestURI, ev.ResponseStatus.Message)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for k, n := range used {
		lines = append(lines, fmt.Sprintf("%5d  %s", n, k))
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][7:] < lines[j][7:] })
	t.Logf("requests the ServiceAccount made:\n%s", strings.Join(lines, "\n"))
	if len(used) == 0 {
		t.Error("no request of the ServiceAccount in the audit log")
	}
}

// checkTokenPolicy: the ValidatingAdmissionPolicy lets the ServiceAccount
// write bootstrap tokens it minted and nothing else that its Role allows.
func checkTokenPolicy(t *testing.T, api *env.APIServer) {
	ctx := context.Background()
	sa := kubernetes.NewForConfigOrDie(saConfig(api.Config))
	secrets := sa.CoreV1().Secrets(metav1.NamespaceSystem)
	token := func(name string, managed bool) *corev1.Secret {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem},
			Type:       corev1.SecretTypeBootstrapToken,
			StringData: map[string]string{"token-id": strings.TrimPrefix(name, "bootstrap-token-"), "token-secret": "0123456789abcdef"},
		}
		if managed {
			s.Labels = map[string]string{"app.kubernetes.io/managed-by": "fleet-scheduler"}
		}
		return s
	}
	// The policy takes effect once the apiserver has loaded it.
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "not-a-token", Namespace: metav1.NamespaceSystem}}
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, lastErr = secrets.Create(ctx, opaque, metav1.CreateOptions{})
		if lastErr == nil { // not enforced yet: undo and retry
			return false, api.Client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, opaque.Name, metav1.DeleteOptions{})
		}
		return apierrors.IsForbidden(lastErr) && strings.Contains(lastErr.Error(), "fleet-scheduler-bootstrap-tokens"), nil
	})
	if err != nil {
		t.Fatalf("creating an Opaque Secret in kube-system as the ServiceAccount: %v, want refused by the admission policy", lastErr)
	}
	if _, err := secrets.Create(ctx, token("bootstrap-token-aaaaaa", false), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("unlabelled token Secret: %v, want refused", err)
	}
	// kubeadm's own token: the ServiceAccount's Role could delete it, the policy does not let it.
	if _, err := api.Client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, token("bootstrap-token-kubeam", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := secrets.Delete(ctx, "bootstrap-token-kubeam", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("deleting kubeadm's token as the ServiceAccount: %v, want refused", err)
	}
	if _, err := secrets.Create(ctx, token("bootstrap-token-bbbbbb", true), metav1.CreateOptions{}); err != nil {
		t.Errorf("a token Secret as fleet-scheduler mints them: %v", err)
	}
	if err := secrets.Delete(ctx, "bootstrap-token-bbbbbb", metav1.DeleteOptions{}); err != nil {
		t.Errorf("deleting a token fleet-scheduler minted: %v", err)
	}
}

// httpsGet fetches a URL of the scheduler's secure port, which serves a
// self-signed certificate.
func httpsGet(url, bearer string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func containsAll(s string, subs ...string) []string {
	var missing []string
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			missing = append(missing, sub)
		}
	}
	return slices.Clip(missing)
}
