package escalations

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseSources(t *testing.T) {
	got, err := ParseSources(" inapp:generic:whsec_c2VjcmV0 , zd:zendesk:abc:def ,")
	if err != nil || len(got) != 2 || got[0].Name != "inapp" || string(got[0].key) != "secret" || got[1].Type != TypeZendesk || string(got[1].key) != "abc:def" {
		t.Fatalf("ParseSources: %+v %v", got, err)
	}
	if got, err := ParseSources(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"inapp:generic", "inapp:generic:", "In App:generic:x", "a:jira:x", "a:generic:whsec_***", "a:zendesk:x,a:zendesk:y",
		strings.Repeat("a", 65) + ":zendesk:x"} {
		if _, err := ParseSources(bad); err == nil {
			t.Errorf("ParseSources(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "whsec_***") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
	if _, err := ParseSources(strings.Repeat("a", 64) + ":zendesk:x"); err != nil {
		t.Errorf("a 64-character name: %v", err)
	}
}

func TestTicketID(t *testing.T) {
	for in, want := range map[string]string{`{"id":"T-1"}`: "T-1", `{"id":4711}`: "4711", `{"id":12345678901234567890}`: "12345678901234567890"} {
		var tk Ticket
		if err := json.Unmarshal([]byte(in), &tk); err != nil || string(tk.ID) != want {
			t.Errorf("%s: %q %v", in, tk.ID, err)
		}
	}
	var tk Ticket
	if err := json.Unmarshal([]byte(`{"id":{"x":1}}`), &tk); err == nil {
		t.Error("an object id was accepted")
	}
}

func TestCut(t *testing.T) {
	if got := cut(strings.Repeat("é", 200), 200); got != strings.Repeat("é", 200) {
		t.Error("exactly at the limit was cut")
	}
	if got := cut(strings.Repeat("é", 201), 200); len([]rune(got)) != 200 || !strings.HasSuffix(got, "…") {
		t.Errorf("one past the limit: %d runes", len([]rune(got)))
	}
}

func TestZendeskTime(t *testing.T) {
	if ts, ok := parseZendeskTime("2026-12-02T03:30:00Z"); !ok || !ts.Equal(time.Date(2026, 12, 2, 3, 30, 0, 0, time.UTC)) {
		t.Fatal("RFC 3339")
	}
	if ts, ok := parseZendeskTime("1800000000"); !ok || ts.Unix() != 1800000000 {
		t.Fatal("unix seconds")
	}
	for _, bad := range []string{"", "soon", "1800000000x", "2026-12-02"} {
		if _, ok := parseZendeskTime(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
