package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// proPlan is the plan every dispute scenario bills on; the policy's
// subscription rule names it.
var proPlan = stripetest.Plan{PriceID: "price_pro", ProductID: "prod_pro", Name: "Pro", UnitAmount: 2900, Currency: "usd", Interval: "month"}

// chargebackNow builds a chargeback story whose dispute opened about 30
// hours ago (so its evidence is due in the future). Monthly renewals make a
// story's length depend on where it starts, so the start is found by
// generating the same story (same seed) until its dispute lands there.
func chargebackNow(seed uint64, opt stripetest.ChargebackOptions) []stripetest.Event {
	target := time.Now().UTC().Add(-30 * time.Hour).Truncate(time.Second)
	start := target.AddDate(0, -opt.Renewals-1, 0)
	for range 20 {
		evs := stripetest.New(seed, stripetest.WithPlans(proPlan)).Chargeback(start, opt)
		off := target.Sub(lastOf(evs, "charge.dispute.created").Created)
		if off.Abs() < time.Hour {
			return evs
		}
		start = start.Add(off)
	}
	panic("chargebackNow: the story's dispute never landed 30 hours ago")
}

// disputeScenario is one reason's path through the workbench.
type disputeScenario struct {
	name     string
	opt      stripetest.ChargebackOptions
	facts    func(s *scenarioCtx) []map[string]any
	ce3      string            // "", "eligible" or "not_eligible": what the workbench must say
	fields   map[string]string // evidence field → text it must contain after assembly
	exhibits []string          // exhibit titles the packet must list
}

// scenarioCtx is what a scenario's facts are built from.
type scenarioCtx struct {
	customer string
	charges  []map[string]any // the customer's successful charges, oldest first
	dispute  map[string]any
}

