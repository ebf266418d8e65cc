package controller

import (
	"context"
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

type getter map[string]string

func (g getter) Get(name string) (string, error) {
	if name == "broken" {
		return "", errors.New("cache broken")
	}
	v, ok := g[name]
	if !ok {
		return "", apierrors.NewNotFound(schema.GroupResource{Resource: "things"}, name)
	}
	return v, nil
}

func TestObjectReconciler(t *testing.T) {
	var got []string
	r := ForObject[string](getter{"a": "object a"}, func(_ context.Context, obj string) (Result, error) {
		got = append(got, obj)
		return Result{RequeueAfter: 7}, nil
	})
	for _, tc := range []struct {
		key     string
		want    Result
		wantErr bool
		called  bool
	}{
		{key: "a", want: Result{RequeueAfter: 7}, called: true},
		{key: "ns/a", want: Result{RequeueAfter: 7}, called: true},
		{key: "gone"},
		{key: "a/b/c"},
		{key: "broken", wantErr: true},
	} {
		got = nil
		res, err := r.Reconcile(context.Background(), tc.key)
		if (err != nil) != tc.wantErr || res != tc.want || (len(got) == 1) != tc.called {
			t.Errorf("key %q: result %v, error %v, reconciled %v; want %v, error %v, reconciled %v", tc.key, res, err, got, tc.want, tc.wantErr, tc.called)
		}
	}
}
