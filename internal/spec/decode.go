package spec

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// scalarDecoder is implemented by field types that parse themselves from one YAML scalar
// (durations, for example). The returned error's text becomes the field error's message.
type scalarDecoder interface {
	decodeScalar(value string) error
}

// decoder turns a yaml.Node tree into the versioned Go types strictly: every unknown field, wrong
// type or duplicate key becomes a FieldError that names where it is. It records where every field
// it decoded came from, so that later validation can point at the same place.
type decoder struct {
	file  string
	flags map[*yaml.Node]string // nodes that a --set flag made, with the flag's text
	errs  ErrorList
	pos   map[string]Pos
	known []string // every field path the versioned type has, for "did you mean" hints
}

func newDecoder(file string, flags map[*yaml.Node]string, root reflect.Type) *decoder {
	d := &decoder{file: file, flags: flags, pos: map[string]Pos{}}
	d.known = fieldPaths(root, "")
	return d
}

func (d *decoder) posOf(n *yaml.Node) Pos {
	if f, ok := d.flags[n]; ok {
		return Pos{Flag: f}
	}
	return Pos{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) fail(n *yaml.Node, path, hint, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Pos: d.posOf(n), Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// decode fills v (addressable) from n. Null scalars leave v untouched.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if path != "" {
		d.pos[path] = d.posOf(n)
	}
	if isNull(n) {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
		return
	}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "", "expected a single value, got %s", kindName(n))
			return
		}
		if err := sd.decodeScalar(n.Value); err != nil {
			d.fail(n, path, "", "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Map:
		d.decodeStringMap(n, path, v)
	case reflect.Slice:
		d.decodeSlice(n, path, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "", "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			hint := ""
			if n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				if _, err := strconv.Atoi(n.Value); err == nil {
					hint = "remove the quotes"
				}
			}
			d.fail(n, path, hint, "expected a whole number, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || i != int64(int(i)) {
			d.fail(n, path, "", "%q is not a whole number this program can hold", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fail(n, path, "write true or false", "expected true or false, got %s", describe(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("spec: no decoder for %s at %s", v.Type(), path))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "", "expected a mapping of fields, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "", "field names must be plain words, got %s", kindName(k))
			continue
		}
		name := k.Value
		fpath := join(path, name)
		if prev, dup := seen[name]; dup {
			d.fail(k, fpath, fmt.Sprintf("it is already set at line %d; keep one", prev.Line), "duplicate field")
			continue
		}
		seen[name] = k
		idx, ok := fields[name]
		if !ok {
			d.fail(k, fpath, d.suggest(path, name, fields), "unknown field %q", name)
			continue
		}
		d.decode(val, fpath, v.Field(idx))
		if val.Kind == yaml.MappingNode || (val.Kind == yaml.SequenceNode && val.Style&yaml.FlowStyle == 0) {
			// A block is best pointed at by its name, not by its first line.
			d.pos[fpath] = d.posOf(k)
		}
	}
}

func (d *decoder) decodeStringMap(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "", "expected a mapping of names to values, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for val.Kind == yaml.AliasNode {
			val = val.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "", "keys must be plain strings, got %s", kindName(k))
			continue
		}
		kpath := path + "[" + strconv.Quote(k.Value) + "]"
		d.pos[kpath] = d.posOf(k)
		if seen[k.Value] {
			d.fail(k, kpath, "keep one", "duplicate key")
			continue
		}
		seen[k.Value] = true
		// Spark's configuration values are strings; a YAML number or boolean is taken as written.
		if val.Kind != yaml.ScalarNode || isNull(val) {
			d.fail(val, kpath, "quote it, e.g. \"4g\"", "expected a single value, got %s", describe(val))
			continue
		}
		v.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf("write it as a list: [%s]", n.Value)
		}
		d.fail(n, path, hint, "expected a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, fmt.Sprintf("%s[%d]", path, i), out.Index(i))
	}
	v.Set(out)
}

// suggest returns a hint for an unknown field: a close spelling at the same level, or the same
// name at another level of the spec.
func (d *decoder) suggest(path, name string, fields map[string]int) string {
	best, bestDist := "", 3
	for f := range fields {
		dist := editDistance(strings.ToLower(name), strings.ToLower(f))
		if dist < bestDist || (dist == bestDist && f < best) {
			best, bestDist = f, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	for _, p := range d.known {
		last := p[strings.LastIndex(p, ".")+1:]
		if strings.EqualFold(last, name) && p != join(path, name) {
			return fmt.Sprintf("%q belongs under %q", name, p)
		}
	}
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	where := "here"
	if path != "" {
		where = "under " + strconv.Quote(path)
	}
	return fmt.Sprintf("fields allowed %s: %s", where, strings.Join(names, ", "))
}

// structFields maps yaml names to field indexes.
func structFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			out[name] = i
		}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	if tag == "-" || !f.IsExported() {
		return ""
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	return ""
}

// fieldPaths lists every dotted field path of a versioned type.
func fieldPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeOf((*scalarDecoder)(nil)).Elem()) {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name := yamlName(t.Field(i))
		if name == "" {
			continue
		}
		p := join(prefix, name)
		out = append(out, p)
		out = append(out, fieldPaths(t.Field(i).Type, p)...)
	}
	return out
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "something else"
	}
}

func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return kindName(n)
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int":
		return "the number " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return n.Value
	case "!!null":
		return "nothing"
	default:
		return strconv.Quote(n.Value)
	}
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
