package failover

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/test/sandboxtest"
)

const (
	scaledReplicas = 20
	// provisioningLease is the Lease the provisioning controllers hold.
	provisioningLease = "fleet-scheduler-provisioning"
	// failoverGoal is how soon a standby should act after the leader dies.
	failoverGoal = 15 * time.Second
)

// TestLeaderKilledMidScaleUp scales scan-worker from 3 to 20, kills the
// scheduler that leads with SIGKILL while the scale-up is under way, and
// checks that the other one takes over: it holds both Leases, every pod
// ends up Running, no claim has a second instance, every node joined with
// a minted token that is gone once it joined, and no token is in any log.
// FAILOVER_KILLS=n repeats it n times (restarting the killed replica and
// scaling back down between kills) and reports the median.
func TestLeaderKilledMidScaleUp(t *testing.T) {
	kills := 1
	if v := os.Getenv("FAILOVER_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FAILOVER_KILLS=%q: want a positive count", v)
		}
		kills = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(kills)*8*time.Minute)
	defer cancel()
	f := newFixture(t)
	var results []round
	for i := range kills {
		// Alternate where the kill lands: right after the first pod is
		// nominated (its claim only planned, in the leader's memory), or
		// once the first NodeClaim exists (its launch under way).
		at := killAtNomination
		if i%2 == 1 {
			at = killAtClaim
		}
		r := f.killMidScaleUp(ctx, t, at)
		results = append(results, r)
		t.Logf("kill %d (%s): %s", i+1, at, r)
		if t.Failed() {
			break
		}
		if i < kills-1 {
			f.reset(ctx, t, r.killed)
		}
	}
	summarize(t, results)
	f.checkLogs(t)
}

// TestSchedulerReadsNoSecret: the user the sandbox's fleet-scheduler runs
// as, with the shipped RBAC, may not read any Secret (the scale-up above
// minted, recorded and revoked tokens without).
func TestSchedulerReadsNoSecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ns := range []string{metav1.NamespaceSystem, metav1.NamespaceDefault, ""} {
		for _, verb := range []string{"get", "list", "watch"} {
			if allowed(ctx, t, "system:kube-scheduler", verb, "secrets", ns) {
				t.Errorf("system:kube-scheduler may %s Secrets in %q", verb, ns)
			}
		}
	}
	for _, verb := range []string{"create", "delete"} {
		if !allowed(ctx, t, "system:kube-scheduler", verb, "secrets", metav1.NamespaceSystem) {
			t.Errorf("system:kube-scheduler may not %s Secrets in kube-system: it could not mint or revoke", verb)
		}
	}
}

type killPoint string

const (
	killAtNomination killPoint = "first nomination"
	killAtClaim      killPoint = "first NodeClaim"
)

// round is what one kill measured.
type round struct {
	killed string
	// scheduling and provisioning: from the kill to a standby holding
	// kube-scheduler's and the controllers' Lease (its acquireTime).
	scheduling, provisioning time.Duration
	// acting: from the kill to the standby's first scheduling decision (a
	// pod nominated or bound anew).
	acting time.Duration
	// running: from the kill to 20/20 Running.
	running                        time.Duration
	claims, instances, maxPerClaim int
	// claimsAtKill are the NodeClaims that existed when the leader died;
	// plannedAtKill the claims pods were nominated to that did not (only
	// planned, in the dead leader's memory).
	claimsAtKill, plannedAtKill int
	// leakedTokens are this round's minted tokens no claim names: a kill
	// between minting and making the launch template leaves one per launch
	// in flight, and the claim's next launch mints another. Nothing was
	// given them; they expire on their own (TTL at most 1h).
	leakedTokens int
}

func (r round) String() string {
	return fmt.Sprintf("killed %s with %d NodeClaims and %d claims only planned; kube-scheduler Lease taken over in %s, provisioning Lease in %s, first decision %s after the kill, 20/20 Running after %s; %d claims, %d instances, at most %d per claim; %d unrecorded tokens",
		r.killed, r.claimsAtKill, r.plannedAtKill, r.scheduling.Round(100*time.Millisecond), r.provisioning.Round(100*time.Millisecond), r.acting.Round(100*time.Millisecond),
		r.running.Round(100*time.Millisecond), r.claims, r.instances, r.maxPerClaim, r.leakedTokens)
}

