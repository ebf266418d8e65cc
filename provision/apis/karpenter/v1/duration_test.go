package v1

import (
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
)

func TestNillableDurationJSON(t *testing.T) {
	tests := []struct {
		in      string
		never   bool
		value   time.Duration
		out     string
		wantErr bool
	}{
		{in: `"720h"`, value: 720 * time.Hour, out: `"720h"`},
		{in: `"30s"`, value: 30 * time.Second, out: `"30s"`},
		{in: `"1h30m"`, value: 90 * time.Minute, out: `"1h30m"`},
		{in: `"0s"`, value: 0, out: `"0s"`},
		{in: `"Never"`, never: true, out: `"Never"`},
		{in: `"1d"`, wantErr: true},
		{in: `720`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d NillableDuration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %v", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.IsNever() != tc.never {
				t.Fatalf("IsNever = %v", d.IsNever())
			}
			if !tc.never && *d.Duration != tc.value {
				t.Fatalf("duration = %v, want %v", *d.Duration, tc.value)
			}
			out, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.out {
				t.Errorf("marshal = %s, want %s", out, tc.out)
			}
		})
	}
}

func TestNillableDurationChangedInPlace(t *testing.T) {
	d := MustParseNillableDuration("720h")
	*d.Duration = 2 * time.Hour
	if got := d.String(); got != "2h0m0s" {
		t.Errorf("String() = %q after changing the duration, want the new value", got)
	}
	copied := d.DeepCopy()
	*copied.Duration = time.Hour
	if *d.Duration != 2*time.Hour {
		t.Errorf("DeepCopy shares the duration")
	}
}

func TestNillableDurationZeroIsNever(t *testing.T) {
	out, err := json.Marshal(struct {
		D NillableDuration `json:"d,omitempty"`
	}{})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"d":"Never"}` {
		t.Errorf("zero value marshals as %s", out)
	}
	if got := NewNillableDuration(time.Minute).String(); got != "1m0s" {
		t.Errorf("NewNillableDuration(1m) = %q", got)
	}
}

func TestNodePoolUnstructuredRoundTrip(t *testing.T) {
	np := &NodePool{Spec: NodePoolSpec{
		Template:   NodeClaimTemplate{Spec: NodeClaimTemplateSpec{ExpireAfter: MustParseNillableDuration("720h")}},
		Disruption: Disruption{ConsolidateAfter: MustParseNillableDuration("Never")},
	}}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(np)
	if err != nil {
		t.Fatal(err)
	}
	spec := u["spec"].(map[string]any)
	if got := spec["template"].(map[string]any)["spec"].(map[string]any)["expireAfter"]; got != "720h" {
		t.Errorf("expireAfter = %#v", got)
	}
	if got := spec["disruption"].(map[string]any)["consolidateAfter"]; got != "Never" {
		t.Errorf("consolidateAfter = %#v", got)
	}
	back := &NodePool{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, back); err != nil {
		t.Fatal(err)
	}
	if back.Spec.Template.Spec.ExpireAfter.String() != "720h" || !back.Spec.Disruption.ConsolidateAfter.IsNever() {
		t.Errorf("round trip = %+v", back.Spec)
	}
}
