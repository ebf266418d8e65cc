package v1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Defaults of ProvisionerArgs; exported so docs and tests quote one source.
const (
	DefaultBatchIdleDuration              = time.Second
	DefaultBatchMaxDuration               = 10 * time.Second
	DefaultRegistrationTTL                = 15 * time.Minute
	DefaultVMMemoryOverheadPercent        = 0.075
	DefaultDisruptionInterval             = 10 * time.Second
	DefaultTokenTTL                       = 30 * time.Minute
	DefaultAWSCallTimeout                 = 15 * time.Second
	DefaultUnregisteredNodesToPause int32 = 3
)

// SetDefaults_ProvisionerArgs fills the fields a user left out. The
// generated SetObjectDefaults_ProvisionerArgs calls it.
func SetDefaults_ProvisionerArgs(obj *ProvisionerArgs) {
	setDuration(&obj.BatchIdleDuration, DefaultBatchIdleDuration)
	setDuration(&obj.BatchMaxDuration, DefaultBatchMaxDuration)
	setDuration(&obj.RegistrationTTL, DefaultRegistrationTTL)
	setDuration(&obj.DisruptionInterval, DefaultDisruptionInterval)
	setDuration(&obj.Bootstrap.TokenTTL, DefaultTokenTTL)
	setDuration(&obj.AWSCallTimeouts.Default, DefaultAWSCallTimeout)
	if obj.UnregisteredNodesToPause == nil {
		obj.UnregisteredNodesToPause = ptr.To(DefaultUnregisteredNodesToPause)
	}
	if obj.VMMemoryOverheadPercent == nil {
		obj.VMMemoryOverheadPercent = ptr.To(DefaultVMMemoryOverheadPercent)
	}
}

func setDuration(d **metav1.Duration, def time.Duration) {
	if *d == nil {
		*d = &metav1.Duration{Duration: def}
	}
}
