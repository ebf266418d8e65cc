package bootstrap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
)

// userScripts turns the EC2NodeClass userData into the scripts to run, in
// order: the script itself, or the text/x-shellscript parts of a MIME
// multipart archive (the format cloud-init and Karpenter's AL2/AL2023
// families use). Other part types (cloud-config, boothooks, ...) need
// cloud-init's own handling and are refused with an error naming them.
func userScripts(userData string) ([]string, error) {
	if strings.TrimSpace(userData) == "" {
		return nil, nil
	}
	scripts, err := Scripts(userData)
	if err != nil {
		return nil, fmt.Errorf("EC2NodeClass userData: %w", err)
	}
	for _, s := range scripts {
		if runsKubeadmJoin(s) {
			return nil, ErrUserDataJoins
		}
	}
	return scripts, nil
}

// Scripts returns the shell scripts of user data: the text/x-shellscript
// parts of a MIME document, or the user data itself.
func Scripts(userData string) ([]string, error) {
	if looksLikeMIME(userData) {
		return mimeScripts(userData)
	}
	return []string{userData}, nil
}

func looksLikeMIME(s string) bool {
	head := strings.ToLower(strings.TrimLeft(s, " \t\r\n"))
	return strings.HasPrefix(head, "mime-version:") || strings.HasPrefix(head, "content-type:")
}

// mimeScripts reads a MIME document and returns its shell script parts.
func mimeScripts(doc string) ([]string, error) {
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(strings.TrimLeft(doc, " \t\r\n"))))
	header, err := tp.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading MIME headers: %w", err)
	}
	mediaType, params, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("MIME Content-Type %q: %w", header.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		body, err := decodePart(tp.R, header.Get("Content-Transfer-Encoding"))
		if err != nil {
			return nil, err
		}
		if mediaType != "text/x-shellscript" {
			return nil, fmt.Errorf("MIME content type %q is not supported; only text/x-shellscript (and multipart/mixed of it) can run before kubeadm join", mediaType)
		}
		return []string{body}, nil
	}
	if params["boundary"] == "" {
		return nil, fmt.Errorf("MIME %s without a boundary", mediaType)
	}
	mr := multipart.NewReader(tp.R, params["boundary"])
	var scripts []string
	for i := 1; ; i++ {
		part, err := mr.NextPart() // decodes quoted-printable itself
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("MIME part %d: %w", i, err)
		}
		ct := part.Header.Get("Content-Type")
		if ct == "" {
			ct = "text/plain"
		}
		pt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, fmt.Errorf("MIME part %d: Content-Type %q: %w", i, ct, err)
		}
		if pt != "text/x-shellscript" {
			return nil, fmt.Errorf("MIME part %d has content type %q, which is not supported; only text/x-shellscript parts can run before kubeadm join", i, pt)
		}
		body, err := decodePart(part, part.Header.Get("Content-Transfer-Encoding"))
		if err != nil {
			return nil, fmt.Errorf("MIME part %d: %w", i, err)
		}
		if strings.TrimSpace(body) != "" {
			scripts = append(scripts, body)
		}
	}
	if len(scripts) == 0 {
		return nil, errors.New("MIME archive has no text/x-shellscript part")
	}
	return scripts, nil
}

func decodePart(r io.Reader, encoding string) (string, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "7bit", "8bit", "binary":
		return string(raw), nil
	case "quoted-printable":
		dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return "", fmt.Errorf("decoding quoted-printable part: %w", err)
		}
		return string(dec), nil
	case "base64":
		dec, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
		if err != nil {
			return "", fmt.Errorf("decoding base64 part: %w", err)
		}
		return string(dec), nil
	}
	return "", fmt.Errorf("unsupported Content-Transfer-Encoding %q", encoding)
}
