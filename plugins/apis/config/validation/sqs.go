package validation

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// SQS queue naming rules (CreateQueue's QueueName): checked at startup so
// a typo is reported with the field, not as a GetQueueUrl error later.
const (
	maxSQSQueueNameLength = 80
	sqsFIFOSuffix         = ".fifo"
)

func validateSQSQueueName(p *field.Path, name string) field.ErrorList {
	if strings.Contains(name, "://") {
		return field.ErrorList{field.Invalid(p, name, "give the queue's name, not its URL")}
	}
	if len(name) > maxSQSQueueNameLength {
		return field.ErrorList{field.TooLong(p, name, maxSQSQueueNameLength)}
	}
	base := strings.TrimSuffix(name, sqsFIFOSuffix)
	if base == "" {
		return field.ErrorList{field.Invalid(p, name, "an SQS queue name needs at least one character before .fifo")}
	}
	for _, r := range base {
		if !isSQSNameRune(r) {
			return field.ErrorList{field.Invalid(p, name, fmt.Sprintf("invalid character %q: SQS queue names use only a-z, A-Z, 0-9, '-' and '_' (and a .fifo suffix)", r))}
		}
	}
	return nil
}

func isSQSNameRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_':
		return true
	}
	return false
}
