// Package image tests `make image`: the OCI layout it writes, the image's
// configuration and files, that the binary inside is the one just built and
// runs, and that the Dockerfile describes the same image.
package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const testVersion = "v9.8.7-imagetest"

// built is one `make image` run into a temporary directory.
type built struct {
	root, bin, dir string
	repo           string
	img            v1.Image
	desc           v1.Descriptor
	cfg            *v1.ConfigFile
	files          map[string]file
}

type file struct {
	hdr  *tar.Header
	data []byte
}

func makeImage(t *testing.T) *built {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	b := &built{root: root, bin: filepath.Join(tmp, "fleet-scheduler"), dir: filepath.Join(tmp, "image")}
	b.repo = makeVar(t, root, "IMAGE_REPO")
	start := time.Now()
	cmd := exec.Command("make", "-C", root, "image", "BIN="+b.bin, "IMAGE_DIR="+b.dir, "VERSION="+testVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image in %s", time.Since(start).Round(time.Second))

	idx, err := layout.ImageIndexFromPath(b.dir)
	if err != nil {
		t.Fatalf("%s is not an OCI image layout: %v", b.dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(im.Manifests))
	}
	b.desc = im.Manifests[0]
	if b.img, err = idx.Image(b.desc.Digest); err != nil {
		t.Fatal(err)
	}
	// Every blob's digest and size against the manifest, the layers' diff
	// IDs against the config.
	if err := validate.Image(b.img); err != nil {
		t.Fatalf("the image does not validate: %v", err)
	}
	if b.cfg, err = b.img.ConfigFile(); err != nil {
		t.Fatal(err)
	}
	b.files = extract(t, b.img)
	return b
}

func TestImage(t *testing.T) {
	b := makeImage(t)

	t.Run("index names the image", func(t *testing.T) {
		want := map[string]string{
			"org.opencontainers.image.ref.name": testVersion,
			"io.containerd.image.name":          b.repo + ":" + testVersion,
		}
		for k, v := range want {
			if got := b.desc.Annotations[k]; got != v {
				t.Errorf("annotation %s = %q, want %q", k, got, v)
			}
		}
		if p := b.desc.Platform; p == nil || p.OS != "linux" || p.Architecture != runtime.GOARCH {
			t.Errorf("platform %+v, want linux/%s", p, runtime.GOARCH)
		}
	})

	t.Run("config", func(t *testing.T) {
		c := b.cfg.Config
		if c.User != "65532:65532" {
			t.Errorf("user %q, want 65532:65532 (non-root)", c.User)
		}
		if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/fleet-scheduler"}) || len(c.Cmd) != 0 {
			t.Errorf("entrypoint %q cmd %q, want the scheduler alone", c.Entrypoint, c.Cmd)
		}
		if !slices.ContainsFunc(c.Env, func(e string) bool {
			v, ok := strings.CutPrefix(e, "PATH=")
			return ok && slices.Contains(strings.Split(v, ":"), "/usr/local/bin")
		}) {
			t.Errorf("env %q: PATH must hold /usr/local/bin (the manifests run `fleet-scheduler`)", c.Env)
		}
		revision := strings.TrimSpace(run(t, b.root, "git", "rev-parse", "--short=12", "HEAD"))
		for k, want := range map[string]string{
			"org.opencontainers.image.version":  testVersion,
			"org.opencontainers.image.revision": revision,
			"org.opencontainers.image.source":   "https://github.com/fleet-scheduler/fleet-scheduler",
			"org.opencontainers.image.title":    "fleet-scheduler",
		} {
			if got := c.Labels[k]; got != want {
				t.Errorf("label %s = %q, want %q", k, got, want)
			}
		}
		// The commit's time, not the build's: the same commit, the same digest.
		commit := strings.TrimSpace(run(t, b.root, "git", "log", "-1", "--format=%ct"))
		if got := b.cfg.Created.Unix(); strconv.FormatInt(got, 10) != commit {
			t.Errorf("created %s, want the commit's time %s", b.cfg.Created, commit)
		}
	})

	t.Run("files", func(t *testing.T) {
		var names []string
		for n := range b.files {
			names = append(names, n)
		}
		slices.Sort(names)
		want := []string{"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
			"home", "home/nonroot", "tmp", "usr", "usr/local", "usr/local/bin", "usr/local/bin/fleet-scheduler"}
		if !slices.Equal(names, want) {
			t.Errorf("files %q\nwant      %q", names, want)
		}
		if f := b.files["etc/passwd"]; !bytes.Contains(f.data, []byte("nonroot:x:65532:65532:")) {
			t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", f.data)
		}
		if f := b.files["home/nonroot"]; f.hdr == nil || f.hdr.Uid != 65532 {
			t.Error("/home/nonroot is not owned by 65532")
		}
		if f := b.files["tmp"]; f.hdr == nil || f.hdr.Mode&0o1777 != 0o1777 {
			t.Error("/tmp is not world-writable and sticky")
		}
		if n := countCerts(b.files["etc/ssl/certs/ca-certificates.crt"].data); n < 50 {
			t.Errorf("the CA bundle holds %d certificates", n)
		}
	})

	t.Run("binary is the one just built", func(t *testing.T) {
		f := b.files["usr/local/bin/fleet-scheduler"]
		if f.hdr == nil {
			t.Fatal("no /usr/local/bin/fleet-scheduler")
		}
		want, err := os.ReadFile(b.bin)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(f.data) != sha256.Sum256(want) {
			t.Fatalf("the image's binary differs from %s", b.bin)
		}
		if f.hdr.Mode&0o111 == 0 || f.hdr.Uid != 0 {
			t.Errorf("mode %o uid %d: want executable and owned by root (the user cannot rewrite it)", f.hdr.Mode, f.hdr.Uid)
		}
		e, err := elf.NewFile(bytes.NewReader(f.data))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range e.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary is dynamically linked; the image has no libc")
			}
		}
	})

	t.Run("runs --version", func(t *testing.T) {
		exe := filepath.Join(t.TempDir(), "fleet-scheduler")
		if err := os.WriteFile(exe, b.files["usr/local/bin/fleet-scheduler"].data, 0o755); err != nil {
			t.Fatal(err)
		}
		k8s := strings.TrimSpace(run(t, b.root, "go", "list", "-m", "-f", "{{.Version}}", "k8s.io/kubernetes"))
		out := run(t, "", exe, "--version")
		for _, want := range []string{"fleet-scheduler " + testVersion + " ", "Kubernetes " + k8s + " "} {
			if !strings.Contains(out, want) {
				t.Errorf("--version printed %q, want it to contain %q", out, want)
			}
		}
		var raw struct{ Version, Revision, Kubernetes string }
		if err := json.Unmarshal([]byte(run(t, "", exe, "--version=raw")), &raw); err != nil {
			t.Fatalf("--version=raw: %v", err)
		}
		if raw.Version != testVersion || raw.Kubernetes != k8s || raw.Revision == "" || raw.Revision == "unknown" {
			t.Errorf("--version=raw %+v, want version %s, kubernetes %s and a revision", raw, testVersion, k8s)
		}
	})

	t.Run("Dockerfile describes the same image", func(t *testing.T) {
		checkDockerfile(t, b)
	})
}

// extract flattens the image's layers into path -> file (names without a
// leading or trailing slash).
func extract(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = file{hdr: h, data: data}
	}
}

func countCerts(bundle []byte) int {
	n := 0
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return n
		}
		if _, err := x509.ParseCertificate(block.Bytes); err == nil {
			n++
		}
	}
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// makeVar is the value make gives a variable of the Makefile.
func makeVar(t *testing.T, root, name string) string {
	t.Helper()
	return strings.TrimSpace(run(t, root, "make", "-s", "--no-print-directory", "--eval", "print-var: ; @echo $("+name+")", "print-var"))
}
