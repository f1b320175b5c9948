package main

import (
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// An approval re-checks policy against the mirror as it is: a refund asked
// above the agent's limit, then a chargeback on the charge (from a signed
// webhook), then a supervisor's approval → 409 charge_disputed, the action
// refused, and no refund reaches Stripe; the same approval on a charge
// where nothing changed executes.
func TestApprovalAfterChargebackIsRefused(t *testing.T) {
	mock := stripemock.Start(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			proxy := startRecordingProxy(t, mock.URL)
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": proxy.URL}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			agent, sup, admin := in.token("agent"), in.token("supervisor"), in.token("admin")
			g := stripetest.New(5)
			start := time.Now().Add(-20 * 24 * time.Hour).UTC()
			paid := g.ActiveRenews(start, 0)
			for _, e := range paid {
				in.post(e)
			}
			cus := lastOf(paid, "charge.succeeded").Object["customer"].(string)
			var charges []string
			for i := 0; i < 2; i++ {
				ch := g.Charge(stripetest.ChargeParams{Customer: cus, Amount: 90000, Currency: "usd"})
				in.post(g.NewEvent("charge.succeeded", ch))
				charges = append(charges, ch["id"].(string))
			}
			in.drained(admin)

			var actionIDs, caseIDs []string
			for i, ch := range charges {
				code, c := in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "refund_request", "channel": "chat",
					"title": "Annual plan refund", "links": map[string]any{"charge": ch}}), nil)
				if code != 201 {
					t.Fatalf("open case: %d %v", code, c)
				}
				caseIDs = append(caseIDs, c["id"].(string))
				code, a := in.do("POST", "/api/v1/cases/"+c["id"].(string)+"/actions", agent,
					jsonBody(map[string]any{"type": "refund", "params": map[string]any{"amount": 20000}, "reason": "annual plan"}),
					map[string]string{"Idempotency-Key": "refund-" + string(rune('a'+i))})
				if code != 202 || a["status"] != "pending_approval" {
					t.Fatalf("refund over the agent limit: %d %v", code, a)
				}
				actionIDs = append(actionIDs, a["id"].(string))
			}

			// A chargeback arrives on the first charge.
			dp := g.Dispute(stripetest.DisputeParams{Charge: charges[0], Amount: 90000, Currency: "usd", Status: "needs_response"})
			in.post(g.NewEvent("charge.dispute.created", dp))
			in.drained(admin)

			code, r := in.do("POST", "/api/v1/actions/"+actionIDs[0]+"/approve", sup, jsonBody(map[string]any{"reason": "verified with finance"}), nil)
			if code != 409 || !strings.Contains(string(jsonBody(r["error"])), `"code":"charge_disputed"`) {
				t.Fatalf("approve after chargeback: %d %v", code, r)
			}
			_, a := in.do("GET", "/api/v1/actions/"+actionIDs[0], agent, nil, nil)
			if a["status"] != "refused" || a["error"].(map[string]any)["code"] != "charge_disputed" || a["decided_by"] == nil {
				t.Fatalf("refused action: %v", a)
			}
			if n := proxy.count("POST", "/v1/refunds"); n != 0 {
				t.Fatalf("%d refunds reached Stripe after the chargeback", n)
			}
			_, tl := in.do("GET", "/api/v1/cases/"+caseIDs[0]+"/timeline", agent, nil, nil)
			if !strings.Contains(string(jsonBody(tl)), "charge_disputed") {
				t.Fatalf("timeline lacks the refusal: %v", tl)
			}
			_, au := in.do("GET", "/api/v1/audit?case="+caseIDs[0], sup, nil, nil)
			if !strings.Contains(string(jsonBody(au)), "action.refused.refund") {
				t.Fatalf("audit lacks the refusal: %v", au)
			}

			// Nothing changed on the second charge: the approval executes.
			code, r = in.do("POST", "/api/v1/actions/"+actionIDs[1]+"/approve", sup, jsonBody(map[string]any{"reason": "verified with finance"}), nil)
			if code != 200 || r["status"] != "succeeded" {
				t.Fatalf("approve, nothing changed: %d %v", code, r)
			}
			if n := proxy.count("POST", "/v1/refunds"); n != 1 {
				t.Fatalf("%d refunds reached Stripe, want 1", n)
			}
		})
	}
}
