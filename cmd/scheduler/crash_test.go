package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/test/awsfault"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// Crash test settings.
const (
	crashClaims = 50
	crashKills  = 22
	// crashDeletes claims are deleted while the kills go on: their
	// termination must finish across crashes too.
	crashDeletes = 8
	// crashLag is how long EC2 (the proxy) does not list a new instance
	// by tag - pessimistic, longer than a restart takes - and
	// crashAnswerDelay how long CreateFleet's answer may take after the
	// launch: a kill in between loses the answer, and the restart cannot
	// find the instance by its claim tag.
	crashLag         = 20 * time.Second
	crashAnswerDelay = 1500 * time.Millisecond
	// crashMaxUp bounds the random time a run lives once it can launch
	// (its instance catalogue loaded): the kill lands among launches.
	crashMaxUp = 3 * time.Second
	// crashSettle bounds the last run's cleanup.
	crashSettle = 4 * time.Minute
	// provisioningLease is the controllers' Lease (plugins/provisioner).
	provisioningLease = "fleet-scheduler-provisioning"
)

// TestCrashLaunches runs the real binary against a real apiserver and moto
// (behind a proxy that lags like EC2), makes 50 NodeClaims and kill -9s
// the process at seeded random points at least 20 times, restarting it
// after each, while some claims are deleted. After the last start: every
// claim left has exactly one live instance, the one it names; no live
// instance and no launch template is left of a claim that is gone; no
// claim is stuck (each is launched, or gone if deleted). Set
// FLEET_CRASH_SEED to replay a run.
func TestCrashLaunches(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs the binary many times")
	}
	seed := uint64(20261204)
	if s := os.Getenv("FLEET_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	// Kill points and deletions come from one source, the proxy's answer
	// delays (drawn from its goroutines) from another, so the kills replay.
	rng := &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	delays := &lockedRand{r: rand.New(rand.NewPCG(seed^0xde1a, seed))}
	t.Logf("seed %d (FLEET_CRASH_SEED replays it)", seed)

	bin := schedulerBinary(t)
	began := time.Now()
	e := nct.Start(t)
	lag := &awsfault.Lag{Age: crashLag, Delay: func() time.Duration { return delays.duration(crashAnswerDelay) }}
	proxy := awsfault.Start(t, e.Moto.Endpoint)
	proxy.Add(lag.Rules()...)
	e.CreatePool(t, nct.Pool{Name: "crash", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand,
		nct.Req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "t3.medium", "t3.large", "m5.large")}})
	r := &crashRun{t: t, e: e, bin: bin, dir: t.TempDir(), proxy: proxy.URL,
		kubeconfig: env.WriteKubeconfig(t, e.API.Config, "")}
	r.config = r.writeConfig()
	t.Logf("apiserver, moto and the binary ready in %s", time.Since(began).Round(time.Second))

	// Claims are made in waves, one before each start, so every run has
	// launches to be killed in.
	var made []string
	deleted := map[string]bool{}
	perRun := (crashClaims + crashKills - 1) / crashKills
	chaos := time.Now()
	for run := 0; run < crashKills; run++ {
		for i := 0; i < perRun && len(made) < crashClaims; i++ {
			made = append(made, r.createClaim(fmt.Sprintf("crash-%02d", len(made))))
		}
		if run%3 == 2 && len(deleted) < crashDeletes {
			victim := made[rng.intN(len(made))]
			if !deleted[victim] {
				deleted[victim] = true
				r.deleteClaim(victim)
			}
		}
		cmd := r.start(run)
		up := r.waitReady(cmd, run)
		life := rng.duration(crashMaxUp)
		time.Sleep(life)
		launched := r.launched(made)
		r.kill(cmd)
		t.Logf("kill %2d: %s after it could launch (in %s); %d of %d claims launched; CreateFleet answers lost so far: %d",
			run+1, life.Round(time.Millisecond), up.Round(time.Millisecond), launched, len(made), lag.Lost())
	}
	chaosTook := time.Since(chaos)

	// The last start: everything must come right by itself.
	settle := time.Now()
	last := r.start(crashKills)
	defer r.kill(last)
	var dupes, orphans int
	var report string
	nct.Eventually(t, crashSettle, "every claim with exactly its one instance and nothing left of deleted claims", func() bool {
		report, dupes, orphans = r.check(made, deleted)
		return report == ""
	})
	t.Logf("%d kills in %s; after the last start all was clean in %s (%d claims, %d deleted; CreateFleet answers lost: %d; tag lookups that missed a fresh instance: %d)",
		crashKills, chaosTook.Round(time.Second), time.Since(settle).Round(time.Second), len(made), len(deleted), lag.Lost(), lag.Hidden())
	t.Logf("claims that got a second instance: %d (terminated by garbage collection: %d events); deleted claims that had an instance: %d",
		dupes, r.collected("DuplicateInstanceTerminated"), orphans)
}

