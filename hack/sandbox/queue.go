package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/rabbitmq"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
)

// queueCommand runs `bin/sandbox publish N` (N messages to the scan queue,
// confirmed by the broker) or `bin/sandbox queue-depth` (the number of
// messages ready in it, one integer) against the sandbox of dir.
func queueCommand(dir string, args []string) error {
	url, err := brokerURL(dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "publish":
		if len(args) != 2 {
			return errors.New("usage: bin/sandbox publish N")
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("publish: N must be a positive number, not %q", args[1])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		if err := rabbitmq.Publish(ctx, url, rabbitmq.Queue, n); err != nil {
			return err
		}
		depth, err := rabbitmq.Depth(url, rabbitmq.Queue)
		if err != nil {
			return err
		}
		fmt.Printf("published %d messages to queue %s in %.1fs (confirmed); %d ready now\n", n, rabbitmq.Queue, time.Since(start).Seconds(), depth)
	case "queue-depth":
		if len(args) != 1 {
			return errors.New("usage: bin/sandbox queue-depth")
		}
		depth, err := rabbitmq.Depth(url, rabbitmq.Queue)
		if err != nil {
			return err
		}
		fmt.Println(depth)
	}
	return nil
}

// brokerURL reads the URL the running sandbox wrote.
func brokerURL(dir string) (string, error) {
	if dir == "" {
		root, err := controlplane.RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".sandbox")
	}
	b, err := os.ReadFile(filepath.Join(dir, world.BrokerURLFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no RabbitMQ in the sandbox of %s: start it with `make run KEDA=1`", dir)
	}
	return strings.TrimSpace(string(b)), err
}
