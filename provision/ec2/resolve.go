package ec2

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
)

// Resolver turns EC2NodeClass selector terms into concrete resources. Terms
// are ORed; the fields inside one term are ANDed. Resolution fails when no
// term matches anything, and the error names every term.
type Resolver struct {
	ec2  EC2API
	ssm  SSMAPI
	opts ResolverOptions
}

// ResolverOptions configure AMI alias resolution.
type ResolverOptions struct {
	// KubernetesVersion ("1.33") selects the image line of an alias.
	KubernetesVersion string
	// AliasParameter maps an alias to the SSM parameter holding the image id
	// for one architecture ("x86_64" or "arm64"). Default: EKSAliasParameter.
	AliasParameter func(family, version, arch, k8sVersion string) (string, error)
}

// NewResolver returns a resolver. ssm may be nil if no AMI term uses an
// alias or an SSM parameter.
func NewResolver(ec2 EC2API, ssm SSMAPI, opts ResolverOptions) *Resolver {
	if opts.AliasParameter == nil {
		opts.AliasParameter = EKSAliasParameter
	}
	return &Resolver{ec2: ec2, ssm: ssm, opts: opts}
}

// Subnets resolves subnet terms to available subnets, sorted by zone and,
// within a zone, by free addresses (most first).
func (r *Resolver) Subnets(ctx context.Context, terms []SubnetSelectorTerm) ([]Subnet, error) {
	if len(terms) == 0 {
		return nil, fmt.Errorf("subnetSelectorTerms: at least one term is required")
	}
	found := newMatches[Subnet]("subnet")
	for i, term := range terms {
		name := fmt.Sprintf("subnetSelectorTerms[%d] %s", i, describeTerm("id", term.ID, "", "", term.Tags))
		if term.ID == "" && len(term.Tags) == 0 {
			return nil, fmt.Errorf("%s: set id or tags", name)
		}
		if term.ID != "" && len(term.Tags) > 0 {
			return nil, fmt.Errorf("%s: id cannot be combined with tags", name)
		}
		filters := append(tagFilters(term.Tags), filter("state", "available"))
		if term.ID != "" {
			filters = append(filters, filter("subnet-id", term.ID))
		}
		err := eachPage(ctx, awsec2.NewDescribeSubnetsPaginator(r.ec2, &awsec2.DescribeSubnetsInput{Filters: filters}),
			func(page *awsec2.DescribeSubnetsOutput) {
				for _, s := range page.Subnets {
					id := aws.ToString(s.SubnetId)
					found.add(id, Subnet{ID: id, Zone: aws.ToString(s.AvailabilityZone), ZoneID: aws.ToString(s.AvailabilityZoneId),
						AvailableIPs: aws.ToInt32(s.AvailableIpAddressCount)})
				}
			})
		if err != nil {
			return nil, fmt.Errorf("%s: describing subnets: %w", name, err)
		}
		found.term(name)
	}
	return found.sorted(ctx, func(a, b Subnet) bool {
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		if a.AvailableIPs != b.AvailableIPs {
			return a.AvailableIPs > b.AvailableIPs
		}
		return a.ID < b.ID
	})
}

// SecurityGroups resolves security group terms, sorted by id.
func (r *Resolver) SecurityGroups(ctx context.Context, terms []SecurityGroupSelectorTerm) ([]SecurityGroup, error) {
	if len(terms) == 0 {
		return nil, fmt.Errorf("securityGroupSelectorTerms: at least one term is required")
	}
	found := newMatches[SecurityGroup]("security group")
	for i, term := range terms {
		name := fmt.Sprintf("securityGroupSelectorTerms[%d] %s", i, describeTerm("id", term.ID, "name", term.Name, term.Tags))
		if term.ID == "" && term.Name == "" && len(term.Tags) == 0 {
			return nil, fmt.Errorf("%s: set id, name or tags", name)
		}
		if term.ID != "" && (term.Name != "" || len(term.Tags) > 0) {
			return nil, fmt.Errorf("%s: id cannot be combined with other fields", name)
		}
		filters := tagFilters(term.Tags)
		if term.ID != "" {
			filters = append(filters, filter("group-id", term.ID))
		}
		if term.Name != "" {
			filters = append(filters, filter("group-name", term.Name))
		}
		err := eachPage(ctx, awsec2.NewDescribeSecurityGroupsPaginator(r.ec2, &awsec2.DescribeSecurityGroupsInput{Filters: filters}),
			func(page *awsec2.DescribeSecurityGroupsOutput) {
				for _, g := range page.SecurityGroups {
					id := aws.ToString(g.GroupId)
					found.add(id, SecurityGroup{ID: id, Name: aws.ToString(g.GroupName)})
				}
			})
		if err != nil {
			return nil, fmt.Errorf("%s: describing security groups: %w", name, err)
		}
		found.term(name)
	}
	return found.sorted(ctx, func(a, b SecurityGroup) bool { return a.ID < b.ID })
}

// SecurityGroupIDs returns the ids of groups.
func SecurityGroupIDs(groups []SecurityGroup) []string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = g.ID
	}
	return out
}

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

// tagFilters matches every tag; "*" matches any value of the key.
func tagFilters(tags map[string]string) []ec2types.Filter {
	out := make([]ec2types.Filter, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if tags[k] == "*" {
			out = append(out, filter("tag-key", k))
		} else {
			out = append(out, filter("tag:"+k, tags[k]))
		}
	}
	return out
}

// describeTerm renders a term for error messages: {id: x} or {name: y, tags: {k: v}}.
func describeTerm(k1, v1, k2, v2 string, tags map[string]string) string {
	var parts []string
	if v1 != "" {
		parts = append(parts, k1+": "+v1)
	}
	if v2 != "" {
		parts = append(parts, k2+": "+v2)
	}
	if len(tags) > 0 {
		kv := make([]string, 0, len(tags))
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			kv = append(kv, k+": "+tags[k])
		}
		parts = append(parts, "tags: {"+strings.Join(kv, ", ")+"}")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// pager is an SDK paginator.
type pager[O any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*awsec2.Options)) (O, error)
}

// eachPage hands every page of p to fn, stopping at the first error.
func eachPage[O any](ctx context.Context, p pager[O], fn func(O)) error {
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		fn(page)
	}
	return nil
}

// matches is what the selector terms of one kind resolved to: every match
// by id, and the terms that matched nothing.
type matches[T any] struct {
	kind      string
	seen      map[string]T
	unmatched []string
	// added counts what the current term matched.
	added int
}

func newMatches[T any](kind string) *matches[T] {
	return &matches[T]{kind: kind, seen: map[string]T{}}
}

// add records a resource the current term matched.
func (m *matches[T]) add(id string, v T) {
	m.seen[id] = v
	m.added++
}

// term ends the current term, called name: one that matched nothing is
// remembered for the error and the log.
func (m *matches[T]) term(name string) {
	if m.added == 0 {
		m.unmatched = append(m.unmatched, name)
	}
	m.added = 0
}

// sorted returns the matches in order, or an error naming every term when
// none matched anything; terms that matched nothing are logged.
func (m *matches[T]) sorted(ctx context.Context, less func(a, b T) bool) ([]T, error) {
	if len(m.seen) == 0 {
		return nil, fmt.Errorf("no %s matched: %s", m.kind, strings.Join(m.unmatched, "; "))
	}
	if len(m.unmatched) > 0 {
		klog.FromContext(ctx).V(1).Info("Selector terms matched nothing", "kind", m.kind, "terms", m.unmatched)
	}
	out := slices.Collect(maps.Values(m.seen))
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out, nil
}
