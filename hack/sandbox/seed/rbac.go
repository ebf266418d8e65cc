package seed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Where the shipped RBAC lives, under the checkout.
const (
	// StaticPodRBAC binds the roles fleet-scheduler needs to the
	// system:kube-scheduler user, for running in place of kube-scheduler.
	StaticPodRBAC = "manifests/overlays/static-pod"
	// MintedTokensRBAC holds the Role minted bootstrap tokens need.
	MintedTokensRBAC = "manifests/overlays/components/minted-tokens/rbac.yaml"
)

// SchedulerRBAC gives the user fleet-scheduler runs as
// (system:kube-scheduler) what the shipped manifests give it in place of
// kube-scheduler, and no more: the static-pod build's roles and bindings
// and, when it mints bootstrap tokens, the minted-tokens Role bound to it.
// What kube-scheduler itself needs comes from the apiserver's own
// system:kube-scheduler roles.
func SchedulerRBAC(ctx context.Context, a *Applier, root, user string, mintedTokens bool) error {
	objs, err := kustomizationResources(filepath.Join(root, StaticPodRBAC))
	if err != nil {
		return err
	}
	if mintedTokens {
		component, err := ReadManifests(filepath.Join(root, MintedTokensRBAC))
		if err != nil {
			return err
		}
		for _, o := range component {
			// Its RoleBinding names the Deployment's ServiceAccount.
			if o.GetKind() == "Role" {
				objs = append(objs, o, roleBinding(o.GetNamespace(), o.GetName(), user))
			}
		}
	}
	return a.Create(ctx, objs)
}

// kustomizationResources reads the objects of a kustomization that only
// lists resources (files and directories holding such kustomizations), in
// order. Anything else in it would change the objects, so it is refused
// rather than ignored.
func kustomizationResources(dir string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k map[string]any
	if err := yaml.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	for key := range k {
		if !slices.Contains([]string{"apiVersion", "kind", "resources"}, key) {
			return nil, fmt.Errorf("%s/kustomization.yaml has %q; the sandbox reads kustomizations of resources only", dir, key)
		}
	}
	resources, _ := k["resources"].([]any)
	var out []*unstructured.Unstructured
	for _, r := range resources {
		name, _ := r.(string)
		path := filepath.Join(dir, name)
		var objs []*unstructured.Unstructured
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			objs, err = kustomizationResources(path)
			if err != nil {
				return nil, err
			}
		} else if objs, err = ReadManifests(path); err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// roleBinding binds a Role in namespace to a user.
func roleBinding(namespace, role, user string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "RoleBinding",
		"metadata":   map[string]any{"name": role, "namespace": namespace, "labels": map[string]any{"app.kubernetes.io/part-of": "fleet-scheduler"}},
		"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
		"subjects":   []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}},
	}}
}
