package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/pan"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// luhnNumber returns a Luhn-valid number of n digits.
func luhnNumber(n int, seed int) string {
	var b strings.Builder
	b.WriteString("4")
	for b.Len() < n-1 {
		b.WriteByte(byte('0' + (seed+b.Len()*7)%10))
	}
	body := b.String()
	for c := byte('0'); c <= '9'; c++ {
		if pan.Luhn(body + string(c)) {
			return body + string(c)
		}
	}
	panic("unreachable")
}

// grouped writes digits in groups of four joined by sep.
func grouped(digits, sep string) string {
	var parts []string
	for len(digits) > 4 {
		parts = append(parts, digits[:4])
		digits = digits[4:]
	}
	return strings.Join(append(parts, digits), sep)
}

// cardForms are card numbers of every length from 13 to 19 digits, each
// written plain, spaced and dashed, plus the classic test cards.
func cardForms() []string {
	out := []string{"4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005"}
	for n := 13; n <= 19; n++ {
		d := luhnNumber(n, n)
		out = append(out, d, grouped(d, " "), grouped(d, "-"))
	}
	return out
}

// panText hands out free text, each piece carrying the next card number form.
type panText struct {
	forms []string
	n     int
}

func (p *panText) next() string {
	p.n++
	return fmt.Sprintf("text %d, card %s, thanks", p.n, p.forms[p.n%len(p.forms)])
}

