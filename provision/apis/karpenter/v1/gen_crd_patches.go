//go:build ignore

// gen_crd_patches adds to the generated CRDs the schema constraints that
// kubebuilder markers cannot reach, because they belong to types we do not
// own (corev1.Taint) or to the values of maps: the same constraints
// Karpenter's CRDs carry. hack/codegen-apis.sh runs it after controller-gen:
//
//	go run ./provision/apis/karpenter/v1/gen_crd_patches.go manifests/crds
//
// Each patch sets fields, so running it twice changes nothing.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

const (
	// qualifiedName is a Kubernetes qualified name: an optional DNS-subdomain
	// prefix and a slash, then a name.
	qualifiedName = `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\/))?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
	// labelValue is a Kubernetes label value (may be empty).
	labelValue = `^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
	// quantity is a resource.Quantity string.
	quantity = `^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`
	// evictionThreshold is a percentage or a quantity.
	evictionThreshold = `^((\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)%||(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?)$`
)

// patch sets fields on (and removes fields from) the schema found by
// following path (dot-separated property names; "[]" steps into array items,
// "{}" into map values) from openAPIV3Schema.
type patch struct {
	path  string
	set   map[string]any
	unset []string
}

func taintPatches(list string) []patch {
	return []patch{
		{path: list + ".[].key", set: map[string]any{"minLength": 1, "pattern": qualifiedName}},
		{path: list + ".[].value", set: map[string]any{"pattern": qualifiedName}},
		{path: list + ".[].effect", set: map[string]any{"enum": []any{"NoSchedule", "PreferNoSchedule", "NoExecute"}}},
	}
}

var patches = map[string][]patch{
	"karpenter.sh_nodepools.yaml": concat(
		[]patch{{path: "spec.template.metadata.labels.{}", set: map[string]any{"maxLength": 63, "pattern": labelValue}}},
		taintPatches("spec.template.spec.taints"),
		taintPatches("spec.template.spec.startupTaints"),
	),
	"karpenter.sh_nodeclaims.yaml": concat(
		taintPatches("spec.taints"),
		taintPatches("spec.startupTaints"),
		// Karpenter lets NodeClaim conditions go without reason and message
		// (older releases wrote them so); accept what it accepts.
		[]patch{
			{path: "status.conditions.[]", set: map[string]any{"required": []any{"lastTransitionTime", "status", "type"}}},
			{path: "status.conditions.[].reason", set: map[string]any{"pattern": `^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?|)$`}, unset: []string{"minLength"}},
		},
	),
	"karpenter.k8s.aws_ec2nodeclasses.yaml": {
		{path: "spec.kubelet.kubeReserved.{}", set: map[string]any{"pattern": quantity}},
		{path: "spec.kubelet.systemReserved.{}", set: map[string]any{"pattern": quantity}},
		{path: "spec.kubelet.evictionHard.{}", set: map[string]any{"pattern": evictionThreshold}},
		{path: "spec.kubelet.evictionSoft.{}", set: map[string]any{"pattern": evictionThreshold}},
	},
}

func concat(lists ...[]patch) []patch {
	var out []patch
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen_crd_patches.go CRD_DIR")
		os.Exit(2)
	}
	for file, ps := range patches {
		if err := patchFile(filepath.Join(os.Args[1], file), ps); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			os.Exit(1)
		}
	}
}

func patchFile(path string, ps []patch) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return err
	}
	var crd map[string]any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber() // keep integers as written, as controller-gen does
	if err := dec.Decode(&crd); err != nil {
		return err
	}
	versions, _ := dig(crd, "spec", "versions").([]any)
	if len(versions) == 0 {
		return fmt.Errorf("no versions")
	}
	for _, v := range versions {
		root, _ := dig(v, "schema", "openAPIV3Schema").(map[string]any)
		if root == nil {
			return fmt.Errorf("no openAPIV3Schema")
		}
		for _, p := range ps {
			s, err := find(root, p.path)
			if err != nil {
				return fmt.Errorf("%s: %w", p.path, err)
			}
			for k, v := range p.set {
				s[k] = v
			}
			for _, k := range p.unset {
				delete(s, k)
			}
		}
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return err
	}
	// controller-gen starts every document with a separator; keep it.
	return os.WriteFile(path, append([]byte("---\n"), out...), 0o644)
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func find(root map[string]any, path string) (map[string]any, error) {
	s := root
	for _, step := range strings.Split(path, ".") {
		var next any
		switch step {
		case "[]":
			next = s["items"]
		case "{}":
			next = s["additionalProperties"]
		default:
			next = dig(s, "properties", step)
		}
		m, ok := next.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("no schema at %q", step)
		}
		s = m
	}
	return s, nil
}
