package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/term"
)

// IOStreams is where every byte of output goes. Results go to Out; progress, status lines and
// warnings go to ErrOut, so that `sparkplane jobs -o json | jq` stays clean.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	outTTY, errTTY, inTTY bool
	color                 bool

	mu sync.Mutex
}

// System returns streams on the process's stdin, stdout and stderr.
func System() *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	s.outTTY = term.IsTerminal(int(os.Stdout.Fd()))
	s.errTTY = term.IsTerminal(int(os.Stderr.Fd()))
	s.inTTY = term.IsTerminal(int(os.Stdin.Fd()))
	s.color = s.errTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return s
}

// Test returns streams on buffers, none a terminal.
func Test(in io.Reader, out, errOut io.Writer) *IOStreams {
	return &IOStreams{In: in, Out: out, ErrOut: errOut}
}

// IsTerminal reports whether stdout is a terminal.
func (s *IOStreams) IsTerminal() bool { return s.outTTY }

// Width is the terminal's width on stdout, or 100 when it is not a terminal.
func (s *IOStreams) Width() int {
	if f, ok := s.Out.(*os.File); ok && s.outTTY {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	return 100
}

// Height is the terminal's rows, or 0 when stdout is not a terminal (no limit).
func (s *IOStreams) Height() int {
	if f, ok := s.Out.(*os.File); ok && s.outTTY {
		if _, h, err := term.GetSize(int(f.Fd())); err == nil && h > 0 {
			return h
		}
	}
	return 0
}

// colorOut reports whether stdout may be coloured.
func (s *IOStreams) colorOut() bool {
	return s.outTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// CanPrompt reports whether the user can be asked a question.
func (s *IOStreams) CanPrompt() bool { return s.inTTY && s.errTTY }

func (s *IOStreams) paint(code, text string) string {
	if !s.color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Success prints "✓ msg" on stderr.
func (s *IOStreams) Success(format string, args ...any) {
	s.line(s.paint("32", "✓")+" ", format, args...)
}

// Failure prints "✗ msg" on stderr.
func (s *IOStreams) Failure(format string, args ...any) {
	s.line(s.paint("31", "✗")+" ", format, args...)
}

// Warn prints "! msg" on stderr.
func (s *IOStreams) Warn(format string, args ...any) {
	s.line(s.paint("33", "!")+" ", format, args...)
}

// Info prints "• msg" on stderr.
func (s *IOStreams) Info(format string, args ...any) {
	s.line("• ", format, args...)
}

func (s *IOStreams) line(prefix, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.ErrOut, "%s%s\n", prefix, fmt.Sprintf(format, args...))
}

// Step shows work under way: a spinner when stdout and stderr are both terminals, one line
// otherwise. The returned function ends it.
func (s *IOStreams) Step(format string, args ...any) func() {
	_, end := s.StepStatus(format, args...)
	return end
}

// StepStatus is Step whose work reports how far it has got: status replaces the text after the
// spinner's message on a terminal, and prints a line of its own otherwise (its callers say
// little, and seldom).
func (s *IOStreams) StepStatus(format string, args ...any) (status func(string), end func()) {
	msg := fmt.Sprintf(format, args...)
	if !s.errTTY || !s.outTTY {
		s.Info("%s …", msg)
		return func(st string) { s.Info("%s", st) }, func() {}
	}
	var current string // under s.mu
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			s.mu.Lock()
			line := msg
			if current != "" {
				line += ": " + current
			}
			fmt.Fprintf(s.ErrOut, "\r\x1b[K%s %s", frames[i%len(frames)], line)
			s.mu.Unlock()
			select {
			case <-done:
				s.mu.Lock()
				fmt.Fprintf(s.ErrOut, "\r\x1b[K")
				s.mu.Unlock()
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	status = func(st string) {
		s.mu.Lock()
		current = st
		s.mu.Unlock()
	}
	return status, func() { once.Do(func() { close(done); <-stopped }) }
}

// Table writes rows: aligned columns with a header on a terminal, tab-separated without a header
// when piped, so that scripts can cut and awk.
type Table struct {
	s      *IOStreams
	header []string
	rows   [][]string
}

func (s *IOStreams) NewTable(header ...string) *Table { return &Table{s: s, header: header} }

func (t *Table) Row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *Table) Render() error {
	if !t.s.outTTY {
		for _, r := range t.rows {
			if _, err := fmt.Fprintln(t.s.Out, strings.Join(r, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(t.s.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		for i, c := range r {
			if utf8.RuneCountInString(c) > 60 {
				r[i] = string([]rune(c)[:59]) + "…"
			}
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// Print writes v as JSON or YAML. An empty list is printed as one ([]), never as null.
func (s *IOStreams) Print(format string, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = []any{}
	}
	v = outputValue(v) // the spec's units: durations as "10s", memory as "4g"
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case FormatYAML:
		// Through JSON, so that the field names are the JSON ones.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			return err
		}
		enc := yaml.NewEncoder(s.Out)
		enc.SetIndent(2)
		defer enc.Close()
		return enc.Encode(generic)
	}
	return fmt.Errorf("unknown output format %q", format)
}