// crashRun is the binary's runs against one cluster.
type crashRun struct {
	t          *testing.T
	e          *nct.Env
	bin, dir   string
	config     string
	kubeconfig string
	proxy      string
	mu         sync.Mutex
	// everSeen is every instance ever tagged with each claim.
	everSeen map[string]map[string]bool
}

func (r *crashRun) writeConfig() string {
	cfg := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %s
leaderElection:
  leaderElect: false
profiles:
- schedulerName: fleet-scheduler
  plugins:
    filter:
      enabled:
      - name: Provisioner
    postFilter:
      enabled:
      - name: Provisioner
  pluginConfig:
  - name: Provisioner
    args:
      clusterName: %s
      region: %s
      registrationTTL: 1h
`, r.kubeconfig, nct.ClusterName, r.e.Moto.Region)
	path := filepath.Join(r.dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// start runs the binary, its output in run-NN.log.
func (r *crashRun) start(n int) *exec.Cmd {
	r.t.Helper()
	// The run before was killed holding the controllers' Lease: it would
	// take the next 15 seconds to expire. The holder is dead, so let go.
	err := r.e.Kube.CoordinationV1().Leases(metav1.NamespaceSystem).Delete(r.e.Ctx, provisioningLease, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		r.t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(r.dir, fmt.Sprintf("run-%02d.log", n)))
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.bin, "--config", r.config, "--secure-port", freePort(r.t), "--bind-address", "127.0.0.1", "-v=2",
		"--authentication-kubeconfig", r.kubeconfig, "--authorization-kubeconfig", r.kubeconfig)
	cmd.Env = append(append(os.Environ(), r.e.Moto.Env()...), "AWS_ENDPOINT_URL="+r.proxy)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		if r.t.Failed() {
			if out, err := os.ReadFile(log.Name()); err == nil {
				r.t.Logf("%s (last 3000 bytes):\n%s", filepath.Base(log.Name()), tail(out, 3000))
			}
		}
		log.Close()
	})
	return cmd
}

// waitReady waits until the run can launch - /healthz answers and its
// instance catalogue is loaded (its log says so) - and returns how long
// that took.
func (r *crashRun) waitReady(cmd *exec.Cmd, n int) time.Duration {
	r.t.Helper()
	began := time.Now()
	port := cmd.Args[slicesIndex(cmd.Args, "--secure-port")+1]
	waitFor(r.t, "https://127.0.0.1:"+port+"/healthz", "", "ok")
	log := filepath.Join(r.dir, fmt.Sprintf("run-%02d.log", n))
	nct.Eventually(r.t, time.Minute, "run "+strconv.Itoa(n)+" to load its instance catalogue", func() bool {
		out, err := os.ReadFile(log)
		return err == nil && strings.Contains(string(out), "Refreshed instance-type catalogue")
	})
	return time.Since(began)
}

func (r *crashRun) kill(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

// createClaim makes a NodeClaim of the crash pool as the Provisioner does.
func (r *crashRun) createClaim(name string) string {
	r.t.Helper()
	np, err := r.e.Karp.KarpenterV1().NodePools().Get(r.e.Ctx, "crash", metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	nc := &karpv1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{karpv1.NodePoolLabelKey: "crash"},
			Finalizers: []string{karpv1.TerminationFinalizer},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: karpv1.SchemeGroupVersion.String(), Kind: "NodePool",
				Name: np.Name, UID: np.UID, BlockOwnerDeletion: ptr.To(true)}}},
		Spec: karpv1.NodeClaimSpec{
			Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand,
				nct.Req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "t3.medium", "t3.large")},
			NodeClassRef: &karpv1.NodeClassReference{Group: ec2v1.GroupName, Kind: ec2v1.EC2NodeClassKind, Name: nct.NodeClassName},
		},
	}
	if _, err := r.e.Karp.KarpenterV1().NodeClaims().Create(r.e.Ctx, nc, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	return name
}

func (r *crashRun) deleteClaim(name string) {
	r.t.Helper()
	if err := r.e.Karp.KarpenterV1().NodeClaims().Delete(r.e.Ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		r.t.Fatal(err)
	}
}

// launched counts the claims whose status names an instance.
func (r *crashRun) launched(names []string) int {
	list, err := r.e.Karp.KarpenterV1().NodeClaims().List(r.e.Ctx, metav1.ListOptions{})
	if err != nil {
		return -1
	}
	n := 0
	for _, nc := range list.Items {
		if nc.Status.ProviderID != "" {
			n++
		}
	}
	return n
}

// check returns what is still wrong ("" when nothing is), the claims that
// ever had more than one instance and the instances of deleted claims.
func (r *crashRun) check(made []string, deleted map[string]bool) (string, int, int) {
	ctx := context.Background()
	out, err := r.e.EC2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + ec2.ClusterTagKey(nct.ClusterName)), Values: []string{"owned"}}}})
	if err != nil {
		return err.Error(), 0, 0
	}
	live := map[string][]string{} // claim -> live provider IDs
	r.mu.Lock()
	if r.everSeen == nil {
		r.everSeen = map[string]map[string]bool{}
	}
	for _, res := range out.Reservations {
		for _, i := range res.Instances {
			claim := ""
			for _, tag := range i.Tags {
				if aws.ToString(tag.Key) == ec2.TagNodeClaim {
					claim = aws.ToString(tag.Value)
				}
			}
			if r.everSeen[claim] == nil {
				r.everSeen[claim] = map[string]bool{}
			}
			r.everSeen[claim][aws.ToString(i.InstanceId)] = true
			if s := i.State.Name; s == ec2types.InstanceStateNamePending || s == ec2types.InstanceStateNameRunning {
				live[claim] = append(live[claim], ec2.FormatProviderID(aws.ToString(i.Placement.AvailabilityZone), aws.ToString(i.InstanceId)))
			}
		}
	}
	dupes, orphans := 0, 0
	for _, claim := range made {
		if len(r.everSeen[claim]) > 1 {
			dupes++
		}
		if deleted[claim] && len(r.everSeen[claim]) > 0 {
			orphans++
		}
	}
	r.mu.Unlock()

	var wrong []string
	for _, name := range made {
		nc, err := r.e.Karp.KarpenterV1().NodeClaims().Get(ctx, name, metav1.GetOptions{})
		switch {
		case deleted[name] && apierrors.IsNotFound(err):
			if len(live[name]) > 0 {
				wrong = append(wrong, fmt.Sprintf("%s is gone but its instances %v live", name, live[name]))
			}
			if r.e.LaunchTemplateExists(r.t, name) {
				wrong = append(wrong, name+" is gone but its launch template is left")
			}
		case err != nil:
			wrong = append(wrong, fmt.Sprintf("%s: %v", name, err))
		case deleted[name]:
			wrong = append(wrong, name+" is stuck terminating")
		case !karpv1.IsConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeLaunched) || nc.Status.ProviderID == "":
			wrong = append(wrong, name+" is not launched")
		case len(live[name]) != 1 || live[name][0] != nc.Status.ProviderID:
			wrong = append(wrong, fmt.Sprintf("%s names %s, live instances %v", name, nc.Status.ProviderID, live[name]))
		}
	}
	for claim, ids := range live {
		if !strings.HasPrefix(claim, "crash-") {
			wrong = append(wrong, fmt.Sprintf("instances %v carry no crash claim (%q)", ids, claim))
		}
	}
	return strings.Join(wrong, "; "), dupes, orphans
}

// collected counts the events of a reason about the crash claims.
func (r *crashRun) collected(reason string) int {
	list, err := r.e.Kube.EventsV1().Events(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return -1
	}
	n := 0
	for _, ev := range list.Items {
		if ev.Reason == reason && strings.HasPrefix(ev.Regarding.Name, "crash-") {
			n++
		}
	}
	return n
}

// lockedRand is a seeded source shared by the test and the proxy.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) duration(max time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.r.Int64N(int64(max)))
}

func (l *lockedRand) intN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
