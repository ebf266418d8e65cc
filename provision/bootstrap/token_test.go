package bootstrap_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

func TestNormalizeCACertHash(t *testing.T) {
	hex := strings.Repeat("0a", 32)
	tests := []struct {
		in, want, wantErr string
	}{
		{in: hex, want: "sha256:" + hex},
		{in: "sha256:" + hex, want: "sha256:" + hex},
		{in: "SHA256:" + strings.ToUpper(hex), want: "sha256:" + hex},
		{in: "  " + hex + "\n", want: "sha256:" + hex},
		{in: "1234567890abcdef...", wantErr: "want 64 hex characters"},
		{in: "sha1:" + hex, wantErr: "unknown format"},
		{in: strings.Repeat("zz", 32), wantErr: "not hexadecimal"},
		{in: testToken, wantErr: "want 64 hex characters"},
	}
	for _, tt := range tests {
		got, err := bootstrap.NormalizeCACertHash(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NormalizeCACertHash(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), tt.in) {
				t.Errorf("NormalizeCACertHash(%q) error echoes the value: %v", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeCACertHash(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestRedactToken(t *testing.T) {
	for in, want := range map[string]string{
		testToken:                       "abcdef.<redacted>",
		"":                              `""`,
		"notatoken":                     "<redacted>",
		"ABCDEF.0123456789abcdef":       "<redacted>",
		"abc123.xyz789":                 "abc123.<redacted>",
		"abcdef.0123456789abcdef.extra": "abcdef.<redacted>",
	} {
		if got := bootstrap.RedactToken(in); got != want {
			t.Errorf("RedactToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJoinCredentialsNeverPrintTheSecret(t *testing.T) {
	creds := bootstrap.JoinCredentials{Token: testToken, CACertHashes: []string{testHash}, Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		s := fmt.Sprintf(verb, creds)
		if strings.Contains(s, testSecret) {
			t.Errorf("Sprintf(%s) leaks the secret: %s", verb, s)
		}
		if !strings.Contains(s, "abcdef") {
			t.Errorf("Sprintf(%s) lost the token ID: %s", verb, s)
		}
	}
	if s := fmt.Sprintf("%v", []bootstrap.JoinCredentials{creds}); strings.Contains(s, testSecret) {
		t.Errorf("a slice of credentials leaks the secret: %s", s)
	}
	logs := captureLogs(t, func(ctx context.Context) {
		logger := klog.FromContext(ctx)
		logger.Info("structured", "credentials", creds, "ptr", &creds)
		logger.Error(fmt.Errorf("failed with %v", creds), "error path")
	})
	if strings.Contains(logs, testSecret) || !strings.Contains(logs, "abcdef") {
		t.Errorf("logs leak the secret or lose the ID:\n%s", logs)
	}
}

// captureLogs runs f with a verbose text logger in its context and returns
// everything it logged.
func captureLogs(t *testing.T, f func(ctx context.Context)) string {
	t.Helper()
	var buf syncBuffer
	f(withLogger(context.Background(), &buf))
	return buf.String()
}

// withLogger returns ctx with a verbose text logger writing to w.
func withLogger(ctx context.Context, w io.Writer) context.Context {
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(w), textlogger.Verbosity(10)))
	return klog.NewContext(ctx, logger)
}

type syncBuffer = env.SyncBuffer
