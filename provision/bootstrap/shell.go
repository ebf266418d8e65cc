package bootstrap

import (
	"fmt"
	"regexp"
	"strings"
)

// shellQuote returns s as one bash word with no expansions: unchanged when
// it only holds characters bash never treats specially, else single-quoted.
func shellQuote(s string) string {
	if s != "" && safeShellWord.MatchString(s) {
		return s
	}
	return singleQuote(s)
}

// singleQuote always single-quotes s for bash.
func singleQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var safeShellWord = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellCommand is one simple command of a bash script as this package reads
// it: its words after quote removal, and the heredoc bodies it reads.
type shellCommand struct {
	words     []shellWord
	redirects []shellWord // targets of >, >>, <
	heredocs  []string    // bodies, in order
	line      int         // 1-based line the command starts on
	// hasHeredoc keeps a command that is only a heredoc redirection.
	hasHeredoc bool
}

// shellWord is a word after quote removal. Dynamic words hold an expansion
// this reader cannot resolve ($(...), `...`, an unknown $VAR); their text
// shows the expansion.
type shellWord struct {
	text    string
	dynamic bool
}

// lexShell splits a bash script into simple commands. It understands what
// user data for `kubeadm join` is written with: comments, quotes, backslash
// escapes and line continuations, the control operators, redirections,
// heredocs, and $VAR / ${VAR} for variables assigned a literal earlier in the
// script. It is not a full shell: control flow is read as a flat list of
// commands, and command substitutions stay unresolved.
func lexShell(script string) ([]shellCommand, error) {
	l := &lexer{src: []rune(script), line: 1, vars: map[string]string{}}
	return l.run()
}

type lexer struct {
	src  []rune
	pos  int
	line int
	vars map[string]string

	cmds    []shellCommand
	cur     shellCommand
	pending []heredocSpec // heredocs whose bodies start after this line
	owners  []int         // index in cmds of each pending heredoc's command
}

type heredocSpec struct {
	delim     string
	stripTabs bool
}

func (l *lexer) peek(off int) rune {
	if l.pos+off < len(l.src) {
		return l.src[l.pos+off]
	}
	return 0
}

func (l *lexer) run() ([]shellCommand, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\\' && l.peek(1) == '\n':
			l.pos += 2
			l.line++
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case c == '\n':
			l.pos++
			l.line++
			l.endCommand()
			if err := l.readHeredocs(); err != nil {
				return nil, err
			}
		case c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '{' && l.atWordEnd(1) || c == '}' && len(l.cur.words) == 0:
			l.pos++
			if (c == '&' || c == '|' || c == ';') && l.peek(0) == c {
				l.pos++
			}
			l.endCommand()
		case c == '<' || c == '>' || (c >= '0' && c <= '9' && (l.peek(1) == '>' || l.peek(1) == '<') && l.atWordStart()):
			if err := l.redirect(); err != nil {
				return nil, err
			}
		default:
			w, err := l.word()
			if err != nil {
				return nil, err
			}
			if len(l.cur.words) == 0 {
				l.cur.line = l.line
			}
			l.cur.words = append(l.cur.words, w)
		}
	}
	l.endCommand()
	if len(l.pending) > 0 {
		return nil, fmt.Errorf("heredoc delimited by %q is never closed", l.pending[0].delim)
	}
	return l.cmds, nil
}

func (l *lexer) atWordStart() bool {
	return l.pos == 0 || strings.ContainsRune(" \t\n;&|()", l.src[l.pos-1])
}

func (l *lexer) atWordEnd(off int) bool {
	c := l.peek(off)
	return c == 0 || c == ' ' || c == '\t' || c == '\n'
}

