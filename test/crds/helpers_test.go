package crds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	crdDir      = "../../manifests/crds"
	examplesDir = "../../manifests/examples"
	testdataDir = "testdata"
)

// readObjects reads the YAML documents of a file as unstructured objects.
func readObjects(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		objs = append(objs, u)
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// contains reports where want is not found in got: every map key of want
// must be in got with a value that contains want's value; lists must match
// element by element. Numbers compare by value; strings that both parse as
// durations or as quantities compare by meaning, because typed clients
// rewrite "8h" as "8h0m0s" and "1.5" as "1500m".
func contains(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want object, got %T %v", path, got, got)}
		}
		var diffs []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing (pruned?)", path, k))
				continue
			}
			diffs = append(diffs, contains(wv, gv, path+"."+k)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %v, got %v", path, want, got)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, contains(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return diffs
	default:
		if scalarEqual(want, got) {
			return nil
		}
		return []string{fmt.Sprintf("%s: want %#v, got %#v", path, want, got)}
	}
}

func scalarEqual(want, got any) bool {
	if fmt.Sprint(want) == fmt.Sprint(got) {
		return true
	}
	ws, ok1 := want.(string)
	gs, ok2 := got.(string)
	if !ok1 || !ok2 {
		return false
	}
	if wd, err := time.ParseDuration(ws); err == nil {
		gd, err := time.ParseDuration(gs)
		return err == nil && wd == gd
	}
	if wq, err := resource.ParseQuantity(ws); err == nil {
		gq, err := resource.ParseQuantity(gs)
		return err == nil && wq.Cmp(gq) == 0
	}
	return false
}

// toMap turns any JSON-marshalable value into generic JSON data.
func toMap(t testing.TB, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// deleteValue, given to set, removes the field.
type deleteValue struct{}

var pathStep = regexp.MustCompile(`^([^\[]+)(?:\[(\d+)\])?$`)

// set changes obj at a dotted path such as
// "spec.template.spec.requirements[0].values"; a key containing dots is
// written in quotes: `spec.tags."kubernetes.io/cluster/x"`.
func set(t testing.TB, obj map[string]any, path string, value any) {
	t.Helper()
	steps := splitPath(path)
	var cur any = obj
	for i, step := range steps {
		m := pathStep.FindStringSubmatch(step)
		if m == nil {
			t.Fatalf("bad path %q", path)
		}
		key, index := m[1], m[2]
		parent, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: %q is not an object", path, step)
		}
		last := i == len(steps)-1
		if index == "" {
			if last {
				if _, del := value.(deleteValue); del {
					delete(parent, key)
				} else {
					parent[key] = value
				}
				return
			}
			if _, ok := parent[key]; !ok {
				parent[key] = map[string]any{}
			}
			cur = parent[key]
			continue
		}
		list, ok := parent[key].([]any)
		n, _ := strconv.Atoi(index)
		if !ok || n >= len(list) {
			if !ok || n != len(list) {
				t.Fatalf("%s: no element %s[%d]", path, key, n)
			}
			list = append(list, map[string]any{})
			parent[key] = list
		}
		if last {
			if _, del := value.(deleteValue); del {
				parent[key] = append(list[:n:n], list[n+1:]...)
			} else {
				list[n] = value
			}
			return
		}
		cur = list[n]
	}
}

func splitPath(path string) []string {
	var steps []string
	for path != "" {
		if strings.HasPrefix(path, `"`) {
			end := strings.Index(path[1:], `"`) + 1
			steps = append(steps, path[1:end])
			path = strings.TrimPrefix(path[end+1:], ".")
			continue
		}
		step, rest, _ := strings.Cut(path, ".")
		steps = append(steps, step)
		path = rest
	}
	return steps
}

// schemaPaths lists the property paths of a schema ("spec.template.spec.taints[].key");
// a map's values and preserved unknown fields end a path.
func schemaPaths(s apiextensionsv1.JSONSchemaProps, prefix string, out map[string]bool) {
	for name, p := range s.Properties {
		path := strings.TrimPrefix(prefix+"."+name, ".")
		out[path] = true
		schemaPaths(p, path, out)
	}
	if s.Items != nil && s.Items.Schema != nil {
		schemaPaths(*s.Items.Schema, prefix+"[]", out)
	}
}

// dataPaths lists the paths present in an object, in schemaPaths' form;
// the keys of maps the schema declares with additionalProperties are not
// paths.
func dataPaths(v any, s *apiextensionsv1.JSONSchemaProps, prefix string, out map[string]bool) {
	switch d := v.(type) {
	case map[string]any:
		if s == nil || len(s.Properties) == 0 {
			return
		}
		for k, child := range d {
			path := strings.TrimPrefix(prefix+"."+k, ".")
			out[path] = true
			var cs *apiextensionsv1.JSONSchemaProps
			if p, ok := s.Properties[k]; ok {
				cs = &p
			}
			dataPaths(child, cs, path, out)
		}
	case []any:
		if s == nil || s.Items == nil || s.Items.Schema == nil {
			return
		}
		for _, e := range d {
			dataPaths(e, s.Items.Schema, prefix+"[]", out)
		}
	}
}
