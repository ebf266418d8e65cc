package manifests

import (
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

const (
	argocdDir    = "manifests/argocd"
	workloadsDir = "manifests/workloads/karpenter"
	projectRepo  = "https://github.com/fleet-scheduler/fleet-scheduler.git"
	syncWave     = "argocd.argoproj.io/sync-wave"
)

// The runbook's step 4 refreshes these two by name:
// kubectl -n argocd annotate application <name> argocd.argoproj.io/refresh=hard --overwrite
var runbookApplications = []string{"dev-karpenter", "dev-karpenter-nodepool"}

// TestEveryKustomizationRenders builds every kustomization under
// manifests/ (a Component through a kustomization that uses it on
// manifests/base) and decodes what it renders.
func TestEveryKustomizationRenders(t *testing.T) {
	root := env.RepoRoot()
	var dirs []string
	err := filepath.WalkDir(filepath.Join(root, "manifests"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			dirs = append(dirs, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d kustomizations: %v", len(dirs), dirs)
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, dir, "kustomization.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var k struct{ Kind string }
			if err := yaml.Unmarshal(raw, &k); err != nil {
				t.Fatal(err)
			}
			var b *build
			if k.Kind == "Component" {
				b = withComponent(t, "manifests/base", dir)
			} else {
				b = kustomize(t, dir)
			}
			if len(b.objects) == 0 {
				t.Errorf("%s renders nothing", dir)
			}
		})
	}
}

// withComponent builds base with the component added, from a
// kustomization in a temporary directory.
func withComponent(t *testing.T, base, component string) *build {
	t.Helper()
	root := env.RepoRoot()
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + rel(base) + "\ncomponents:\n- " + rel(component) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomizePath(t, base+"+"+component, dir)
}

// application is what the tests read of an Argo CD Application.
type application struct {
	name, namespace, wave string
	repo, revision, path  string
	server                string
	prune                 bool
	syncOptions           []string
	finalizers            []string
}

func readApplication(t *testing.T, u *unstructured.Unstructured) application {
	t.Helper()
	str := func(path ...string) string {
		v, _, _ := unstructured.NestedString(u.Object, path...)
		return v
	}
	prune, _, _ := unstructured.NestedBool(u.Object, "spec", "syncPolicy", "automated", "prune")
	opts, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "syncPolicy", "syncOptions")
	return application{
		name: u.GetName(), namespace: u.GetNamespace(), wave: u.GetAnnotations()[syncWave],
		repo: str("spec", "source", "repoURL"), revision: str("spec", "source", "targetRevision"), path: str("spec", "source", "path"),
		server: str("spec", "destination", "server"), prune: prune, syncOptions: opts, finalizers: u.GetFinalizers(),
	}
}

// TestArgoCDApplications: per cluster, the CRDs, the controller and the
// NodePool as three Applications synced in that order by sync waves, each
// pointing at a tree of this repository that renders; a parent Application
// that syncs them. (The Application CRD's schema is checked in
// TestAPIServer.)
func TestArgoCDApplications(t *testing.T) {
	version := makeVariable(t, "VERSION")
	found := map[string]bool{}
	for _, cluster := range []struct{ name, revision string }{{"dev", "main"}, {"prod", version}} {
		t.Run(cluster.name, func(t *testing.T) {
			b := kustomize(t, argocdDir+"/"+cluster.name)
			apps := map[string]application{}
			for _, o := range b.objects {
				if o.kind() != "Application" {
					t.Errorf("%s in the Applications' build", o.id())
					continue
				}
				a := readApplication(t, o.u)
				apps[a.name] = a
				found[a.name] = true
			}
			crd, ctrl, pool := apps[cluster.name+"-karpenter-crd"], apps[cluster.name+"-karpenter"], apps[cluster.name+"-karpenter-nodepool"]
			if len(apps) != 3 || crd.name == "" || ctrl.name == "" || pool.name == "" {
				t.Fatalf("Applications %v, want %s-karpenter-crd, %[2]s-karpenter and %[2]s-karpenter-nodepool", slices.Sorted(maps.Keys(apps)), cluster.name)
			}
			// A first sync creates the CRDs, then the scheduler, then the pools.
			if !(wave(t, crd) < wave(t, ctrl) && wave(t, ctrl) < wave(t, pool)) {
				t.Errorf("sync waves crd %q, controller %q, nodepool %q: want increasing", crd.wave, ctrl.wave, pool.wave)
			}
			for _, path := range []struct {
				app  application
				want string
			}{{crd, "manifests/crds"}, {ctrl, "manifests/overlays/" + cluster.name}, {pool, workloadsDir + "/" + cluster.name}} {
				if path.app.path != path.want {
					t.Errorf("%s syncs %q, want %q", path.app.name, path.app.path, path.want)
				}
			}
			parent := readApplication(t, decodeFile(t, argocdDir+"/"+cluster.name+"-karpenter-apps.yaml").u)
			if parent.path != argocdDir+"/"+cluster.name {
				t.Errorf("parent %s syncs %q, want %s", parent.name, parent.path, argocdDir+"/"+cluster.name)
			}
			for _, a := range []application{crd, ctrl, pool, parent} {
				if a.namespace != "argocd" || a.repo != projectRepo || a.revision != cluster.revision || a.server == "" {
					t.Errorf("%s: namespace %q repo %q revision %q server %q; want argocd, %s, %s and a destination",
						a.name, a.namespace, a.repo, a.revision, a.server, projectRepo, cluster.revision)
				}
				checkSourceRenders(t, a)
			}
			// Deleting or moving a CRD or a NodePool in git must not delete
			// the cluster's nodes.
			for _, a := range []application{crd, pool} {
				if a.prune || slices.Contains(a.finalizers, "resources-finalizer.argocd.argoproj.io") {
					t.Errorf("%s prunes or cascades deletes: removing its objects removes every node", a.name)
				}
			}
			if !slices.Contains(crd.syncOptions, "ServerSideApply=true") {
				t.Errorf("%s sync options %v: the CRDs are too large for a client-side apply", crd.name, crd.syncOptions)
			}
			if b := kustomize(t, pool.path); countKind(b, "NodePool") != 1 || countKind(b, "EC2NodeClass") != 1 {
				t.Errorf("%s renders no NodePool and EC2NodeClass", pool.path)
			}
		})
	}
	for _, name := range runbookApplications {
		if !found[name] {
			t.Errorf("the runbook refreshes Application %s, which manifests/argocd does not define", name)
		}
	}
}

