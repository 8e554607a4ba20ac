package cli

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/sparkplane/sparkplane/internal/spec"
)

// outputValue is what -o json and -o yaml print for v: its JSON form, written in the spec's units
// so that a script reads what a user writes. Every time.Duration is a string such as "10s" or
// "1h30m" (spec.ParseDuration reads it back), and every memory size kept in MiB (a field whose JSON
// name ends in "MiB") is a size such as "4g" under the name without the suffix ("memory"). The
// stored forms (cluster.json, the state database, the agents' API) are not changed by this.
func outputValue(v any) any { return convertOutput(reflect.ValueOf(v)) }

var (
	durationType  = reflect.TypeOf(time.Duration(0))
	marshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textType      = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

func convertOutput(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == durationType {
		return formatDuration(time.Duration(v.Int()))
	}
	if v.Type().Implements(marshalerType) || v.Type().Implements(textType) {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return nil
		}
		return v.Interface() // time.Time, json.RawMessage: as they marshal themselves
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return convertOutput(v.Elem())
	case reflect.Struct:
		obj := &orderedObject{}
		addFields(obj, v)
		return obj
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Interface() // bytes, as encoding/json writes them
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = convertOutput(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = convertOutput(it.Value())
		}
		return out
	}
	return v.Interface()
}

// addFields adds a struct's fields as encoding/json would name and omit them; the fields of an
// embedded struct without a name of its own are the outer struct's.
func addFields(obj *orderedObject, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			if fv.Kind() == reflect.Struct {
				addFields(obj, fv)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		if strings.Contains(","+opts+",", ",omitempty,") && emptyJSON(fv) {
			continue
		}
		if base, ok := strings.CutSuffix(name, "MiB"); ok && base != "" && fv.Kind() == reflect.Int {
			obj.add(base, spec.FormatMemory(int(fv.Int())))
			continue
		}
		obj.add(name, convertOutput(fv))
	}
}

// emptyJSON is encoding/json's omitempty test.
func emptyJSON(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// formatDuration writes d as the spec does: "10s", "30m", "1h30m", "1.5s", "0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// orderedObject is a JSON object that keeps its fields in the order they were added (the
// struct's), where a map would sort them.
type orderedObject struct {
	keys   []string
	values []any
}

func (o *orderedObject) add(k string, v any) {
	o.keys, o.values = append(o.keys, k), append(o.values, v)
}

func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.values[i])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
