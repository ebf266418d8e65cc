package env

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// RepoRoot is the checkout this file lives in.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// ReadCRDs reads every CRD in manifests/crds, in file name order.
func ReadCRDs(t testing.TB) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	dir := filepath.Join(RepoRoot(), "manifests", "crds")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s (run make generate): %v", dir, err)
	}
	return ReadCRDFiles(t, files...)
}

// ReadCRDFiles reads one CRD from each file, strictly.
func ReadCRDFiles(t testing.TB, files ...string) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		crds = append(crds, crd)
	}
	return crds
}

// InstallCRDs creates every CRD in manifests/crds, waits until each is
// established and its custom resources answer a list, and returns them as
// the apiserver has them, by resource plural. A CEL rule that does not
// compile or is over the cost budget, or a schema the apiserver finds
// non-structural, fails the test.
func InstallCRDs(t testing.TB, cfg *rest.Config) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	return InstallCRDObjects(t, cfg, ReadCRDs(t)...)
}

// InstallCRDObjects creates the CRDs and waits as InstallCRDs does.
func InstallCRDObjects(t testing.TB, cfg *rest.Config, crds ...*apiextensionsv1.CustomResourceDefinition) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	ctx := context.Background()
	client := apiextensionsclient.NewForConfigOrDie(cfg)
	installed := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, crd := range crds {
		created, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating CRD %s: %v", crd.Name, err)
		}
		installed[created.Spec.Names.Plural] = created
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	for plural, crd := range installed {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.NonStructuralSchema && c.Status == apiextensionsv1.ConditionTrue {
					return false, fmt.Errorf("non-structural schema: %s", c.Message)
				}
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					installed[plural] = got
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", crd.Name, err)
		}
		// Discovery and the CR handlers lag Established a little; wait
		// until a list answers for every served version.
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: v.Name, Resource: plural}
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
				return err == nil, nil
			})
			if err != nil {
				t.Fatalf("%s not served: %v", gvr, err)
			}
		}
	}
	return installed
}
