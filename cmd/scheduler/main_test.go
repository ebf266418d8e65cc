package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// TestScheduler builds cmd/scheduler and runs it the way a user does, against
// one real apiserver shared by the subtests.
func TestScheduler(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fleet-scheduler")
	start := time.Now()
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built in %s", time.Since(start).Round(time.Millisecond))

	t.Run("help lists upstream flags", func(t *testing.T) {
		out, err := run(t, bin, "--help")
		if err != nil {
			t.Fatalf("--help: %v\n%s", err, out)
		}
		for _, flag := range []string{"--config", "--leader-elect", "--secure-port", "--authorization-always-allow-paths", "--kubeconfig"} {
			if !strings.Contains(out, flag) {
				t.Errorf("--help lacks %s", flag)
			}
		}
	})

	// The scheduler must reach plugin construction, so give it a cluster.
	kubeconfig := writeKubeconfig(t, env.StartAPIServer(t).Config)

	t.Run("invalid args exit non-zero naming the field", func(t *testing.T) {
		for name, tc := range map[string]struct{ args, want string }{
			"batch max below idle": {
				args: "      batchMaxDuration: 500ms\n",
				want: `provisionerArgs.batchMaxDuration: Invalid value: "500ms": must be >= batchIdleDuration (1s)`,
			},
			"half the SSM pair": {
				args: "      bootstrap:\n        tokenSSMParameter: /sesacthon/dev/karpenter/bootstrap-token\n",
				want: `provisionerArgs.bootstrap.caCertHashSSMParameter: Required value`,
			},
		} {
			t.Run(name, func(t *testing.T) {
				cfg := writeConfig(t, kubeconfig, "fleet-scheduler.yaml", func(s string) string {
					// Replace the example args with the broken ones.
					return s[:strings.Index(s, "      clusterName:")] + "      clusterName: c1\n" + tc.args
				})
				out, err := run(t, bin, "--config", cfg, "--secure-port", freePort(t))
				if _, exited := err.(*exec.ExitError); !exited {
					t.Fatalf("want a non-zero exit, got err=%v\n%s", err, out)
				}
				// klog quotes the error, escaping its own quotes.
				if out = strings.ReplaceAll(out, `\"`, `"`); !strings.Contains(out, tc.want) {
					t.Errorf("stderr lacks %q:\n%s", tc.want, out)
				}
			})
		}
	})

	t.Run("provisioner runs after DefaultPreemption", func(t *testing.T) {
		for _, name := range []string{"fleet-scheduler", "default-scheduler"} {
			t.Run(name, func(t *testing.T) { checkPostFilterOrder(t, writeConfig(t, kubeconfig, name+".yaml", nil), name) })
		}
	})

	t.Run("valid args serve healthz and metrics", func(t *testing.T) {
		cfg := writeConfig(t, kubeconfig, "fleet-scheduler.yaml", nil)
		port := freePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "--config", cfg, "--secure-port", port, "--bind-address", "127.0.0.1",
			"--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("scheduler output:\n%s", out.String())
			}
		})
		base := "https://127.0.0.1:" + port
		waitFor(t, base+"/healthz?verbose", "", "[+]leaderElection ok")
		// Authenticated and authorized through the apiserver, as Prometheus would be.
		waitFor(t, base+"/metrics", bearer(t, kubeconfig), "\nscheduler_")
	})
}

func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// writeKubeconfig turns the in-process apiserver's client config into a
// file the scheduler process can use: its CA, server name and credentials.
func writeKubeconfig(t *testing.T, c *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{
		Server:                   c.Host,
		CertificateAuthority:     c.CAFile,
		CertificateAuthorityData: c.CAData,
		TLSServerName:            c.ServerName,
		InsecureSkipTLSVerify:    c.Insecure,
	}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{
		ClientCertificate:     c.CertFile,
		ClientCertificateData: c.CertData,
		ClientKey:             c.KeyFile,
		ClientKeyData:         c.KeyData,
		Token:                 c.BearerToken,
		TokenFile:             c.BearerTokenFile,
	}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeConfig copies a testdata config, pointed at kubeconfig and edited.
func writeConfig(t *testing.T, kubeconfig, name string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "/etc/kubernetes/scheduler.conf", kubeconfig, 1)
	if edit != nil {
		s = edit(s)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func bearer(t *testing.T, kubeconfig string) string {
	t.Helper()
	c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return c.BearerToken
}

// waitFor polls url until it answers 200 with a body containing want.
func waitFor(t *testing.T, url, token, want string) {
	t.Helper()
	// The scheduler serves a self-signed certificate of its own.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(body.String(), want) {
			return
		}
		last = fmt.Sprintf("%d %.300s", resp.StatusCode, body.String())
	}
	t.Fatalf("%s never answered 200 with %q; last: %s", url, want, last)
}
