package interruption

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/provision/interruption/messages"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// malformedType is the message_type of bodies that are no readable event.
const malformedType = "malformed"

// maxMalformedRemembered bounds the set of malformed message ids kept so a
// message that comes back (its deletion failed) is not logged again.
const maxMalformedRemembered = 1024

// handle acts on one message and deletes it, unless acting failed: then it
// stays on the queue and comes back after the visibility timeout.
func (c *Controller) handle(ctx context.Context, raw *sqstypes.Message) {
	logger := klog.FromContext(ctx).WithValues("messageID", aws.ToString(raw.MessageId))
	ctx = klog.NewContext(ctx, logger)
	msg, err := messages.Parse(aws.ToString(raw.Body))
	if err != nil {
		metrics.InterruptionReceivedMessages.WithLabelValues(malformedType).Inc()
		c.logMalformed(ctx, raw, err)
		c.delete(ctx, raw)
		return
	}
	metrics.InterruptionReceivedMessages.WithLabelValues(string(msg.Kind)).Inc()
	logger = logger.WithValues("kind", msg.Kind, "event", msg.ID)
	ctx = klog.NewContext(ctx, logger)
	if msg.Kind == messages.NoOp {
		logger.V(4).Info("Ignoring an event that asks for nothing", "source", msg.Source, "detailType", msg.DetailType, "detail", msg.Detail)
	} else {
		found, err := c.act(ctx, msg)
		if err != nil {
			logger.Error(err, "Acting on an interruption message failed; it stays on the queue and is retried", "instances", msg.InstanceIDs)
			return
		}
		if !found {
			metrics.InterruptionUnknownInstanceMessages.WithLabelValues(string(msg.Kind)).Inc()
			logger.V(2).Info("No NodeClaim owns the instances of the message; deleting it", "instances", msg.InstanceIDs)
		}
	}
	if sent := queuedAt(raw, msg); !sent.IsZero() {
		metrics.InterruptionMessageQueueDuration.Observe(max(c.now().Sub(sent), 0).Seconds())
	}
	c.delete(ctx, raw)
}

// queuedAt is when SQS accepted the message (its SentTimestamp), or the
// event's own time when SQS did not say.
func queuedAt(raw *sqstypes.Message, msg messages.Message) time.Time {
	if ms, err := strconv.ParseInt(raw.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms)
	}
	return msg.Time
}

func (c *Controller) delete(ctx context.Context, raw *sqstypes.Message) {
	_, err := c.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(c.queueURL), ReceiptHandle: raw.ReceiptHandle})
	if err != nil {
		// It comes back after the visibility timeout and is handled again;
		// every action on a claim is safe to repeat.
		klog.FromContext(ctx).Error(err, "Deleting an interruption message failed")
		return
	}
	metrics.InterruptionDeletedMessages.Inc()
}

// logMalformed logs a malformed message once, with what is wrong with it
// and its size; the body itself only at -v=4 (a queue can be sent anything,
// and a log is no place for whatever that was).
func (c *Controller) logMalformed(ctx context.Context, raw *sqstypes.Message, err error) {
	id := aws.ToString(raw.MessageId)
	c.mu.Lock()
	seen := c.malformed[id]
	if !seen {
		if c.malformed == nil || len(c.malformed) >= maxMalformedRemembered {
			c.malformed = map[string]bool{}
		}
		c.malformed[id] = true
	}
	c.mu.Unlock()
	logger := klog.FromContext(ctx)
	body := aws.ToString(raw.Body)
	if !seen {
		logger.Error(err, "Malformed interruption message; deleting it", "bytes", len(body))
	}
	if logger.V(4).Enabled() {
		const maxLogged = 512
		if len(body) > maxLogged {
			body = body[:maxLogged] + "..."
		}
		logger.V(4).Info("Malformed interruption message body", "body", body)
	}
}
