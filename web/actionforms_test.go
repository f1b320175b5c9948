package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// openCase opens a case of kind on charge (and dispute, when set) as p.
func (ae *approvalsEnv) openCase(t *testing.T, p auth.Principal, kind cases.Kind, charge, dispute string) string {
	t.Helper()
	customer := "cus_console"
	links := cases.Links{Customer: &customer, Charge: &charge}
	if dispute != "" {
		links.Dispute = &dispute
	}
	cs, err := ae.cases.OpenManual(context.Background(), p, cases.ManualCase{Kind: kind, Channel: cases.ChannelEmail, Title: "Case on " + charge, Links: links})
	if err != nil {
		t.Fatal(err)
	}
	return cs.ID
}

func (ae *approvalsEnv) actionsOf(t *testing.T, caseID string) []actions.Action {
	t.Helper()
	list, err := ae.actions.ForCase(context.Background(), caseID)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

var keyField = regexp.MustCompile(`id="form-refund"[\s\S]*?name="idempotency_key" value="([^"]+)"`)

func refundKey(t *testing.T, p resp) string {
	t.Helper()
	m := keyField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no refund form with an idempotency key:\n%s", p.body)
	}
	return m[1]
}

// An agent refunds from the case page: the preview says what policy says
// at the agent limit and one cent over, the form acts once per key, and
// the page shows the action and what became of it.
func TestRefundFormAndPreview(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ae := newApprovalsEnv(t, d)
		ada := ae.user("ada@example.com", "Ada", auth.RoleAgent)
		id := ae.openCase(t, ada, cases.KindRefundRequest, "ch_1", "")
		b := ae.browser()
		b.mustLogin("ada@example.com")

		page := b.get("/cases/" + id)
		want(t, page, http.StatusOK, `id="case-actions"`, `<form method="post" action="/cases/`+id+`/actions" id="form-refund"`,
			`<label for="refund-amount">Amount to refund (USD)</label>`, `hx-post="/cases/`+id+`/actions/preview"`,
			`hx-trigger="load, change from:closest form`, `hx-disabled-elt="find button[type='submit']"`,
			// Rendered with the page: no JavaScript needed to see the charge's state.
			"Enter an amount", `class="preview-left">900.00 USD`, `class="preview-limit">100.00 USD`, `No actions yet.`)
		if strings.Contains(page.body, `id="form-accept_dispute"`) {
			t.Fatal("a dispute form on a case without a dispute")
		}
		tok, key := csrfOf(t, page), refundKey(t, page)
		form := func(amount, key string) url.Values {
			return url.Values{"csrf": {tok}, "type": {"refund"}, "idempotency_key": {key}, "currency": {"usd"},
				"amount": {amount}, "refund_reason": {"requested_by_customer"}, "reason": {"charged after cancelling, card 4242424242424242"}}
		}

		// The preview fragment, at the agent limit and one cent over.
		pv := b.post("/cases/"+id+"/actions/preview", form("100.00", ""))
		want(t, pv, http.StatusOK, "No approval needed", `class="preview-amount">100.00 USD`)
		if strings.Contains(pv.body, "needs approval") || strings.Contains(pv.body, "<html") {
			t.Fatalf("preview at the limit:\n%s", pv.body)
		}
		want(t, b.post("/cases/"+id+"/actions/preview", form("100.01", "")), http.StatusOK, "This needs approval", "refund.agent_limit")
		want(t, b.post("/cases/"+id+"/actions/preview", form("900.01", "")), http.StatusOK, `data-code="amount_exceeds_refundable"`)
		want(t, b.post("/cases/"+id+"/actions/preview", form("12.345", "")), http.StatusOK, `data-code="invalid_amount"`)
		// Without the CSRF token, the preview is refused too.
		noCSRF := form("100.00", "")
		noCSRF.Del("csrf")
		want(t, b.post("/cases/"+id+"/actions/preview", noCSRF), http.StatusForbidden)

		// CSRF missing: 403, nothing requested.
		want(t, b.post("/cases/"+id+"/actions", func() url.Values { f := form("150.00", key); f.Del("csrf"); return f }()), http.StatusForbidden)
		if n := len(ae.actionsOf(t, id)); n != 0 {
			t.Fatalf("%d actions without a CSRF token", n)
		}

		// Over what is left: inline, with the API's code and status.
		p := b.post("/cases/"+id+"/actions", form("900.01", key))
		want(t, p, http.StatusUnprocessableEntity, `data-code="amount_exceeds_refundable"`, `id="form-refund"`, `value="900.01"`)
		if refundKey(t, p) != key {
			t.Fatal("the form shown again lost its idempotency key")
		}
		// An unknown type: no form to show it in; above the forms, with the API's code.
		want(t, b.post("/cases/"+id+"/actions", url.Values{"csrf": {tok}, "type": {"launch_rocket"}, "idempotency_key": {key}, "reason": {"x"}}),
			http.StatusBadRequest, `id="action-notice"`, "(unknown_action)")
		// No amount: the console asks for one.
		want(t, b.post("/cases/"+id+"/actions", form("", key)), http.StatusBadRequest, `data-code="amount_required"`)

		// Submitted twice with the same key: one action, both answers 303 to it.
		p1 := b.post("/cases/"+id+"/actions", form("150.00", key))
		p2 := b.post("/cases/"+id+"/actions", form("150.00", key))
		if p1.status != http.StatusSeeOther || p2.status != http.StatusSeeOther || p1.header.Get("Location") != p2.header.Get("Location") ||
			!strings.HasPrefix(p1.header.Get("Location"), "/cases/"+id+"?action=act_") {
			t.Fatalf("submit twice: %d %s / %d %s\n%s", p1.status, p1.header.Get("Location"), p2.status, p2.header.Get("Location"), p1.body)
		}
		list := ae.actionsOf(t, id)
		if len(list) != 1 || list[0].Status != actions.StatusPendingApproval || *list[0].Amount != 15000 || list[0].RequestedBy != "Ada" {
			t.Fatalf("after two submissions: %+v", list)
		}
		if strings.Contains(list[0].Reason, "4242424242424242") {
			t.Fatalf("a card number stored in the reason: %q", list[0].Reason)
		}
		if ae.stripe.count() != 0 {
			t.Fatal("a refund over the agent limit reached the provider")
		}
		after := b.get(p1.header.Get("Location"))
		want(t, after, http.StatusOK, `id="action-notice"`, "waiting for a supervisor", `<table id="actions"`,
			`data-action-id="`+list[0].ID+`" data-status="pending_approval"`, "150.00 USD", "Ada (agent)", "over the agent limit")
		// A fresh form, a fresh key; the preview counts the refund in flight.
		if refundKey(t, after) == key {
			t.Fatal("the page after a request reuses the spent key")
		}
		want(t, after, http.StatusOK, `class="preview-left">750.00 USD`)

		// Under the limit: executed at once, the provider id on the page.
		p = b.post("/cases/"+id+"/actions", form("20.00", refundKey(t, after)))
		if p.status != http.StatusSeeOther {
			t.Fatalf("small refund: %d\n%s", p.status, p.body)
		}
		want(t, b.get(p.header.Get("Location")), http.StatusOK, "succeeded (re_1)", `<code class="provider-id">re_1</code>`)
		if ae.stripe.count() != 1 {
			t.Fatalf("provider calls %d, want 1", ae.stripe.count())
		}
	})
}

