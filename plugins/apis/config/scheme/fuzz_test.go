package scheme

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/validation"
)

// FuzzDecodeProvisionerArgs: no args document makes decoding, defaulting
// or validating panic; every problem is named by its field path under
// provisionerArgs; args that validate are usable (positive durations, a
// batch window that closes, deadlines within their bounds).
func FuzzDecodeProvisionerArgs(f *testing.F) {
	for _, s := range []string{
		"clusterName: sesacthon-dev\nregion: ap-northeast-2\n",
		"clusterName: c\nbootstrap:\n  tokenSSMParameter: /sesacthon/dev/karpenter/bootstrap-token\n  caCertHashSSMParameter: /sesacthon/dev/karpenter/ca-cert-hash\n",
		"clusterName: c\nbatchIdleDuration: 2s\nbatchMaxDuration: 1s\nvmMemoryOverheadPercent: 1.5\n",
		"clusterName: c\nawsCallTimeouts:\n  default: 500ms\n  perCall:\n    CreateFleet: 1h\n    Nope: 1s\nunregisteredNodesToPause: 0\n",
		"clusterName: c\nclusterEndpoint: https://[::1]:6443/\ninterruptionQueue: q.fifo\nregistrationTTL: -1m\n",
		"clusterName: [1, 2]\n",
	} {
		f.Add(s)
	}
	decoder := Codecs.UniversalDecoder()
	path := field.NewPath("provisionerArgs")
	f.Fuzz(func(t *testing.T, args string) {
		doc := "apiVersion: kubescheduler.config.k8s.io/v1\nkind: ProvisionerArgs\n" + args
		obj, _, err := decoder.Decode([]byte(doc), nil, nil)
		if err != nil {
			return
		}
		a, ok := obj.(*config.ProvisionerArgs)
		if !ok {
			t.Fatalf("decoded a %T", obj)
		}
		errs := validation.ProvisionerArgsErrors(path, a)
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), "provisionerArgs.") {
				t.Fatalf("an error that names no field: %q", e.Error())
			}
		}
		if len(errs) > 0 {
			return
		}
		if a.BatchIdleDuration.Duration <= 0 || a.BatchMaxDuration.Duration < a.BatchIdleDuration.Duration ||
			a.RegistrationTTL.Duration <= 0 || a.DisruptionInterval.Duration <= 0 || a.UnregisteredNodesToPause < 1 ||
			a.AWSCallTimeouts.Default.Duration < validation.MinAWSCallTimeout || a.ClusterName == "" {
			t.Fatalf("args that validate but cannot be used: %+v", a)
		}
		for op, d := range a.AWSCallTimeouts.PerCall {
			if d.Duration < validation.MinAWSCallTimeout || d.Duration > validation.MaxAWSCallTimeout {
				t.Fatalf("perCall[%s] = %s validated", op, d.Duration)
			}
		}
	})
}
