package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Override sets one field from the command line, as if it were in the file. Path is the field
// path split into parts (a Spark property name is one part). Flag is what the user typed, for
// error messages.
type Override struct {
	Path  []string
	Value string // YAML: 4, true, [a, b], "text"
	Flag  string
}

// SetFlag parses "--set path=value". Spark properties are reached as spark.conf.<property>.
func SetFlag(s string) (Override, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return Override{}, fmt.Errorf("--set %s: expected path=value, e.g. --set workers.count=4", s)
	}
	var path []string
	if rest, isConf := strings.CutPrefix(k, "spark.conf."); isConf {
		path = []string{"spark", "conf", rest}
	} else {
		path = strings.Split(k, ".")
	}
	for _, p := range path {
		if p == "" {
			return Override{}, fmt.Errorf("--set %s: empty part in field path %q", s, k)
		}
	}
	return Override{Path: path, Value: v, Flag: "--set " + s}, nil
}

// Options changes how a spec is read.
type Options struct {
	// DefaultName is the cluster name used when neither the file nor an override sets one.
	// Empty means a name is required.
	DefaultName string
	Overrides   []Override
}

// MaxSize is the largest spec read: far above any real one (a few KiB), low enough that a
// mistaken file or a stream cannot make sparkplane read without end.
const MaxSize = 4 << 20

// LoadFile reads the spec at path ("-" is standard input).
func LoadFile(path string, opts Options) (*Cluster, error) {
	var r io.Reader = os.Stdin
	if path == "-" {
		path = "<stdin>"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read cluster spec: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read cluster spec %s: %w", path, err)
	}
	return Parse(path, data, opts)
}

// tooLarge is the error for a spec over MaxSize.
func tooLarge(file string, size int) error {
	return ErrorList{newFieldError(Pos{File: file, Line: 1}, "", "a cluster spec is a few KiB; check that this is the file you meant",
		"the spec is over %d MiB (%d bytes read)", MaxSize>>20, size)}
}

// Default returns the spec used when the user gives none: a local cluster of one master and two
// workers, with overrides applied.
func Default(opts Options) (*Cluster, error) {
	return Parse("", nil, opts)
}

// Parse decodes, overrides, defaults and validates one spec. file names the source in errors;
// data may be empty, which means "all defaults" (apiVersion and kind may then be left out).
func Parse(file string, data []byte, opts Options) (*Cluster, error) {
	if len(data) > MaxSize {
		return nil, tooLarge(file, len(data))
	}
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	flags := map[*yaml.Node]string{}
	var errs ErrorList
	for _, o := range opts.Overrides {
		if err := applyOverride(root, o, flags); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	d := newDecoder(file, flags, reflect.TypeOf(clusterV1{}))
	if fe := checkHeader(d, root, file, len(bytes.TrimSpace(data)) == 0); fe != nil {
		return nil, ErrorList{fe}
	}
	var v clusterV1
	d.decode(root, "", reflect.ValueOf(&v).Elem())
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	origin := &Origin{File: file, pos: d.pos}
	c, errs := v.convert(origin, opts.DefaultName)
	if len(errs) > 0 {
		return nil, errs
	}
	if errs := Validate(c); errs != nil {
		return nil, errs
	}
	if strings.Contains(file, "://") && c.Storage.Path != "" && !filepath.IsAbs(c.Storage.Path) {
		// A spec kept in a store (Consul) has no directory for the path to be relative to.
		return nil, ErrorList{origin.Errorf("storage.path", "give an absolute path: a spec kept in a store has no directory of its own",
			"%q is a relative path", c.Storage.Path)}
	}
	c.Storage.Path = resolvePath(file, c.Storage.Path)
	return c, nil
}

// resolvePath makes a relative path of a spec absolute: relative to the spec file's directory,
// or to the working directory for a spec from standard input or flags alone. The spec is then
// read the same way from anywhere, by the history server as by the cluster.
func resolvePath(file, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	base := "."
	if file != "" && file != "<stdin>" {
		base = filepath.Dir(file)
	}
	if abs, err := filepath.Abs(filepath.Join(base, p)); err == nil {
		return abs
	}
	return p
}

// parseYAML returns the document's root mapping node, making an empty one for empty input.
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, syntaxError(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, ErrorList{newFieldError(Pos{File: file, Line: extra.Line, Column: extra.Column}, "",
			"put each cluster in its own file", "more than one YAML document")}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, data, err)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, ErrorList{newFieldError(Pos{File: file, Line: root.Line, Column: root.Column}, "",
			"a spec starts with apiVersion: "+APIVersion, "expected a mapping of fields, got %s", describe(root))}
	}
	return root, nil
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into a positioned error. yaml.v3 often names
// the line where the enclosing block began rather than the line at fault, so the line reported is
// the end of the shortest prefix of the file that fails with the same message. A prefix that
// stops before the fault parses (or fails otherwise), and every prefix that holds it fails the
// same way, so a binary search finds it in O(n log n): a syntax error at the end of a 1 MB spec
// takes a handful of parses, not one per line.
func syntaxError(file string, data []byte, err error) error {
	line, msg := splitYAMLError(err)
	var ends []int // ends[k-1] is the length of the first k lines
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	fails := func(k int) bool {
		var n yaml.Node
		perr := yaml.Unmarshal(data[:ends[k-1]], &n)
		if perr == nil {
			return false
		}
		_, m := splitYAMLError(perr)
		return m == msg
	}
	if lo, hi := 1, len(ends); hi >= 1 && fails(hi) {
		for lo < hi {
			mid := lo + (hi-lo)/2
			if fails(mid) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		line = hi
	}
	return ErrorList{newFieldError(Pos{File: file, Line: line}, "", "check indentation and quoting", "YAML syntax: %s", msg)}
}

func splitYAMLError(err error) (line int, msg string) {
	msg = strings.TrimPrefix(err.Error(), "yaml: ")
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		_, msg, _ = strings.Cut(msg, ": ")
	}
	return line, msg
}

