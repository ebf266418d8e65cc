package image

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

// parseDockerfile splits a Dockerfile into stages of instructions. It
// knows comments, line continuations and instruction words: enough for
// our own Dockerfile; buildkit's parser would bring buildkit's module graph
// into go.mod for this one test.
func parseDockerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		stages [][]instruction
		cur    string
	)
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		cur = ""
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" || len(stages) == 0 {
			stages = append(stages, nil)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	return stages
}

// words splits LABEL/ENV arguments: key=value pairs, values optionally
// double-quoted.
func words(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return out
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			val, s = rest[1:end+1], rest[end+2:]
		} else {
			val, s, _ = strings.Cut(rest, " ")
		}
		out[key] = val
	}
	return out
}

func checkDockerfile(t *testing.T, b *built) {
	stages := parseDockerfile(t, filepath.Join(b.root, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(stages))
	}
	all := map[string][]string{}
	for _, st := range stages {
		for _, in := range st {
			all[in.cmd] = append(all[in.cmd], in.args)
		}
	}
	final := map[string][]string{}
	for _, in := range stages[len(stages)-1] {
		final[in.cmd] = append(final[in.cmd], in.args)
	}
	c := b.cfg.Config

	if from := final["FROM"]; len(from) != 1 || from[0] != "scratch" {
		t.Errorf("final stage FROM %q, want scratch: nothing but what hack/image writes", from)
	}
	if !slices.ContainsFunc(all["RUN"], func(r string) bool {
		return strings.Contains(r, "make build") && strings.Contains(r, "hack/image --rootfs /rootfs")
	}) {
		t.Errorf("RUN %q: the build stage must run `make build` and `hack/image --rootfs /rootfs`", all["RUN"])
	}
	if !slices.Contains(final["COPY"], "--from=build /rootfs/ /") {
		t.Errorf("COPY %q: the image must be the rootfs hack/image wrote", final["COPY"])
	}
	if got := final["USER"]; len(got) != 1 || got[0] != c.User {
		t.Errorf("USER %q, the image's user is %q", got, c.User)
	}
	var entrypoint []string
	if got := final["ENTRYPOINT"]; len(got) != 1 || json.Unmarshal([]byte(got[0]), &entrypoint) != nil || !slices.Equal(entrypoint, c.Entrypoint) {
		t.Errorf("ENTRYPOINT %q, the image's is %q (exec form)", got, c.Entrypoint)
	}
	if got := final["WORKDIR"]; len(got) != 1 || got[0] != c.WorkingDir {
		t.Errorf("WORKDIR %q, the image's is %q", got, c.WorkingDir)
	}
	env := map[string]string{}
	for _, e := range final["ENV"] {
		maps.Copy(env, words(e))
	}
	for _, e := range c.Env {
		k, v, _ := strings.Cut(e, "=")
		if env[k] != v {
			t.Errorf("ENV %s=%q, the image has %q", k, env[k], v)
		}
	}
	labels := map[string]string{}
	for _, l := range final["LABEL"] {
		maps.Copy(labels, words(l))
	}
	if got, want := slices.Sorted(maps.Keys(labels)), slices.Sorted(maps.Keys(c.Labels)); !slices.Equal(got, want) {
		t.Errorf("LABEL keys %q, the image's %q", got, want)
	}
	for k, v := range labels {
		if !strings.Contains(v, "${") && c.Labels[k] != v {
			t.Errorf("LABEL %s=%q, the image's %q", k, v, c.Labels[k])
		}
	}
	args := map[string]string{}
	for _, a := range all["ARG"] {
		maps.Copy(args, words(a))
	}
	if want := makeVar(t, b.root, "VERSION"); args["VERSION"] != want {
		t.Errorf("ARG VERSION=%q, the Makefile's VERSION is %q", args["VERSION"], want)
	}
	if want := strings.TrimPrefix(runtime.Version(), "go"); args["GO_VERSION"] != want {
		t.Errorf("ARG GO_VERSION=%q, the project builds with Go %s", args["GO_VERSION"], want)
	}
}
