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
	NodeClaimsCreated = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "created_total",
		Help: "Number of NodeClaims created, by reason and nodepool.",
	}, []string{"reason", "nodepool"})
	// NodeClaimsLaunched counts NodeClaims whose machine was launched.
	NodeClaimsLaunched = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "launched_total",
		Help: "Number of NodeClaims launched, by nodepool.",
	}, []string{"nodepool"})
	// NodeClaimsRegistered counts NodeClaims whose Node registered.
	NodeClaimsRegistered = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "registered_total",
		Help: "Number of NodeClaims registered, by nodepool.",
	}, []string{"nodepool"})
	// NodeClaimsInitialized counts NodeClaims whose Node became ready for pods.
	NodeClaimsInitialized = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "initialized_total",
		Help: "Number of NodeClaims initialized, by nodepool.",
	}, []string{"nodepool"})
	// NodeClaimsTerminated counts NodeClaims whose machine was terminated.
	NodeClaimsTerminated = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "terminated_total",
		Help: "Number of NodeClaims terminated, by nodepool.",
	}, []string{"nodepool"})
	// NodeClaimsDisrupted counts NodeClaims given up or removed, by reason.
	NodeClaimsDisrupted = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "disrupted_total",
		Help: "Number of NodeClaims disrupted, by reason and nodepool.",
	}, []string{"reason", "nodepool"})
	// ProvisionerSchedulingDuration is how long one Provisioner decision takes.
	ProvisionerSchedulingDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "provisioner", Name: "scheduling_duration_seconds",
		Help:    "Duration of one Provisioner PostFilter decision, in seconds.",
		Buckets: metrics.ExponentialBuckets(0.0001, 2, 16),
	})
	// SchedulerSchedulingDuration is the same decision under the name Karpenter v1 uses.
	SchedulerSchedulingDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "scheduler", Name: "scheduling_duration_seconds",
		Help:    "Duration of scheduling simulations for provisioning, in seconds.",
		Buckets: metrics.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"controller"})
	// PodsStartupDuration is the time from a pod's creation to it running,
	// for pods that run on a node fleet-scheduler launched: for a pod that
	// found no room, the wait from pending to running on its new node.
	PodsStartupDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "pods", Name: "startup_duration_seconds",
		Help:    "Time from pod creation until the pod is running, for pods on nodes fleet-scheduler launched, in seconds.",
		Buckets: startupBuckets,
	})
	// NodeClaimsStartupDuration is the time from a NodeClaim's launch
	// (CreateFleet answered) to its Node initialized (Ready, startup taints
	// gone): boot, kubeadm join, registration. Karpenter has no metric for
	// this span; the name follows its karpenter_nodeclaims_*_duration_seconds.
	NodeClaimsStartupDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "startup_duration_seconds",
		Help:    "Time from a NodeClaim's launch until its Node is initialized, in seconds, by nodepool.",
		Buckets: startupBuckets,
	}, []string{"nodepool"})
	// CloudProviderErrors counts failed cloud provider calls, by the
	// controller that made them, the method and the error's reason.
	CloudProviderErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "cloudprovider", Name: "errors_total",
		Help: "Total number of errors returned from CloudProvider calls, by controller, method, provider and error.",
	}, []string{"controller", "method", "provider", "error"})
	// CloudProviderDuration is how long cloud provider calls take, by the
	// controller that made them and the method.
	CloudProviderDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "cloudprovider", Name: "duration_seconds",
		Help:    "Duration of cloud provider method calls, by controller, method and provider, in seconds.",
		Buckets: metrics.ExponentialBuckets(0.01, 2, 14),
	}, []string{"controller", "method", "provider"})
	// BootstrapTokenChecks counts checks of the join credentials in SSM
	// (TokenReview, cluster-info), by result: Valid, or what is wrong
	// (BootstrapTokenRejected, CACertHashMismatch...). Karpenter has no
	// such metric; the name follows its karpenter_<subsystem>_*_total.
	BootstrapTokenChecks = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "bootstrap", Name: "token_checks_total",
		Help: "Checks of the kubeadm join credentials nodes are launched with, by result (Valid or the problem found).",
	}, []string{"result"})
	// BootstrapTokenValid is 1 while the last check found the join
	// credentials valid, 0 while it found them unusable.
	BootstrapTokenValid = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: namespace, Subsystem: "bootstrap", Name: "token_valid",
		Help: "1 when the last check of the kubeadm join credentials found them valid, 0 when it found them unusable.",
	})
	// ReconcilePanics counts panics recovered in a controller's reconcile
	// (or in the Provisioner's PostFilter: controller="provisioner"), under
	// controller-runtime's name, which Karpenter exports.
	ReconcilePanics = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "controller_runtime", Subsystem: "reconcile", Name: "panics_total",
		Help: "Total number of reconciliation panics per controller.",
	}, []string{"controller"})
	// NodesAllocatable is each managed node's allocatable, by resource.
	NodesAllocatable = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: namespace, Subsystem: "nodes", Name: "allocatable",
		Help: "Node allocatable, by node, nodepool, instance type, capacity type, zone and resource type.",
	}, []string{"node_name", "nodepool", "instance_type", "capacity_type", "zone", "resource_type"})

	// InterruptionReceivedMessages counts messages taken off the interruption
	// queue, by kind (Karpenter's message types; no_op for events that ask
	// for nothing, malformed for bodies that are no readable event).
	InterruptionReceivedMessages = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "interruption", Name: "received_messages_total",
		Help: "Number of messages received from the interruption queue, by message type.",
	}, []string{"message_type"})
	// InterruptionDeletedMessages counts messages deleted from the queue:
	// handled, ignored or malformed alike.
	InterruptionDeletedMessages = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "interruption", Name: "deleted_messages_total",
		Help: "Number of messages deleted from the interruption queue.",
	})
	// InterruptionMessageQueueDuration is how long a handled message waited
	// on the queue: from SQS accepting it until it was acted on.
	InterruptionMessageQueueDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "interruption", Name: "message_queue_duration_seconds",
		Help:    "Time from an interruption message reaching the queue until it was handled, in seconds.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300},
	})
	// InterruptionUnknownInstanceMessages counts messages about instances
	// no NodeClaim owns (other workloads in the account, or nodes already
	// gone); they are deleted without action.
	InterruptionUnknownInstanceMessages = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "interruption", Name: "unknown_instance_messages_total",
		Help: "Number of interruption messages about instances that belong to no NodeClaim, by message type.",
	}, []string{"message_type"})
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

// all is every metric Register adds.
var all = []metrics.Registerable{
	NodeClaimsCreated, NodeClaimsLaunched, NodeClaimsRegistered, NodeClaimsInitialized,
	NodeClaimsTerminated, NodeClaimsDisrupted, ProvisionerSchedulingDuration,
	SchedulerSchedulingDuration, PodsStartupDuration, NodesAllocatable,
	NodeClaimsStartupDuration, CloudProviderErrors, CloudProviderDuration, InterruptionReceivedMessages,
	InterruptionDeletedMessages, InterruptionMessageQueueDuration, InterruptionUnknownInstanceMessages,
	BootstrapTokenChecks, BootstrapTokenValid, ReconcilePanics,
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
