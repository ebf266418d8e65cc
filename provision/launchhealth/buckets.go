package launchhealth

import (
	"strings"
)

// Bucket is what a launch failure is held against: a NodePool's
// on-demand or spot capacity in one EC2 vCPU quota bucket (the instance
// families that share a "Running On-Demand ... instances" or "All ... Spot
// Instance Requests" quota), or all of the pool (Family AllFamilies) for
// failures no quota explains (Pool).
type Bucket struct {
	CapacityType string
	Family       string
}

// Pool is the bucket of every launch of a NodePool.
var Pool = Bucket{CapacityType: "*", Family: "*"}

// The vCPU quota buckets of EC2's instance families. Standard covers
// A, C, D, H, I, M, R, T and Z; G and VT share one; the rest are their own.
const (
	FamilyStandard   = "standard"
	FamilyGVT        = "G and VT"
	FamilyP          = "P"
	FamilyF          = "F"
	FamilyX          = "X"
	FamilyInf        = "Inf"
	FamilyDL         = "DL"
	FamilyTrn        = "Trn"
	FamilyHPC        = "HPC"
	FamilyHighMemory = "High Memory"
)

// QuotaFamily is the vCPU quota bucket of an instance type ("m5.large" ->
// standard, "g5.xlarge" -> G and VT, "inf2.xlarge" -> Inf).
func QuotaFamily(instanceType string) string {
	family, _, _ := strings.Cut(strings.ToLower(instanceType), ".")
	prefix := func(p string) bool { return strings.HasPrefix(family, p) }
	switch {
	case prefix("inf"):
		return FamilyInf
	case prefix("trn"):
		return FamilyTrn
	case prefix("dl"):
		return FamilyDL
	case prefix("hpc"):
		return FamilyHPC
	case prefix("vt"), prefix("g"):
		return FamilyGVT
	case prefix("u"):
		return FamilyHighMemory
	case prefix("p"):
		return FamilyP
	case prefix("f"):
		return FamilyF
	case prefix("x"):
		return FamilyX
	}
	return FamilyStandard
}

// QuotaCode is the Service Quotas code of the bucket's vCPU quota, for the
// message that tells the operator what to look at, or "" where this file
// does not know it.
func QuotaCode(b Bucket) string {
	switch {
	case b.CapacityType == "spot" && b.Family == FamilyStandard:
		return "L-34B43A08" // All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests
	case b.CapacityType == "spot":
		return ""
	case b.Family == FamilyStandard:
		return "L-1216C47A" // Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances
	case b.Family == FamilyGVT:
		return "L-DB2E81BA" // Running On-Demand G and VT instances
	case b.Family == FamilyP:
		return "L-417A185B" // Running On-Demand P instances
	}
	return ""
}

// String is "standard on-demand", "G and VT spot", or "every instance type".
func (b Bucket) String() string {
	if b == Pool {
		return "every instance type"
	}
	return b.Family + " " + b.CapacityType
}
