package bootstrap

import (
	"fmt"
	"path"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// quote returns s as one bash word that expands to s and nothing else.
func quote(s string) (string, error) {
	q, err := syntax.Quote(s, syntax.LangBash)
	if err != nil {
		return "", fmt.Errorf("%q cannot be written into a shell script: %w", s, err)
	}
	return q, nil
}

// KubeadmJoinArgs reports whether the words of a simple command (after
// quote removal) run `kubeadm join`, looking past sudo, env, exec and the
// like, and returns the index of the first argument after `join`.
func KubeadmJoinArgs(words []string) (int, bool) {
	i := 0
	for i < len(words) {
		switch w := words[i]; w {
		case "sudo", "env", "exec", "command", "time", "nohup":
			i++
			continue
		default:
			if strings.HasPrefix(w, "-") && i > 0 && (words[i-1] == "sudo" || words[i-1] == "env") {
				i++ // sudo -E and the like
				continue
			}
			if isAssignment(w) && i > 0 && words[i-1] == "env" {
				i++ // env NAME=value kubeadm ...
				continue
			}
		}
		break
	}
	if i+1 < len(words) && path.Base(words[i]) == "kubeadm" && words[i+1] == "join" {
		return i + 2, true
	}
	return 0, false
}

// isAssignment reports whether w reads NAME=value.
func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	return ok && syntax.ValidName(name)
}

// runsKubeadmJoin reports whether a script runs a `kubeadm join` command
// anywhere bash would run one: not in a comment or a heredoc body, but in
// a pipeline, a condition or a command substitution alike.
func runsKubeadmJoin(script string) bool {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(script), "")
	if err != nil {
		// Not readable as bash; look for the words on uncommented lines.
		for _, line := range strings.Split(script, "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "#") && strings.Contains(line, "kubeadm join") {
				return true
			}
		}
		return false
	}
	joins := false
	syntax.Walk(f, func(n syntax.Node) bool {
		if call, ok := n.(*syntax.CallExpr); ok && !joins {
			words := make([]string, len(call.Args))
			for i, w := range call.Args {
				words[i] = literal(w)
			}
			_, joins = KubeadmJoinArgs(words)
		}
		return !joins
	})
	return joins
}

// literal is a word's value after quote removal when it holds no
// expansion, else "".
func literal(w *syntax.Word) string {
	var b strings.Builder
	var add func(parts []syntax.WordPart, quoted bool) bool
	add = func(parts []syntax.WordPart, quoted bool) bool {
		for _, p := range parts {
			switch p := p.(type) {
			case *syntax.Lit:
				b.WriteString(Unescape(p.Value, quoted))
			case *syntax.SglQuoted:
				if p.Dollar {
					return false
				}
				b.WriteString(p.Value)
			case *syntax.DblQuoted:
				if !add(p.Parts, true) {
					return false
				}
			default:
				return false
			}
		}
		return true
	}
	if !add(w.Parts, false) {
		return ""
	}
	return b.String()
}

// Unescape removes the backslashes of a literal (a syntax.Lit's value) as
// bash does: outside quotes each escapes the next character; inside double
// quotes only $, `, ", \ and a newline do. An escaped newline is a line
// continuation.
func Unescape(lit string, quoted bool) string {
	if !strings.Contains(lit, `\`) {
		return lit
	}
	var b strings.Builder
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c != '\\' || i+1 >= len(lit) {
			b.WriteByte(c)
			continue
		}
		next := lit[i+1]
		switch {
		case next == '\n':
			i++
		case !quoted || strings.IndexByte("$`\"\\", next) >= 0:
			b.WriteByte(next)
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
