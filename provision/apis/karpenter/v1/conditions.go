package v1

// Condition types. Ready is the summary condition of every object.
const (
	ConditionTypeReady = "Ready"

	// NodeClaim conditions. Ready is True when Launched, Registered and
	// Initialized are.
	ConditionTypeLaunched             = "Launched"
	ConditionTypeRegistered           = "Registered"
	ConditionTypeInitialized          = "Initialized"
	ConditionTypeConsolidatable       = "Consolidatable"
	ConditionTypeDrifted              = "Drifted"
	ConditionTypeDrained              = "Drained"
	ConditionTypeVolumesDetached      = "VolumesDetached"
	ConditionTypeInstanceTerminating  = "InstanceTerminating"
	ConditionTypeConsistentStateFound = "ConsistentStateFound"
	ConditionTypeDisruptionReason     = "DisruptionReason"

	// NodePool conditions. Ready is True when ValidationSucceeded and
	// NodeClassReady are.
	ConditionTypeValidationSucceeded     = "ValidationSucceeded"
	ConditionTypeNodeClassReady          = "NodeClassReady"
	ConditionTypeNodeRegistrationHealthy = "NodeRegistrationHealthy"
)

// NodeClaimReadyDependents are the NodeClaim conditions Ready is made of.
func NodeClaimReadyDependents() []string {
	return []string{ConditionTypeLaunched, ConditionTypeRegistered, ConditionTypeInitialized}
}

// NodePoolReadyDependents are the NodePool conditions Ready is made of.
func NodePoolReadyDependents() []string {
	return []string{ConditionTypeValidationSucceeded, ConditionTypeNodeClassReady}
}
