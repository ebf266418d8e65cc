package sandboxtest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	fleetec2 "github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

// InstancesByClaim are the instances matching filters that are tagged with
// a NodeClaim, by that claim.
func InstancesByClaim(ctx context.Context, t testing.TB, client *ec2.Client, filters ...ec2types.Filter) map[string][]ec2types.Instance {
	t.Helper()
	filters = append(filters, ec2types.Filter{Name: aws.String("tag-key"), Values: []string{fleetec2.TagNodeClaim}})
	out := map[string][]ec2types.Instance{}
	pages := ec2.NewDescribeInstancesPaginator(client, &ec2.DescribeInstancesInput{Filters: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				for _, tag := range i.Tags {
					if aws.ToString(tag.Key) == fleetec2.TagNodeClaim {
						out[aws.ToString(tag.Value)] = append(out[aws.ToString(tag.Value)], i)
					}
				}
			}
		}
	}
	return out
}