// The PAN scan (PCI DSS 3.3/3.4): the HTTP scenario suite — webhook stories,
// case creation, notes, transitions, escalations, assignments, PATCH, every
// action type with approval and rejection notes, token creation — with card
// numbers in every text field, then every text and JSON column of every
// table, every log line and every request sent to the provider are scanned
// for a Luhn-valid card number: there must be none.
func TestNoCardNumberLeaks(t *testing.T) {
	mock := stripemock.Start(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			proxy := startRecordingProxy(t, mock.URL)
			sqlitePath := dbtest.NewSQLitePath(t)
			env := map[string]string{"RECOURSE_SQLITE_PATH": sqlitePath, "RECOURSE_LOG_LEVEL": "debug",
				"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": proxy.URL}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			txt := &panText{forms: cardForms()}
			admin, agent, analyst, sup := in.token("admin"), in.token("agent"), in.token("analyst"), in.token("supervisor")

			// Tokens: over the API and from the CLI.
			code, u := in.do("POST", "/api/v1/users", admin, jsonBody(map[string]any{"email": "pat@example.com", "display_name": txt.next(), "role": "analyst", "teams": []string{"disputes"}}), nil)
			if code != 201 {
				t.Fatalf("user over the API: %d %v", code, u)
			}
			if code, m := in.do("PATCH", "/api/v1/users/"+fmt.Sprint(u["id"]), admin, jsonBody(map[string]any{"display_name": txt.next()}), nil); code != 200 {
				t.Fatalf("user patch over the API: %d %v", code, m)
			}
			if code, m := in.do("POST", "/api/v1/tokens", admin, jsonBody(map[string]any{"user_id": u["id"], "name": txt.next(), "role": "analyst"}), nil); code != 201 {
				t.Fatalf("token over the API: %d %v", code, m)
			}
			var out bytes.Buffer
			if err := run(context.Background(), []string{"token", "create", "--name", txt.next(), "--role", "agent"}, in.getenv, &out, io.Discard); err != nil {
				t.Fatalf("token from the CLI: %v", err)
			}
			if err := run(context.Background(), []string{"user", "create", "--email", "lee@example.com", "--name", txt.next(), "--role", "agent"}, in.getenv, &out, io.Discard); err != nil {
				t.Fatalf("user from the CLI: %v", err)
			}

			// Webhook stories, then payloads whose free text carries card
			// numbers (the raw inbox payload is Stripe's own and not scanned;
			// what the mirror keeps is).
			g := stripetest.New(21)
			start := time.Now().Add(-30 * 24 * time.Hour).UTC()
			for _, st := range stories {
				for _, e := range st.run(g, start) {
					in.post(e)
				}
			}
			paid := g.TrialConverts(start)
			for _, e := range paid {
				in.post(e)
			}
			sub := lastOf(paid, "customer.subscription.updated").Object
			if sub == nil {
				sub = lastOf(paid, "customer.subscription.created").Object
			}
			subID, cus := sub["id"].(string), sub["customer"].(string)
			big := g.Charge(stripetest.ChargeParams{Customer: cus, Amount: 90000, Currency: "usd"})
			in.post(g.NewEvent("charge.succeeded", big))
			cust := g.Customer(stripetest.CustomerParams{Name: "Pat " + txt.next(), Email: luhnNumber(16, 3) + "@example.com", Metadata: map[string]string{"note": txt.next()}})
			in.post(g.NewEvent("customer.created", cust))
			gone := g.Subscription(stripetest.SubscriptionParams{Customer: cust["id"].(string), Status: "canceled",
				CancellationReason: "cancellation_requested", CancellationComment: txt.next()})
			in.post(g.NewEvent("customer.subscription.deleted", gone))
			failed := g.Charge(stripetest.ChargeParams{Customer: cust["id"].(string), Status: "failed", FailureMessage: txt.next()})
			in.post(g.NewEvent("charge.failed", failed))
			in.drained(admin)

			// Cases, by every door that takes text.
			code, rc := in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "refund_request", "channel": "chat",
				"title": txt.next(), "description": txt.next(), "tags": []string{txt.next(), "vip"}, "business_line": txt.next(),
				"links": map[string]any{"charge": big["id"], "customer": cus}}), nil)
			if code != 201 {
				t.Fatalf("open refund case: %d %v", code, rc)
			}
			refundCase := rc["id"].(string)
			code, cc := in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "cancellation", "channel": "email",
				"title": txt.next(), "description": txt.next(), "links": map[string]any{"subscription": subID}}), nil)
			if code != 201 {
				t.Fatalf("open cancellation case: %d %v", code, cc)
			}
			cancelCase := cc["id"].(string)
			expect := func(what string, code int, m map[string]any, ok ...int) {
				t.Helper()
				for _, c := range ok {
					if code == c {
						return
					}
				}
				t.Fatalf("%s: %d %v, want one of %v", what, code, m, ok)
			}
			// A card number in a path reaches the access log, masked.
			c, m := in.do("GET", "/api/v1/cases/"+url.PathEscape(txt.next()), agent, nil, nil)
			expect("unknown case", c, m, 404)
			c, m = in.do("POST", "/api/v1/cases/"+refundCase+"/notes", agent, jsonBody(map[string]any{"body": txt.next()}), nil)
			expect("note", c, m, 201)
			c, m = in.do("POST", "/api/v1/cases/"+refundCase+"/transitions", agent, jsonBody(map[string]any{"event": "start", "reason": txt.next()}), nil)
			expect("transition", c, m, 200)
			c, m = in.do("POST", "/api/v1/cases/"+refundCase+"/transitions", agent, jsonBody(map[string]any{"event": txt.next(), "reason": txt.next()}), nil)
			expect("unknown transition", c, m, 400, 409, 422)
			c, m = in.do("POST", "/api/v1/cases/"+refundCase+"/escalate", agent, jsonBody(map[string]any{"team": "finance", "reason": txt.next()}), nil)
			expect("escalate", c, m, 200)
			c, m = in.do("POST", "/api/v1/cases/"+refundCase+"/assign", sup, jsonBody(map[string]any{"assignee": txt.next(), "team": "support"}), nil)
			expect("assign", c, m, 200)
			c, m = in.do("PATCH", "/api/v1/cases/"+refundCase, agent, jsonBody(map[string]any{"tags": []string{txt.next()}, "business_line": txt.next(), "priority": "high"}), nil)
			expect("patch", c, m, 200)
			// Evidence facts and policy documents: every text field, data's
			// strings, keys and bare numbers, the customer id in the path.
			factAt := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
			c, m = in.do("POST", "/api/v1/customers/cus_pan/facts", analyst, jsonBody(map[string]any{"facts": []any{
				map[string]any{"id": txt.next(), "kind": "communication", "occurred_at": factAt, "ip": "203.0.113.7", "device_id": txt.next(),
					"device_fingerprint": txt.next(), "account_id": txt.next(), "user_agent": txt.next(), "channel": txt.next(), "template": txt.next(),
					"data": map[string]any{"body": txt.next(), txt.next(): []any{txt.next(), json.Number(luhnNumber(16, 3))}}},
				map[string]any{"id": txt.next(), "kind": "consent", "occurred_at": factAt, "policy": map[string]any{"key": txt.next(), "version": txt.next()}},
				map[string]any{"id": txt.next(), "kind": txt.next(), "occurred_at": txt.next()},
			}}), nil)
			expect("facts", c, m, 200)
			c, m = in.do("POST", "/api/v1/customers/"+url.PathEscape(txt.next())+"/facts", analyst, jsonBody(map[string]any{"facts": []any{
				map[string]any{"id": "f1", "kind": "login", "occurred_at": factAt}}}), nil)
			expect("facts of a card-number customer", c, m, 200)
			c, m = in.do("POST", "/api/v1/policies", sup, jsonBody(map[string]any{"key": "terms", "version": "3", "title": txt.next(), "body": txt.next(), "effective_at": factAt}), nil)
			expect("policy", c, m, 201)
			c, m = in.do("POST", "/api/v1/policies", sup, jsonBody(map[string]any{"key": "terms", "version": luhnNumber(16, 5), "title": "t", "body": "b", "effective_at": factAt}), nil)
			expect("policy with a card-number version", c, m, 400)

			// Actions of every type, with text in reasons, params and keys.
			act := func(caseID, token string, body map[string]any) (int, map[string]any) {
				return in.do("POST", "/api/v1/cases/"+caseID+"/actions", token, jsonBody(body), map[string]string{"Idempotency-Key": txt.next()})
			}
			decide := func(id, verb string) {
				t.Helper()
				c, m := in.do("POST", "/api/v1/actions/"+id+"/"+verb, sup, jsonBody(map[string]any{"reason": txt.next()}), nil)
				expect(verb, c, m, 200)
			}
			c, m = act(refundCase, agent, map[string]any{"type": "refund", "params": map[string]any{"amount": 1000}, "reason": txt.next()})
			expect("small refund", c, m, 201)
			// The refund answered the request and closed its case; the next
			// request on the same charge is a case of its own.
			code, rc = in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "refund_request", "channel": "in_app",
				"title": txt.next(), "description": txt.next(), "links": map[string]any{"charge": big["id"], "customer": cus}}), nil)
			if code != 201 {
				t.Fatalf("open second refund case: %d %v", code, rc)
			}
			refundCase = rc["id"].(string)
			c, m = act(refundCase, agent, map[string]any{"type": "refund", "params": map[string]any{"amount": 20000}, "reason": txt.next()})
			expect("large refund", c, m, 202)
			large := m["id"].(string)
			c, m = act(refundCase, agent, map[string]any{"type": "refund", "params": map[string]any{"amount": 20000, "refund_reason": "duplicate"}, "reason": txt.next()})
			expect("second large refund", c, m, 202)
			decide(m["id"].(string), "reject")
			c, m = act(refundCase, agent, map[string]any{"type": "apply_credit", "params": map[string]any{"amount": 500, "currency": "usd", "description": txt.next()}, "reason": txt.next()})
			expect("credit", c, m, 201)
			c, m = act(refundCase, agent, map[string]any{"type": "apply_credit", "params": map[string]any{"amount": 6000, "currency": "usd", "description": txt.next()}, "reason": txt.next()})
			expect("large credit", c, m, 202)
			decide(m["id"].(string), "reject")
			decide(large, "approve")
			c, m = act(refundCase, agent, map[string]any{"type": txt.next(), "reason": txt.next()})
			expect("unknown action", c, m, 400)
			c, m = act(cancelCase, agent, map[string]any{"type": "pause_collection", "params": map[string]any{"days": 10, "behavior": "void"}, "reason": txt.next()})
			expect("pause", c, m, 201)
			c, m = act(cancelCase, agent, map[string]any{"type": "resume_collection", "reason": txt.next()})
			expect("resume", c, m, 201, 409)
			c, m = act(cancelCase, agent, map[string]any{"type": "extend_trial", "params": map[string]any{"days": 3}, "reason": txt.next()})
			expect("extend trial", c, m, 201, 409)
			c, m = act(cancelCase, agent, map[string]any{"type": "retry_payment", "reason": txt.next()})
			expect("retry payment", c, m, 201, 409, 422)
			c, m = act(cancelCase, agent, map[string]any{"type": "cancel_subscription", "params": map[string]any{"mode": "period_end", "feedback": "other", "comment": txt.next()}, "reason": txt.next()})
			expect("cancel", c, m, 201)
			c, m = act(cancelCase, agent, map[string]any{"type": "reactivate_subscription", "reason": txt.next()})
			expect("reactivate", c, m, 201, 409)
			_, dl := in.do("GET", "/api/v1/cases?kind=dispute&limit=1", admin, nil, nil)
			if list, _ := dl["data"].([]any); len(list) > 0 {
				c, m = act(list[0].(map[string]any)["id"].(string), analyst, map[string]any{"type": "accept_dispute", "reason": txt.next()})
				expect("accept dispute", c, m, 201, 409)
			}
			in.drained(admin)
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}

			// What went out to the provider carried text, masked.
			reqs := proxy.requests()
			if proxy.count("POST", "/v1/refunds") < 2 || !strings.Contains(fmt.Sprint(reqs), "recourse_reason") {
				t.Fatalf("the provider saw too little to prove anything: %v", reqs)
			}
			d, err := db.Open(context.Background(), env["DATABASE_URL"], sqlitePath, db.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			hits, values := scanDB(context.Background(), t, d)
			hits = append(hits, scanLogs(in.logs())...)
			hits = append(hits, scanRequests(reqs)...)
			for _, h := range hits {
				t.Errorf("card number leaked: %s", h)
			}
			// The text did arrive (masked) in the database, the logs were read.
			var masked int64
			d.Gorm.Raw("SELECT COUNT(*) FROM audit_log WHERE detail LIKE ?", "%"+pan.Masked+"%").Scan(&masked)
			var mirrored int64 // the payloads' card numbers reached the mirror, masked
			d.Gorm.Raw("SELECT COUNT(*) FROM billing_customers WHERE name LIKE ? AND email LIKE ?", "%"+pan.Masked+"%", "%"+pan.Masked+"%").Scan(&mirrored)
			if values < 200 || masked == 0 || mirrored != 1 || len(in.logs()) == 0 {
				t.Fatalf("scan read %d values, %d masked audit rows, %d masked customers, %d bytes of logs: too little", values, masked, mirrored, len(in.logs()))
			}
			t.Logf("scanned %d values, %d log bytes, %d provider requests (%d text fields carried card numbers)", values, len(in.logs()), len(reqs), txt.n)

			// The scanner finds what it looks for: a card number planted in a
			// table, a log line and a provider request.
			planted := luhnNumber(16, 9)
			if err := d.Gorm.Exec("UPDATE cases SET title = ? WHERE id = ?", "planted "+grouped(planted, " "), refundCase).Error; err != nil {
				t.Fatal(err)
			}
			if hits, _ := scanDB(context.Background(), t, d); len(hits) != 1 || !strings.HasPrefix(hits[0].where, "cases.title") {
				t.Fatalf("planted card number in the database: found %v", hits)
			}
			if hits := scanLogs(`{"level":"INFO","msg":"x"}` + "\n" + `{"msg":"card ` + grouped(planted, "-") + `"}`); len(hits) != 1 || hits[0].where != "log line 2" {
				t.Fatalf("planted card number in the logs: found %v", hits)
			}
			if hits := scanRequests([]sentRequest{{Method: "POST", Path: "/v1/refunds", Body: []byte("metadata[recourse_reason]=" + grouped(planted, "+"))}}); len(hits) != 1 {
				t.Fatalf("planted card number in a provider request: found %v", hits)
			}
		})
	}
}
