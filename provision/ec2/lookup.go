package ec2

import (
	"context"
	"fmt"
	"sync"
	"time"

	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
)

// Every launch first asks EC2 whether its claim has an instance already (an
// earlier attempt may have got that far). In a scale-up of hundreds of
// claims, one DescribeInstances per claim spends EC2's request-rate budget
// and, against a slow endpoint, queued past the call's deadline: claims
// timed out before they launched. Lookups that arrive within lookupWindow
// of each other share one call filtering on all their claim names.
//
// Written here because neither the AWS SDK nor client-go batch requests;
// it is a dozen lines of channel and timer.
const (
	lookupWindow = 50 * time.Millisecond
	// maxLookupBatch bounds the claim names in one filter (EC2 takes up to
	// 200 values per filter).
	maxLookupBatch = 100
)

// claimLookups gathers concurrent lookups per cluster.
type claimLookups struct {
	mu   sync.Mutex
	open map[string]*lookupBatch // by cluster name
}

type lookupBatch struct {
	claims []string
	done   chan struct{}
	found  map[string][]*Instance // by claim name, oldest first
	err    error
}

// join adds claim to the cluster's open batch, or opens one that runs
// describe after lookupWindow, and returns it.
func (l *claimLookups) join(ctx context.Context, cluster, claim string, describe func(context.Context, string, []string) (map[string][]*Instance, error)) *lookupBatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == nil {
		l.open = map[string]*lookupBatch{}
	}
	b := l.open[cluster]
	if b == nil || len(b.claims) >= maxLookupBatch {
		b = &lookupBatch{done: make(chan struct{})}
		l.open[cluster] = b
		// The call outlives a caller that gives up: others wait on it. It
		// keeps the first caller's logger, and the call's own deadline.
		callCtx := context.WithoutCancel(ctx)
		time.AfterFunc(lookupWindow, func() {
			l.mu.Lock()
			if l.open[cluster] == b {
				delete(l.open, cluster)
			}
			claims := b.claims
			l.mu.Unlock()
			b.found, b.err = describe(callCtx, cluster, claims)
			close(b.done)
		})
	}
	for _, c := range b.claims {
		if c == claim {
			return b
		}
	}
	b.claims = append(b.claims, claim)
	return b
}

// findClaimInstance returns the live instance of a claim, or nil. Should
// there be several (which Launch exists to prevent), the oldest is returned.
func (p *Provider) findClaimInstance(ctx context.Context, clusterName, claimName string) (*Instance, error) {
	b := p.lookups.join(ctx, clusterName, claimName, p.describeClaims)
	select {
	case <-b.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("looking for the instance of claim %s: %w", claimName, ctx.Err())
	}
	if b.err != nil {
		return nil, fmt.Errorf("looking for the instance of claim %s: %w", claimName, b.err)
	}
	found := b.found[claimName]
	if len(found) == 0 {
		return nil, nil
	}
	if len(found) > 1 {
		ids := make([]string, len(found))
		for i, inst := range found {
			ids[i] = inst.ID
		}
		klog.FromContext(ctx).Info("Several instances carry the same claim", "instances", ids)
	}
	return found[0], nil
}

// describeClaims lists the live instances of the claims in one call.
func (p *Provider) describeClaims(ctx context.Context, clusterName string, claims []string) (map[string][]*Instance, error) {
	found, err := p.describeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		filter("tag:"+ClusterTagKey(clusterName), "owned"),
		filter("tag:"+TagNodeClaim, claims...),
		// shutting-down is left out: such an instance is going away and the
		// claim needs a new one.
		filter("instance-state-name", liveStates[:4]...),
	}})
	if err != nil {
		return nil, err
	}
	byClaim := map[string][]*Instance{}
	for _, inst := range found { // describeInstances sorts oldest first
		name := inst.Tags[TagNodeClaim]
		byClaim[name] = append(byClaim[name], inst)
	}
	return byClaim, nil
}
