package controller

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func TestRemoveFinalizer(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		finalizers []string
		want       string
	}{
		{[]string{"a/keep", "a/mine"}, `{"metadata":{"finalizers":["a/keep"],"resourceVersion":"7"}}`},
		{[]string{"a/mine"}, `{"metadata":{"finalizers":[],"resourceVersion":"7"}}`},
	} {
		node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", ResourceVersion: "7", Finalizers: tc.finalizers}}
		var got string
		patch := func(_ context.Context, name string, pt types.PatchType, data []byte, _ metav1.PatchOptions, _ ...string) (*v1.Node, error) {
			if name != "n" || pt != types.MergePatchType {
				t.Errorf("patched %s with a %s patch", name, pt)
			}
			got = string(data)
			return nil, nil
		}
		if err := RemoveFinalizer(ctx, patch, node, "a/mine"); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("patch %s, want %s", got, tc.want)
		}
		if len(node.Finalizers) != len(tc.finalizers) {
			t.Errorf("the object itself was changed: %v", node.Finalizers)
		}
	}

	// Against a typed client: the finalizer goes, and an object already
	// gone is no error.
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Finalizers: []string{"a/keep", "a/mine"}}}
	kube := fake.NewSimpleClientset(node)
	if err := RemoveFinalizer(ctx, kube.CoreV1().Nodes().Patch, node, "a/mine"); err != nil {
		t.Fatal(err)
	}
	if got, _ := kube.CoreV1().Nodes().Get(ctx, "n", metav1.GetOptions{}); len(got.Finalizers) != 1 || got.Finalizers[0] != "a/keep" {
		t.Errorf("finalizers after the patch: %v", got.Finalizers)
	}
	gone := func(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*v1.Node, error) {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, "n")
	}
	if err := RemoveFinalizer(ctx, gone, node, "a/mine"); err != nil {
		t.Errorf("removing the finalizer of a gone object: %v", err)
	}
}
