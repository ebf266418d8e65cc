package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// Builds under manifests/, relative to the repository root.
const (
	baseDir      = "manifests/base"
	devDir       = "manifests/overlays/dev"
	prodDir      = "manifests/overlays/prod"
	staticPodDir = "manifests/overlays/static-pod"
)

// decoder decodes strictly: an unknown or duplicated field is an error, as
// it would be for `kubectl apply --validate=strict`.
var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// object is one document of a build: typed and as the unstructured the
// apiserver is sent.
type object struct {
	typed runtime.Object
	u     *unstructured.Unstructured
}

func (o object) kind() string { return o.u.GetKind() }
func (o object) id() string {
	if ns := o.u.GetNamespace(); ns != "" {
		return o.u.GetKind() + " " + ns + "/" + o.u.GetName()
	}
	return o.u.GetKind() + " " + o.u.GetName()
}

type build struct {
	dir     string
	objects []object
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{}
)

// kustomize runs `kubectl kustomize` on a directory of the repository once
// per test binary and decodes every document of the output.
func kustomize(t *testing.T, dir string) *build {
	t.Helper()
	return kustomizePath(t, dir, filepath.Join(env.RepoRoot(), dir))
}

// kustomizePath builds the kustomization at path, cached under key.
func kustomizePath(t *testing.T, key, path string) *build {
	t.Helper()
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if b, ok := builds[key]; ok {
		return b
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to build the kustomizations: %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", key, err, stderr.String())
	}
	objs, err := decodeAll(out)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	b := &build{dir: key, objects: objs}
	builds[key] = b
	return b
}

// decodeAll decodes a multi-document YAML stream.
func decodeAll(raw []byte) ([]object, error) {
	var out []object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, err := decodeOne(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
}

func decodeOne(doc []byte) (object, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return object{}, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return object{}, err
	}
	typed, gvk, err := decoder.Decode(doc, nil, nil)
	if runtime.IsNotRegisteredError(err) {
		// A custom resource (NodePool, Application, ServiceMonitor...):
		// TestAPIServer has the apiserver validate it against its CRD.
		return object{u: u}, nil
	}
	if err != nil {
		return object{}, err
	}
	if u.GroupVersionKind() != *gvk {
		return object{}, errors.New("unstructured and typed decoding disagree on " + gvk.String())
	}
	return object{typed: typed, u: u}, nil
}

// decodeFile decodes a single-object file of the repository.
func decodeFile(t *testing.T, path string) object {
	t.Helper()
	raw := readRepoFile(t, path)
	obj, err := decodeOne(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

// all returns the build's objects of one kind, as their Go type.
func all[T runtime.Object](b *build) []T {
	var out []T
	for _, o := range b.objects {
		if v, ok := o.typed.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the build's only object of a kind.
func one[T runtime.Object](t *testing.T, b *build) T {
	t.Helper()
	objs := all[T](b)
	if len(objs) != 1 {
		var zero T
		t.Fatalf("%s: %d objects of type %T, want 1", b.dir, len(objs), zero)
	}
	return objs[0]
}

// flagValue returns the value of --name=value among args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}
