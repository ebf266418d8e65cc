package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// Getter reads a cluster-scoped object by name from a cache: the Get of a
// generated lister (NodeLister, NodeClaimLister, EC2NodeClassLister...).
type Getter[T any] interface {
	Get(name string) (T, error)
}

// ObjectReconciler is the Reconciler of one object type: it splits the
// key, reads the object from its lister and hands it to a function. A
// malformed key, or an object the cache no longer holds (the last event of
// a deletion), needs no work; any other lister error is retried.
type ObjectReconciler[T any] struct {
	lister    Getter[T]
	reconcile func(context.Context, T) (Result, error)
}

// ForObject is the ObjectReconciler of lister's objects.
func ForObject[T any](lister Getter[T], reconcile func(context.Context, T) (Result, error)) *ObjectReconciler[T] {
	return &ObjectReconciler[T]{lister: lister, reconcile: reconcile}
}

// Reconcile reconciles the object the key names, if it still exists.
func (r *ObjectReconciler[T]) Reconcile(ctx context.Context, key string) (res Result, err error) {
	_, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return Result{}, nil
	}
	obj, err := r.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if p := recover(); p != nil {
			o, _ := any(obj).(runtime.Object)
			err = recovered(key, p, o)
		}
	}()
	return r.reconcile(ctx, obj)
}

// Now is c's time, or the real clock's when c is nil: controllers take an
// optional clock.PassiveClock that tests set.
func Now(c clock.PassiveClock) time.Time {
	if c == nil {
		return time.Now()
	}
	return c.Now()
}
