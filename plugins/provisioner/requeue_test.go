package provisioner

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestRoomGrew: pods held back by limits are retried when a pool may
// launch more than before, and not when it may launch less.
func TestRoomGrew(t *testing.T) {
	rl := func(cpu, nodes string) v1.ResourceList {
		return v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), "nodes": resource.MustParse(nodes)}
	}
	for _, tc := range []struct {
		name        string
		before, now map[string]v1.ResourceList
		want        bool
	}{
		{"first look", nil, map[string]v1.ResourceList{"a": rl("4", "1")}, false},
		{"a claim took room", map[string]v1.ResourceList{"a": rl("4", "2")}, map[string]v1.ResourceList{"a": rl("2", "1")}, false},
		{"the limit was raised", map[string]v1.ResourceList{"a": rl("0", "0")}, map[string]v1.ResourceList{"a": rl("0", "10")}, true},
		{"the limits were removed", map[string]v1.ResourceList{"a": rl("0", "0")}, map[string]v1.ResourceList{"a": nil}, true},
		{"still no limits", map[string]v1.ResourceList{"a": nil}, map[string]v1.ResourceList{"a": nil}, false},
		{"the nodes limit was removed", map[string]v1.ResourceList{"a": rl("4", "0")}, map[string]v1.ResourceList{"a": {v1.ResourceCPU: resource.MustParse("4")}}, true},
		{"a claim went away", map[string]v1.ResourceList{"a": rl("2", "1")}, map[string]v1.ResourceList{"a": rl("4", "2")}, true},
	} {
		if got := roomGrew(tc.before, tc.now); got != tc.want {
			t.Errorf("%s: roomGrew = %v, want %v", tc.name, got, tc.want)
		}
	}
}
