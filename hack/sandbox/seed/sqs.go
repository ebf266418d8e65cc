package seed

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// InterruptionQueue creates the interruption queue named after the cluster,
// with the attributes manifests/interruption gives it (5 minutes'
// retention, SQS-managed encryption), and returns its URL. The EventBridge
// rules are left out: moto's EC2 sends no events, so messages come from
// `aws sqs send-message` (or a test) instead.
func InterruptionQueue(ctx context.Context, c *sqs.Client, cluster string) (string, error) {
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(cluster),
		Attributes: map[string]string{
			string(sqstypes.QueueAttributeNameMessageRetentionPeriod): "300",
			string(sqstypes.QueueAttributeNameSqsManagedSseEnabled):   "true",
		},
	})
	if err != nil {
		return "", fmt.Errorf("creating the interruption queue %s: %w", cluster, err)
	}
	return aws.ToString(out.QueueUrl), nil
}
