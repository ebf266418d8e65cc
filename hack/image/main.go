// Command image builds fleet-scheduler's container image without a Docker
// daemon (`make image`): an OCI image layout of bin/fleet-scheduler, CA
// certificates and a non-root user, assembled with go-containerregistry.
// With --rootfs it writes the same files to a directory instead, which is
// what the Dockerfile's final stage copies.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	var (
		o                   Options
		binary, ca, out     string
		rootfs, createdUnix string
	)
	flag.StringVar(&binary, "binary", "bin/fleet-scheduler", "the static fleet-scheduler binary")
	flag.StringVar(&ca, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates to ship")
	flag.StringVar(&out, "out", "bin/image", "directory for the OCI image layout (emptied first)")
	flag.StringVar(&rootfs, "rootfs", "", "write the image's files to this directory instead of a layout")
	flag.StringVar(&o.Repository, "repository", "ghcr.io/fleet-scheduler/fleet-scheduler", "image repository")
	flag.StringVar(&o.Version, "version", "v0.1.0", "version: the tag and the version label")
	flag.StringVar(&o.Revision, "revision", "unknown", "source revision label")
	flag.StringVar(&o.Source, "source", "https://github.com/fleet-scheduler/fleet-scheduler", "source label")
	flag.StringVar(&createdUnix, "created", os.Getenv("SOURCE_DATE_EPOCH"), "timestamp of every file and of the image, in Unix seconds (default $SOURCE_DATE_EPOCH, else 0)")
	flag.Parse()
	if err := run(o, binary, ca, out, rootfs, createdUnix); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func run(o Options, binary, ca, out, rootfs, createdUnix string) error {
	var err error
	if createdUnix != "" {
		secs, err := strconv.ParseInt(createdUnix, 10, 64)
		if err != nil {
			return fmt.Errorf("--created %q: %w", createdUnix, err)
		}
		o.Created = time.Unix(secs, 0).UTC()
	} else {
		o.Created = time.Unix(0, 0).UTC()
	}
	if o.CABundle, err = os.ReadFile(ca); err != nil {
		return fmt.Errorf("CA certificates: %w (Debian: apt-get install ca-certificates)", err)
	}
	if o.Binary, err = os.ReadFile(binary); err != nil {
		return fmt.Errorf("%w (make build writes it)", err)
	}
	if rootfs != "" {
		if _, err := staticArch(o.Binary); err != nil {
			return err
		}
		return writeRootfs(rootfs, append(baseEntries(o.CABundle), binaryEntries(o.Binary)...))
	}
	img, err := Build(o)
	if err != nil {
		return err
	}
	if err := WriteLayout(out, img, o); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	fmt.Printf("%s: %s:%s %s, %d layers, %.1f MiB compressed (binary %.1f MiB)\n",
		out, o.Repository, o.Version, digest, len(m.Layers), float64(size)/(1<<20), float64(len(o.Binary))/(1<<20))
	return nil
}