func fact(id, kind string, at time.Time, extra map[string]any) map[string]any {
	f := map[string]any{"id": id, "kind": kind, "occurred_at": at.UTC().Format(time.RFC3339)}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func chargeTime(ch map[string]any) time.Time {
	return time.Unix(ch["created"].(int64), 0).UTC()
}

// baseFacts: a sign-up with terms accepted, a login and usage after every
// charge from the customer's usual device, a renewal notice and a receipt.
func baseFacts(s *scenarioCtx) []map[string]any {
	first := chargeTime(s.charges[0])
	out := []map[string]any{
		fact("signup-1", "signup", first.Add(-time.Hour), map[string]any{"ip": "203.0.113.7", "device_id": "dev_9", "account_id": "acct_42", "user_agent": "Mozilla/5.0 (Macintosh)"}),
		fact("consent-terms", "consent", first.Add(-time.Hour+time.Minute), map[string]any{"ip": "203.0.113.7", "policy": map[string]any{"key": "terms", "version": "3"}, "data": map[string]any{"flow": "checkout_checkbox"}}),
		fact("consent-cancel", "consent", first.Add(-time.Hour+2*time.Minute), map[string]any{"ip": "203.0.113.7", "policy": map[string]any{"key": "cancellation", "version": "2"}, "data": map[string]any{"flow": "checkout_checkbox"}}),
	}
	for i, ch := range s.charges {
		at := chargeTime(ch)
		out = append(out,
			fact(fmt.Sprintf("login-%d", i), "login", at.Add(2*time.Hour), map[string]any{"ip": "203.0.113.7", "device_id": "dev_9", "account_id": "acct_42", "user_agent": "Mozilla/5.0 (Macintosh)"}),
			fact(fmt.Sprintf("usage-%d", i), "usage", at.Add(3*time.Hour), map[string]any{"ip": "203.0.113.7", "device_id": "dev_9", "data": map[string]any{"feature": "video_export", "minutes": 42}}),
			fact(fmt.Sprintf("receipt-%d", i), "notice", at.Add(time.Minute), map[string]any{"channel": "email", "template": "receipt"}),
		)
		if i > 0 {
			out = append(out, fact(fmt.Sprintf("renewal-%d", i), "notice", at.Add(-7*24*time.Hour), map[string]any{"channel": "email", "template": "renewal_reminder"}))
		}
	}
	return out
}

// TestDisputeScenariosOverHTTP takes one chargeback of each kind from
// signed webhooks to a closed case: facts in, workbench read, evidence
// assembled and checked (fields and PDF), a field edited, staged and
// submitted to stripe-mock, the outcome webhook closing the case, and the
// policy's subscription rule applied once.
func TestDisputeScenariosOverHTTP(t *testing.T) {
	mock := stripemock.Start(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(`disputes:
  reminders: [720h, 24h]
  subscription_rules:
    - name: pro-disputes
      plans: [price_pro]
      on_open: leave
      on_lost: cancel_now
      on_won: leave
`), 0o600); err != nil {
		t.Fatal(err)
	}
	scenarios := []disputeScenario{
		{name: "subscription_canceled", opt: stripetest.ChargebackOptions{Brand: "visa", Reason: "subscription_canceled", Code: "13.2", Renewals: 2, Won: true},
			facts: baseFacts, fields: map[string]string{"cancellation_rebuttal": "cancellation", "customer_purchase_ip": "203.0.113.7"}},
		{name: "fraudulent_ce3", opt: stripetest.ChargebackOptions{Brand: "visa", Reason: "fraudulent", Code: "10.4", Renewals: 7, Won: true},
			facts: baseFacts, ce3: "eligible", fields: map[string]string{"access_activity_log": "203.0.113.7"}},
		{name: "fraudulent_no_ce3", opt: stripetest.ChargebackOptions{Brand: "visa", Reason: "fraudulent", Code: "10.4", Renewals: 1, Won: false},
			facts: baseFacts, ce3: "not_eligible", fields: map[string]string{"access_activity_log": "dev_9"}},
		{name: "credit_not_processed", opt: stripetest.ChargebackOptions{Brand: "mastercard", Reason: "credit_not_processed", Code: "4860", Renewals: 1, Won: false},
			facts: baseFacts, fields: map[string]string{"customer_email_address": "@"}},
		{name: "product_not_received", opt: stripetest.ChargebackOptions{Brand: "visa", Reason: "product_not_received", Code: "13.1", Renewals: 1, Won: true},
			facts: func(s *scenarioCtx) []map[string]any {
				out := baseFacts(s)
				last := chargeTime(s.charges[len(s.charges)-1])
				return append(out, fact("delivery-1", "delivery", last.Add(10*time.Minute), map[string]any{"data": map[string]any{"what": "Pro features unlocked", "account": "acct_42"}}))
			}, fields: map[string]string{"service_date": "20"}},
		{name: "duplicate", opt: stripetest.ChargebackOptions{Brand: "mastercard", Reason: "duplicate", Code: "4834", Renewals: 2, Won: false},
			facts: baseFacts, fields: map[string]string{"duplicate_charge_explanation": "period"}},
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": mock.URL,
				"RECOURSE_POLICY_FILE": policy, "RECOURSE_SWEEP_INTERVAL": "1s"}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			analyst, sup, admin, agent := in.token("analyst"), in.token("supervisor"), in.token("admin"), in.token("agent")
			for _, p := range []map[string]any{
				{"key": "terms", "version": "3", "title": "Terms of Service", "body": "Subscriptions renew monthly until cancelled.", "effective_at": "2025-01-01T00:00:00Z"},
				{"key": "cancellation", "version": "2", "title": "Cancellation policy", "body": "Cancel any time in Settings; it takes effect at the end of the paid period.", "effective_at": "2025-01-01T00:00:00Z"},
			} {
				if code, r := in.do("POST", "/api/v1/policies", sup, jsonBody(p), nil); code != 201 {
					t.Fatalf("policy %v: %d %v", p["key"], code, r)
				}
			}
			for i, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { runDisputeScenario(t, in, uint64(700+i), sc, analyst, agent, admin) })
			}
		})
	}
}

