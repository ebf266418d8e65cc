package aws_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
	"github.com/fleet-scheduler/fleet-scheduler/test/awsfault"
)

// spotPriced: a pool that allows both capacity types ranks an instance
// type's spot offerings, priced by EC2's DescribeSpotPriceHistory, below its
// on-demand ones, and a claim of it launches spot.
func (h *harness) spotPriced(t *testing.T) {
	e := h.e
	opts := h.op.Options(t, "both", "m5.large")
	if len(opts) == 0 || opts[0].CapacityType != karpv1.CapacityTypeSpot {
		t.Fatalf("cheapest m5.large option %+v, want a spot one", opts[0])
	}
	if h.op.Prices().SpotEstimated() {
		t.Fatal("spot prices are estimates; DescribeSpotPriceHistory answered")
	}
	var onDemand float64
	for _, o := range opts {
		if o.CapacityType == karpv1.CapacityTypeOnDemand {
			onDemand = o.Price
		}
	}
	out, err := e.EC2.DescribeSpotPriceHistory(e.Ctx, &awsec2.DescribeSpotPriceHistoryInput{
		InstanceTypes: []ec2types.InstanceType{"m5.large"}, ProductDescriptions: pricing.LinuxProductDescriptions,
		Filters: []ec2types.Filter{{Name: aws.String("availability-zone"), Values: []string{opts[0].Zone}}},
	})
	if err != nil || len(out.SpotPriceHistory) == 0 {
		t.Fatalf("DescribeSpotPriceHistory: %v", err)
	}
	price, _ := strconv.ParseFloat(aws.ToString(out.SpotPriceHistory[0].SpotPrice), 64)
	if opts[0].Price != price || !(price < onDemand) {
		t.Errorf("spot m5.large in %s at %v (EC2 says %v), on-demand %v", opts[0].Zone, opts[0].Price, price, onDemand)
	}
	nc := h.claim(t, "both", "m5.large")
	got, err := h.op.Cloud.Create(e.Ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if ct := got.Labels[karpv1.CapacityTypeLabelKey]; ct != karpv1.CapacityTypeSpot || lifecycle(t, h, got) != ec2types.InstanceLifecycleTypeSpot {
		t.Errorf("launched as %q (EC2 lifecycle %q), want spot", ct, lifecycle(t, h, got))
	}
	if err := h.op.Cloud.Delete(e.Ctx, got); err != nil {
		t.Fatal(err)
	}
}

// spotFallback: when EC2 has no spot capacity for any offering of a claim
// that allows on-demand, the same Create launches it on-demand; the spot
// offerings are marked unavailable, so the next claim goes on-demand at
// once. A spot-only claim fails instead.
func (h *harness) spotFallback(t *testing.T) {
	e := h.e
	types := []string{"c5.large", "c5a.large"}
	h.proxy.Add(awsfault.FleetErrors(1, "InsufficientInstanceCapacity", awsfault.FailAll))
	fleets := h.proxy.Calls("CreateFleet")
	nc := h.claim(t, "both", types...)
	got, err := h.op.Cloud.Create(e.Ctx, nc)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if n := h.proxy.Calls("CreateFleet") - fleets; n != 2 {
		t.Errorf("CreateFleet called %d times, want 2 (spot, then on-demand)", n)
	}
	if ct := got.Labels[karpv1.CapacityTypeLabelKey]; ct != karpv1.CapacityTypeOnDemand || lifecycle(t, h, got) != "" {
		t.Errorf("launched as %q (EC2 lifecycle %q), want on-demand", ct, lifecycle(t, h, got))
	}
	if live := e.LiveInstances(t, nc.Name); len(live) != 1 {
		t.Errorf("live instances %+v, want one", live)
	}
	for _, o := range h.op.Options(t, "both", types...) {
		if o.CapacityType == karpv1.CapacityTypeSpot {
			t.Errorf("spot %s in %s still offered after EC2 had no capacity for it", o.InstanceType, o.Zone)
		}
	}
	if err := h.op.Cloud.Delete(e.Ctx, got); err != nil {
		t.Fatal(err)
	}

	// Every spot offering marked: on-demand straight away, one CreateFleet.
	fleets = h.proxy.Calls("CreateFleet")
	next, err := h.op.Cloud.Create(e.Ctx, h.claim(t, "both", types...))
	if err != nil {
		t.Fatal(err)
	}
	if n := h.proxy.Calls("CreateFleet") - fleets; n != 1 || next.Labels[karpv1.CapacityTypeLabelKey] != karpv1.CapacityTypeOnDemand {
		t.Errorf("with spot marked unavailable: %d CreateFleet calls, launched %q; want 1, on-demand", n, next.Labels[karpv1.CapacityTypeLabelKey])
	}
	if err := h.op.Cloud.Delete(e.Ctx, next); err != nil {
		t.Fatal(err)
	}

	// A claim that allows spot only has nothing to fall back to.
	spotOnly := h.claim(t, "spot-only", "m5.xlarge")
	h.proxy.Add(awsfault.FleetErrors(1, "InsufficientInstanceCapacity", awsfault.FailAll))
	fleets = h.proxy.Calls("CreateFleet")
	if _, err := h.op.Cloud.Create(context.Background(), spotOnly); !cloudprovider.IsInsufficientCapacity(err) {
		t.Errorf("spot-only Create: %v, want insufficient capacity", err)
	}
	if n := h.proxy.Calls("CreateFleet") - fleets; n != 1 {
		t.Errorf("spot-only: %d CreateFleet calls, want 1", n)
	}
	if got := e.ClaimInstances(t, spotOnly.Name); len(got) != 0 {
		t.Errorf("instances after a failed spot-only launch: %+v", got)
	}
	if err := h.op.Cloud.Delete(e.Ctx, spotOnly); err != nil {
		t.Fatal(err)
	}
}

// lifecycle is EC2's InstanceLifecycle of the claim's instance: "spot" for
// spot, empty for on-demand.
func lifecycle(t *testing.T, h *harness, nc *karpv1.NodeClaim) ec2types.InstanceLifecycleType {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		for _, inst := range h.e.LiveInstances(t, nc.Name) {
			out, err := h.e.EC2.DescribeInstances(h.e.Ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{inst.ID}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Reservations {
				for _, i := range r.Instances {
					return i.InstanceLifecycle
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live instance for %s", nc.Name)
		}
	}
}
