package pan

import (
	"bytes"
	"encoding/json"
	"reflect"
)

var (
	rawMessageType = reflect.TypeOf(json.RawMessage(nil))
	numberType     = reflect.TypeOf(json.Number(""))
)

// MaskFields masks card numbers, in place, in every string that v (a
// pointer) holds: struct fields (exported), pointers, slices, arrays, map
// keys and values, interfaces, and the strings inside json.RawMessage
// values (the JSON is re-encoded only when something was masked; numbers
// are left alone, they are not text). It is what binding a request does to
// the request struct, so that no text a client sends carries a full card
// number past the edge.
func MaskFields(v any) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return
	}
	maskValue(rv.Elem())
}

// maskValue masks v, which must be settable, or a map or pointer whose
// contents are reached through it.
func maskValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.Type() == numberType {
			return // a JSON number is not text
		}
		if m := Mask(v.String()); m != v.String() && v.CanSet() {
			v.SetString(m)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			maskValue(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				maskValue(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Type() == rawMessageType {
			if m, ok := maskJSON(v.Bytes()); ok && v.CanSet() {
				v.SetBytes(m)
			}
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // bytes, not text
		}
		for i := 0; i < v.Len(); i++ {
			maskValue(v.Index(i))
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			maskValue(v.Index(i))
		}
	case reflect.Interface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		cp := reflect.New(v.Elem().Type()).Elem()
		cp.Set(v.Elem())
		maskValue(cp)
		v.Set(cp)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		for _, k := range v.MapKeys() {
			val := reflect.New(v.Type().Elem()).Elem()
			val.Set(v.MapIndex(k))
			maskValue(val)
			key := reflect.New(k.Type()).Elem()
			key.Set(k)
			maskValue(key)
			if !key.Equal(k) {
				v.SetMapIndex(k, reflect.Value{})
			}
			v.SetMapIndex(key, val)
		}
	}
}

// maskJSON masks the strings (and object keys) of a JSON document; ok is
// false when nothing changed or raw is not JSON.
func maskJSON(raw []byte) ([]byte, bool) {
	if len(raw) == 0 || !Contains(string(raw)) {
		return raw, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return raw, false
	}
	maskValue(reflect.ValueOf(&doc).Elem())
	out, err := json.Marshal(doc)
	if err != nil || bytes.Equal(out, raw) {
		return raw, false
	}
	return out, true
}
