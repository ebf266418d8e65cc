// Package instances walks the EC2 instances DescribeInstances finds, for the
// sandbox's helpers that watch what fleet-scheduler launched into moto.
package instances

import (
	"context"
	"iter"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// All yields the instances matching filters, every reservation of every
// page, fetching a page only when the one before is done. A page that
// cannot be read is yielded as an error, and ends the walk.
func All(ctx context.Context, api ec2.DescribeInstancesAPIClient, filters ...ec2types.Filter) iter.Seq2[ec2types.Instance, error] {
	return func(yield func(ec2types.Instance, error) bool) {
		pages := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: filters})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(ec2types.Instance{}, err)
				return
			}
			for _, r := range page.Reservations {
				for _, inst := range r.Instances {
					if !yield(inst, nil) {
						return
					}
				}
			}
		}
	}
}
