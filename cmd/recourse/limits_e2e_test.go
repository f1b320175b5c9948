package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/dbtest"
)

// limited is one answer: status, the headers the limits set, the error code.
type limited struct {
	status                                int
	retryAfter, limit, remaining, errCode string
}

func (in *instance) limitedDo(method, path, token, xff string, body []byte, header map[string]string) limited {
	in.t.Helper()
	req, _ := http.NewRequest(method, in.url+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := in.api.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &m)
	return limited{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit-Limit"),
		resp.Header.Get("RateLimit-Remaining"), m.Error.Code}
}

// The abuse limits over real HTTP, behind a trusted proxy (loopback, where
// the test's requests come from): per token, per client address before the
// token is checked, X-Forwarded-For believed only from the trusted proxy,
// Stripe's door on its own budget, the escalation doors per source, the
// API's body limit, and the refusals counted. The rates
// refill once in 100 s, so nothing refills while the test runs. (SQLite
// only: the limits keep no state in the database.)
func TestRateLimitsEndToEnd(t *testing.T) {
	in := boot(t, map[string]string{
		"RECOURSE_SQLITE_PATH":           dbtest.NewSQLitePath(t),
		"RECOURSE_RATE_LIMIT_TOKEN":      "0.01:3",
		"RECOURSE_RATE_LIMIT_IP":         "0.01:6",
		"RECOURSE_RATE_LIMIT_STRIPE":     "0.01:2",
		"RECOURSE_RATE_LIMIT_ESCALATION": "0.01:2",
		"RECOURSE_ESCALATION_SOURCES":    "inapp:generic:whsec_c2VjcmV0,zd:zendesk:abc",
		"RECOURSE_TRUSTED_PROXIES":       "127.0.0.1/32, ::1",
		"RECOURSE_API_MAX_BODY":          "4096",
	})
	admin, agent := in.token("admin"), in.token("agent")
	const alice, bob, carol = "198.51.100.1", "198.51.100.2", "198.51.100.3"

	// Per token: exactly the burst, then 429 in the error envelope with
	// Retry-After from the bucket (a token back in 100 s).
	for i := range 3 {
		r := in.limitedDo("GET", "/api/v1/cases", admin, alice, nil, nil)
		if r.status != 200 || r.limit != "3" || r.remaining != strconv.Itoa(2-i) {
			t.Fatalf("request %d within the token's burst: %+v", i+1, r)
		}
	}
	r := in.limitedDo("GET", "/api/v1/cases", admin, bob, nil, nil)
	if ra, _ := strconv.Atoi(r.retryAfter); r.status != 429 || r.errCode != "rate_limited" || ra < 90 || ra > 100 || r.remaining != "0" {
		t.Fatalf("one past the token's burst (from another address): %+v", r)
	}
	// Another token is unaffected.
	if r := in.limitedDo("GET", "/api/v1/cases", agent, alice, nil, nil); r.status != 200 {
		t.Fatalf("another token: %+v", r)
	}

	// Per address, before the token is checked: Alice has spent 4 of 6
	// (3 with the admin token, 1 with the agent's); bad tokens count, and
	// the 7th is refused whatever the token.
	for _, tok := range []string{"rct_guessed", "rct_guessed_again"} {
		if r := in.limitedDo("GET", "/api/v1/cases", tok, alice, nil, nil); r.status != 401 {
			t.Fatalf("a bad token within the address's burst: %+v", r)
		}
	}
	for _, tok := range []string{"rct_guessed_3", agent, ""} {
		if r := in.limitedDo("GET", "/api/v1/cases", tok, alice, nil, nil); r.status != 429 || r.errCode != "rate_limited" || r.retryAfter == "" {
			t.Fatalf("past the address's burst (token %q): %+v", tok, r)
		}
	}
	// Carol, behind the same trusted proxy, has her own budget.
	if r := in.limitedDo("GET", "/api/v1/cases", agent, carol, nil, nil); r.status != 200 {
		t.Fatalf("another client address: %+v", r)
	}
	// A spoofed header is read right to left from the trusted proxy: the
	// address the proxy saw (Alice) is the client, not what she wrote.
	if r := in.limitedDo("GET", "/api/v1/cases", agent, "203.0.113.9, "+alice, nil, nil); r.status != 429 {
		t.Fatalf("a forged X-Forwarded-For escaped the limit: %+v", r)
	}

	// Stripe's door has its own budget per address: Alice's spent API
	// budget does not refuse a delivery.
	for i := range 3 {
		p, sig := signedEvent("evt_limits_"+strconv.Itoa(i), "product.created")
		r := in.limitedDo("POST", "/webhooks/stripe", "", alice, p, map[string]string{"Stripe-Signature": sig})
		if want := map[bool]int{true: 200, false: 429}[i < 2]; r.status != want {
			t.Fatalf("delivery %d: %+v, want %d", i+1, r, want)
		}
	}

	// Escalation doors: a budget per source and address; unsigned
	// deliveries count (they are refused after the limit, 401 before).
	ticket := []byte(`{"id":"T-1","subject":"x"}`)
	for i, want := range []int{401, 401, 429} {
		if r := in.limitedDo("POST", "/webhooks/escalations/inapp", "", alice, ticket, nil); r.status != want {
			t.Fatalf("escalation %d: %+v, want %d", i+1, r, want)
		}
	}
	if r := in.limitedDo("POST", "/webhooks/escalations/zd", "", alice, ticket, nil); r.status != 401 {
		t.Fatalf("another source: %+v", r)
	}

	// Bodies: over RECOURSE_API_MAX_BODY is 413 before anything else runs.
	big := []byte(`{"kind":"billing_inquiry","channel":"chat","title":"` + strings.Repeat("x", 4096) + `"}`)
	if r := in.limitedDo("POST", "/api/v1/cases", in.token("analyst"), "198.51.100.4", big, nil); r.status != 413 || r.errCode != "payload_too_large" {
		t.Fatalf("an API body over the limit: %+v", r)
	}

	resp, err := in.api.Get(in.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`recourse_http_rate_limited_total{scope="token"} 1`,
		`recourse_http_rate_limited_total{scope="ip"} 4`,
		`recourse_http_rate_limited_total{scope="stripe"} 1`,
		`recourse_http_rate_limited_total{scope="escalation"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