type fixture struct {
	karp versioned.Interface
	// tokens are the secrets of every token seen in a user data, to look
	// for in the logs.
	tokens map[string]bool
}

func newFixture(t *testing.T) *fixture {
	cfg := rest.CopyConfig(sandbox.Admin)
	cfg.ContentType = "application/json"
	return &fixture{karp: versioned.NewForConfigOrDie(cfg), tokens: map[string]bool{}}
}

func (f *fixture) killMidScaleUp(ctx context.Context, t *testing.T, at killPoint) round {
	t.Helper()
	leader := waitLeader(ctx, t)
	index, _ := strconv.Atoi(strings.TrimPrefix(leader, "scheduler-"))
	schedHolder, provHolder := holder(ctx, t, world.SchedulerLease), holder(ctx, t, provisioningLease)

	scale(ctx, t, scaledReplicas)
	waitFor(ctx, t, string(at), time.Minute, func() bool {
		if at == killAtClaim {
			claims, err := f.karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
			return err == nil && len(claims.Items) > 0
		}
		for _, p := range scanPods(ctx, t) {
			if p.Spec.NodeName == "" && p.Status.NominatedNodeName != "" {
				return true
			}
		}
		return false
	})
	atKill := f.claimNames(ctx, t)
	pid := sandbox.SchedulerPid(index)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d (%s): %v", pid, leader, err)
	}
	r := round{killed: leader, claimsAtKill: len(atKill)}
	// Pods nominated to a claim the leader had only planned: the standby
	// must decide them again.
	planned := map[string]bool{}
	for _, p := range scanPods(ctx, t) {
		if n := p.Status.NominatedNodeName; p.Spec.NodeName == "" && n != "" && !atKill[n] {
			planned[n] = true
		}
	}
	r.plannedAtKill = len(planned)

	// Who does what next, polled every 100ms.
	deadline := time.Now().Add(4 * time.Minute)
	for r.scheduling == 0 || r.provisioning == 0 || r.acting == 0 || r.running == 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("4m after killing %s: %s; pods %v", leader, r, podStates(scanPods(ctx, t)))
		}
		if r.scheduling == 0 {
			r.scheduling = takenOver(ctx, world.SchedulerLease, schedHolder, killed)
		}
		if r.provisioning == 0 {
			r.provisioning = takenOver(ctx, provisioningLease, provHolder, killed)
		}
		pods := scanPods(ctx, t)
		if r.acting == 0 {
			r.acting = firstDecision(ctx, killed)
		}
		if r.running == 0 && running(pods) >= scaledReplicas {
			r.running = time.Since(killed)
		}
		f.collectTokens(ctx, t)
		time.Sleep(100 * time.Millisecond)
	}
	if r.scheduling > failoverGoal || r.acting > failoverGoal {
		t.Errorf("the standby took over in %s and acted %s after the kill; the goal is %s", r.scheduling, r.acting, failoverGoal)
	}
	if name, err := sandbox.Leader(ctx); err != nil || name == leader {
		t.Errorf("after the kill the leader is %q (%v), want the other replica", name, err)
	}
	f.checkClaims(ctx, t, &r)
	return r
}

// claimNames are the NodeClaims that exist.
func (f *fixture) claimNames(ctx context.Context, t *testing.T) map[string]bool {
	t.Helper()
	claims, err := f.karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, nc := range claims.Items {
		out[nc.Name] = true
	}
	return out
}

