package seed

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// ec2TrustPolicy lets EC2 instances take the role.
const ec2TrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// NodeRoleName is the role the example EC2NodeClass names (spec.role), as
// the team's Terraform creates it.
func NodeRoleName(cluster string) string { return "KarpenterNodeRole-" + cluster }

// NodeRole creates the nodes' IAM role; fleet-scheduler makes the instance
// profile for it.
func NodeRole(ctx context.Context, c *iam.Client, cluster string) error {
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String(NodeRoleName(cluster)), AssumeRolePolicyDocument: aws.String(ec2TrustPolicy),
	}); err != nil {
		return fmt.Errorf("creating IAM role %s: %w", NodeRoleName(cluster), err)
	}
	return nil
}
