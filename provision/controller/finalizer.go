package controller

import (
	"context"
	"encoding/json"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Patcher is the Patch of a typed client: Nodes(), NodeClaims()...
type Patcher[T any] func(ctx context.Context, name string, pt types.PatchType, data []byte,
	opts metav1.PatchOptions, subresources ...string) (T, error)

// RemoveFinalizer takes the finalizer off obj with a merge patch, with
// obj's resource version as a precondition: a concurrent change to its
// finalizers fails with a conflict, retried on a fresh object, rather
// than being overwritten. An object already gone is no error.
func RemoveFinalizer[T any](ctx context.Context, patch Patcher[T], obj metav1.Object, finalizer string) error {
	kept := slices.DeleteFunc(slices.Clone(obj.GetFinalizers()), func(f string) bool { return f == finalizer })
	if kept == nil {
		kept = []string{}
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": kept, "resourceVersion": obj.GetResourceVersion(),
	}})
	if err != nil {
		return err
	}
	_, err = patch(ctx, obj.GetName(), types.MergePatchType, data, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
