// Package metrics defines fleet-scheduler's metrics under Karpenter v1's
// names, registered in the component-base legacy registry that the
// scheduler's /metrics endpoint serves.
package metrics

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const namespace = "karpenter"

var (
	// NodeClaimsCreated counts NodeClaims written when a batch closes.
	NodeClaimsCreated = counterVec("nodeclaims", "created_total",
		"Number of NodeClaims created, by reason and nodepool.", "reason", "nodepool")
	// NodeClaimsLaunched counts NodeClaims whose machine was launched.
	NodeClaimsLaunched = counterVec("nodeclaims", "launched_total",
		"Number of NodeClaims launched, by nodepool.", "nodepool")
	// NodeClaimsRegistered counts NodeClaims whose Node registered.
	NodeClaimsRegistered = counterVec("nodeclaims", "registered_total",
		"Number of NodeClaims registered, by nodepool.", "nodepool")
	// NodeClaimsInitialized counts NodeClaims whose Node became ready for pods.
	NodeClaimsInitialized = counterVec("nodeclaims", "initialized_total",
		"Number of NodeClaims initialized, by nodepool.", "nodepool")
	// NodeClaimsTerminated counts NodeClaims whose machine was terminated.
	NodeClaimsTerminated = counterVec("nodeclaims", "terminated_total",
		"Number of NodeClaims terminated, by nodepool.", "nodepool")
	// NodeClaimsDisrupted counts NodeClaims given up or removed, by reason.
	NodeClaimsDisrupted = counterVec("nodeclaims", "disrupted_total",
		"Number of NodeClaims disrupted, by reason and nodepool.", "reason", "nodepool")
	// ProvisionerSchedulingDuration is how long one Provisioner decision takes.
	ProvisionerSchedulingDuration = histogram("provisioner", "scheduling_duration_seconds",
		"Duration of one Provisioner PostFilter decision, in seconds.", decisionBuckets)
	// SchedulerSchedulingDuration is the same decision under the name Karpenter v1 uses.
	SchedulerSchedulingDuration = histogramVec("scheduler", "scheduling_duration_seconds",
		"Duration of scheduling simulations for provisioning, in seconds.", decisionBuckets, "controller")
	// PodsStartupDuration is the time from a pod's creation to it running,
	// for pods that run on a node fleet-scheduler launched: for a pod that
	// found no room, the wait from pending to running on its new node.
	PodsStartupDuration = histogram("pods", "startup_duration_seconds",
		"Time from pod creation until the pod is running, for pods on nodes fleet-scheduler launched, in seconds.",
		startupBuckets)
	// NodeClaimsStartupDuration is the time from a NodeClaim's launch
	// (CreateFleet answered) to its Node initialized (Ready, startup taints
	// gone): boot, kubeadm join, registration. Karpenter has no metric for
	// this span; the name follows its karpenter_nodeclaims_*_duration_seconds.
	NodeClaimsStartupDuration = histogramVec("nodeclaims", "startup_duration_seconds",
		"Time from a NodeClaim's launch until its Node is initialized, in seconds, by nodepool.",
		startupBuckets, "nodepool")
	// CloudProviderErrors counts failed cloud provider calls, by the
	// controller that made them, the method and the error's reason.
	CloudProviderErrors = counterVec("cloudprovider", "errors_total",
		"Total number of errors returned from CloudProvider calls, by controller, method, provider and error.",
		"controller", "method", "provider", "error")
	// CloudProviderDuration is how long cloud provider calls take, by the
	// controller that made them and the method.
	CloudProviderDuration = histogramVec("cloudprovider", "duration_seconds",
		"Duration of cloud provider method calls, by controller, method and provider, in seconds.",
		metrics.ExponentialBuckets(0.01, 2, 14), "controller", "method", "provider")
	// BootstrapTokenChecks counts checks of the join credentials in SSM
	// (TokenReview, cluster-info), by result: Valid, or what is wrong
	// (BootstrapTokenRejected, CACertHashMismatch...). Karpenter has no
	// such metric; the name follows its karpenter_<subsystem>_*_total.
	BootstrapTokenChecks = counterVec("bootstrap", "token_checks_total",
		"Checks of the kubeadm join credentials nodes are launched with, by result (Valid or the problem found).",
		"result")
	// BootstrapTokenValid is 1 while the last check found the join
	// credentials valid, 0 while it found them unusable.
	BootstrapTokenValid = gauge("bootstrap", "token_valid",
		"1 when the last check of the kubeadm join credentials found them valid, 0 when it found them unusable.")
	// ReconcilePanics counts panics recovered in a controller's reconcile
	// (or in the Provisioner's PostFilter: controller="provisioner"), under
	// controller-runtime's name, which Karpenter exports.
	ReconcilePanics = add(metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "controller_runtime", Subsystem: "reconcile", Name: "panics_total",
		Help: "Total number of reconciliation panics per controller.",
	}, []string{"controller"}))
	// NodesAllocatable is each managed node's allocatable, by resource.
	NodesAllocatable = gaugeVec("nodes", "allocatable",
		"Node allocatable, by node, nodepool, instance type, capacity type, zone and resource type.",
		"node_name", "nodepool", "instance_type", "capacity_type", "zone", "resource_type")

	// InterruptionReceivedMessages counts messages taken off the interruption
	// queue, by kind (Karpenter's message types; no_op for events that ask
	// for nothing, malformed for bodies that are no readable event).
	InterruptionReceivedMessages = counterVec("interruption", "received_messages_total",
		"Number of messages received from the interruption queue, by message type.", "message_type")
	// InterruptionDeletedMessages counts messages deleted from the queue:
	// handled, ignored or malformed alike.
	InterruptionDeletedMessages = counter("interruption", "deleted_messages_total",
		"Number of messages deleted from the interruption queue.")
	// InterruptionMessageQueueDuration is how long a handled message waited
	// on the queue: from SQS accepting it until it was acted on.
	InterruptionMessageQueueDuration = histogram("interruption", "message_queue_duration_seconds",
		"Time from an interruption message reaching the queue until it was handled, in seconds.",
		[]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300})
	// InterruptionUnknownInstanceMessages counts messages about instances
	// no NodeClaim owns (other workloads in the account, or nodes already
	// gone); they are deleted without action.
	InterruptionUnknownInstanceMessages = counterVec("interruption", "unknown_instance_messages_total",
		"Number of interruption messages about instances that belong to no NodeClaim, by message type.",
		"message_type")
)

