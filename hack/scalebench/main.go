// Command scalebench measures a scale-up in a running sandbox (make run):
// the time from scaling a Deployment until every one of its pods is
// nominated (or bound) and until every one is Running, how long pods wait
// for their node once it is Ready, the scheduler's peak memory, and the
// NodeClaims and instances made. With -hold-nodes it first caps the
// NodePool's limits.nodes, waits until the pods past the cap are held
// back, raises the cap and measures how long until they are provisioned.
// `make bench-e2e` starts a sandbox, runs it, and stops the sandbox.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/instances"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
)

func main() {
	dir := flag.String("dir", ".sandbox", "the sandbox's state directory")
	ns := flag.String("namespace", "scan", "namespace of the Deployment")
	name := flag.String("deployment", "scan-worker", "the Deployment to scale")
	replicas := flag.Int("replicas", 5000, "replicas to scale to")
	pool := flag.String("nodepool", "default", "the NodePool whose limits are raised")
	hold := flag.Int("hold-nodes", 0, "first cap the NodePool at this many nodes, then raise the cap (0: no cap)")
	timeout := flag.Duration("timeout", 20*time.Minute, "give up after")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *dir, *ns, *name, *pool, int32(*replicas), *hold); err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, ns, name, poolName string, replicas int32, hold int) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return fmt.Errorf("the sandbox's kubeconfig (is `make run` up?): %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	kube := kubernetes.NewForConfigOrDie(cfg)
	karp := versioned.NewForConfigOrDie(cfg)

	dep, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return err
	}
	w := newWatch(sel)
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
	nodes := informers.NewSharedInformerFactory(kube, 0)
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(w.podHandler()); err != nil {
		return err
	}
	if _, err := nodes.Core().V1().Nodes().Informer().AddEventHandler(w.nodeHandler()); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	nodes.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	nodes.WaitForCacheSync(ctx.Done())

	limit := func(nodeCap int) error {
		np, err := karp.KarpenterV1().NodePools().Get(ctx, poolName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		np.Spec.Limits = karpv1.Limits{v1.ResourceCPU: resource.MustParse("1000000"), v1.ResourceMemory: resource.MustParse("1000000Gi")}
		if nodeCap > 0 {
			np.Spec.Limits["nodes"] = *resource.NewQuantity(int64(nodeCap), resource.DecimalSI)
		}
		_, err = karp.KarpenterV1().NodePools().Update(ctx, np, metav1.UpdateOptions{})
		return err
	}
	if err := limit(hold); err != nil {
		return fmt.Errorf("setting the NodePool's limits: %w", err)
	}
	start := time.Now()
	scale, err := kube.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	scale.Spec.Replicas = replicas
	if _, err := kube.AppsV1().Deployments(ns).UpdateScale(ctx, name, scale, metav1.UpdateOptions{}); err != nil {
		return err
	}
	fmt.Printf("scaled %s/%s to %d at %s\n", ns, name, replicas, start.Format(time.TimeOnly))

	if hold > 0 {
		// Held back: the nominations stop growing while pods still wait.
		if err := w.until(ctx, start, func(s stats) bool {
			return s.pods >= int(replicas) && s.placed < s.pods && time.Since(s.lastPlaced) > 10*time.Second
		}); err != nil {
			return err
		}
		held := w.snapshot()
		raised := time.Now()
		if err := limit(0); err != nil {
			return err
		}
		if err := w.until(ctx, start, func(s stats) bool { return s.placed > held.placed }); err != nil {
			return err
		}
		fmt.Printf("limit raised with %d pods held back: the next was provisioned %.1fs later\n", held.pods-held.placed, time.Since(raised).Seconds())
	}
	if err := w.until(ctx, start, func(s stats) bool { return s.pods >= int(replicas) && s.placed >= int(replicas) }); err != nil {
		return err
	}
	placed := time.Since(start)
	if err := w.until(ctx, start, func(s stats) bool { return s.running >= int(replicas) }); err != nil {
		return err
	}
	running := time.Since(start)
	claims, err := karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	instances, err := countInstances(ctx)
	if err != nil {
		fmt.Println("counting instances:", err)
	}
	wait, pending := w.nodeWait(), w.pendingWait()
	fmt.Printf("%d pods: all nominated or bound %.1fs after the scale, all Running %.1fs after; "+
		"from created to nominated or bound a pod waited median %.1fs, max %.1fs; "+
		"after its node was Ready a pod waited median %.1fs, max %.1fs; %d NodeClaims, %d instances launched; scheduler peak RSS %s\n",
		replicas, placed.Seconds(), running.Seconds(), pending.median, pending.max, wait.median, wait.max, len(claims.Items), instances, schedulerPeakRSS(dir))
	return nil
}

// stats are the counts the watch keeps.
type stats struct {
	pods, placed, running int
	lastPlaced            time.Time
}

