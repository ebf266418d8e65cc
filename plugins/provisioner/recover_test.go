package provisioner

import (
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// panickingPools panics when armed, in a decision only (not in the
// requeue loop that runs beside the test).
type panickingPools struct {
	staticPools
	armed atomic.Bool
}

func (p *panickingPools) Pools() []*packing.Pool {
	if p.armed.Load() && !strings.Contains(string(debug.Stack()), ".requeueLoop(") {
		panic("a NodePool no one expected")
	}
	return p.staticPools.Pools()
}

// recordingHandle is the framework with a recorder whose events a test reads.
type recordingHandle struct {
	fwk.Handle
	rec *events.FakeRecorder
}

func (h recordingHandle) EventRecorder() events.EventRecorderLogger { return h.rec }

// TestPostFilterRecoversFromAPanic: a panic while deciding one pod is
// answered Unschedulable with the panic named, an event on the pod and a
// count, the pod waits to be activated again, and the Provisioner stays
// usable: the same pod is placed when tried again.
func TestPostFilterRecoversFromAPanic(t *testing.T) {
	metrics.Register()
	pool := karpenterMixPoolOf("mix", 10, nil)
	r := newCluster(t, []*packing.Pool{pool}, mixedPods(1), []*v1.Node{controlPlane()}, nil)
	defer r.close()
	src := &panickingPools{staticPools: staticPools{[]*packing.Pool{pool}}}
	rec := events.NewFakeRecorder(10)
	p := &Provisioner{handle: recordingHandle{Handle: r.fw, rec: rec}, state: newState(r.ctx, r.fw, src, nil, time.Hour, time.Hour)}

	entity, err := r.queue.Pop(klog.FromContext(r.ctx))
	if err != nil {
		t.Fatal(err)
	}
	pod := entity.(*framework.QueuedPodInfo).Pod
	decide := func() (*fwk.PostFilterResult, *fwk.Status) {
		state := framework.NewCycleState()
		r.fw.RunPreFilterPlugins(r.ctx, state, pod)
		return p.PostFilter(r.ctx, state, pod, nil)
	}
	before, _ := testutil.GetCounterMetricValue(metrics.ReconcilePanics.WithLabelValues("provisioner"))
	src.armed.Store(true)
	res, st := decide()
	if res != nil || st.Code() != fwk.Unschedulable || !strings.Contains(st.Message(), "provisioner panicked: a NodePool no one expected") {
		t.Fatalf("PostFilter after a panic = %v, %v; want Unschedulable naming the panic", res, st)
	}
	if after, _ := testutil.GetCounterMetricValue(metrics.ReconcilePanics.WithLabelValues("provisioner")); after != before+1 {
		t.Errorf("controller_runtime_reconcile_panics_total{controller=provisioner} %v -> %v, want one more", before, after)
	}
	select {
	case ev := <-rec.Events:
		if !strings.HasPrefix(ev, "Warning FailedProvisioning") || !strings.Contains(ev, "a NodePool no one expected; the pod will be tried again") {
			t.Errorf("event on the pod: %q", ev)
		}
	default:
		t.Error("no event on the pod")
	}
	if !p.mu.TryLock() {
		t.Fatal("the Provisioner's lock is held after the panic")
	}
	if p.waiting[pod.UID] == nil {
		t.Error("the pod is not among those activated when the pools change")
	}
	p.mu.Unlock()

	src.armed.Store(false)
	res, st = decide()
	if !st.IsSuccess() || res == nil || res.NominatingInfo == nil || res.NominatingInfo.NominatedNodeName == "" {
		t.Fatalf("the pod tried again: %v, %v; want a nomination", res, st)
	}
}
