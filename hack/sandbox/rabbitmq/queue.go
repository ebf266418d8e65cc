package rabbitmq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Queue is the runbook's queue: scan requests, one message per scan, which
// KEDA scales scan-worker on.
const Queue = "scan"

// Dial connects to the broker at url, giving up on the TCP connection
// after 10 s.
func Dial(url, name string) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	return amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second), Properties: props})
}

// WithChannel runs use on a channel of its own connection, named name, to
// the broker at url, and closes the connection after.
func WithChannel(url, name string, use func(*amqp.Channel) error) error {
	conn, err := Dial(url, name)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	return use(ch)
}

// DeclareQueue declares queue as a durable classic queue (a no-op when it
// exists with those properties).
func DeclareQueue(url, queue string) error {
	return WithChannel(url, "sandbox", func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(queue, true, false, false, false, nil)
		return err
	})
}

// Publish publishes n persistent messages to queue through the default
// exchange and returns once the broker has confirmed every one of them.
func Publish(ctx context.Context, url, queue string, n int) error {
	return WithChannel(url, "sandbox publish", func(ch *amqp.Channel) error {
		if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("queue %s: %w", queue, err)
		}
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("publisher confirms: %w", err)
		}
		now := time.Now()
		confirms := make([]*amqp.DeferredConfirmation, 0, n)
		for i := range n {
			id := strconv.FormatInt(now.UnixMilli(), 10) + "-" + strconv.Itoa(i+1)
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{
				DeliveryMode: amqp.Persistent, ContentType: "application/json", MessageId: id, Timestamp: now,
				Body: []byte(`{"scan":"` + id + `"}`),
			})
			if err != nil {
				return fmt.Errorf("publishing message %d of %d: %w", i+1, n, err)
			}
			confirms = append(confirms, dc)
		}
		for i, dc := range confirms {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return fmt.Errorf("waiting for the broker to confirm message %d of %d: %w", i+1, n, err)
			}
			if !ok {
				return fmt.Errorf("the broker refused message %d of %d (nack)", i+1, n)
			}
		}
		return nil
	})
}

// Depth is the number of messages ready for delivery in queue (the count
// KEDA's rabbitmq trigger reads over AMQP; messages delivered to a worker
// and not yet acknowledged are not in it).
func Depth(url, queue string) (int, error) {
	var depth int
	err := WithChannel(url, "sandbox queue-depth", func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		depth = q.Messages
		return err
	})
	return depth, err
}
