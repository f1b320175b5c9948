package stripetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// MarshalStripeJSON encodes v the way Stripe renders API objects in webhook
// bodies: indented by two spaces, "id" and "object" first and every other
// key in alphabetical order, HTML characters left unescaped. Supported
// values are nil, strings, booleans, integers, floats, time.Time (encoded as
// a Unix timestamp), json.RawMessage, json.Number, maps with string keys and
// slices; anything else is passed through encoding/json first.
func MarshalStripeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encodeValue(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func indent(b *bytes.Buffer, depth int) {
	b.WriteByte('\n')
	for i := 0; i < depth; i++ {
		b.WriteString("  ")
	}
}

func encodeValue(b *bytes.Buffer, v any, depth int) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int8:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int16:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int32:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case uint:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint8:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint16:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint32:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case float32:
		return encodeFloat(b, float64(x))
	case float64:
		return encodeFloat(b, x)
	case json.Number:
		b.WriteString(x.String())
	case time.Time:
		b.WriteString(strconv.FormatInt(x.Unix(), 10))
	case json.RawMessage:
		return encodeValue(b, decodeAny(x), depth)
	case map[string]any:
		return encodeMap(b, x, depth)
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return encodeMap(b, m, depth)
	case []any:
		return encodeSlice(b, len(x), func(i int) any { return x[i] }, depth)
	case []map[string]any:
		return encodeSlice(b, len(x), func(i int) any { return x[i] }, depth)
	case []string:
		return encodeSlice(b, len(x), func(i int) any { return x[i] }, depth)
	default:
		raw, err := json.Marshal(x)
		if err != nil {
			return err
		}
		return encodeValue(b, decodeAny(raw), depth)
	}
	return nil
}

func decodeAny(raw []byte) any {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return string(raw)
	}
	return v
}

func encodeFloat(b *bytes.Buffer, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("stripetest: unsupported float value %v", f)
	}
	raw, _ := json.Marshal(f)
	b.Write(raw)
	return nil
}

// stripeKeyLess orders keys like Stripe: "id", then "object", then the rest
// alphabetically.
func stripeKeyLess(a, b string) bool {
	rank := func(k string) int {
		switch k {
		case "id":
			return 0
		case "object":
			return 1
		}
		return 2
	}
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return ra < rb
	}
	return a < b
}

func encodeMap(b *bytes.Buffer, m map[string]any, depth int) error {
	if len(m) == 0 {
		b.WriteString("{}")
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return stripeKeyLess(keys[i], keys[j]) })
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		indent(b, depth+1)
		writeString(b, k)
		b.WriteString(": ")
		if err := encodeValue(b, m[k], depth+1); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	indent(b, depth)
	b.WriteByte('}')
	return nil
}

func encodeSlice(b *bytes.Buffer, n int, at func(int) any, depth int) error {
	if n == 0 {
		b.WriteString("[]")
		return nil
	}
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		indent(b, depth+1)
		if err := encodeValue(b, at(i), depth+1); err != nil {
			return err
		}
	}
	indent(b, depth)
	b.WriteByte(']')
	return nil
}

const hexDigits = "0123456789abcdef"

// writeString writes s as a JSON string without HTML escaping.
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '\u2028':
			b.WriteString(`\u2028`)
		case r == '\u2029':
			b.WriteString(`\u2029`)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
