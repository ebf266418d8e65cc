package v1

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func TestSetDefaultsProvisionerArgs(t *testing.T) {
	defaults := ProvisionerArgs{
		Bootstrap:                BootstrapArgs{TokenTTL: dur(30 * time.Minute)},
		BatchIdleDuration:        dur(time.Second),
		BatchMaxDuration:         dur(10 * time.Second),
		RegistrationTTL:          dur(15 * time.Minute),
		VMMemoryOverheadPercent:  ptr.To(0.075),
		DisruptionInterval:       dur(10 * time.Second),
		AWSCallTimeouts:          AWSCallTimeouts{Default: dur(15 * time.Second)},
		UnregisteredNodesToPause: ptr.To[int32](3),
	}
	allSet := ProvisionerArgs{
		Bootstrap:                BootstrapArgs{TokenTTL: dur(time.Hour)},
		BatchIdleDuration:        dur(2 * time.Second),
		BatchMaxDuration:         dur(time.Minute),
		RegistrationTTL:          dur(0),
		VMMemoryOverheadPercent:  ptr.To(0.0),
		DisruptionInterval:       dur(time.Minute),
		AWSCallTimeouts:          AWSCallTimeouts{Default: dur(time.Minute), PerCall: map[string]metav1.Duration{"CreateFleet": {Duration: 2 * time.Minute}}},
		UnregisteredNodesToPause: ptr.To[int32](1),
	}
	tests := []struct {
		name string
		in   ProvisionerArgs
		want ProvisionerArgs
	}{
		// InterruptionQueue stays empty: interruption handling is opt-in.
		{name: "empty gets every default", in: ProvisionerArgs{}, want: defaults},
		{
			name: "strings are left alone",
			in: ProvisionerArgs{ClusterName: "dev", Region: "ap-northeast-2", ClusterEndpoint: "10.0.1.21:6443", InterruptionQueue: "dev",
				Bootstrap: BootstrapArgs{TokenSSMParameter: "/a/token", CACertHashSSMParameter: "/a/hash"}},
			want: func() ProvisionerArgs {
				w := defaults
				w.ClusterName, w.Region, w.ClusterEndpoint, w.InterruptionQueue = "dev", "ap-northeast-2", "10.0.1.21:6443", "dev"
				w.Bootstrap = BootstrapArgs{TokenSSMParameter: "/a/token", CACertHashSSMParameter: "/a/hash", TokenTTL: dur(30 * time.Minute)}
				return w
			}(),
		},
		// Defaulting works on a copy, so in and want may share one value.
		{name: "set values win, explicit zeros included", in: allSet, want: allSet},
	}
	// Default through a scheme, as kube-scheduler does, to cover registration too.
	scheme := runtime.NewScheme()
	if err := AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.DeepCopy()
			scheme.Default(got)
			if diff := cmp.Diff(&tc.want, got); diff != "" {
				t.Errorf("defaults (-want +got):\n%s", diff)
			}
		})
	}
}
