package bootstrap_test

import (
	"context"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap/bootstraptest"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// minterClient is a client for a user that may create and delete Secrets
// in kube-system and read cluster-info, as the shipped RBAC allows
// fleet-scheduler, and nothing else: no Secret can be read with it.
func minterClient(t *testing.T, ctx context.Context, c *bootstraptest.Cluster) kubernetes.Interface {
	t.Helper()
	const user = "minter"
	for _, r := range []struct {
		ns, name string
		rule     rbacv1.PolicyRule
	}{
		{metav1.NamespaceSystem, "bootstrap-tokens", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "delete"}}},
		{metav1.NamespacePublic, "cluster-info", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"cluster-info"}, Verbs: []string{"get"}}},
	} {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: r.name, Namespace: r.ns}, Rules: []rbacv1.PolicyRule{r.rule}}
		if _, err := c.Client.RbacV1().Roles(r.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: r.name, Namespace: r.ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.name},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}}
		if _, err := c.Client.RbacV1().RoleBindings(r.ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The RBAC authorizer learns of new bindings from its informers:
		// wait until it grants the rule, so the first call is not refused.
		attrs := &authorizationv1.ResourceAttributes{Verb: r.rule.Verbs[0], Resource: r.rule.Resources[0], Namespace: r.ns}
		if len(r.rule.ResourceNames) > 0 {
			attrs.Name = r.rule.ResourceNames[0]
		}
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: attrs}}
			got, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			return err == nil && got.Status.Allowed, err
		})
		if err != nil {
			t.Fatalf("RBAC never granted the minter %s %s in %s: %v", attrs.Verb, attrs.Resource, r.ns, err)
		}
	}
	for _, verb := range []string{"get", "list", "watch"} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: "secrets", Namespace: metav1.NamespaceSystem}}}
		got, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil || got.Status.Allowed {
			t.Fatalf("the minter may %s Secrets (%v)", verb, err)
		}
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	return kubernetes.NewForConfigOrDie(cfg)
}

