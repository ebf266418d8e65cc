package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// TestScheduler builds cmd/scheduler and runs it the way a user does, against
// one real apiserver shared by the subtests.
func TestScheduler(t *testing.T) {
	bin := schedulerBinary(t)

	t.Run("help lists upstream flags", func(t *testing.T) {
		out, stderr, err := run(t, bin, "--help")
		if err != nil {
			t.Fatalf("--help: %v\n%s", err, stderr)
		}
		for _, flag := range []string{"--config", "--leader-elect", "--secure-port", "--authorization-always-allow-paths", "--kubeconfig"} {
			if !strings.Contains(out, flag) {
				t.Errorf("--help lacks %s", flag)
			}
		}
	})

	t.Run("--version names fleet-scheduler and the Kubernetes it is built on", func(t *testing.T) {
		out, stderr, err := run(t, bin, "--version")
		if err != nil {
			t.Fatalf("--version: %v\n%s", err, stderr)
		}
		// A plain `go build` has no -ldflags: the version is "(devel)", the
		// Kubernetes version still the linked k8s.io/kubernetes module's.
		k8s, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "k8s.io/kubernetes").Output()
		if err != nil {
			t.Fatal(err)
		}
		want := "fleet-scheduler (devel) (revision unknown), built on Kubernetes " + strings.TrimSpace(string(k8s)) + " "
		if !strings.HasPrefix(out, want) {
			t.Errorf("--version printed %q, want it to start with %q", out, want)
		}
	})

	// The scheduler must reach plugin construction, so give it a cluster.
	apiserver := env.StartAPIServer(t)
	kubeconfig := env.WriteKubeconfig(t, apiserver.Config, "")

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
				_, stderr, err := run(t, bin, "--config", cfg, "--secure-port", freePort(t))
				if _, exited := err.(*exec.ExitError); !exited {
					t.Fatalf("want a non-zero exit, got err=%v\n%s", err, stderr)
				}
				// klog quotes the error, escaping its own quotes.
				if stderr = strings.ReplaceAll(stderr, `\"`, `"`); !strings.Contains(stderr, tc.want) {
					t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
				}
			})
		}
	})

	// A valid config must get the scheduler all the way up: the plugin's
	// operator wants the Karpenter CRDs and an EC2/SSM endpoint (moto).
	env.InstallCRDs(t, apiserver.Config)
	moto := env.StartMotoT(t)
	for _, tc := range []struct {
		config, lease string
		flags         []string
		leaseSeconds  int32
	}{
		// Timings from the config's leaderElection.
		{config: "fleet-scheduler", lease: "fleet-scheduler", leaseSeconds: 11},
		// From the flag over the config's defaults.
		{config: "default-scheduler", lease: "kube-scheduler", flags: []string{"--leader-elect-lease-duration=13s"}, leaseSeconds: 13},
	} {
		t.Run("valid "+tc.config+" config serves and runs Provisioner after DefaultPreemption", func(t *testing.T) {
			runValid(t, bin, writeConfig(t, kubeconfig, tc.config+".yaml", nil), kubeconfig, moto, tc.flags...)
			// Both Leases are held with the scheduler's lease duration.
			client := kubernetes.NewForConfigOrDie(apiserver.Config)
			for _, name := range []string{tc.lease, "fleet-scheduler-provisioning"} {
				var got int32
				err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
					l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
					if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.LeaseDurationSeconds == nil {
						return false, nil
					}
					got = *l.Spec.LeaseDurationSeconds
					return got == tc.leaseSeconds, nil
				})
				if err != nil {
					t.Errorf("Lease kube-system/%s: leaseDurationSeconds %d, want %d", name, got, tc.leaseSeconds)
				}
			}
		})
	}
}

// built is the binary the package's tests run, built once.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// schedulerBinary builds cmd/scheduler once for every test of the package.
func schedulerBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		start := time.Now()
		if built.dir, built.err = os.MkdirTemp("", "fleet-scheduler-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "fleet-scheduler")
		if out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		t.Logf("built in %s", time.Since(start).Round(time.Millisecond))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// runValid starts the scheduler and waits for /healthz (leader election
// included), /metrics, and the PostFilter order it logs.
func runValid(t *testing.T, bin, cfg, kubeconfig string, moto *env.Moto, flags ...string) {
	port := freePort(t)
	cmd := exec.Command(bin, append([]string{"--config", cfg, "--secure-port", port, "--bind-address", "127.0.0.1", "-v=2",
		"--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig}, flags...)...)
	cmd.Env = append(os.Environ(), moto.Env()...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM, so it gives its leases back for the next run.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("scheduler output:\n%s", out.String())
		}
	})
	base := "https://127.0.0.1:" + port
	waitFor(t, base+"/healthz?verbose", "", "[+]leaderElection ok")
	// Authenticated and authorized through the apiserver, as Prometheus would be.
	waitFor(t, base+"/metrics", bearer(t, kubeconfig), "\nscheduler_")
	// Which replica leads, for each Lease, on its own /metrics.
	waitFor(t, base+"/metrics", bearer(t, kubeconfig), `leader_election_master_status{name="kube-scheduler"} 1`)
	waitFor(t, base+"/metrics", bearer(t, kubeconfig), `leader_election_master_status{name="fleet-scheduler-provisioning"} 1`)

	// What matters is that preemption is tried first and the Provisioner
	// before DynamicResources.
	// The scale-down simulator logs a framework of its own (no Provisioner):
	// judge the profile that enables the Provisioner.
	var got []string
	for _, m := range postFilterLog.FindAllStringSubmatch(out.String(), -1) {
		var names []string
		for _, n := range pluginName.FindAllStringSubmatch(m[1], -1) {
			names = append(names, n[1])
		}
		if slices.Contains(names, "Provisioner") {
			got = names
			break
		}
	}
	if got == nil {
		t.Fatal("scheduler logged no profile with the Provisioner among its PostFilter plugins")
	}
	t.Logf("PostFilter plugins: %v", got)
	// DynamicResources, if it runs at all, after the Provisioner: its
	// PostFilter errors out for pods an earlier PreFilter plugin rejected.
	prov := slices.Index(got, "Provisioner")
	if preempt := slices.Index(got, "DefaultPreemption"); preempt < 0 || preempt > prov || slices.Contains(got[:prov], "DynamicResources") {
		t.Errorf("PostFilter plugins = %v, want DefaultPreemption, then the Provisioner, then anything else", got)
	}
}

var (
	postFilterLog = regexp.MustCompile(`"PostFilter":\{"Enabled":\[([^\]]*)\]`)
	pluginName    = regexp.MustCompile(`"Name":"(\w+)"`)
)

type syncBuffer = env.SyncBuffer

func run(t *testing.T, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
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
	port, err := env.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(port)
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
