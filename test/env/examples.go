package env

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// ReadExample decodes manifests/examples/<name> into into, strictly: a
// field the type does not have fails the test.
func ReadExample(t testing.TB, name string, into any) {
	t.Helper()
	path := filepath.Join(RepoRoot(), "manifests", "examples", name)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, into); err != nil {
		t.Fatalf("manifests/examples/%s does not decode into %T: %v", name, into, err)
	}
}
