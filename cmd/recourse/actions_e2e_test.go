package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func lastOf(evs []stripetest.Event, typ string) stripetest.Event {
	var out stripetest.Event
	for _, e := range evs {
		if e.Type == typ {
			out = e
		}
	}
	return out
}

// Actions end to end: the real service, its mirror fed by signed webhooks,
// cases from the API, actions executed against stripe-mock, and the
// webhook echoes of our own actions linked back instead of opening cases.
func TestActionsEndToEnd(t *testing.T) {
	mock := stripemock.Start(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": mock.URL}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			agent, analyst, sup, admin := in.token("agent"), in.token("analyst"), in.token("supervisor"), in.token("admin")
			g := stripetest.New(99)
			start := time.Now().Add(-20 * 24 * time.Hour).UTC()

			// A paying customer, mirrored from webhooks.
			paid := g.ActiveRenews(start, 0)
			for _, e := range paid {
				in.post(e)
			}
			// A chargeback on another customer.
			cb := g.ChargebackLost(start)
			var cbEvents []stripetest.Event
			for _, e := range cb {
				if e.Type == "charge.dispute.closed" || e.Type == "charge.dispute.updated" {
					break // leave it needing a response
				}
				cbEvents = append(cbEvents, e)
				in.post(e)
			}
			in.drained(admin)
			charge := lastOf(paid, "charge.succeeded").Object
			chargeID, customer := charge["id"].(string), charge["customer"].(string)

			// An agent opens a refund request for the customer's charge.
			code, c := in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "refund_request", "channel": "chat",
				"title": "Charged after cancelling", "links": map[string]any{"charge": chargeID}}), nil)
			if code != 201 {
				t.Fatalf("open case: %d %v", code, c)
			}
			caseID := c["id"].(string)
			act := func(token, key string, body map[string]any) (int, map[string]any) {
				return in.do("POST", "/api/v1/cases/"+caseID+"/actions", token, jsonBody(body), map[string]string{"Idempotency-Key": key})
			}
			amount, _ := charge["amount"].(int64)
			code, a := act(agent, "refund-1", map[string]any{"type": "refund", "params": map[string]any{"amount": amount + 1}, "reason": "charged after cancel"})
			if code != 422 {
				t.Fatalf("refund over the charge: %d %v", code, a)
			}
			code, a = act(agent, "refund-2", map[string]any{"type": "refund", "params": map[string]any{"amount": 1000}, "reason": "charged after cancel"})
			if code != 201 || a["status"] != "succeeded" || !strings.HasPrefix(fmt.Sprint(a["provider_object_id"]), "re_") {
				t.Fatalf("refund: %d %v", code, a)
			}
			again, a2 := act(agent, "refund-2", map[string]any{"type": "refund", "params": map[string]any{"amount": 1000}, "reason": "charged after cancel"})
			if again != 201 || a2["id"] != a["id"] {
				t.Fatalf("replay: %d %v", again, a2)
			}

			// Stripe's webhook for our refund carries our idempotency key: it is
			// linked to the action, not a surprise, and opens no case.
			refundObj := g.Refund(stripetest.RefundParams{ID: a["provider_object_id"].(string), Amount: 1000, Charge: chargeID, Status: "succeeded"})
			echo := g.NewEvent("refund.created", refundObj, stripetest.WithRequest("req_echo", a["idempotency_key"].(string)))
			in.post(echo)
			in.drained(admin)
			_, tl := in.do("GET", "/api/v1/cases/"+caseID+"/timeline", agent, nil, nil)
			if !strings.Contains(string(jsonBody(tl)), "Stripe confirmed "+a["id"].(string)) {
				t.Fatalf("echo not linked: %v", tl)
			}
			_, list := in.do("GET", "/api/v1/cases?customer="+url.QueryEscape(customer), admin, nil, nil)
			if n := len(list["data"].([]any)); n != 1 {
				t.Fatalf("customer has %d cases after the echo, want 1", n)
			}

			// The disputed charge: refund refused with an explanation; agents may not accept.
			dispute := lastOf(cbEvents, "charge.dispute.created").Object
			_, dl := in.do("GET", "/api/v1/cases?subject="+dispute["id"].(string), admin, nil, nil)
			dcase := dl["data"].([]any)[0].(map[string]any)
			dcaseID := dcase["id"].(string)
			code, r := in.do("POST", "/api/v1/cases/"+dcaseID+"/actions", analyst, jsonBody(map[string]any{"type": "refund", "reason": "customer asked"}), map[string]string{"Idempotency-Key": "d1"})
			if code != 409 || !strings.Contains(fmt.Sprint(r["error"]), "charge_disputed") {
				t.Fatalf("refund of disputed charge: %d %v", code, r)
			}
			code, _ = in.do("POST", "/api/v1/cases/"+dcaseID+"/actions", agent, jsonBody(map[string]any{"type": "accept_dispute", "reason": "x"}), map[string]string{"Idempotency-Key": "d2"})
			if code != 403 {
				t.Fatalf("agent accept_dispute: %d", code)
			}
			code, r = in.do("POST", "/api/v1/cases/"+dcaseID+"/actions", analyst, jsonBody(map[string]any{"type": "accept_dispute", "reason": "no proof of delivery"}), map[string]string{"Idempotency-Key": "d3"})
			if code != 201 || r["status"] != "succeeded" {
				t.Fatalf("analyst accept_dispute: %d %v", code, r)
			}

			// Supervisors read the audit log, with the provider's request id.
			code, au := in.do("GET", "/api/v1/audit?case="+caseID, sup, nil, nil)
			if code != 200 || !bytes.Contains(jsonBody(au), []byte("action.provider_call.refund")) {
				t.Fatalf("audit: %d %v", code, au)
			}
			if code, _ := in.do("GET", "/api/v1/audit", agent, nil, nil); code != 403 {
				t.Fatalf("agent audit: %d", code)
			}
			if code, p := in.do("GET", "/api/v1/policy", agent, nil, nil); code != 200 || p["policy"] == nil {
				t.Fatalf("policy: %d %v", code, p)
			}

			// /metrics counts each outcome once (the replayed request is
			// not a second refund) and each provider call.
			resp, err := http.Get(in.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			m, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{
				`recourse_actions_total{outcome="succeeded",type="refund"} 1`,
				`recourse_actions_total{outcome="succeeded",type="accept_dispute"} 1`,
				`recourse_actions_total{outcome="failed",type="refund"} 0`,
				`recourse_action_provider_duration_seconds_count{type="refund"} 1`,
			} {
				if !strings.Contains(string(m), want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
		})
	}
}
