// Package interruption acts on the EC2 events EventBridge sends to the
// interruption queue, on the leader only, as Karpenter's interruption
// controller does: a spot interruption warning, an AWS Health scheduled
// change or an instance stopping or terminating drains and deletes the
// instance's NodeClaim at once (its pods are provisioned for elsewhere as
// they are evicted, while the instance still runs), and a spot interruption
// also takes the interrupted offering out of use for a while; a rebalance
// recommendation is an event and a metric only. Messages about instances
// no claim owns, and messages that are no readable event, are counted and
// deleted.
package interruption

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
)

// Name is the controller's name.
const Name = "interruption"

// loopKey is the one key the controller's queue carries: each reconcile is
// one long poll of the SQS queue.
const loopKey = "interruption"

// SQSAPI is the part of the SQS client the controller calls; the IAM policy
// grants exactly these actions, on the interruption queue only.
type SQSAPI interface {
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// OfferingMarker takes an offering (instance type, zone, capacity type) out
// of use for a while: the catalogue (catalog.ClassOptions).
type OfferingMarker interface {
	MarkUnavailable(instanceType, zone, capacityType string, ttl time.Duration)
}

// Receive settings, Karpenter's: ten messages at most per call, a 20 s long
// poll (SQS's maximum), and 20 s in which a received message stays hidden
// from other receivers; one not deleted by then (its handling failed) is
// received again.
const (
	maxMessages       = 10
	waitTimeSeconds   = 20
	visibilityTimeout = 20
)

// DefaultUnavailableTTL is how long an interrupted spot offering stays out
// of use, as long as one that reported insufficient capacity.
const DefaultUnavailableTTL = 3 * time.Minute

// Backoff after a failed SQS call, doubling up to maxBackoff; minPoll spaces
// polls that come back empty sooner than a long poll would.
const (
	minBackoff = time.Second
	maxBackoff = time.Minute
	minPoll    = time.Second
)

// Controller polls the queue. Build it with its fields set, then Register.
type Controller struct {
	SQS SQSAPI
	// QueueName is the interruptionQueue setting.
	QueueName string
	Karpenter versioned.Interface
	Kube      kubernetes.Interface
	// Claims is the NodeClaim informer's indexer, set by Register with the
	// instance-id index added.
	Claims    cache.Indexer
	Nodes     corelisters.NodeLister
	Offerings OfferingMarker
	Recorder  events.EventRecorder
	// UnavailableTTL; DefaultUnavailableTTL when zero.
	UnavailableTTL time.Duration
	// Clock is the clock; the real one when nil.
	Clock clock.PassiveClock

	queueURL string
	failures int // consecutive failed SQS calls

	mu        sync.Mutex
	malformed map[string]bool // SQS message ids already logged as malformed
}

// Register adds the instance-id index to the claim informer (before it
// starts), hands its indexer to the controller's Controller and queues the
// poll loop's key: the loop polls SQS, so no informer feeds it.
func Register(ctl *controller.Controller, claims cache.SharedIndexInformer) error {
	c, ok := ctl.Reconciler().(*Controller)
	if !ok {
		return fmt.Errorf("interruption.Register: the controller runs a %T", ctl.Reconciler())
	}
	if err := claims.AddIndexers(cache.Indexers{instanceIDIndex: instanceIDOf}); err != nil {
		return fmt.Errorf("indexing NodeClaims by instance id: %w", err)
	}
	c.Claims = claims.GetIndexer()
	ctl.Enqueue(loopKey)
	return nil
}

// Reconcile is one long poll: it receives up to ten messages, handles them
// in parallel and deletes those it is done with. It never returns an error
// (the controller's rate limiter would back off for up to 16 minutes); it
// comes back after its own backoff instead.
func (c *Controller) Reconcile(ctx context.Context, _ string) (controller.Result, error) {
	logger := klog.FromContext(ctx).WithValues("queue", c.QueueName)
	ctx = klog.NewContext(ctx, logger)
	if c.queueURL == "" {
		out, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(c.QueueName)})
		if err != nil {
			return c.failed(ctx, "Finding the interruption queue failed (provisionerArgs.interruptionQueue names a queue that must exist in the cluster's region)", err), nil
		}
		c.queueURL = aws.ToString(out.QueueUrl)
		logger.Info("Watching the interruption queue", "url", c.queueURL)
	}
	began := c.now()
	out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(c.queueURL),
		MaxNumberOfMessages:         maxMessages,
		WaitTimeSeconds:             waitTimeSeconds,
		VisibilityTimeout:           visibilityTimeout,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp},
	})
	if err != nil {
		var gone *sqstypes.QueueDoesNotExist
		if errors.As(err, &gone) {
			c.queueURL = "" // deleted and perhaps made again: look it up anew
		}
		return c.failed(ctx, "Receiving from the interruption queue failed", err), nil
	}
	c.failures = 0
	workqueue.ParallelizeUntil(ctx, maxMessages, len(out.Messages), func(i int) {
		// A message that makes the handler panic is counted and left on
		// the queue (it comes back after its visibility timeout); the
		// others are handled, and the process lives on.
		defer func() {
			if r := recover(); r != nil {
				controller.Panicked(ctx, Name, r)
			}
		}()
		c.handle(ctx, &out.Messages[i])
	})
	if len(out.Messages) == 0 && c.now().Sub(began) < minPoll {
		return controller.Result{RequeueAfter: minPoll}, nil
	}
	return controller.Result{RequeueAfter: time.Millisecond}, nil
}

// failed logs a failed SQS call and returns when to try again. A call cut
// short because the controller is stopping is not logged.
func (c *Controller) failed(ctx context.Context, msg string, err error) controller.Result {
	if ctx.Err() != nil {
		return controller.Result{RequeueAfter: minBackoff}
	}
	c.failures++
	after := minBackoff << min(c.failures-1, 6)
	if after > maxBackoff {
		after = maxBackoff
	}
	klog.FromContext(ctx).Error(err, msg, "retryIn", after, "failures", c.failures)
	return controller.Result{RequeueAfter: after}
}

func (c *Controller) now() time.Time { return controller.Now(c.Clock) }

func (c *Controller) unavailableTTL() time.Duration {
	if c.UnavailableTTL > 0 {
		return c.UnavailableTTL
	}
	return DefaultUnavailableTTL
}
