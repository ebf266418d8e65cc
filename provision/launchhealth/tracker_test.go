package launchhealth

import (
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestQuotaFamily(t *testing.T) {
	for typ, want := range map[string]string{
		"t3.medium": FamilyStandard, "m5.large": FamilyStandard, "c7g.xlarge": FamilyStandard, "r6i.2xlarge": FamilyStandard,
		"i4i.large": FamilyStandard, "d3.xlarge": FamilyStandard, "h1.2xlarge": FamilyStandard, "z1d.large": FamilyStandard,
		"a1.medium": FamilyStandard, "g5.xlarge": FamilyGVT, "g4dn.xlarge": FamilyGVT, "vt1.3xlarge": FamilyGVT,
		"p4d.24xlarge": FamilyP, "p5.48xlarge": FamilyP, "f1.2xlarge": FamilyF, "x2gd.large": FamilyX, "x1e.xlarge": FamilyX,
		"inf2.xlarge": FamilyInf, "dl1.24xlarge": FamilyDL, "trn1.2xlarge": FamilyTrn, "hpc7g.4xlarge": FamilyHPC,
		"u-6tb1.metal": FamilyHighMemory,
	} {
		if got := QuotaFamily(typ); got != want {
			t.Errorf("QuotaFamily(%s) = %q, want %q", typ, got, want)
		}
	}
	if QuotaCode(Bucket{CapacityType: "on-demand", Family: FamilyStandard}) != "L-1216C47A" ||
		QuotaCode(Bucket{CapacityType: "spot", Family: FamilyStandard}) != "L-34B43A08" || QuotaCode(Pool) != "" {
		t.Error("quota codes")
	}
}

// TestBackoff: a bucket that fails is held back for 30s, 1m, 2m... up to
// the cap; when the delay runs out one caller probes while the others
// wait; a success ends it. Other buckets are not held back, a Pool
// failure holds back every bucket.
func TestBackoff(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var changed []string
	tr := New(Options{Clock: clk, MaxDelay: 4 * time.Minute, Changed: func(p string) { changed = append(changed, p) }})
	standard := Bucket{CapacityType: "on-demand", Family: FamilyStandard}
	gpu := Bucket{CapacityType: "on-demand", Family: FamilyGVT}

	if ok, _ := tr.Admit("a", standard); !ok {
		t.Fatal("a pool with no history is held back")
	}
	var delays []time.Duration
	for i := 0; i < 5; i++ {
		f := tr.Failed("a", Failure{Reason: "VcpuLimitExceeded", Message: "quota exceeded", NodeClaim: "a-1", Bucket: standard})
		delays = append(delays, f.Until.Sub(f.At))
		if ok, held := tr.Admit("a", standard); ok || held == nil || !held.Until.Equal(f.Until) {
			t.Fatalf("failure %d: admitted %v, held %+v", i+1, ok, held)
		}
		if ok, _ := tr.Admit("a", gpu); !ok {
			t.Fatalf("another bucket is held back")
		}
		if ok, _ := tr.Admit("b", standard); !ok {
			t.Fatalf("another pool is held back")
		}
		clk.SetTime(f.Until)
		if ok, _ := tr.Admit("a", standard); !ok {
			t.Fatalf("failure %d: the probe after the delay is held back", i+1)
		}
		if ok, held := tr.Admit("a", standard); ok || held == nil {
			t.Fatalf("failure %d: a second caller was admitted while the probe is under way", i+1)
		}
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays %v, want %v", delays, want)
		}
	}
	st := tr.Status("a")
	if st.Failure == nil || !st.BackingOff || st.Failure.InARow != 5 || st.Failure.Reason != "VcpuLimitExceeded" {
		t.Fatalf("status %+v", st)
	}
	msg := st.Failure.String()
	for _, part := range []string{"quota exceeded (NodeClaim a-1)", "standard on-demand instances are held back until", "VcpuLimitExceeded failure 5 in a row",
		"aws service-quotas get-service-quota --service-code ec2 --quota-code L-1216C47A"} {
		if !strings.Contains(msg, part) {
			t.Errorf("message %q lacks %q", msg, part)
		}
	}
	// A probe that never reports back is given up after probeTimeout.
	clk.SetTime(clk.Now().Add(probeTimeout))
	if ok, _ := tr.Admit("a", standard); !ok {
		t.Fatal("a lost probe holds the bucket forever")
	}
	tr.Launched("a", standard)
	if st := tr.Status("a"); st.Failure != nil || !st.Launched {
		t.Fatalf("after a success: %+v", st)
	}
	if ok, _ := tr.Admit("a", standard); !ok {
		t.Fatal("held back after a success")
	}

	// An error of the whole pool (permissions) holds every bucket back.
	tr.Failed("a", Failure{Reason: "Unauthorized", Message: "not allowed", Bucket: Pool})
	if ok, held := tr.Admit("a", gpu); ok || held.Reason != "Unauthorized" {
		t.Fatalf("a pool-wide failure did not hold back another bucket: %v %+v", ok, held)
	}
	// A capacity failure is remembered for the condition, holds nothing.
	tr.Failed("b", Failure{Reason: "InsufficientCapacity", Message: "no capacity"})
	if ok, _ := tr.Admit("b", standard); !ok || tr.Status("b").BackingOff || tr.Status("b").Failure.Reason != "InsufficientCapacity" {
		t.Fatalf("capacity failure: %+v", tr.Status("b"))
	}
	if len(changed) == 0 || changed[len(changed)-1] != "b" {
		t.Errorf("changed calls %v", changed)
	}
}

func TestRegistrations(t *testing.T) {
	tr := New(Options{PauseAfter: 2})
	tr.Unregistered("a", "a-1")
	if st := tr.Status("a"); st.Paused || st.Unregistered != 1 {
		t.Fatalf("one unregistered node paused the pool: %+v", st)
	}
	tr.Unregistered("a", "a-2")
	if st := tr.Status("a"); !st.Paused || st.LastUnregistered != "a-2" {
		t.Fatalf("two in a row did not pause the pool: %+v", st)
	}
	tr.ResetRegistrations("a")
	if st := tr.Status("a"); st.Paused {
		t.Fatal("a reset pool stays paused")
	}
	tr.Unregistered("a", "a-3")
	tr.Registered("a")
	tr.Unregistered("a", "a-4")
	if st := tr.Status("a"); st.Paused || !st.Registered || st.Unregistered != 1 {
		t.Fatalf("a registration in between did not restart the count: %+v", st)
	}
}