func runDisputeScenario(t *testing.T, in *instance, seed uint64, sc disputeScenario, analyst, agent, admin string) {
	in.t = t
	evs := chargebackNow(seed, sc.opt)
	var rest []stripetest.Event
	s := &scenarioCtx{}
	for i, e := range evs {
		in.post(e)
		if e.Type == "charge.succeeded" {
			s.charges = append(s.charges, e.Object)
		}
		if e.Type == "charge.dispute.funds_withdrawn" {
			rest = evs[i+1:]
			break
		}
	}
	in.drained(admin)
	s.dispute = lastOf(evs, "charge.dispute.created").Object
	disputeID := s.dispute["id"].(string)
	s.customer = s.charges[0]["customer"].(string)
	c := in.caseOf(admin, "dispute", disputeID)
	caseID := c["id"].(string)

	// The merchant's product sends its facts; a resend changes nothing;
	// another customer's facts never reach this dispute.
	facts := sc.facts(s)
	put := func(customer string, fs []map[string]any) map[string]any {
		code, r := in.do("POST", "/api/v1/customers/"+customer+"/facts", analyst, jsonBody(map[string]any{"facts": fs}), nil)
		if code != 200 {
			t.Fatalf("facts: %d %v", code, r)
		}
		return r
	}
	if r := put(s.customer, facts); r["accepted"] != float64(len(facts)) || r["duplicates"] != float64(0) || len(r["rejected"].([]any)) != 0 {
		t.Fatalf("facts: %v", r)
	}
	if r := put(s.customer, facts); r["accepted"] != float64(0) || r["duplicates"] != float64(len(facts)) {
		t.Fatalf("facts resent: %v", r)
	}
	decoy := "cus_decoy_" + sc.name
	put(decoy, []map[string]any{
		fact("d-login", "login", chargeTime(s.charges[len(s.charges)-1]).Add(time.Hour), map[string]any{"ip": "198.51.100.99", "device_id": "DECOY-DEVICE"}),
		fact("d-consent", "consent", chargeTime(s.charges[0]), map[string]any{"ip": "198.51.100.99", "policy": map[string]any{"key": "cancellation", "version": "2"}}),
	})
	noDecoy := func(what, text string) {
		t.Helper()
		if strings.Contains(text, "198.51.100.99") || strings.Contains(text, "DECOY-DEVICE") {
			t.Fatalf("another customer's facts leaked into %s", what)
		}
	}

	// The workbench: deadline, reason, checklist, CE 3.0, recommendation.
	if code, _ := in.do("GET", "/api/v1/cases/"+caseID+"/evidence", agent, nil, nil); code != 403 {
		t.Fatalf("agent reads the workbench: %d", code)
	}
	code, doc := in.do("GET", "/api/v1/cases/"+caseID+"/evidence", analyst, nil, nil)
	if code != 200 {
		t.Fatalf("evidence: %d %v", code, doc)
	}
	noDecoy("the workbench", string(jsonBody(doc)))
	dl := doc["deadline"].(map[string]any)
	if dl["due_by"] == nil || dl["seconds_left"].(float64) <= 0 || dl["urgency"] == "overdue" {
		t.Fatalf("deadline: %v", dl)
	}
	if doc["reason"] != sc.opt.Reason || doc["network_reason_code"] != sc.opt.Code || doc["network_reason_meaning"] == "" {
		t.Fatalf("reason: %v %v %v", doc["reason"], doc["network_reason_code"], doc["network_reason_meaning"])
	}
	items := doc["checklist"].(map[string]any)["items"].([]any)
	if len(items) == 0 {
		t.Fatalf("empty checklist: %v", doc["checklist"])
	}
	for _, it := range items {
		st := it.(map[string]any)["status"]
		if st != "have" && st != "can_assemble" && st != "missing" {
			t.Fatalf("checklist item status %v", it)
		}
	}
	rec := doc["recommendation"].(map[string]any)
	if (rec["action"] != "fight" && rec["action"] != "accept") || rec["why"] == "" || rec["amount"] != float64(proPlan.UnitAmount) {
		t.Fatalf("recommendation: %v", rec)
	}
	ce3, _ := doc["ce3"].(map[string]any)
	switch sc.ce3 {
	case "eligible":
		if ce3 == nil || ce3["applies"] != true || ce3["eligible"] != true || len(ce3["selected"].([]any)) < 2 {
			t.Fatalf("CE 3.0 should qualify: %v", ce3)
		}
	case "not_eligible":
		if ce3 == nil || ce3["applies"] != true || ce3["eligible"] != false || len(ce3["missing"].([]any)) == 0 {
			t.Fatalf("CE 3.0 should not qualify, saying why: %v", ce3)
		}
	default:
		if ce3 != nil && ce3["applies"] == true {
			t.Fatalf("CE 3.0 applies to %s: %v", sc.name, ce3)
		}
	}

	// The sweep reminds the case once: the policy's 720h lead is past for
	// every dispute here, the 24h lead not yet.
	for deadline := time.Now().Add(10 * time.Second); reminders(in, admin, caseID) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no deadline reminder within 10s")
		}
	}

	// Assembly: the fields and the packet.
	code, doc = in.do("POST", "/api/v1/cases/"+caseID+"/evidence/assemble", analyst, nil, nil)
	if code != 200 {
		t.Fatalf("assemble: %d %v", code, doc)
	}
	draft := doc["draft"].(map[string]any)
	fields := draft["fields"].(map[string]any)
	noDecoy("the evidence fields", string(jsonBody(fields)))
	for f, want := range sc.fields {
		if v, _ := fields[f].(string); !strings.Contains(v, want) {
			t.Fatalf("field %s = %q, want it to contain %q (fields %v)", f, v, want, fields)
		}
	}
	if draft["status"] != "draft" {
		t.Fatalf("draft status: %v", draft["status"])
	}
	pdf := in.packet(caseID, analyst)
	if len(pdf) == 0 || len(pdf) > 4_500_000 {
		t.Fatalf("packet size %d", len(pdf))
	}
	pages := pdfPages(t, pdf)
	if len(pages) < 2 || len(pages) != int(draft["packet_pages"].(float64)) {
		t.Fatalf("packet has %d pages (draft says %v)", len(pages), draft["packet_pages"])
	}
	letter := pages[0]
	for _, id := range []string{disputeID, s.dispute["charge"].(string), "Exhibit"} {
		if !strings.Contains(letter, id) {
			t.Fatalf("the letter does not carry %q", id)
		}
	}
	noDecoy("the packet", strings.Join(pages, "\n"))

	// The analyst edits a field; limits are refused naming the limit.
	patch := func(fs map[string]string) (int, map[string]any) {
		return in.do("PATCH", "/api/v1/cases/"+caseID+"/evidence", analyst, jsonBody(map[string]any{"fields": fs}), nil)
	}
	version := draft["version"].(float64)
	code, doc = patch(map[string]string{"product_description": "Pro subscription (video editing), billed monthly; edited by the analyst."})
	if code != 200 || doc["draft"].(map[string]any)["version"].(float64) != version+1 {
		t.Fatalf("patch: %d %v", code, doc)
	}
	if code, r := patch(map[string]string{"uncategorized_text": strings.Repeat("x", 20_001)}); code != 422 || !strings.Contains(string(jsonBody(r)), "20000") && !strings.Contains(string(jsonBody(r)), "20,000") {
		t.Fatalf("20,001 characters: %d %v", code, r)
	}
	if code, r := patch(map[string]string{"uncategorized_text": "See https://example.com/proof"}); code != 422 {
		t.Fatalf("a link: %d %v", code, r)
	}

	// Stage, then submit, to stripe-mock; a second submission is refused.
	act := func(key, typ string) (int, map[string]any) {
		return in.do("POST", "/api/v1/cases/"+caseID+"/actions", analyst, jsonBody(map[string]any{"type": typ, "reason": "evidence ready"}),
			map[string]string{"Idempotency-Key": key})
	}
	if code, a := act(sc.name+"-stage", "stage_evidence"); code != 201 || a["status"] != "succeeded" {
		t.Fatalf("stage: %d %v", code, a)
	}
	if code, a := act(sc.name+"-submit", "submit_evidence"); code != 201 || a["status"] != "succeeded" {
		t.Fatalf("submit: %d %v", code, a)
	}
	if code, a := act(sc.name+"-submit-again", "submit_evidence"); code != 409 || !strings.Contains(string(jsonBody(a)), "evidence_already_submitted") {
		t.Fatalf("second submission: %d %v", code, a)
	}
	if code, _ := patch(map[string]string{"product_description": "late"}); code != 409 {
		t.Fatalf("edit after submission: %d", code)
	}
	_, doc = in.do("GET", "/api/v1/cases/"+caseID+"/evidence", analyst, nil, nil)
	if d := doc["draft"].(map[string]any); d["status"] != "submitted" || d["submitted_at"] == nil {
		t.Fatalf("draft after submission: %v", d)
	}
	if c := in.caseOf(admin, "dispute", disputeID); c["state"] != "under_review" {
		t.Fatalf("case after submission: %v", c["state"])
	}

	// The issuer decides; the outcome webhook closes the case, and the
	// policy's rule acts on the subscription once (replays change nothing).
	for _, e := range rest {
		in.post(e)
	}
	for _, e := range rest {
		in.post(e) // Stripe retries
	}
	in.drained(admin)
	want := "lost"
	if sc.opt.Won {
		want = "won"
	}
	c = in.caseOf(admin, "dispute", disputeID)
	if c["status"] != want && c["state"] != want {
		t.Fatalf("case after the outcome: state %v status %v, want %s", c["state"], c["status"], want)
	}
	ruleActions := func() []map[string]any {
		_, l := in.do("GET", "/api/v1/cases/"+caseID+"/actions", admin, nil, nil)
		var out []map[string]any
		for _, a := range l["data"].([]any) {
			a := a.(map[string]any)
			if a["requested_by"] == "system" && strings.HasPrefix(fmt.Sprint(a["reason"]), "dispute rule ") {
				out = append(out, a)
			}
		}
		return out
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := ruleActions()
		if sc.opt.Won && ruleApplied(in, admin, caseID, "won") {
			if len(got) != 0 {
				t.Fatalf("a won dispute's rule (leave) requested %v", got)
			}
			break
		}
		if !sc.opt.Won && len(got) == 1 && got[0]["status"] != "executing" && got[0]["status"] != "pending" {
			if got[0]["type"] != "cancel_subscription" || got[0]["status"] != "succeeded" {
				t.Fatalf("rule action: %v", got[0])
			}
			time.Sleep(2500 * time.Millisecond) // two more sweeps
			if n := len(ruleActions()); n != 1 {
				t.Fatalf("the rule acted %d times", n)
			}
			break
		}
		if time.Now().After(deadline) {
			_, all := in.do("GET", "/api/v1/cases/"+caseID+"/actions", admin, nil, nil)
			t.Fatalf("the subscription rule never applied: %v\nactions %v\ntimeline %v", got, all, in.timelineOf(admin, caseID))
		}
		time.Sleep(200 * time.Millisecond)
	}

	if n := reminders(in, admin, caseID); n != 1 {
		t.Fatalf("%d 720h reminders on the case timeline, want 1", n)
	}
}

