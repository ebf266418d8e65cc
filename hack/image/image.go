package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Options say what goes into the image and how it is named.
type Options struct {
	Binary   []byte
	CABundle []byte
	// Repository and Version make the reference repository:version.
	Repository string
	Version    string
	Revision   string
	Source     string
	// Created is every timestamp in the image: the commit's time makes the
	// same commit give the same digest.
	Created time.Time
}

// Labels are the image's OCI annotations-as-labels; the Dockerfile sets the
// same ones.
func Labels(o Options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "fleet-scheduler",
		"org.opencontainers.image.description": "kube-scheduler with the Provisioner plugin: node autoscaling for kubeadm clusters on EC2",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
	}
}

// Build assembles the image: a layer of users, CA certificates and
// writable directories, a layer with the binary, run as 65532 with the
// binary as entrypoint.
func Build(o Options) (v1.Image, error) {
	arch, err := staticArch(o.Binary)
	if err != nil {
		return nil, err
	}
	if len(o.CABundle) == 0 {
		return nil, fmt.Errorf("empty CA bundle")
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range []struct {
		entries   []entry
		createdBy string
	}{
		{baseEntries(o.CABundle), "users root and nonroot (65532), CA certificates, /home/nonroot, /tmp"},
		{binaryEntries(o.Binary), "fleet-scheduler " + o.Version + " at " + BinPath},
	} {
		gz, err := gzipTar(l.entries, o.Created)
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(gz)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer: layer, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: l.createdBy, Comment: "hack/image"},
		})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: o.Created}
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{BinPath},
		Env:        []string{PathEnv},
		WorkingDir: "/",
		Labels:     Labels(o),
	}
	return mutate.ConfigFile(img, cf)
}

// WriteLayout writes img as an OCI image layout in dir (emptied first),
// its index entry annotated with the tag (org.opencontainers.image.ref.name,
// what `skopeo copy oci:dir:tag` finds) and the full name (containerd's
// `ctr image import` reads io.containerd.image.name).
func WriteLayout(dir string, img v1.Image, o Options) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.WriteImage(img); err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	mt, err := img.MediaType()
	if err != nil {
		return err
	}
	size, err := img.Size()
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	// The descriptor by hand: layout.AppendImage would also set
	// artifactType, which marks an artifact rather than an image.
	return p.AppendDescriptor(v1.Descriptor{
		MediaType: mt, Size: size, Digest: digest,
		Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture},
		Annotations: map[string]string{
			"org.opencontainers.image.ref.name": o.Version,
			"io.containerd.image.name":          o.Repository + ":" + o.Version,
		},
	})
}

// staticArch returns the GOARCH of a Linux ELF binary and refuses one that
// needs a dynamic loader: the image has no libc.
func staticArch(binary []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		return "", fmt.Errorf("the binary is not an ELF executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("the binary is dynamically linked (it has an ELF interpreter); build it with CGO_ENABLED=0, as `make build` does")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("unsupported machine %s", f.Machine)
}