func checkHeader(d *decoder, root *yaml.Node, file string, empty bool) *FieldError {
	get := func(key string) *yaml.Node {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == key {
				return root.Content[i+1]
			}
		}
		return nil
	}
	filePos := Pos{File: file, Line: 1, Column: 1}
	if file == "" {
		filePos = Pos{}
	}
	if n := get("apiVersion"); n == nil {
		if !empty || file != "" {
			return newFieldError(filePos, "apiVersion", "add apiVersion: "+APIVersion+" as the first line", "missing")
		}
	} else if n.Value != APIVersion {
		hint := "this build reads " + APIVersion
		return newFieldError(d.posOf(n), "apiVersion", hint, "unknown version %q", n.Value)
	}
	if n := get("kind"); n == nil {
		if !empty || file != "" {
			return newFieldError(filePos, "kind", "add kind: Cluster", "missing")
		}
	} else if n.Value != "Cluster" {
		return newFieldError(d.posOf(n), "kind", "the only kind is Cluster", "unknown kind %q", n.Value)
	}
	return nil
}

func applyOverride(root *yaml.Node, o Override, flags map[*yaml.Node]string) *FieldError {
	path := strings.Join(o.Path, ".")
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(o.Value), &val); err != nil {
		return newFieldError(Pos{Flag: o.Flag}, path, "quote the value", "cannot read %q as a YAML value", o.Value)
	}
	var v *yaml.Node
	if len(val.Content) == 0 {
		v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	} else {
		v = val.Content[0]
	}
	markAll(v, o.Flag, flags)

	cur := root
	for i, part := range o.Path {
		last := i == len(o.Path)-1
		var found *yaml.Node
		for j := 0; j+1 < len(cur.Content); j += 2 {
			if cur.Content[j].Value == part {
				found = cur.Content[j+1]
				if last {
					cur.Content[j+1] = v
				}
				break
			}
		}
		if last {
			if found == nil {
				k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: part}
				flags[k] = o.Flag
				cur.Content = append(cur.Content, k, v)
			}
			return nil
		}
		if found == nil || isNull(found) {
			k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: part}
			m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			flags[k], flags[m] = o.Flag, o.Flag
			if found == nil {
				cur.Content = append(cur.Content, k, m)
			} else {
				*found = *m
				flags[found] = o.Flag
				m = found
			}
			found = m
		}
		if found.Kind != yaml.MappingNode {
			return newFieldError(Pos{Flag: o.Flag}, strings.Join(o.Path[:i+1], "."), "",
				"is a single value in the spec, not a group of fields")
		}
		cur = found
	}
	return nil
}

func markAll(n *yaml.Node, flag string, flags map[*yaml.Node]string) {
	flags[n] = flag
	for _, c := range n.Content {
		markAll(c, flag, flags)
	}
}

func newFieldError(pos Pos, path, hint, format string, args ...any) *FieldError {
	return &FieldError{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint}
}
