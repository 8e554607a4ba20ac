package standin

import (
	"encoding/json"
	"strconv"
	"strings"
)

// obj is a JSON object with its keys in the order Spark's JsonProtocol writes them.
type obj []field

type field struct {
	k string
	v any
}

// pretty renders v as json4s' pretty(render(...)) does: `"key" : value`, two-space indent,
// arrays of scalars inline as [ a, b ], arrays of objects as [ { … }, { … } ], empty as [ ] and
// { }, and no trailing newline.
func pretty(v any) string {
	var b strings.Builder
	write(&b, v, 0)
	return b.String()
}

func write(b *strings.Builder, v any, indent int) {
	pad := strings.Repeat("  ", indent)
	switch x := v.(type) {
	case obj:
		if len(x) == 0 {
			b.WriteString("{ }")
			return
		}
		b.WriteString("{\n")
		for i, f := range x {
			b.WriteString(pad + "  ")
			b.WriteString(strconv.Quote(f.k))
			b.WriteString(" : ")
			write(b, f.v, indent+1)
			if i < len(x)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(pad + "}")
	case []obj:
		if len(x) == 0 {
			b.WriteString("[ ]")
			return
		}
		b.WriteString("[ ")
		for i, o := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			write(b, o, indent)
		}
		b.WriteString(" ]")
	case []string:
		if len(x) == 0 {
			b.WriteString("[ ]")
			return
		}
		parts := make([]string, len(x))
		for i, s := range x {
			parts[i] = strconv.Quote(s)
		}
		b.WriteString("[ " + strings.Join(parts, ", ") + " ]")
	default:
		j, _ := json.Marshal(x)
		b.Write(j)
	}
}

// writeCompact renders v as json4s' compact(render(...)) does, as in event logs: no spaces.
func writeCompact(b *strings.Builder, v any) {
	switch x := v.(type) {
	case obj:
		b.WriteByte('{')
		for i, f := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(f.k))
			b.WriteByte(':')
			writeCompact(b, f.v)
		}
		b.WriteByte('}')
	case []obj:
		b.WriteByte('[')
		for i, o := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCompact(b, o)
		}
		b.WriteByte(']')
	default:
		j, _ := json.Marshal(x)
		b.Write(j)
	}
}