// checkClaims: one instance per claim (of every instance ever launched,
// terminated ones included), every claim's node joined, and its tokens
// revoked once it did.
func (f *fixture) checkClaims(ctx context.Context, t *testing.T, r *round) {
	t.Helper()
	claims, err := f.karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.claims = len(claims.Items)
	byClaim := instancesByClaim(ctx, t)
	running := 0
	for claim, insts := range byClaim {
		r.maxPerClaim = max(r.maxPerClaim, len(insts))
		if len(insts) > 1 {
			t.Errorf("claim %s has %d instances: %v", claim, len(insts), insts)
		}
		for _, i := range insts {
			if i.state == "running" {
				running++
			}
		}
	}
	r.instances = running
	var recorded []string
	for _, nc := range claims.Items {
		if n := len(byClaim[nc.Name]); n != 1 {
			t.Errorf("NodeClaim %s: %d instances", nc.Name, n)
		}
		ids := bootstrap.TokenIDs(nc.Annotations)
		if len(ids) == 0 {
			t.Errorf("NodeClaim %s names no bootstrap token", nc.Name)
		}
		recorded = append(recorded, ids...)
	}
	if running != r.claims {
		t.Errorf("%d running instances for %d NodeClaims", running, r.claims)
	}
	// Every node registered by now: its tokens are deleted by name.
	var left []string
	waitFor(ctx, t, "the claims' tokens revoked", time.Minute, func() bool {
		left = left[:0]
		for _, id := range recorded {
			if _, err := sandbox.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{}); err == nil {
				left = append(left, id)
			}
		}
		return len(left) == 0
	})
	minted, err := sandbox.Client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
		LabelSelector: bootstrap.LabelManagedBy + "=" + bootstrap.ManagedByValue})
	if err != nil {
		t.Fatal(err)
	}
	// Only launches of the claims that existed at the kill were in flight:
	// at most one orphan each.
	perClaim := map[string]int{}
	for _, nc := range claims.Items {
		perClaim[nc.Name] = 0
	}
	for _, s := range minted.Items {
		claim := s.Annotations[bootstrap.AnnotationTokenNode]
		if _, ours := perClaim[claim]; !ours {
			continue // an earlier round's, left to expire
		}
		perClaim[claim]++
		r.leakedTokens++
	}
	for claim, n := range perClaim {
		if n > 1 {
			t.Errorf("claim %s: %d minted tokens it does not name, want at most one (the launch the kill cut short)", claim, n)
		}
	}
	if r.leakedTokens > r.claimsAtKill {
		t.Errorf("%d minted tokens no claim names, %d claims existed at the kill: at most one each", r.leakedTokens, r.claimsAtKill)
	}
}

// collectTokens keeps the token of every claim's user data.
func (f *fixture) collectTokens(ctx context.Context, t *testing.T) {
	claims, err := f.karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, nc := range claims.Items {
		if j, ok := userDataJoin(ctx, nc.Name); ok {
			f.tokens[strings.TrimPrefix(j.Token, bootstrap.TokenID(j.Token)+".")] = true
			if j.ConfigFile == "" {
				t.Errorf("NodeClaim %s: the user data passes the token on kubeadm's command line", nc.Name)
			}
		}
	}
}

// checkLogs: no token secret in what the schedulers wrote at -v=6.
func (f *fixture) checkLogs(t *testing.T) {
	t.Helper()
	secrets := []string{strings.TrimPrefix(sandbox.Token.Token, sandbox.Token.ID()+".")}
	for s := range f.tokens {
		secrets = append(secrets, s)
	}
	logs, err := filepath.Glob(filepath.Join(sandbox.Dir, "logs", "fleet-scheduler*.log"))
	if err != nil || len(logs) != 2 {
		t.Fatalf("scheduler logs %v (%v), want two", logs, err)
	}
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "round_trippers.go") {
			t.Errorf("%s logs no API request: -v=6 did not take", path)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s carries a bootstrap token's secret", path)
			}
		}
	}
	t.Logf("%d token secrets looked for in %d logs", len(secrets), len(logs))
}

// reset restarts the killed replica and scales back to 3 until no managed
// node is left.
func (f *fixture) reset(ctx context.Context, t *testing.T, killed string) {
	t.Helper()
	index, _ := strconv.Atoi(strings.TrimPrefix(killed, "scheduler-"))
	if err := sandbox.RestartScheduler(ctx, index); err != nil {
		t.Fatal(err)
	}
	scale(ctx, t, seed.ScanReplicas)
	waitFor(ctx, t, "back to 3 pods and no managed node", 5*time.Minute, func() bool {
		claims, err := f.karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
		nodes, nerr := sandbox.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "managed-by=karpenter"})
		return err == nil && nerr == nil && len(claims.Items) == 0 && len(nodes.Items) == 0 && running(scanPods(ctx, t)) == seed.ScanReplicas
	})
}