func wave(t *testing.T, a application) int {
	t.Helper()
	n, err := strconv.Atoi(a.wave)
	if err != nil {
		t.Fatalf("%s: sync wave %q: %v", a.name, a.wave, err)
	}
	return n
}

// checkSourceRenders: the Application's path is in this repository and
// renders as Argo CD would render it: kustomize where there is a
// kustomization, plain YAML otherwise.
func checkSourceRenders(t *testing.T, a application) {
	t.Helper()
	dir := filepath.Join(env.RepoRoot(), a.path)
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err == nil {
		kustomize(t, a.path)
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		t.Errorf("%s: %s has neither a kustomization nor YAML", a.name, a.path)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeAll(raw); err != nil {
			t.Errorf("%s: %s: %v", a.name, f, err)
		}
	}
}

// TestNodePoolBuilds: the runbook's workloads/karpenter base, dev and
// prod. dev is the seed's files as they are; prod finds prod's subnets,
// security groups and image and uses prod's node role, and nothing in it
// still says sesacthon-dev.
func TestNodePoolBuilds(t *testing.T) {
	root := env.RepoRoot()
	for _, tc := range []struct{ dir, cluster string }{
		{workloadsDir + "/base", "sesacthon-dev"}, {workloadsDir + "/dev", "sesacthon-dev"}, {workloadsDir + "/prod", "sesacthon-prod"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			b := kustomize(t, tc.dir)
			var pool, class *unstructured.Unstructured
			for _, o := range b.objects {
				switch o.kind() {
				case "NodePool":
					pool = o.u
				case "EC2NodeClass":
					class = o.u
				default:
					t.Errorf("unexpected %s", o.id())
				}
			}
			if pool == nil || class == nil {
				t.Fatal("want one NodePool and one EC2NodeClass")
			}
			if ref, _, _ := unstructured.NestedString(pool.Object, "spec", "template", "spec", "nodeClassRef", "name"); ref != class.GetName() {
				t.Errorf("nodeClassRef %q, the EC2NodeClass is %q", ref, class.GetName())
			}
			if l, _, _ := unstructured.NestedString(pool.Object, "spec", "template", "metadata", "labels", "managed-by"); l != "karpenter" {
				t.Errorf("template label managed-by=%q: the runbook lists nodes with -l managed-by=karpenter", l)
			}
			if tok, _, _ := unstructured.NestedString(class.Object, "spec", "metadataOptions", "httpTokens"); tok != "required" {
				t.Errorf("metadataOptions.httpTokens %q, want required (IMDSv2)", tok)
			}
			for _, terms := range []string{"subnetSelectorTerms", "securityGroupSelectorTerms", "amiSelectorTerms"} {
				list, _, _ := unstructured.NestedSlice(class.Object, "spec", terms)
				for _, term := range list {
					if tag, _, _ := unstructured.NestedString(term.(map[string]any), "tags", "karpenter.sh/discovery"); tag != tc.cluster {
						t.Errorf("%s discovery tag %q, want %q", terms, tag, tc.cluster)
					}
				}
			}
			if role, _, _ := unstructured.NestedString(class.Object, "spec", "role"); role != "KarpenterNodeRole-"+tc.cluster {
				t.Errorf("role %q, want KarpenterNodeRole-%s", role, tc.cluster)
			}
			if tc.cluster == "sesacthon-prod" {
				out, err := exec.Command("kubectl", "kustomize", filepath.Join(root, tc.dir)).Output()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), "sesacthon-dev") || strings.Contains(string(out), "Environment: dev") {
					t.Errorf("the prod build still names the dev cluster:\n%s", out)
				}
			}
		})
	}
	// manifests/examples are the base's files (links), so the sandbox and the
	// CRD tests exercise what Argo CD syncs.
	for _, f := range []string{"nodepool.yaml", "ec2nodeclass.yaml"} {
		example, err := os.ReadFile(filepath.Join(root, "manifests", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		base, err := os.ReadFile(filepath.Join(root, workloadsDir, "base", f))
		if err != nil {
			t.Fatal(err)
		}
		if string(example) != string(base) {
			t.Errorf("manifests/examples/%s differs from %s/base/%s", f, workloadsDir, f)
		}
	}
}

func countKind(b *build, kind string) int {
	n := 0
	for _, o := range b.objects {
		if o.kind() == kind {
			n++
		}
	}
	return n
}

// makeVariable is the value the Makefile gives a variable.
func makeVariable(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "--no-print-directory", "--eval", "print-var: ; @echo $("+name+")", "print-var")
	cmd.Dir = env.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make: %v", err)
	}
	return strings.TrimSpace(string(out))
}
