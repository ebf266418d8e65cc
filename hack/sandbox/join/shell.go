package join

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

// mark delimits, in a word's value, the number of an expansion the user
// data alone does not resolve ($(...), `...`, an unknown $VAR).
const mark = "\x00"

// word is a shell word after quote removal, with its unresolved expansions
// as marked placeholders.
type word struct {
	value string
	r     *reader
}

func (w word) dynamic() bool { return strings.Contains(w.value, mark) }

// text is the word with its unresolved expansions as written.
func (w word) text() string { return w.r.show(w.value) }

// command is a `kubeadm join` the script runs: the words after `join`.
type command struct {
	line int
	args []word
}

// reader walks a bash script in order, resolving variables assigned a
// literal earlier, and keeps the joins it runs, the KUBELET_EXTRA_ARGS
// assignments it makes or writes to a kubelet environment file, and what
// its heredocs write to files (a kubeadm JoinConfiguration, say).
type reader struct {
	src        string
	vars       map[string]string
	exps       []string // unresolved expansions as written, by number
	joins      []command
	kubeletEnv []word
	files      map[string]string
}

func readScript(src string) (*reader, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		return nil, shellError(err)
	}
	r := &reader{src: src, vars: map[string]string{}, files: map[string]string{}}
	syntax.Walk(f, func(n syntax.Node) bool {
		if s, ok := n.(*syntax.Stmt); ok {
			r.stmt(s)
		}
		return true
	})
	return r, nil
}

// shellError says in plain words what is wrong with hand-written user
// data for the mistakes made most: an unterminated quote or heredoc.
func shellError(err error) error {
	var pe syntax.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case strings.Contains(pe.Text, "without closing quote `'`"):
		return fmt.Errorf("line %d: unterminated single quote: %w", pe.Pos.Line(), err)
	case strings.Contains(pe.Text, "without closing quote `\"`"):
		return fmt.Errorf("line %d: unterminated double quote: %w", pe.Pos.Line(), err)
	case strings.HasPrefix(pe.Text, "unclosed here-document"):
		return fmt.Errorf("line %d: a heredoc is never closed: %w", pe.Pos.Line(), err)
	}
	return err
}

func (r *reader) stmt(s *syntax.Stmt) {
	var words []word
	switch c := s.Cmd.(type) {
	case *syntax.CallExpr:
		for _, a := range c.Assigns {
			r.noteKubeletEnv(r.assignment(a))
		}
		values := make([]string, len(c.Args))
		for i, a := range c.Args {
			w := r.word(a)
			words, values[i] = append(words, w), w.value
			r.noteKubeletEnv(w)
		}
		if len(c.Args) == 0 {
			for _, a := range c.Assigns {
				r.assign(a)
			}
		}
		if i, ok := bootstrap.KubeadmJoinArgs(values); ok {
			r.joins = append(r.joins, command{line: int(s.Pos().Line()), args: words[i:]})
		}
	case *syntax.DeclClause:
		for _, a := range c.Args {
			if !a.Naked {
				r.noteKubeletEnv(r.assignment(a))
				r.assign(a)
			}
		}
	}
	r.noteFiles(s, words)
	if !r.writesKubeletEnv(s, words) {
		return
	}
	for _, rd := range s.Redirs {
		if rd.Hdoc == nil || (rd.Op != syntax.Hdoc && rd.Op != syntax.DashHdoc) {
			continue
		}
		body, err := readScript(r.heredoc(rd.Hdoc))
		if err != nil {
			continue // not shell-like; systemd would not read it either
		}
		r.kubeletEnv = append(r.kubeletEnv, body.kubeletEnv...)
	}
}

func (r *reader) noteKubeletEnv(w word) {
	if name, _, ok := strings.Cut(w.value, "="); ok && name == "KUBELET_EXTRA_ARGS" {
		r.kubeletEnv = append(r.kubeletEnv, w)
	}
}

// noteFiles records what a heredoc writes to files: `cat > f <<EOF`
// (>> appends) and `tee [-a] f... <<EOF`. Paths from unresolved
// expansions are not files the user data alone names.
func (r *reader) noteFiles(s *syntax.Stmt, words []word) {
	var hdoc *syntax.Redirect
	for _, rd := range s.Redirs {
		if rd.Hdoc != nil && (rd.Op == syntax.Hdoc || rd.Op == syntax.DashHdoc) {
			hdoc = rd
		}
	}
	if hdoc == nil {
		return
	}
	// <<'EOF' writes its body as it is; <<EOF expands it as double quotes
	// would: variables assigned a literal resolve, anything else is marked.
	content := r.heredoc(hdoc.Hdoc)
	if !quotedDelimiter(hdoc.Word) {
		var b strings.Builder
		r.parts(&b, hdoc.Hdoc.Parts, true)
		content = b.String()
	}
	write := func(path string, appendTo bool) {
		if path == "" || strings.Contains(path, mark) {
			return
		}
		if appendTo {
			r.files[path] += content
		} else {
			r.files[path] = content
		}
	}
	for _, rd := range s.Redirs {
		if rd.Word != nil && (rd.Op == syntax.RdrOut || rd.Op == syntax.ClbOut || rd.Op == syntax.AppOut) {
			write(r.word(rd.Word).value, rd.Op == syntax.AppOut)
		}
	}
	if len(words) > 0 && path.Base(words[0].value) == "tee" {
		appendTo := false
		for _, w := range words[1:] {
			switch {
			case w.value == "-a" || w.value == "--append":
				appendTo = true
			case !strings.HasPrefix(w.value, "-"):
				write(w.value, appendTo)
			}
		}
	}
}

