package ec2

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/fleet-scheduler/fleet-scheduler/test/awsfault"
)

// proxied returns a provider whose EC2 calls go through a fault proxy in
// front of moto, and the fixture resolved through it.
func proxied(t *testing.T) (*Provider, *awsfault.Proxy, fixture) {
	t.Helper()
	proxy := awsfault.Start(t, moto.Endpoint)
	ec2c, ssmc := clientsAt(proxy.URL)
	return NewProvider(ec2c, ProviderOptions{}), proxy, newFixture(t, ec2c, ssmc)
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	ctx := context.Background()
	p, proxy, f := proxied(t)
	// Two throttled answers, then moto: within fastRetry's 4 attempts.
	proxy.Add(awsfault.Throttle("CreateFleet", 2), awsfault.Throttle("DescribeInstances", 1))
	inst, err := p.Launch(ctx, f.request(t, "claim-throttled", candidate(t, "t3.small", ArchAMD64, allZones...)))
	if err != nil {
		t.Fatal(err)
	}
	if got := proxy.Calls("CreateFleet"); got != 3 {
		t.Fatalf("CreateFleet called %d times, want 3 (2 throttled + 1)", got)
	}
	if got := claimInstances(t, moto2EC2(), "claim-throttled"); len(got) != 1 || got[0].ID != inst.ID {
		t.Fatalf("instances for the claim: %+v", got)
	}

	// Throttled beyond the attempts: the throttle error comes back, and
	// nothing was launched.
	proxy.Clear()
	proxy.Add(awsfault.Throttle("CreateFleet", 0))
	_, err = p.Launch(ctx, f.request(t, "claim-throttled-out", candidate(t, "t3.small", ArchAMD64, allZones...)))
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "RequestLimitExceeded" {
		t.Fatalf("err = %v, want RequestLimitExceeded", err)
	}
	if got := proxy.Calls("CreateFleet"); got != fastRetry.MaxAttempts {
		t.Fatalf("CreateFleet called %d times, want %d", got, fastRetry.MaxAttempts)
	}
	if got := claimInstances(t, moto2EC2(), "claim-throttled-out"); len(got) != 0 {
		t.Fatalf("throttled launch left instances: %+v", got)
	}
}

func TestInsufficientCapacityIsClassified(t *testing.T) {
	ctx := context.Background()
	p, proxy, f := proxied(t)
	proxy.Add(awsfault.FleetErrors(1, "InsufficientInstanceCapacity", awsfault.FailAll))
	req := f.request(t, "claim-ice",
		candidate(t, "t3.small", ArchAMD64, "us-east-1a", "us-east-1b"),
		candidate(t, "m5.large", ArchAMD64, "us-east-1a"))
	_, err := p.Launch(ctx, req)
	var ice *InsufficientCapacityError
	if !errors.As(err, &ice) {
		t.Fatalf("err = %T %v, want *InsufficientCapacityError", err, err)
	}
	got := map[string]bool{}
	for _, o := range UnavailableOfferings(err) {
		if o.CapacityType != CapacityTypeOnDemand || o.Code != "InsufficientInstanceCapacity" || o.SubnetID == "" {
			t.Errorf("failure %+v", o)
		}
		got[o.InstanceType+"/"+o.Zone] = true
	}
	for _, want := range []string{"t3.small/us-east-1a", "t3.small/us-east-1b", "m5.large/us-east-1a"} {
		if !got[want] {
			t.Errorf("failed offerings %v lack %s", got, want)
		}
	}
	if len(got) != 3 {
		t.Errorf("failed offerings = %v", got)
	}
	if n := len(claimInstances(t, moto2EC2(), "claim-ice")); n != 0 {
		t.Fatalf("%d instances after a capacity failure", n)
	}

	// The caller drops the failed offerings and retries: the launch
	// template is reused and the fleet launches.
	req.InstanceTypes = []CandidateType{candidate(t, "m5.xlarge", ArchAMD64, "us-east-1c")}
	inst, err := p.Launch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Type != "m5.xlarge" || inst.Zone != "us-east-1c" {
		t.Fatalf("retry launched %+v", inst)
	}
}

func TestPartialCapacityFailure(t *testing.T) {
	ctx := context.Background()
	p, proxy, f := proxied(t)
	// The cheapest type has no capacity; EC2 Fleet falls back to the next
	// and reports the failure alongside the instance.
	proxy.Add(awsfault.FleetErrors(1, "InsufficientInstanceCapacity", awsfault.FailTypes("t3.small")))
	inst, err := p.Launch(ctx, f.request(t, "claim-partial",
		candidate(t, "t3.small", ArchAMD64, "us-east-1a"),
		candidate(t, "t3.medium", ArchAMD64, "us-east-1a")))
	if err != nil {
		t.Fatal(err)
	}
	if inst.Type != "t3.medium" {
		t.Fatalf("launched %s, want t3.medium", inst.Type)
	}
	if len(inst.SkippedOfferings) != 1 || inst.SkippedOfferings[0].InstanceType != "t3.small" ||
		inst.SkippedOfferings[0].Zone != "us-east-1a" || inst.SkippedOfferings[0].Code != "InsufficientInstanceCapacity" {
		t.Fatalf("SkippedOfferings = %+v", inst.SkippedOfferings)
	}
}