// TestMintedTokenSource mints and revokes as a user that can read no
// Secret: creating and deleting by name is all it takes.
func TestMintedTokenSource(t *testing.T) {
	c := bootstraptest.StartCluster(t)
	var logs syncBuffer
	ctx := logContext(t, &logs)
	var secrets []string // every secret minted, to look for in the logs

	now := time.Now().Truncate(time.Second) // whole seconds, like the Secret's expiration
	m, err := bootstrap.NewMintedTokenSource(minterClient(t, ctx, c), bootstrap.MintedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	bootstrap.SetMintedClock(m, clocktesting.NewFakePassiveClock(now))
	get := func(t *testing.T, node string) bootstrap.JoinCredentials {
		t.Helper()
		creds, err := m.Credentials(ctx, node)
		if err != nil {
			t.Fatalf("Credentials(%s): %v", node, err)
		}
		secrets = append(secrets, strings.TrimPrefix(creds.Token, creds.TokenID()+"."))
		return creds
	}
	exists := func(t *testing.T, id string) bool {
		t.Helper()
		_, err := c.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}

	t.Run("mints a kubeadm-style token", func(t *testing.T) {
		creds := get(t, "node-a")
		if !bootstraputil.IsValidBootstrapToken(creds.Token) {
			t.Fatalf("token %s is not a bootstrap token", creds)
		}
		if want := now.Add(bootstrap.DefaultTokenTTL).UTC().Truncate(time.Second); !creds.Expires.Equal(want) {
			t.Errorf("Expires = %v, want %v", creds.Expires, want)
		}
		if len(creds.CACertHashes) != 1 || creds.CACertHashes[0] != c.CACertHashes[0] {
			t.Errorf("CACertHashes = %v, want the cluster CA's %v", creds.CACertHashes, c.CACertHashes)
		}
		s, err := c.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, "bootstrap-token-"+creds.TokenID(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               creds.TokenID(),
			bootstrapapi.BootstrapTokenSecretKey:           strings.TrimPrefix(creds.Token, creds.TokenID()+"."),
			bootstrapapi.BootstrapTokenExpirationKey:       creds.Expires.Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      "system:bootstrappers:kubeadm:default-node-token",
			bootstrapapi.BootstrapTokenDescriptionKey:      "fleet-scheduler bootstrap token for node node-a",
		}
		for k, v := range want {
			if got := string(s.Data[k]); got != v {
				t.Errorf("Secret data %s = %q, want %q", k, got, v)
			}
		}
		if s.Type != bootstrapapi.SecretTypeBootstrapToken || s.Labels[bootstrap.LabelTokenNode] != "node-a" || s.Labels[bootstrap.LabelManagedBy] != "fleet-scheduler" {
			t.Errorf("Secret type %q labels %v", s.Type, s.Labels)
		}
	})

	t.Run("every call mints its own token", func(t *testing.T) {
		a1, a2 := get(t, "node-b"), get(t, "node-b")
		if a1.Token == a2.Token || a1.TokenID() == a2.TokenID() {
			t.Errorf("two calls gave the same token %s", a1)
		}
		if !exists(t, a1.TokenID()) || !exists(t, a2.TokenID()) {
			t.Error("a minted token has no Secret")
		}
	})

	t.Run("node names longer than a label value", func(t *testing.T) {
		long := strings.Repeat("n", 70) + ".ap-northeast-2.compute.internal"
		creds := get(t, long)
		s, err := c.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, "bootstrap-token-"+creds.TokenID(), metav1.GetOptions{})
		if err != nil || !strings.HasPrefix(s.Labels[bootstrap.LabelTokenNode], "sha256-") || s.Annotations[bootstrap.AnnotationTokenNode] != long {
			t.Errorf("long node name: %v %v", s, err)
		}
	})

	t.Run("revoke deletes the named tokens only", func(t *testing.T) {
		e1, e2, keep := get(t, "node-e"), get(t, "node-e"), get(t, "node-f")
		if err := m.Revoke(ctx, []string{e1.TokenID(), e2.TokenID()}); err != nil {
			t.Fatal(err)
		}
		if exists(t, e1.TokenID()) || exists(t, e2.TokenID()) {
			t.Error("a revoked token's Secret is still there")
		}
		if !exists(t, keep.TokenID()) {
			t.Error("revoking node-e's tokens took node-f's")
		}
		if err := m.Revoke(ctx, []string{e1.TokenID()}); err != nil {
			t.Errorf("revoking a token already gone: %v", err)
		}
		if err := m.Revoke(ctx, []string{"NOT-AN-ID", keep.TokenID()}); err == nil || !strings.Contains(err.Error(), "not a bootstrap token ID") {
			t.Errorf("an invalid ID: %v", err)
		}
		if exists(t, keep.TokenID()) {
			t.Error("the valid ID beside an invalid one was not revoked")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		if _, err := m.Credentials(ctx, "Not_A_Node"); err == nil || !strings.Contains(err.Error(), "node name") {
			t.Errorf("invalid node name: %v", err)
		}
		for _, ttl := range []time.Duration{time.Second, time.Hour + time.Second, 24 * time.Hour} {
			if _, err := bootstrap.NewMintedTokenSource(c.Client, bootstrap.MintedConfig{TTL: ttl}); err == nil {
				t.Errorf("a %s TTL was accepted", ttl)
			}
		}
		if _, err := bootstrap.NewMintedTokenSource(c.Client, bootstrap.MintedConfig{TTL: time.Hour}); err != nil {
			t.Errorf("a 1h TTL: %v", err)
		}
		if _, err := bootstrap.NewMintedTokenSource(c.Client, bootstrap.MintedConfig{ExtraGroups: []string{"system:masters"}}); err == nil {
			t.Error("a non-bootstrap group was accepted")
		}
	})

	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("the logs carry a token secret:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "Minted bootstrap token") || !strings.Contains(logs.String(), "Revoked bootstrap token") {
		t.Errorf("minting and revoking were not logged:\n%s", logs.String())
	}
}

func TestTokenIDsAnnotation(t *testing.T) {
	a := bootstrap.WithTokenID(nil, "abcdef")
	a = bootstrap.WithTokenID(a, "ghijkl")
	a = bootstrap.WithTokenID(a, "abcdef")
	a = bootstrap.WithTokenID(a, "")
	if got := a[bootstrap.AnnotationTokenIDs]; got != "abcdef,ghijkl" {
		t.Errorf("annotation %q, want abcdef,ghijkl", got)
	}
	if got := bootstrap.TokenIDs(map[string]string{bootstrap.AnnotationTokenIDs: " abcdef, ,ghijkl,abcdef"}); strings.Join(got, ",") != "abcdef,ghijkl" {
		t.Errorf("TokenIDs = %v", got)
	}
	if got := bootstrap.TokenIDs(nil); got != nil {
		t.Errorf("TokenIDs(nil) = %v", got)
	}
}

func TestDiscoverClusterInfo(t *testing.T) {
	api := env.StartAPIServer(t)
	ctx := context.Background()
	if _, err := bootstrap.DiscoverClusterInfo(ctx, api.Client, bootstrap.ClusterInfoOverrides{}); err == nil || !strings.Contains(err.Error(), "no ConfigMap kube-public/cluster-info") {
		t.Fatalf("without cluster-info: %v", err)
	}
	m, err := bootstrap.NewMintedTokenSource(api.Client, bootstrap.MintedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Credentials(ctx, "n"); err == nil || !strings.Contains(err.Error(), "cluster-info") {
		t.Errorf("minting without cluster-info: %v", err)
	}

	caPEM, _ := newCAPEM(t)
	otherCA, _ := newCAPEM(t)
	if err := bootstraptest.PublishClusterInfo(ctx, api.Client, "https://10.0.1.21:6443", caPEM); err != nil {
		t.Fatal(err)
	}
	hashes, _ := bootstrap.CACertHashes(caPEM)
	otherHashes, _ := bootstrap.CACertHashes(otherCA)
	tests := []struct {
		name       string
		overrides  bootstrap.ClusterInfoOverrides
		wantEP     string
		wantHashes []string
	}{
		{name: "discovered", wantEP: "10.0.1.21:6443", wantHashes: hashes},
		{name: "explicit endpoint wins", overrides: bootstrap.ClusterInfoOverrides{Endpoint: "https://api.internal:443"}, wantEP: "api.internal:443", wantHashes: hashes},
		{name: "explicit CA wins", overrides: bootstrap.ClusterInfoOverrides{CAData: otherCA}, wantEP: "10.0.1.21:6443", wantHashes: otherHashes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci, err := bootstrap.DiscoverClusterInfo(ctx, api.Client, tt.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if ci.Endpoint != tt.wantEP || strings.Join(ci.CACertHashes, ",") != strings.Join(tt.wantHashes, ",") {
				t.Errorf("got %s %v, want %s %v", ci.Endpoint, ci.CACertHashes, tt.wantEP, tt.wantHashes)
			}
		})
	}

	cm, err := api.Client.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(cm.Data, "kubeconfig")
	if _, err := api.Client.CoreV1().ConfigMaps("kube-public").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.DiscoverClusterInfo(ctx, api.Client, bootstrap.ClusterInfoOverrides{}); err == nil || !strings.Contains(err.Error(), `has no "kubeconfig" key`) {
		t.Errorf("cluster-info without kubeconfig: %v", err)
	}
	both := bootstrap.ClusterInfoOverrides{Endpoint: "10.0.0.1:6443", CAData: caPEM}
	if ci, err := bootstrap.DiscoverClusterInfo(ctx, api.Client, both); err != nil || ci.Endpoint != "10.0.0.1:6443" {
		t.Errorf("with both overrides the broken ConfigMap should not matter: %v %v", ci, err)
	}
}

// logContext returns a context whose logger writes, verbosely, to buf.
func logContext(t *testing.T, buf *syncBuffer) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return withLogger(ctx, buf)
}