// Accepting a dispute needs disputes:accept as well: an agent has no form
// and a post is refused 403, exactly as the API; an analyst has the form.
func TestAcceptDisputeFormByRole(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ae := newApprovalsEnv(t, d)
		ada := ae.user("ada@example.com", "Ada", auth.RoleAgent)
		ae.user("ann@example.com", "Ann", auth.RoleAnalyst)
		id := ae.openCase(t, ada, cases.KindBillingInquiry, "ch_2", "dp_2")

		agent := ae.browser()
		agent.mustLogin("ada@example.com")
		page := agent.get("/cases/" + id)
		want(t, page, http.StatusOK, `id="form-refund"`)
		if strings.Contains(page.body, `id="form-accept_dispute"`) || strings.Contains(page.body, "evidence-link") {
			t.Fatal("an agent is offered to accept a dispute or send evidence")
		}
		p := agent.post("/cases/"+id+"/actions", url.Values{"csrf": {csrfOf(t, page)}, "type": {"accept_dispute"},
			"idempotency_key": {"k1"}, "reason": {"no proof"}})
		want(t, p, http.StatusForbidden, "may not accept disputes")
		if n := len(ae.actionsOf(t, id)); n != 0 {
			t.Fatalf("agent accepted a dispute: %d actions", n)
		}

		analyst := ae.browser()
		analyst.mustLogin("ann@example.com")
		want(t, analyst.get("/cases/"+id), http.StatusOK, `id="form-accept_dispute"`, `<label for="accept_dispute-reason">`)
	})
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, cur string
		want    int64
		ok      bool
	}{
		{"150", "usd", 15000, true}, {"150.5", "usd", 15050, true}, {"150.50", "usd", 15050, true}, {"0.01", "usd", 1, true},
		{"100.00", "", 10000, true}, {"1500", "jpy", 1500, true},
		{"150.505", "usd", 0, false}, {"1,500.00", "usd", 0, false}, {"-5", "usd", 0, false}, {"", "usd", 0, false},
		{"150.", "usd", 0, false}, {".5", "usd", 0, false}, {"15.5", "jpy", 0, false}, {"1e3", "usd", 0, false},
		{"9999999999999", "usd", 0, false},
	} {
		got, err := minorUnits(c.in, c.cur)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("minorUnits(%q, %q) = %d, %v; want %d, ok %v", c.in, c.cur, got, err, c.want, c.ok)
		}
	}
}
