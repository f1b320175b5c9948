package pan

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMaskFields(t *testing.T) {
	t.Parallel()
	type Tag string
	type inner struct {
		Note *string
		Tags []Tag
	}
	type request struct {
		Title    string
		Inner    inner
		Ptr      *inner
		Meta     map[string]string
		Any      map[string]any
		Params   json.RawMessage
		Number   int64
		Raw      []byte
		hidden   string
		Optional *string
	}
	card, dashed, amex := "4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005"
	note := "see " + dashed
	r := request{
		Title:  "goodwill; card " + card,
		Inner:  inner{Note: &note, Tags: []Tag{"vip", Tag(amex)}},
		Ptr:    &inner{Tags: []Tag{Tag(card)}},
		Meta:   map[string]string{"card " + amex: "paid with " + card},
		Any:    map[string]any{"list": []any{"x " + card, 4111111111111111.0}, "nested": map[string]any{"s": dashed}},
		Params: json.RawMessage(`{"amount": 4111111111111111, "comment": "card ` + card + `", "n": 1.50}`),
		Number: 4111111111111111,
		Raw:    []byte(card),
		hidden: card,
	}
	MaskFields(&r)
	r.Number, r.Any["list"].([]any)[1] = 0, 0.0 // numbers are kept (checked below); hide them from the scan
	b, _ := json.Marshal(struct {
		request
		Note string
	}{r, *r.Inner.Note})
	if Contains(strings.ReplaceAll(string(b), "4111111111111111,", "")) {
		t.Fatalf("a card number survived: %s", b)
	}
	for _, want := range []string{"**** **** **** 1111", "**** **** **** 4444", "**** **** **** 0005"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%q missing from %s", want, b)
		}
	}
	if string(r.Raw) != card || r.hidden != card {
		t.Errorf("non-text changed: %+v", r)
	}
	var p map[string]any
	dec := json.NewDecoder(strings.NewReader(string(r.Params)))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil || p["amount"] != json.Number("4111111111111111") || p["n"] != json.Number("1.50") || p["comment"] != "card **** **** **** 1111" {
		t.Errorf("params numbers changed: %s (%v)", r.Params, err)
	}
	// Nothing to mask: the JSON is kept byte for byte.
	clean := request{Params: json.RawMessage(`{ "amount" : 100 }`)}
	MaskFields(&clean)
	if string(clean.Params) != `{ "amount" : 100 }` {
		t.Errorf("clean params rewritten: %s", clean.Params)
	}
	MaskFields(nil)
	MaskFields(r) // not a pointer: ignored
}

// FuzzMaskFields: whatever text a client sends, in a field, a map or the
// strings of JSON params, no card number survives binding and valid JSON
// stays valid.
func FuzzMaskFields(f *testing.F) {
	for _, seed := range []string{"goodwill; card 4111 1111 1111 1111", "5555-5555-5555-4444", `quote " and \ 4242424242424242`, ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		params, _ := json.Marshal(map[string]any{s: []any{s, map[string]string{"x": s}}, "n": 4111111111111111})
		r := struct {
			Text   string
			Tags   []string
			Meta   map[string]string
			Params json.RawMessage
		}{s, []string{s}, map[string]string{s: s}, params}
		MaskFields(&r)
		var doc any
		if err := json.Unmarshal(r.Params, &doc); err != nil {
			t.Fatalf("params no longer JSON: %s", r.Params)
		}
		var strs []string
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				strs = append(strs, x)
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					strs = append(strs, k)
					walk(e)
				}
			}
		}
		walk(doc)
		strs = append(strs, r.Text, r.Tags[0])
		for k, v := range r.Meta {
			strs = append(strs, k, v)
		}
		for _, x := range strs {
			if Contains(x) {
				t.Fatalf("card number survives in %q (from %q)", x, s)
			}
		}
	})
}
