package v1

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{EC2NodeClassKind, "EC2NodeClassList"} {
		if !s.Recognizes(SchemeGroupVersion.WithKind(kind)) {
			t.Errorf("scheme does not know %s", kind)
		}
	}
}

func TestSetCondition(t *testing.T) {
	nc := &EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	nc.SetCondition(metav1.Condition{Type: ConditionTypeSubnetsReady, Status: metav1.ConditionFalse, Reason: "SubnetsNotFound"})
	c := nc.GetCondition(ConditionTypeSubnetsReady)
	if c == nil || c.Reason != "SubnetsNotFound" || c.ObservedGeneration != 2 {
		t.Fatalf("condition = %+v", c)
	}
	nc.SetCondition(metav1.Condition{Type: ConditionTypeReady, Status: metav1.ConditionTrue})
	if c := nc.GetCondition(ConditionTypeReady); c.Reason != ConditionTypeReady {
		t.Errorf("empty reason not defaulted: %+v", c)
	}
}

func TestWellKnownLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range WellKnownLabels() {
		if !strings.HasPrefix(l, GroupName+"/") {
			t.Errorf("%s is not in %s", l, GroupName)
		}
		if seen[l] {
			t.Errorf("%s listed twice", l)
		}
		seen[l] = true
	}
}
