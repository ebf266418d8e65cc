package world

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleet-scheduler/fleet-scheduler/test/awsfault"
)

// The runbook's troubleshooting cases, injected with `make run FAULT=...`.
const (
	// FaultVcpuQuota: the account's vCPU quota is QuotaVCPUs: CreateFleet
	// answers VcpuLimitExceeded (on-demand) or MaxSpotInstanceCountExceeded
	// (spot) for every offering that would exceed it, counting the
	// instances running.
	FaultVcpuQuota = "vcpu-quota"
	// FaultExpiredToken: the token in SSM is one that expired (the
	// runbook's token, created 24 hours ago).
	FaultExpiredToken = "expired-token"
	// FaultNoCapacity: EC2 has no capacity for the cheapest instance types
	// that fit scan-worker (the first two of the first launch's offerings,
	// which the launcher orders cheapest first), in every zone.
	FaultNoCapacity = "no-capacity"
)

// Faults are the values FAULT takes.
var Faults = []string{FaultVcpuQuota, FaultExpiredToken, FaultNoCapacity}

// QuotaVCPUs is the vCPU quota of FaultVcpuQuota: one t3.xlarge fits,
// a second does not.
const QuotaVCPUs = 5

// noCapacityTypes is how many of the cheapest instance types FaultNoCapacity takes away.
const noCapacityTypes = 2

// startFaultProxy puts a fault proxy between fleet-scheduler and moto for
// the faults that are EC2's (the node simulator, kubectl and the aws CLI
// still see moto as it is).
func (w *World) startFaultProxy(ctx context.Context) error {
	w.SchedulerAWSEndpoint = w.MotoEndpoint
	var rule *awsfault.Rule
	switch w.Fault {
	case "", FaultExpiredToken:
		return nil
	case FaultVcpuQuota:
		rule = awsfault.SerialFleetErrors(w.vcpuQuota(ctx))
	case FaultNoCapacity:
		rule = awsfault.FleetErrorsBy(0, noCapacity())
	default:
		return fmt.Errorf("FAULT=%s: want one of %v", w.Fault, Faults)
	}
	proxy, err := awsfault.New(w.MotoEndpoint)
	if err != nil {
		return err
	}
	proxy.Add(rule)
	w.faultProxy = proxy
	w.SchedulerAWSEndpoint = proxy.URL
	w.progress("FAULT=%s: fleet-scheduler's AWS calls go through a fault proxy at %s", w.Fault, proxy.URL)
	return nil
}

// vcpuQuota fails the offerings that would take the running instances of
// the cluster past QuotaVCPUs, as EC2 Fleet does. The proxy hands it one
// CreateFleet call at a time, after the ones before have launched, so two
// launches at once cannot both fit.
func (w *World) vcpuQuota(ctx context.Context) func() func(awsfault.Override, string) string {
	vcpus := map[string]int32{} // only touched by one call at a time
	return func() func(awsfault.Override, string) string {
		used, err := w.runningVCPUs(ctx, vcpus)
		if err != nil {
			return func(awsfault.Override, string) string { return "" } // cannot tell: let EC2 (moto) decide
		}
		return func(o awsfault.Override, capacityType string) string {
			if _, ok := vcpus[o.InstanceType]; !ok {
				if err := w.describeVCPUs(ctx, vcpus, o.InstanceType); err != nil {
					return ""
				}
			}
			if used+vcpus[o.InstanceType] <= QuotaVCPUs {
				return ""
			}
			if capacityType == "spot" {
				return "MaxSpotInstanceCountExceeded"
			}
			return "VcpuLimitExceeded"
		}
	}
}

// runningVCPUs sums the vCPUs of the fleet-scheduler instances running.
func (w *World) runningVCPUs(ctx context.Context, vcpus map[string]int32) (int32, error) {
	out, err := w.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag-key"), Values: []string{"karpenter.sh/nodeclaim"}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	if err != nil {
		return 0, err
	}
	var sum int32
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			t := string(i.InstanceType)
			if _, ok := vcpus[t]; !ok {
				if err := w.describeVCPUs(ctx, vcpus, t); err != nil {
					return 0, err
				}
			}
			sum += vcpus[t]
		}
	}
	return sum, nil
}

func (w *World) describeVCPUs(ctx context.Context, vcpus map[string]int32, instanceType string) error {
	out, err := w.EC2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(instanceType)}})
	if err != nil {
		return err
	}
	for _, it := range out.InstanceTypes {
		if it.VCpuInfo != nil {
			vcpus[string(it.InstanceType)] = aws.ToInt32(it.VCpuInfo.DefaultVCpus)
		}
	}
	return nil
}

// noCapacity answers InsufficientInstanceCapacity for the first
// noCapacityTypes distinct instance types it is asked about: the cheapest
// of the first launch, whose overrides come cheapest first.
func noCapacity() func(awsfault.Override, string) string {
	var mu sync.Mutex
	var out []string
	return func(o awsfault.Override, _ string) string {
		mu.Lock()
		defer mu.Unlock()
		if len(out) < noCapacityTypes && !slices.Contains(out, o.InstanceType) {
			out = append(out, o.InstanceType)
		}
		if slices.Contains(out, o.InstanceType) {
			return "InsufficientInstanceCapacity"
		}
		return ""
	}
}