// Reasons of NodeClaimsDisrupted: the disruption controller's (the
// NodePool disruption reasons and expiry, lower-cased), the interruption
// controller's, and the failures the NodeClaim controllers give a claim up
// for.
const (
	ReasonInsufficientCapacity = "insufficient_capacity"
	ReasonLiveness             = "liveness"
	ReasonGarbageCollected     = "garbage_collected"
)

// disruptionReasons are every reason NodeClaimsDisrupted counts.
var disruptionReasons = []string{
	"empty", "underutilized", "drifted", "expired", "interruption",
	ReasonInsufficientCapacity, ReasonLiveness, ReasonGarbageCollected,
}

// InitNodePool exports the pool's counters and histograms at zero, so that
// Prometheus sees its first NodeClaim (or first failure) as an increase:
// a series that appears already at 1 has no increase to show, and the
// dashboard's lifecycle and latency panels would miss each pool's first
// scale-up.
func InitNodePool(pool string) {
	NodeClaimsCreated.WithLabelValues("provisioning", pool)
	for _, c := range []*metrics.CounterVec{NodeClaimsLaunched, NodeClaimsRegistered, NodeClaimsInitialized, NodeClaimsTerminated} {
		c.WithLabelValues(pool)
	}
	for _, r := range disruptionReasons {
		NodeClaimsDisrupted.WithLabelValues(r, pool)
	}
	NodeClaimsStartupDuration.WithLabelValues(pool)
}

// startupBuckets span 1s to ~7m: a pod or node that takes longer than
// that is a failure the alerts report, not a latency to resolve finely.
var startupBuckets = metrics.ExponentialBuckets(1, 1.5, 16)

// decisionBuckets span 0.1ms to ~3s, one Provisioner decision's range.
var decisionBuckets = metrics.ExponentialBuckets(0.0001, 2, 16)

// all is every metric Register adds; the constructors below append to it,
// so a metric declared with them cannot be left out.
var all []metrics.Registerable

func add[M metrics.Registerable](m M) M {
	all = append(all, m)
	return m
}

func counter(subsystem, name, help string) *metrics.Counter {
	return add(metrics.NewCounter(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}))
}

func counterVec(subsystem, name, help string, labels ...string) *metrics.CounterVec {
	return add(metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}, labels))
}

func gauge(subsystem, name, help string) *metrics.Gauge {
	return add(metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}))
}

func gaugeVec(subsystem, name, help string, labels ...string) *metrics.GaugeVec {
	return add(metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}, labels))
}

func histogram(subsystem, name, help string, buckets []float64) *metrics.Histogram {
	return add(metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help, Buckets: buckets}))
}

func histogramVec(subsystem, name, help string, buckets []float64, labels ...string) *metrics.HistogramVec {
	return add(metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help, Buckets: buckets}, labels))
}

var registerOnce sync.Once

// Register adds every metric to the legacy registry once.
func Register() {
	registerOnce.Do(func() {
		for _, m := range all {
			legacyregistry.MustRegister(m)
		}
	})
}

// Names are the metric families fleet-scheduler exports, for checking
// that dashboards and alerts read only what exists.
func Names() []string {
	names := []string{NodePoolUsageName, NodePoolLimitName}
	for _, m := range all {
		names = append(names, m.FQName())
	}
	return names
}