func TestQuotaAndOtherFleetErrors(t *testing.T) {
	ctx := context.Background()
	p, proxy, f := proxied(t)
	proxy.Add(awsfault.FleetErrors(1, "VcpuLimitExceeded", awsfault.FailAll))
	_, err := p.Launch(ctx, f.request(t, "claim-quota", candidate(t, "p4d.24xlarge", ArchAMD64, "us-east-1a")))
	if !IsQuotaExceeded(err) || IsInsufficientCapacity(err) {
		t.Fatalf("err = %T %v, want *QuotaExceededError", err, err)
	}
	if u := UnavailableOfferings(err); len(u) != 1 || u[0].InstanceType != "p4d.24xlarge" {
		t.Fatalf("UnavailableOfferings = %+v", u)
	}

	proxy.Add(awsfault.FleetErrors(1, "InvalidLaunchTemplate.Malformed", awsfault.FailAll))
	_, err = p.Launch(ctx, f.request(t, "claim-other", candidate(t, "t3.small", ArchAMD64, "us-east-1a")))
	var le *LaunchError
	if !errors.As(err, &le) || len(le.Failures) != 1 || len(UnavailableOfferings(err)) != 0 {
		t.Fatalf("err = %T %v, want *LaunchError with nothing to mark unavailable", err, err)
	}

	// A quota error raised by the call itself is classified too.
	proxy.Add(awsfault.APIError("CreateFleet", 1, 400, "VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit allows."))
	_, err = p.Launch(ctx, f.request(t, "claim-quota-api", candidate(t, "t3.small", ArchAMD64, "us-east-1a")))
	if !IsQuotaExceeded(err) {
		t.Fatalf("err = %T %v, want *QuotaExceededError", err, err)
	}
}

// moto2EC2 reads moto directly, around the proxy.
func moto2EC2() EC2API {
	c, _ := motoClients()
	return c
}

// TestFleetContext: the EC2NodeClass context goes to CreateFleet as its
// Context parameter (moto ignores it; the request is what is checked).
func TestFleetContext(t *testing.T) {
	p, proxy, f := proxied(t)
	release, arrived := make(chan struct{}), make(chan string, 1)
	close(release)
	proxy.Add(awsfault.Hold("CreateFleet", 1, release, arrived))
	req := f.request(t, "claim-context", candidate(t, "t3.large", ArchAMD64, allZones...))
	req.Context = "c-abc123"
	if _, err := p.Launch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(<-arrived)
	if err != nil {
		t.Fatal(err)
	}
	if got := form.Get("Context"); got != "c-abc123" {
		t.Errorf("CreateFleet Context = %q, want c-abc123", got)
	}
}

// TestCallDeadlines: calls to an endpoint that accepts and never answers
// fail at their deadline with the operation named, whether the hang is
// before EC2 acted (nothing launched) or after (the retry finds the
// instance and launches no second one).
func TestCallDeadlines(t *testing.T) {
	ctx := context.Background()
	proxy := awsfault.Start(t, moto.Endpoint)
	cfg := moto.AWSConfig()
	cfg.BaseEndpoint = aws.String(proxy.URL)
	// Generous for every call but the two under test: moto on a loaded
	// machine can take seconds.
	cfg = CallTimeouts{Default: 30 * time.Second, PerCall: map[string]time.Duration{"CreateFleet": time.Second, "DescribeInstances": 2 * time.Second}}.Apply(cfg)
	direct, directSSM := motoClients()
	p, f := NewProvider(NewEC2Client(cfg, fastRetry), ProviderOptions{}), newFixture(t, direct, directSSM)

	timed := func(t *testing.T, op string, want time.Duration, call func() error) {
		t.Helper()
		began := time.Now()
		err := call()
		took := time.Since(began)
		var te *CallTimeoutError
		if !errors.As(err, &te) || te.Operation != op || te.Timeout != want {
			t.Fatalf("err = %T %v, want a %s deadline of %s", err, err, op, want)
		}
		if !strings.Contains(err.Error(), op+" did not answer within "+want.String()) || Reason(err) != ReasonCallTimeout {
			t.Errorf("error %q (reason %s) does not say which call timed out", err, Reason(err))
		}
		if took < want || took > want+15*time.Second {
			t.Errorf("%s gave up after %s, want about %s", op, took, want)
		}
	}

	t.Run("hung before acting", func(t *testing.T) {
		proxy.Add(awsfault.Blackhole("DescribeInstances", 1, nil))
		timed(t, "DescribeInstances", 2*time.Second, func() error { _, err := p.List(ctx, clusterName(t)); return err })
		proxy.Add(awsfault.Blackhole("CreateFleet", 1, nil))
		req := f.request(t, "claim-blackholed", candidate(t, "t3.small", ArchAMD64, allZones...))
		timed(t, "CreateFleet", time.Second, func() error { _, err := p.Launch(ctx, req); return err })
		if got := claimInstances(t, moto2EC2(), "claim-blackholed"); len(got) != 0 {
			t.Fatalf("a CreateFleet that never reached EC2 left instances: %+v", got)
		}
	})
	t.Run("hung after acting", func(t *testing.T) {
		launched := make(chan string, 1)
		proxy.Add(awsfault.Hang("CreateFleet", 1, launched))
		req := f.request(t, "claim-hung", candidate(t, "t3.small", ArchAMD64, allZones...))
		timed(t, "CreateFleet", time.Second, func() error { _, err := p.Launch(ctx, req); return err })
		<-launched
		inst, err := p.Launch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := claimInstances(t, moto2EC2(), "claim-hung"); len(got) != 1 || got[0].ID != inst.ID {
			t.Fatalf("instances for the claim after the retry: %+v, want only %s", got, inst.ID)
		}
	})
}
