// Package privacy erases a customer's personal data (GDPR art. 17, the
// right to erasure) from every table Recourse keeps it in, while amounts,
// states, ids, times and the audit log's entries stay: see docs/privacy.md.
//
// Erasure cuts across the domains' tables (the mirror, the inbox, cases and
// their timelines, actions, evidence facts and drafts, the events outbox,
// the audit log), the way reports read across them: one store, one
// transaction, so an erasure is all or nothing.
package privacy

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
)

// Erased is what free text is replaced with.
const Erased = "[erased]"

// scrubber replaces every known identifier of one customer (email, name,
// phone, address lines, IPs, device ids, the texts of their cases) wherever
// it appears, ignoring case.
type scrubber struct {
	re *regexp.Regexp
}

// minIdentifier is the shortest string worth replacing: shorter ones (an
// initial, "US") would mangle unrelated words and identify no one.
const minIdentifier = 3

func newScrubber(identifiers []string) scrubber {
	seen := map[string]bool{}
	var ids []string
	for _, s := range identifiers {
		s = strings.TrimSpace(s)
		if len([]rune(s)) < minIdentifier || s == Erased || seen[strings.ToLower(s)] {
			continue
		}
		seen[strings.ToLower(s)] = true
		ids = append(ids, s)
	}
	if len(ids) == 0 {
		return scrubber{}
	}
	// Longest first, so "Ada Lovelace" goes before "Ada".
	sort.Slice(ids, func(i, j int) bool { return len(ids[i]) > len(ids[j]) })
	parts := make([]string, len(ids))
	for i, s := range ids {
		parts[i] = regexp.QuoteMeta(s)
	}
	return scrubber{re: regexp.MustCompile(`(?i)` + strings.Join(parts, "|"))}
}

// text replaces every identifier in s.
func (s scrubber) text(in string) string {
	if s.re == nil || in == "" {
		return in
	}
	return s.re.ReplaceAllLiteralString(in, Erased)
}

// freeText says whether a JSON key holds free text a person wrote (a note,
// a title, a description): its value is erased whole, since it may name
// anyone or anything. "reason" is free text only when it has spaces
// (escalation reasons); otherwise it is a code (requested_by_customer).
func freeText(key, val string) bool {
	switch strings.ToLower(key) {
	case "title", "description", "body", "note", "notes", "decision_note", "comment", "text", "message", "subject",
		"customer_name", "customer_email_address", "billing_address", "shipping_address", "customer_purchase_ip",
		"access_activity_log", "uncategorized_text", "cancellation_rebuttal", "refund_refusal_explanation",
		"duplicate_charge_explanation", "product_description", "email", "name", "phone":
		return val != ""
	case "reason":
		return strings.ContainsAny(val, " \n")
	}
	return false
}

// json erases the free-text values of a JSON document and scrubs every
// other string; text that is not JSON is scrubbed as text.
func (s scrubber) json(in string) string {
	if in == "" {
		return in
	}
	var v any
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		return s.text(in)
	}
	b, err := json.Marshal(s.walk("", v))
	if err != nil {
		return s.text(in)
	}
	return string(b)
}

func (s scrubber) walk(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = s.walk(k, e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = s.walk(key, e)
		}
		return x
	case string:
		if freeText(key, x) {
			return Erased
		}
		return s.text(x)
	}
	return v
}

// personalKey says whether a key of a provider payload or of a fact's data
// holds a value that identifies the person, to collect as an identifier.
func personalKey(key string) bool {
	for _, w := range strings.FieldsFunc(strings.ToLower(key), func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		switch w {
		case "email", "name", "phone", "line1", "line2", "postal", "ip", "device", "fingerprint", "agent", "address", "login", "username":
			return true
		}
	}
	return false
}

// collect appends the values under personal keys of a JSON document.
func collect(out []string, doc []byte) []string {
	var v any
	if json.Unmarshal(doc, &v) != nil {
		return out
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(k, e)
			}
		case []any:
			for _, e := range x {
				walk(key, e)
			}
		case string:
			if personalKey(key) && !strings.HasPrefix(x, "http") {
				out = append(out, x)
			}
		}
	}
	walk("", v)
	return out
}

// eraseValues erases every non-empty value of a JSON object of strings (an
// evidence draft's fields): the keys, which say what was there, stay.
func eraseValues(doc string) string {
	m := map[string]any{}
	if json.Unmarshal([]byte(doc), &m) != nil {
		return doc
	}
	for k, v := range m {
		if s, ok := v.(string); !ok || s != "" {
			m[k] = Erased
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return doc
	}
	return string(b)
}
