// Package instanceprofile makes the IAM instance profile that instances of
// an EC2NodeClass naming a role (spec.role) launch with: one profile per
// class, named from the cluster, region and class, holding that role.
// A class that names its own instanceProfile needs none of this.
package instanceprofile

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"k8s.io/klog/v2"
)

// IAMAPI is the part of the IAM client used here.
type IAMAPI interface {
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	CreateInstanceProfile(context.Context, *iam.CreateInstanceProfileInput, ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	AddRoleToInstanceProfile(context.Context, *iam.AddRoleToInstanceProfileInput, ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
	RemoveRoleFromInstanceProfile(context.Context, *iam.RemoveRoleFromInstanceProfileInput, ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error)
	DeleteInstanceProfile(context.Context, *iam.DeleteInstanceProfileInput, ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error)
}

// RoleNotFoundError means the class's role does not exist: the class is
// not ready until it does (or names another).
type RoleNotFoundError struct{ Role string }

func (e *RoleNotFoundError) Error() string {
	return fmt.Sprintf("IAM role %q (spec.role) not found", e.Role)
}

// Provider makes and removes the profiles.
type Provider struct {
	IAM         IAMAPI
	ClusterName string
	Region      string
}

// Name is the profile of a class: stable for the class, distinct across
// clusters and regions, within IAM's 128 characters.
func (p *Provider) Name(className string) string {
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%s/%s", p.Region, className)
	name := fmt.Sprintf("%s_%d", p.ClusterName, h.Sum64())
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	return name
}

// Ensure makes the class's profile if it is missing and puts role in it
// (taking out any other role), and returns its name. A role that does not
// exist is a RoleNotFoundError; other failures are the SDK's errors.
func (p *Provider) Ensure(ctx context.Context, className, role string) (string, error) {
	name := p.Name(className)
	out, err := p.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	var profile *iamtypes.InstanceProfile
	switch {
	case err == nil:
		profile = out.InstanceProfile
	case notFound(err):
		created, err := p.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{
			InstanceProfileName: aws.String(name),
			Path:                aws.String("/fleet-scheduler/" + p.ClusterName + "/"),
			Tags: []iamtypes.Tag{
				{Key: aws.String("kubernetes.io/cluster/" + p.ClusterName), Value: aws.String("owned")},
				{Key: aws.String("karpenter.k8s.aws/ec2nodeclass"), Value: aws.String(className)},
				{Key: aws.String("topology.kubernetes.io/region"), Value: aws.String(p.Region)},
			},
		})
		if err != nil {
			return "", fmt.Errorf("creating instance profile %s: %w", name, err)
		}
		profile = created.InstanceProfile
		klog.FromContext(ctx).Info("Created instance profile", "ec2NodeClass", className, "instanceProfile", name)
	default:
		return "", fmt.Errorf("reading instance profile %s: %w", name, err)
	}
	for _, r := range profile.Roles {
		if aws.ToString(r.RoleName) == role {
			return name, nil
		}
		if _, err := p.IAM.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
			InstanceProfileName: aws.String(name), RoleName: r.RoleName,
		}); err != nil && !notFound(err) {
			return "", fmt.Errorf("taking role %s out of instance profile %s: %w", aws.ToString(r.RoleName), name, err)
		}
	}
	if _, err := p.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{
		InstanceProfileName: aws.String(name), RoleName: aws.String(role),
	}); err != nil {
		if notFound(err) {
			return "", &RoleNotFoundError{Role: role}
		}
		return "", fmt.Errorf("adding role %s to instance profile %s: %w", role, name, err)
	}
	klog.FromContext(ctx).Info("Put role in instance profile", "ec2NodeClass", className, "instanceProfile", name, "role", role)
	return name, nil
}

// Delete removes the class's profile and the roles in it; a missing
// profile is not an error.
func (p *Provider) Delete(ctx context.Context, className string) error {
	name := p.Name(className)
	out, err := p.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading instance profile %s: %w", name, err)
	}
	for _, r := range out.InstanceProfile.Roles {
		if _, err := p.IAM.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
			InstanceProfileName: aws.String(name), RoleName: r.RoleName,
		}); err != nil && !notFound(err) {
			return fmt.Errorf("taking role %s out of instance profile %s: %w", aws.ToString(r.RoleName), name, err)
		}
	}
	if _, err := p.IAM.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(name)}); err != nil && !notFound(err) {
		return fmt.Errorf("deleting instance profile %s: %w", name, err)
	}
	klog.FromContext(ctx).Info("Deleted instance profile", "ec2NodeClass", className, "instanceProfile", name)
	return nil
}

func notFound(err error) bool {
	var nse *iamtypes.NoSuchEntityException
	return errors.As(err, &nse)
}