// quotedDelimiter reports whether a heredoc's delimiter is quoted (any
// part of it), which turns expansion in its body off.
func quotedDelimiter(w *syntax.Word) bool {
	if w == nil {
		return false
	}
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.SglQuoted, *syntax.DblQuoted:
			return true
		case *syntax.Lit:
			if strings.Contains(p.Value, `\`) {
				return true
			}
		}
	}
	return false
}

// writesKubeletEnv reports whether a command writes a kubelet environment
// file (cat > /etc/default/kubelet <<EOF, tee /etc/sysconfig/kubelet, ...).
func (r *reader) writesKubeletEnv(s *syntax.Stmt, words []word) bool {
	for _, rd := range s.Redirs {
		if rd.Word != nil {
			words = append(words, r.word(rd.Word))
		}
	}
	for _, w := range words {
		if path.Base(w.value) == "kubelet" && strings.HasPrefix(w.value, "/etc/") {
			return true
		}
	}
	return false
}

// heredoc is a heredoc's body as the file it writes holds it.
func (r *reader) heredoc(w *syntax.Word) string {
	var b strings.Builder
	for _, p := range w.Parts {
		if l, ok := p.(*syntax.Lit); ok {
			b.WriteString(l.Value)
		} else {
			b.WriteString(r.source(p))
		}
	}
	return b.String()
}

// assignment is NAME=value as one word.
func (r *reader) assignment(a *syntax.Assign) word {
	w := word{value: a.Name.Value + "=", r: r}
	if a.Value != nil {
		w.value += r.word(a.Value).value
	}
	return w
}

// assign records a variable assigned a literal; any other assignment
// makes it unknown.
func (r *reader) assign(a *syntax.Assign) {
	name := a.Name.Value
	if a.Append || a.Index != nil || a.Array != nil {
		delete(r.vars, name)
		return
	}
	var value word
	if a.Value != nil {
		value = r.word(a.Value)
	}
	if value.dynamic() {
		delete(r.vars, name)
		return
	}
	r.vars[name] = value.value
}

// word removes quotes and resolves what it can.
func (r *reader) word(w *syntax.Word) word {
	var b strings.Builder
	r.parts(&b, w.Parts, false)
	return word{value: b.String(), r: r}
}

func (r *reader) parts(b *strings.Builder, parts []syntax.WordPart, quoted bool) {
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(bootstrap.Unescape(p.Value, quoted))
		case *syntax.SglQuoted:
			if p.Dollar {
				r.unresolved(b, p)
				continue
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			r.parts(b, p.Parts, true)
		case *syntax.ParamExp:
			if v, ok := r.vars[paramName(p)]; ok {
				b.WriteString(v)
				continue
			}
			r.unresolved(b, p)
		default:
			r.unresolved(b, p)
		}
	}
}

// paramName is the variable $NAME or ${NAME} expands, or "" for any other
// parameter expansion.
func paramName(p *syntax.ParamExp) string {
	if p.Param == nil || p.Excl || p.Length || p.Width || p.Index != nil || p.Slice != nil || p.Repl != nil || p.Exp != nil || p.Names != 0 {
		return ""
	}
	return p.Param.Value
}

func (r *reader) unresolved(b *strings.Builder, n syntax.Node) {
	fmt.Fprintf(b, "%s%d%s", mark, len(r.exps), mark)
	r.exps = append(r.exps, r.source(n))
}

func (r *reader) source(n syntax.Node) string {
	start, end := int(n.Pos().Offset()), int(n.End().Offset())
	if start < 0 || end > len(r.src) || start > end {
		return ""
	}
	return r.src[start:end]
}

// show puts the unresolved expansions back into s as written.
func (r *reader) show(s string) string {
	parts := strings.Split(s, mark)
	for i := 1; i < len(parts); i += 2 {
		if n, err := strconv.Atoi(parts[i]); err == nil && n >= 0 && n < len(r.exps) {
			parts[i] = r.exps[n]
		}
	}
	return strings.Join(parts, "")
}
