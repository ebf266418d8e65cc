package cli

import (
	"encoding/json"
	"io"

	"sigs.k8s.io/yaml"
)

// printStructured writes v to out as -o json or -o yaml asks; for any other
// format it writes nothing and reports false, and the command prints its
// table.
func printStructured(out io.Writer, format string, v any) (bool, error) {
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = out.Write(b)
		return true, err
	}
	return false, nil
}