func summarize(t *testing.T, rs []round) {
	if len(rs) == 0 {
		return
	}
	var sched, act []time.Duration
	perClaim, claims, instances := 0, 0, 0
	for _, r := range rs {
		sched, act = append(sched, r.scheduling), append(act, r.acting)
		perClaim = max(perClaim, r.maxPerClaim)
		claims, instances = claims+r.claims, instances+r.instances
	}
	slices.Sort(sched)
	slices.Sort(act)
	line := fmt.Sprintf("%d kills: Lease taken over in median %s (%s-%s), first decision median %s (%s-%s); %d claims, %d instances, at most %d instance per claim",
		len(rs), sched[len(sched)/2].Round(100*time.Millisecond), sched[0].Round(100*time.Millisecond), sched[len(sched)-1].Round(100*time.Millisecond),
		act[len(act)/2].Round(100*time.Millisecond), act[0].Round(100*time.Millisecond), act[len(act)-1].Round(100*time.Millisecond),
		claims, instances, perClaim)
	t.Log(line)
	fmt.Println("failover: " + line)
}

func scale(ctx context.Context, t *testing.T, replicas int32) {
	t.Helper()
	_, err := sandbox.Client.AppsV1().Deployments(seed.ScanNamespace).UpdateScale(ctx, seed.ScanDeployment,
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: seed.ScanDeployment, Namespace: seed.ScanNamespace}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}},
		metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func scanPods(ctx context.Context, t *testing.T) []corev1.Pod {
	pods, err := sandbox.Client.CoreV1().Pods(seed.ScanNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + seed.ScanDeployment})
	if err != nil {
		return nil
	}
	return pods.Items
}

func running(pods []corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

// podStates are the pods' node and nomination, by name.
func podStates(pods []corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, p := range pods {
		out[p.Name] = p.Spec.NodeName + "/" + p.Status.NominatedNodeName
	}
	return out
}

// firstDecision is how long after the kill a scheduler first decided
// about a scan-worker pod (bound it, nominated it to a claim, or found it
// no place): the first such event made after the kill, which only the
// standby can have made. 0 while there is none.
func firstDecision(ctx context.Context, killed time.Time) time.Duration {
	events, err := sandbox.Client.EventsV1().Events(seed.ScanNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0
	}
	var first time.Duration
	for _, e := range events.Items {
		if e.ReportingController != world.SchedulerName || e.EventTime.Time.Before(killed) {
			continue
		}
		if d := e.EventTime.Sub(killed); first == 0 || d < first {
			first = max(d, time.Millisecond)
		}
	}
	return first
}

func waitLeader(ctx context.Context, t *testing.T) string {
	t.Helper()
	var name string
	var err error
	waitFor(ctx, t, "a leader", time.Minute, func() bool {
		name, err = sandbox.Leader(ctx)
		return err == nil
	})
	return name
}

func holder(ctx context.Context, t *testing.T, lease string) string {
	t.Helper()
	l, err := sandbox.Client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, lease, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		t.Fatalf("Lease %s: %v", lease, err)
	}
	return *l.Spec.HolderIdentity
}

// takenOver is how long after the kill another holder acquired the Lease,
// by its acquireTime; 0 while nobody has.
func takenOver(ctx context.Context, lease, old string, killed time.Time) time.Duration {
	l, err := sandbox.Client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, lease, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || *l.Spec.HolderIdentity == old || l.Spec.AcquireTime == nil {
		return 0
	}
	return max(l.Spec.AcquireTime.Sub(killed), time.Millisecond)
}

// waitFor checks often: the kill must land at the moment it waits for.
func waitFor(ctx context.Context, t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	sandboxtest.WaitFor(ctx, t, what, 100*time.Millisecond, timeout, cond)
}