// endCommand closes the current command and records literal assignments
// (NAME=value, export NAME=value) so later $NAME can be resolved.
func (l *lexer) endCommand() {
	if len(l.cur.words) == 0 && len(l.cur.redirects) == 0 && !l.cur.hasHeredoc {
		l.cur = shellCommand{}
		return
	}
	words := l.cur.words
	if len(words) > 0 && (words[0].text == "export" || words[0].text == "readonly" || words[0].text == "local" || words[0].text == "declare") {
		words = words[1:]
	}
	allAssign := len(words) > 0
	for _, w := range words {
		if _, _, ok := assignment(w.text); !ok {
			allAssign = false
		}
	}
	if allAssign {
		for _, w := range words {
			name, value, _ := assignment(w.text)
			if w.dynamic {
				delete(l.vars, name)
			} else {
				l.vars[name] = value
			}
		}
	}
	l.cmds = append(l.cmds, l.cur)
	l.cur = shellCommand{}
}

var assignmentRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=`)

func assignment(s string) (name, value string, ok bool) {
	m := assignmentRE.FindStringSubmatch(s)
	if m == nil {
		return "", "", false
	}
	return m[1], s[len(m[0]):], true
}

// redirect reads [n]>, >>, <, <<, <<- and the word after it.
func (l *lexer) redirect() error {
	for l.src[l.pos] >= '0' && l.src[l.pos] <= '9' {
		l.pos++
	}
	op := string(l.src[l.pos])
	l.pos++
	if c := l.peek(0); c == '>' || c == '<' || c == '&' || c == '|' {
		op += string(c)
		l.pos++
	}
	if op == "<<" && l.peek(0) == '-' {
		op = "<<-"
		l.pos++
	}
	if op == "<<" && l.peek(0) == '<' { // here-string <<<
		l.pos++
		op = "<<<"
	}
	for l.pos < len(l.src) && (l.src[l.pos] == ' ' || l.src[l.pos] == '\t') {
		l.pos++
	}
	if op == ">&" || op == "<&" {
		if l.pos < len(l.src) && (l.src[l.pos] >= '0' && l.src[l.pos] <= '9' || l.src[l.pos] == '-') {
			l.pos++
			return nil
		}
	}
	if l.pos >= len(l.src) || strings.ContainsRune("\n;&|()<>", l.src[l.pos]) {
		return fmt.Errorf("line %d: redirection %s without a target", l.line, op)
	}
	w, err := l.word()
	if err != nil {
		return err
	}
	if len(l.cur.words) == 0 && len(l.cur.redirects) == 0 {
		l.cur.line = l.line
	}
	switch op {
	case "<<", "<<-":
		l.pending = append(l.pending, heredocSpec{delim: w.text, stripTabs: op == "<<-"})
		l.owners = append(l.owners, len(l.cmds)) // the current command's index once it ends
		l.cur.hasHeredoc = true
	default:
		l.cur.redirects = append(l.cur.redirects, w)
	}
	return nil
}

// readHeredocs reads the bodies of the heredocs opened on the line just ended.
func (l *lexer) readHeredocs() error {
	if len(l.pending) == 0 {
		return nil
	}
	for len(l.pending) > 0 {
		spec, owner := l.pending[0], l.owners[0]
		var body strings.Builder
		closed := false
		for l.pos < len(l.src) {
			end := l.pos
			for end < len(l.src) && l.src[end] != '\n' {
				end++
			}
			line := string(l.src[l.pos:end])
			l.pos = min(end+1, len(l.src))
			l.line++
			if spec.stripTabs {
				line = strings.TrimLeft(line, "\t")
			}
			if line == spec.delim {
				closed = true
				break
			}
			body.WriteString(line)
			body.WriteByte('\n')
		}
		if !closed {
			return fmt.Errorf("heredoc delimited by %q is never closed", spec.delim)
		}
		if owner < len(l.cmds) {
			l.cmds[owner].heredocs = append(l.cmds[owner].heredocs, body.String())
		}
		l.pending, l.owners = l.pending[1:], l.owners[1:]
	}
	return nil
}

// word reads one word, removing quotes and resolving what it can.
func (l *lexer) word() (shellWord, error) {
	var b strings.Builder
	dynamic := false
	startLine := l.line
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || strings.ContainsRune(";&|()<>", c):
			return shellWord{text: b.String(), dynamic: dynamic}, nil
		case c == '\\':
			l.pos++
			if l.pos < len(l.src) {
				if l.src[l.pos] == '\n' {
					l.line++
				} else {
					b.WriteRune(l.src[l.pos])
				}
				l.pos++
			}
		case c == '\'':
			end := l.pos + 1
			for end < len(l.src) && l.src[end] != '\'' {
				end++
			}
			if end >= len(l.src) {
				return shellWord{}, fmt.Errorf("line %d: unterminated single quote", startLine)
			}
			s := string(l.src[l.pos+1 : end])
			l.line += strings.Count(s, "\n")
			b.WriteString(s)
			l.pos = end + 1
		case c == '"':
			l.pos++
			closed := false
			for l.pos < len(l.src) && !closed {
				d := l.src[l.pos]
				switch {
				case d == '"':
					closed = true
					l.pos++
				case d == '\\' && strings.ContainsRune("$`\"\\\n", l.peek(1)):
					if l.peek(1) == '\n' {
						l.line++
					} else {
						b.WriteRune(l.peek(1))
					}
					l.pos += 2
				case d == '$' || d == '`':
					text, dyn, err := l.expansion()
					if err != nil {
						return shellWord{}, err
					}
					b.WriteString(text)
					dynamic = dynamic || dyn
				default:
					if d == '\n' {
						l.line++
					}
					b.WriteRune(d)
					l.pos++
				}
			}
			if !closed {
				return shellWord{}, fmt.Errorf("line %d: unterminated double quote", startLine)
			}
		case c == '$' || c == '`':
			text, dyn, err := l.expansion()
			if err != nil {
				return shellWord{}, err
			}
			b.WriteString(text)
			dynamic = dynamic || dyn
		default:
			b.WriteRune(c)
			l.pos++
		}
	}
	return shellWord{text: b.String(), dynamic: dynamic}, nil
}

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// expansion reads $NAME, ${NAME}, $(...), $((...)) or `...` at l.pos. Known
// variables resolve to their value; anything else is returned as written and
// marked dynamic.
func (l *lexer) expansion() (string, bool, error) {
	start := l.pos
	if l.src[l.pos] == '`' {
		end := l.pos + 1
		for end < len(l.src) && l.src[end] != '`' {
			if l.src[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(l.src) {
			return "", false, fmt.Errorf("line %d: unterminated backquote", l.line)
		}
		l.pos = end + 1
		return l.span(start), true, nil
	}
	switch l.peek(1) {
	case '(':
		depth := 0
		l.pos++ // past '$'; the loop counts the parentheses
		for l.pos < len(l.src) {
			switch l.src[l.pos] {
			case '(':
				depth++
			case ')':
				depth--
			case '\n':
				l.line++
			}
			l.pos++
			if depth == 0 {
				return l.span(start), true, nil
			}
		}
		return "", false, fmt.Errorf("line %d: unterminated $(", l.line)
	case '{':
		end := l.pos + 2
		for end < len(l.src) && l.src[end] != '}' {
			end++
		}
		if end >= len(l.src) {
			return "", false, fmt.Errorf("line %d: unterminated ${", l.line)
		}
		name := string(l.src[l.pos+2 : end])
		l.pos = end + 1
		if v, ok := l.vars[name]; ok {
			return v, false, nil
		}
		return l.span(start), true, nil
	}
	rest := string(l.src[l.pos+1 : min(len(l.src), l.pos+1+256)])
	name := varNameRE.FindString(rest)
	if name == "" {
		l.pos++
		if c := l.peek(0); c != 0 && strings.ContainsRune("?#@*!$-0123456789", c) {
			l.pos++
			return l.span(start), true, nil
		}
		return "$", false, nil
	}
	l.pos += 1 + len(name)
	if v, ok := l.vars[name]; ok {
		return v, false, nil
	}
	return l.span(start), true, nil
}

func (l *lexer) span(start int) string { return string(l.src[start:l.pos]) }
