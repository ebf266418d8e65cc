package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"
)

// The image's user: distroless's "nonroot", so a pod's runAsUser: 65532
// and the image agree on who owns /home/nonroot.
const (
	UID      = 65532
	User     = "65532:65532"
	BinPath  = "/usr/local/bin/fleet-scheduler"
	CertPath = "/etc/ssl/certs/ca-certificates.crt"
	// PathEnv lets a manifest say `command: [fleet-scheduler]`.
	PathEnv = "PATH=/usr/local/bin:/usr/bin:/bin"
)

// entry is one file or directory of the image's filesystem.
type entry struct {
	name string // absolute path in the image
	mode int64  // permission bits (and sticky)
	uid  int
	dir  bool
	data []byte
}

// baseEntries are everything but the binary: the users, CA certificates
// and the directories a non-root process may write to. They change
// rarely, so they are a layer of their own that registries and nodes keep
// across releases.
func baseEntries(caBundle []byte) []entry {
	return []entry{
		{name: "/etc", mode: 0o755, dir: true},
		{name: "/etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, UID))},
		{name: "/etc/group", mode: 0o644, data: []byte("root:x:0:\n" + fmt.Sprintf("nonroot:x:%d:\n", UID))},
		{name: "/etc/ssl", mode: 0o755, dir: true},
		{name: "/etc/ssl/certs", mode: 0o755, dir: true},
		{name: CertPath, mode: 0o644, data: caBundle},
		{name: "/home", mode: 0o755, dir: true},
		{name: "/home/nonroot", mode: 0o700, uid: UID, dir: true},
		{name: "/tmp", mode: 0o1777, dir: true},
	}
}

// binaryEntries are the scheduler binary and its directories.
func binaryEntries(binary []byte) []entry {
	return []entry{
		{name: "/usr", mode: 0o755, dir: true},
		{name: "/usr/local", mode: 0o755, dir: true},
		{name: "/usr/local/bin", mode: 0o755, dir: true},
		{name: BinPath, mode: 0o755, data: binary},
	}
}

// gzipTar is the entries as a gzipped tar, every timestamp set to mtime
// so that the same inputs give the same bytes (and the same digest).
func gzipTar(entries []entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name[1:], Mode: e.mode, Uid: e.uid, Gid: e.uid,
			ModTime: mtime, Format: tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if e.uid == UID {
			h.Uname, h.Gname = "nonroot", "nonroot"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeRootfs writes the entries under dir, for the Dockerfile's final
// stage to COPY: the same files, modes and owners as the layers (owners
// only when running as root, as in a Docker build).
func writeRootfs(dir string, entries []entry) error {
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(path.Clean(e.name)))
		var err error
		if e.dir {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, e.data, 0o644)
		}
		if err != nil {
			return err
		}
		// Chmod after creation: the umask does not apply, sticky bits stay.
		if err := os.Chmod(p, os.FileMode(e.mode&0o777)|modeBits(e.mode)); err != nil {
			return err
		}
		if e.uid != 0 && os.Geteuid() == 0 {
			if err := os.Chown(p, e.uid, e.uid); err != nil {
				return err
			}
		}
	}
	return nil
}

func modeBits(mode int64) os.FileMode {
	if mode&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
