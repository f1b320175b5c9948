package privacy

import (
	"strings"
	"testing"
)

func TestScrubber(t *testing.T) {
	s := newScrubber([]string{"Ada Lovelace", "ada@example.com", "Ada", "x", " ", "203.0.113.9"})
	got := s.text("Called ADA LOVELACE at Ada@Example.com from 203.0.113.9; Ada agreed")
	if want := "Called [erased] at [erased] from [erased]; [erased] agreed"; got != want {
		t.Errorf("text: %q", got)
	}
	if s.text("x marks the spot") != "x marks the spot" {
		t.Error("a one-letter identifier was replaced")
	}
	j := s.json(`{"body":"anything at all","reason":"requested_by_customer","team":"finance","escalation":{"reason":"she said so"},"amount":4900,"who":"ada@example.com"}`)
	for _, want := range []string{`"body":"[erased]"`, `"reason":"requested_by_customer"`, `"team":"finance"`, `"escalation":{"reason":"[erased]"}`, `"amount":4900`, `"who":"[erased]"`} {
		if !strings.Contains(j, want) {
			t.Errorf("json lacks %s: %s", want, j)
		}
	}
	if got := s.json("not json, Ada Lovelace"); got != "not json, [erased]" {
		t.Errorf("non-JSON: %q", got)
	}
	if got := eraseValues(`{"customer_name":"Ada","service_date":"","receipt":"file_1"}`); got != `{"customer_name":"[erased]","receipt":"[erased]","service_date":""}` {
		t.Errorf("eraseValues: %s", got)
	}
	ids := collect(nil, []byte(`{"data":{"object":{"email":"a@b.co","name":"Ada","phone":"+1 555","billing_details":{"address":{"line1":"1 Main St","country":"US"}},"client_ip":"203.0.113.9","description":"Pro plan","status":"paid"}}}`))
	joined := strings.Join(ids, "|")
	for _, want := range []string{"a@b.co", "Ada", "+1 555", "1 Main St", "203.0.113.9"} {
		if !strings.Contains(joined, want) {
			t.Errorf("collect missed %s: %v", want, ids)
		}
	}
	for _, not := range []string{"Pro plan", "paid"} {
		if strings.Contains(joined, not) {
			t.Errorf("collect took %s: %v", not, ids)
		}
	}
}