// reminders counts the 720h deadline reminders on the case's timeline.
func reminders(in *instance, token, caseID string) int {
	n := 0
	for _, e := range in.timelineOf(token, caseID) {
		if strings.Contains(fmt.Sprint(e["summary"]), "(720h reminder)") {
			n++
		}
	}
	return n
}

// ruleApplied reports whether the case's timeline records the rule for trigger.
func ruleApplied(in *instance, token, caseID, trigger string) bool {
	for _, e := range in.timelineOf(token, caseID) {
		if strings.Contains(fmt.Sprint(e["summary"]), "Dispute "+trigger+": subscription rule") {
			return true
		}
	}
	return false
}

func (in *instance) packet(caseID, token string) []byte {
	in.t.Helper()
	req, _ := http.NewRequest("GET", in.url+"/api/v1/cases/"+caseID+"/evidence/packet.pdf", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := in.api.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" {
		in.t.Fatalf("packet: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return b
}

// pdfPages opens a PDF with pdfcpu, validates it, and returns each page's
// decoded content stream.
func pdfPages(t *testing.T, pdf []byte) []string {
	t.Helper()
	// disputes.PDFConfig sets pdfcpu's globals once; the service shares them.
	ctx, err := api.ReadContext(bytes.NewReader(pdf), disputes.PDFConfig())
	if err != nil {
		t.Fatalf("read PDF: %v", err)
	}
	if err := api.ValidateContext(ctx); err != nil {
		t.Fatalf("validate PDF: %v", err)
	}
	var pages []string
	for i := 1; i <= ctx.PageCount; i++ {
		r, err := pdfcpu.ExtractPageContent(ctx, i)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		b, _ := io.ReadAll(r)
		pages = append(pages, string(b))
	}
	return pages
}