type watch struct {
	sel labels.Selector

	mu        sync.Mutex
	seenAt    map[types.UID]time.Time
	placedAt  map[types.UID]time.Time
	runningAt map[types.UID]time.Time
	nodeOf    map[types.UID]string
	pods      map[types.UID]bool
	readyAt   map[string]time.Time
	last      time.Time
}

func newWatch(sel labels.Selector) *watch {
	return &watch{sel: sel, seenAt: map[types.UID]time.Time{}, placedAt: map[types.UID]time.Time{}, runningAt: map[types.UID]time.Time{},
		nodeOf: map[types.UID]string{}, pods: map[types.UID]bool{}, readyAt: map[string]time.Time{}}
}

func (w *watch) podHandler() cache.ResourceEventHandler {
	see := func(obj interface{}) {
		pod, ok := obj.(*v1.Pod)
		if !ok || !w.sel.Matches(labels.Set(pod.Labels)) || pod.DeletionTimestamp != nil {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.pods[pod.UID] {
			w.pods[pod.UID] = true
			w.seenAt[pod.UID] = now
		}
		if _, seen := w.placedAt[pod.UID]; !seen && (pod.Status.NominatedNodeName != "" || pod.Spec.NodeName != "") {
			w.placedAt[pod.UID] = now
			w.last = now
		}
		if _, seen := w.runningAt[pod.UID]; !seen && pod.Status.Phase == v1.PodRunning {
			w.runningAt[pod.UID] = now
			w.nodeOf[pod.UID] = pod.Spec.NodeName
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: see, UpdateFunc: func(_, obj interface{}) { see(obj) }}
}

func (w *watch) nodeHandler() cache.ResourceEventHandler {
	see := func(obj interface{}) {
		node, ok := obj.(*v1.Node)
		if !ok {
			return
		}
		for _, c := range node.Status.Conditions {
			if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue {
				w.mu.Lock()
				if _, seen := w.readyAt[node.Name]; !seen {
					w.readyAt[node.Name] = time.Now()
				}
				w.mu.Unlock()
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: see, UpdateFunc: func(_, obj interface{}) { see(obj) }}
}

func (w *watch) snapshot() stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return stats{pods: len(w.pods), placed: len(w.placedAt), running: len(w.runningAt), lastPlaced: w.last}
}

// until waits for cond, printing the counts every ten seconds.
func (w *watch) until(ctx context.Context, start time.Time, cond func(stats) bool) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	lastPrint := time.Now()
	for {
		s := w.snapshot()
		if s.lastPlaced.IsZero() {
			s.lastPlaced = start
		}
		if cond(s) {
			return nil
		}
		if time.Since(lastPrint) >= 10*time.Second {
			fmt.Printf("  %5.0fs: %d pods, %d nominated or bound, %d running\n", time.Since(start).Seconds(), s.pods, s.placed, s.running)
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up at %d pods, %d nominated or bound, %d running: %w", s.pods, s.placed, s.running, ctx.Err())
		case <-tick.C:
		}
	}
}

type waitStats struct{ median, max float64 }

// nodeWait is how long Running pods waited after their node was Ready
// (or from their nomination, for a node that was Ready first).
func (w *watch) nodeWait() waitStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	var waits []float64
	for uid, ran := range w.runningAt {
		from, ok := w.readyAt[w.nodeOf[uid]]
		if placed := w.placedAt[uid]; !ok || placed.After(from) {
			from = placed
		}
		waits = append(waits, ran.Sub(from).Seconds())
	}
	return summarize(waits)
}

// pendingWait is how long pods waited from being created (seen) to being
// nominated or bound.
func (w *watch) pendingWait() waitStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	var waits []float64
	for uid, placed := range w.placedAt {
		if seen, ok := w.seenAt[uid]; ok {
			waits = append(waits, placed.Sub(seen).Seconds())
		}
	}
	return summarize(waits)
}

func summarize(waits []float64) waitStats {
	if len(waits) == 0 {
		return waitStats{}
	}
	sort.Float64s(waits)
	return waitStats{median: waits[len(waits)/2], max: waits[len(waits)-1]}
}

// countInstances counts the instances fleet-scheduler launched in moto, in
// any state: one per CreateFleet call that launched.
func countInstances(ctx context.Context) (int, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return 0, err
	}
	client := awsec2.NewFromConfig(cfg)
	n := 0
	for _, err := range instances.All(ctx, client,
		ec2types.Filter{Name: aws.String("tag-key"), Values: []string{karpv1.NodePoolLabelKey}}) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// schedulerPeakRSS reads the scheduler's high-water resident memory.
func schedulerPeakRSS(dir string) string {
	abs, _ := filepath.Abs(dir)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(raw), "\x00", " ")
		if !strings.Contains(cmd, "fleet-scheduler") || !strings.Contains(cmd, abs) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(f), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
			}
		}
	}
	return "unknown"
}
