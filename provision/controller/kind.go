package controller

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// WithKind is a shallow copy of a Node or Pod with its kind and version
// set, so any event recorder can reference it, whatever its scheme.
func WithKind[T *v1.Node | *v1.Pod](obj T) T {
	switch o := any(obj).(type) {
	case *v1.Node:
		c := *o
		c.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}
		return any(&c).(T)
	case *v1.Pod:
		c := *o
		c.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		return any(&c).(T)
	}
	return obj
}

// NodeObject is node as an event's object: WithKind's copy, and no object
// at all (not a nil *v1.Node) when there is no node.
func NodeObject(node *v1.Node) runtime.Object {
	if node == nil {
		return nil
	}
	return WithKind(node)
}
