// Package ec2 is the narrow cloud interface the provisioning controllers
// use: it resolves an EC2NodeClass's selector terms to subnets, security
// groups and AMIs, launches one instance per NodeClaim through a per-claim
// launch template and an instant EC2 Fleet, and gets, lists and terminates
// the instances it launched. Inputs are plain structs defined here.
package ec2

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// EC2API is the subset of the EC2 client this package calls.
type EC2API interface {
	DescribeSubnets(context.Context, *awsec2.DescribeSubnetsInput, ...func(*awsec2.Options)) (*awsec2.DescribeSubnetsOutput, error)
	DescribeSecurityGroups(context.Context, *awsec2.DescribeSecurityGroupsInput, ...func(*awsec2.Options)) (*awsec2.DescribeSecurityGroupsOutput, error)
	DescribeImages(context.Context, *awsec2.DescribeImagesInput, ...func(*awsec2.Options)) (*awsec2.DescribeImagesOutput, error)
	DescribeInstances(context.Context, *awsec2.DescribeInstancesInput, ...func(*awsec2.Options)) (*awsec2.DescribeInstancesOutput, error)
	DescribeLaunchTemplates(context.Context, *awsec2.DescribeLaunchTemplatesInput, ...func(*awsec2.Options)) (*awsec2.DescribeLaunchTemplatesOutput, error)
	CreateLaunchTemplate(context.Context, *awsec2.CreateLaunchTemplateInput, ...func(*awsec2.Options)) (*awsec2.CreateLaunchTemplateOutput, error)
	DeleteLaunchTemplate(context.Context, *awsec2.DeleteLaunchTemplateInput, ...func(*awsec2.Options)) (*awsec2.DeleteLaunchTemplateOutput, error)
	CreateFleet(context.Context, *awsec2.CreateFleetInput, ...func(*awsec2.Options)) (*awsec2.CreateFleetOutput, error)
	TerminateInstances(context.Context, *awsec2.TerminateInstancesInput, ...func(*awsec2.Options)) (*awsec2.TerminateInstancesOutput, error)
}

// SSMAPI is the subset of the SSM client this package calls.
type SSMAPI interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var (
	_ EC2API = (*awsec2.Client)(nil)
	_ SSMAPI = (*ssm.Client)(nil)
)

// RetryOptions configure the SDK's standard retryer, which retries
// throttling (RequestLimitExceeded and friends), 5xx answers and connection
// errors with exponential backoff and jitter.
type RetryOptions struct {
	// MaxAttempts per API call, first attempt included (default 8).
	MaxAttempts int
	// MaxBackoff caps the delay between attempts (default 20s).
	MaxBackoff time.Duration
}

// Retry defaults. Throttling is the common transient error on EC2 and its
// backoff starts at 1s, so eight attempts ride out roughly a minute of it.
const (
	DefaultMaxAttempts = 8
	DefaultMaxBackoff  = 20 * time.Second
)

func (r RetryOptions) retryer() func() aws.Retryer {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = r.MaxAttempts
			o.MaxBackoff = r.MaxBackoff
		})
	}
}

// LoadDefaultConfig loads the AWS SDK's default configuration chain
// (environment, shared files, instance role), in region when it is set.
func LoadDefaultConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	return awsconfig.LoadDefaultConfig(ctx, opts...)
}

// NewEC2Client returns an EC2 client for cfg that uses the standard retryer
// configured by r (overriding cfg's retry settings).
func NewEC2Client(cfg aws.Config, r RetryOptions) *awsec2.Client {
	return awsec2.NewFromConfig(r.apply(cfg))
}

// NewSSMClient returns an SSM client for cfg with the same retry policy.
func NewSSMClient(cfg aws.Config, r RetryOptions) *ssm.Client {
	return ssm.NewFromConfig(r.apply(cfg))
}

// NewIAMClient returns an IAM client with the same retry policy (for the
// instance profiles of classes that name a role).
func NewIAMClient(cfg aws.Config, r RetryOptions) *iam.Client {
	return iam.NewFromConfig(r.apply(cfg))
}

// NewSQSClient returns an SQS client with the same retry policy (for the
// interruption queue).
func NewSQSClient(cfg aws.Config, r RetryOptions) *sqs.Client {
	return sqs.NewFromConfig(r.apply(cfg))
}

// apply is a copy of cfg that retries as r says.
func (r RetryOptions) apply(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	cfg.Retryer = r.retryer()
	cfg.RetryMode = aws.RetryModeStandard
	cfg.RetryMaxAttempts = 0
	return cfg
}
