package v1

import (
	"encoding/json"
	"fmt"
	"time"
)

// Never is the NillableDuration value that switches a timer off.
const Never = "Never"

// NillableDuration is a duration that may also be "Never". On the wire it is a
// Go duration string ("30s", "720h", "1h30m") or the literal "Never". A nil
// Duration means Never, and so does the zero value: it marshals as "Never",
// as in Karpenter.
//
// The text a user wrote is remembered and written back while it still spells
// the same duration, so "720h" is not rewritten to "720h0m0s" when a client
// reads and updates an object.
type NillableDuration struct {
	*time.Duration

	// text is the string this value was decoded from.
	text string
}

// NewNillableDuration returns a NillableDuration of d.
func NewNillableDuration(d time.Duration) NillableDuration {
	return NillableDuration{Duration: &d}
}

// ParseNillableDuration parses a duration string or "Never".
func ParseNillableDuration(s string) (NillableDuration, error) {
	if s == Never {
		return NillableDuration{}, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return NillableDuration{}, err
	}
	return NillableDuration{Duration: &v, text: s}, nil
}

// MustParseNillableDuration is ParseNillableDuration that panics on error; for
// constants and tests.
func MustParseNillableDuration(s string) NillableDuration {
	d, err := ParseNillableDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// IsNever reports whether the duration is switched off.
func (d NillableDuration) IsNever() bool { return d.Duration == nil }

// String returns the wire form: the duration or "Never".
func (d NillableDuration) String() string {
	if d.Duration == nil {
		return Never
	}
	// Code may have changed *Duration in place; write the remembered text only
	// while it still means the current value.
	if d.text != "" {
		if v, err := time.ParseDuration(d.text); err == nil && v == *d.Duration {
			return d.text
		}
	}
	return d.Duration.String()
}

// UnmarshalJSON accepts a JSON string holding a duration or "Never".
func (d *NillableDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string: %w", err)
	}
	v, err := ParseNillableDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the duration string or "Never".
func (d NillableDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// ToUnstructured lets runtime.DefaultUnstructuredConverter turn the value into
// its wire string.
func (d NillableDuration) ToUnstructured() any { return d.String() }
