package failover

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/join"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
	fleetec2 "github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/test/sandboxtest"
)

type instance struct{ id, state string }

// instancesByClaim are the cluster's instances in any state, terminated
// ones included, by the claim they are tagged with.
func instancesByClaim(ctx context.Context, t *testing.T) map[string][]instance {
	t.Helper()
	out := map[string][]instance{}
	owned := ec2types.Filter{Name: aws.String("tag:" + fleetec2.ClusterTagKey(world.ClusterName)), Values: []string{"owned"}}
	for claim, instances := range sandboxtest.InstancesByClaim(ctx, t, sandbox.EC2, owned) {
		for _, i := range instances {
			out[claim] = append(out[claim], instance{id: aws.ToString(i.InstanceId), state: string(i.State.Name)})
		}
	}
	return out
}

// userDataJoin is the join in a claim's launch template, if it has one yet.
func userDataJoin(ctx context.Context, claim string) (join.JoinScript, bool) {
	out, err := sandbox.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(fleetec2.LaunchTemplateName(world.ClusterName, claim)), Versions: []string{"$Latest"}})
	if err != nil || len(out.LaunchTemplateVersions) != 1 || out.LaunchTemplateVersions[0].LaunchTemplateData == nil {
		return join.JoinScript{}, false
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.LaunchTemplateVersions[0].LaunchTemplateData.UserData))
	if err != nil {
		return join.JoinScript{}, false
	}
	j, err := join.ParseJoin(string(raw))
	return j, err == nil
}

// allowed asks the apiserver whether user may verb resource in namespace.
func allowed(ctx context.Context, t *testing.T, user, verb, resource, namespace string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: namespace}}}
	got, err := sandbox.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.Allowed
}
