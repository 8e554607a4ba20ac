package spec

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Pos is where a value came from: a file position, or a command-line flag.
type Pos struct {
	File   string // file name, or "" when the value came from a flag or a default
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Flag   string // e.g. "--set workers.count=4" when the value came from a flag
}

func (p Pos) String() string {
	switch {
	case p.Flag != "":
		return "flag " + p.Flag
	case p.File != "" && p.Line > 0 && p.Column > 0:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	case p.File != "":
		return p.File
	default:
		return ""
	}
}

// FieldError is one problem with a spec: where it is, which field, what is wrong and how to mend it.
type FieldError struct {
	Pos  Pos
	Path string // dotted field path, e.g. "workers.instanceTypes[1]"
	Msg  string
	Hint string // how to mend it; may be empty
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// ErrorList is every problem found in one spec, in file order. Loading reports them all at once so
// that the user can mend the file in one pass.
type ErrorList []*FieldError

func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems in the cluster spec:", len(l))
	for _, e := range l {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find the individual field errors.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// err returns nil for an empty list, and otherwise the list sorted into file order (errors from
// flags and without a position last).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	slices.SortStableFunc(l, func(a, b *FieldError) int {
		ka, kb := a.Pos.Line, b.Pos.Line
		if ka == 0 {
			ka = math.MaxInt
		}
		if kb == 0 {
			kb = math.MaxInt
		}
		if ka != kb {
			return cmp.Compare(ka, kb)
		}
		return cmp.Compare(a.Pos.Column, b.Pos.Column)
	})
	return l
}
