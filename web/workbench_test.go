package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	stripeprovider "github.com/recourse-hq/recourse/billing/stripe"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// workbenchEnv is a console with the real workbench over the real mirror,
// the real case service and the real actions service, whose provider is
// stripe-mock.
type workbenchEnv struct {
	*env
	d       *db.DB
	store   *billing.Store
	wb      *disputes.Workbench
	actions *actions.Service
}

func newWorkbenchEnv(t *testing.T, d *db.DB, stripeURL string, pol actions.Policy) *workbenchEnv {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	store := billing.NewStore(d, clk)
	al := audit.New(d, clk)
	cs, err := cases.NewService(cases.Options{DB: d, Clock: clk, Logger: log, Audit: al,
		Billing: func(tx *gorm.DB) cases.BillingReader { return store.In(tx) }})
	if err != nil {
		t.Fatal(err)
	}
	wb := disputes.NewWorkbench(disputes.WorkbenchOptions{DB: d, Clock: clk, Billing: store, Cases: cs,
		Facts: disputes.NewFactStore(d, clk), Policy: disputes.DefaultPolicy(), Audit: al})
	prov, err := stripeprovider.New(stripeprovider.Config{APIKey: "sk_test_123", APIBase: stripeURL, Timeout: 10 * time.Second, MaxNetworkRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	as := actions.NewService(actions.Config{DB: d, Clock: clk, Log: log, Provider: prov,
		Mirror: func(tx *gorm.DB) actions.Mirror { return store.In(tx) }, Cases: cs, Audit: al, Policy: pol, Evidence: wb})
	users := auth.NewUserStore(d, clk, nil)
	con, err := New(Options{DB: d, Clock: clk, Log: log, Users: users, Cases: cs, Billing: store, Actions: as, Workbench: wb,
		IdleTimeout: 30 * time.Minute, SessionMax: 12 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := httpx.New(httpx.Options{Logger: log})
	con.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &workbenchEnv{env: &env{t: t, srv: srv, clock: clk, users: users, cases: cs}, d: d, store: store, wb: wb, actions: as}
}

// chargeback posts a Visa 13.1 chargeback story through the real mirror and
// case handling up to the funds withdrawal (the dispute needs a response)
// and returns its case. The clock ends an hour after the dispute.
func (we *workbenchEnv) chargeback(seed uint64) (cases.Case, billing.Dispute) {
	t := we.t
	t.Helper()
	g := stripetest.New(seed, stripetest.WithClock(we.clock.Now), stripetest.WithPlans(stripetest.Plan{PriceID: "price_pro_monthly", ProductID: "prod_pro",
		Name: "Pro", UnitAmount: 1900, Currency: "usd", Interval: "month"}))
	evs := g.Chargeback(time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC), stripetest.ChargebackOptions{Brand: "visa", Reason: "product_not_received", Code: "13.1", Renewals: 1, NoResponse: true})
	ctx := context.Background()
	disputeID := ""
	for _, ev := range evs {
		we.clock.Set(ev.Created.Add(time.Second))
		err := we.d.Transact(ctx, func(tx *gorm.DB) error {
			ch, err := we.store.In(tx).Apply(ctx, billing.ProviderEvent{ID: ev.ID, Type: ev.Type, Created: ev.Created, APIVersion: "2023-10-16", Payload: ev.Payload})
			if errors.Is(err, billing.ErrNotBillingEvent) {
				return nil
			}
			if err != nil {
				return err
			}
			return we.cases.OnBillingChange(ctx, tx, ch)
		})
		if err != nil {
			t.Fatalf("%s: %v", ev.Type, err)
		}
		if ev.Type == "charge.dispute.created" {
			disputeID, _ = ev.Object["id"].(string)
		}
		if ev.Type == "charge.dispute.funds_withdrawn" {
			break
		}
	}
	we.clock.Advance(time.Hour)
	c, ok, err := we.cases.OpenCaseFor(ctx, we.d.Gorm, cases.KindDispute, disputeID)
	if err != nil || !ok {
		t.Fatalf("no dispute case for %q: %v", disputeID, err)
	}
	dp, err := we.store.Dispute(ctx, disputeID)
	if err != nil {
		t.Fatal(err)
	}
	return c, dp
}

func (we *workbenchEnv) draft(caseID string) *disputes.DraftView {
	we.t.Helper()
	doc, err := we.wb.Evidence(context.Background(), caseID)
	if err != nil {
		we.t.Fatal(err)
	}
	return doc.Draft
}

func lacks(t *testing.T, p resp, what ...string) {
	t.Helper()
	for _, s := range what {
		if strings.Contains(p.body, s) {
			t.Fatalf("page (%d) shows %q:\n%s", p.status, s, p.body)
		}
	}
}

var versionField = regexp.MustCompile(`name="version" value="(\d+)"`)

// TestWorkbenchPage: who may see and change the dispute workbench, its
// content, assembly and the packet's framing headers.
func TestWorkbenchPage(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		we := newWorkbenchEnv(t, d, mock.URL, actions.DefaultPolicy())
		c, dp := we.chargeback(41)
		ada := we.user("ada@example.com", "Ada", auth.RoleAgent)
		we.user("ann@example.com", "Ann", auth.RoleAnalyst)
		agent, analyst := we.browser(), we.browser()
		agent.mustLogin("ada@example.com")
		analyst.mustLogin("ann@example.com")
		wbURL := "/cases/" + c.ID + "/evidence"

		// The case page links to the workbench for those who may read it.
		want(t, analyst.get("/cases/"+c.ID), http.StatusOK, `id="open-workbench"`, `href="`+wbURL+`"`)
		lacks(t, agent.get("/cases/"+c.ID), `open-workbench`)

		// An agent (no facts:read, as the API) gets 403 and no data.
		p := agent.get(wbURL)
		want(t, p, http.StatusForbidden)
		lacks(t, p, dp.ID, "Checklist", "Recommendation", "13.1")
		want(t, agent.get(wbURL+"/packet.pdf"), http.StatusForbidden)

		// The analyst sees the dispute, deadline, checklist, recommendation.
		p = analyst.get(wbURL)
		want(t, p, http.StatusOK, dp.ID, `id="amount">19.00 USD<`, "code 13.1", `id="deadline" class="deadline deadline-`,
			" left</strong>", `id="checklist"`, `class="item-`, `id="recommendation"`, `id="rec-why"`, `id="no-draft"`,
			`<form method="post" action="`+wbURL+`/assemble" id="assemble-form"`)
		lacks(t, p, `id="packet-preview"`, `<script>`, `style=`)
		if h := p.header; h.Get("X-Frame-Options") != "DENY" || h.Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Fatalf("workbench headers: %v", h)
		}
		want(t, analyst.get(wbURL+"/packet.pdf"), http.StatusNotFound)

		// Assemble: CSRF, role, then the analyst.
		tok := csrfOf(t, p)
		want(t, analyst.post(wbURL+"/assemble", url.Values{}), http.StatusForbidden)
		agentTok := csrfOf(t, agent.get("/"))
		p = agent.post(wbURL+"/assemble", url.Values{"csrf": {agentTok}})
		want(t, p, http.StatusForbidden)
		lacks(t, p, dp.ID)
		if we.draft(c.ID) != nil {
			t.Fatal("a refused assembly made a draft")
		}
		if r := analyst.post(wbURL+"/assemble", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther || r.header.Get("Location") != wbURL+"?done=assembled" {
			t.Fatalf("assemble: %d %s", r.status, r.body)
		}
		dr := we.draft(c.ID)
		if dr == nil || dr.Version != 1 || dr.PacketBytes == 0 {
			t.Fatalf("draft after assembly: %+v", dr)
		}
		p = analyst.get(wbURL + "?done=assembled")
		want(t, p, http.StatusOK, `id="notice"`, `id="fields-form"`, `name="version" value="1"`, `<label for="f-uncategorized_text">`,
			`name="field.uncategorized_text"`, `data-max="20000"`, `/ 20000 characters`, `<iframe id="packet-preview" src="`+wbURL+`/packet.pdf"`,
			`src="/static/workbench.js"`, `id="stage"`, `id="submit-evidence"`, `id="accept-dispute"`, `name="key.submit_evidence" value="console_`)

		// The packet: the API's bytes, framable by the console only.
		pdf := analyst.get(wbURL + "/packet.pdf")
		want(t, pdf, http.StatusOK, "%PDF")
		if h := pdf.header; h.Get("Content-Type") != "application/pdf" || h.Get("X-Frame-Options") != "SAMEORIGIN" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'self'") || strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("packet headers: %v", h)
		}
		api, err := we.wb.Packet(context.Background(), c.ID)
		if err != nil || string(api) != pdf.body {
			t.Fatalf("the console's packet is not the API's: %v", err)
		}
		if s := analyst.get("/static/workbench.js"); s.status != 200 || s.header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("workbench.js: %d %v", s.status, s.header)
		}

		// A case that is not a dispute: 404.
		other := openCase(t, we.env, ada, "Refund please")
		want(t, analyst.get("/cases/"+other.ID+"/evidence"), http.StatusNotFound, "not a dispute")
		want(t, analyst.get("/cases/"+other.ID+"/evidence/packet.pdf"), http.StatusNotFound)
		want(t, analyst.post("/cases/"+other.ID+"/evidence/assemble", url.Values{"csrf": {tok}}), http.StatusNotFound)
		want(t, analyst.get("/cases/nope/evidence"), http.StatusNotFound)
	})
}

// TestWorkbenchSaveFields: saving edits at the form's version — limits at
// the edge (exactly at the limit, one over), a stale version, CSRF, role.
func TestWorkbenchSaveFields(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		we := newWorkbenchEnv(t, d, mock.URL, actions.DefaultPolicy())
		c, _ := we.chargeback(42)
		we.user("ada@example.com", "Ada", auth.RoleAgent)
		ann := we.user("ann@example.com", "Ann", auth.RoleAnalyst)
		if _, err := we.wb.Assemble(context.Background(), c.ID, ann.Actor(), disputes.AssembleOptions{}); err != nil {
			t.Fatal(err)
		}
		agent, analyst := we.browser(), we.browser()
		agent.mustLogin("ada@example.com")
		analyst.mustLogin("ann@example.com")
		wbURL := "/cases/" + c.ID + "/evidence"
		p := analyst.get(wbURL)
		tok := csrfOf(t, p)
		version := versionField.FindStringSubmatch(p.body)[1]
		before := we.draft(c.ID)

		save := func(b *browser, csrf, version string, fields map[string]string) resp {
			t.Helper()
			form := url.Values{"version": {version}}
			if csrf != "" {
				form.Set("csrf", csrf)
			}
			for k, v := range fields {
				form.Set("field."+k, v)
			}
			return b.post(wbURL, form)
		}
		unchanged := func(what string) {
			t.Helper()
			if now := we.draft(c.ID); now.Version != before.Version || now.Fields["product_description"] != before.Fields["product_description"] ||
				now.Fields["uncategorized_text"] != before.Fields["uncategorized_text"] {
				t.Fatalf("%s changed the draft: version %d → %d", what, before.Version, now.Version)
			}
		}

		// Without CSRF, or as an agent: 403, nothing changed, nothing shown.
		want(t, save(analyst, "", version, map[string]string{"product_description": "x"}), http.StatusForbidden)
		p = save(agent, csrfOf(t, agent.get("/")), version, map[string]string{"product_description": "Agent text"})
		want(t, p, http.StatusForbidden)
		lacks(t, p, "Agent text", before.Fields["uncategorized_text"][:20])
		unchanged("a refused save")

		// One character over a long field's limit: refused with the API's
		// code, next to the field, the typed text kept; the draft unchanged.
		long := strings.Repeat("é", disputes.MaxLongTextChars)
		p = save(analyst, tok, version, map[string]string{"product_description": long + "x"})
		want(t, p, http.StatusUnprocessableEntity, `class="error" role="alert" data-code="evidence_field_too_long"`,
			`id="e-product_description" data-code="evidence_field_too_long"`, "at most 20000", `<span class="chars">20001</span> / 20000`, `class="count over"`)
		unchanged("20,001 characters")
		// A short field, one over its 5,000.
		p = save(analyst, tok, version, map[string]string{"customer_name": strings.Repeat("n", disputes.MaxShortTextChars+1)})
		want(t, p, http.StatusUnprocessableEntity, `data-code="evidence_field_too_long"`, "at most 5000")
		unchanged("5,001 characters")

		// Exactly at the limit (in characters, not bytes; CRLF counts as one
		// line break, as the browser's counter shows it): saved.
		we.clock.Advance(time.Minute)
		atLimit := strings.Repeat("é", disputes.MaxLongTextChars-2) + "\r\n" + "z"
		p = save(analyst, tok, version, map[string]string{"product_description": atLimit, "uncategorized_text": before.Fields["uncategorized_text"]})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != wbURL+"?done=saved" {
			t.Fatalf("save at the limit: %d %s", p.status, p.body)
		}
		after := we.draft(c.ID)
		if after.Version != before.Version+1 || after.Fields["product_description"] != strings.Repeat("é", disputes.MaxLongTextChars-2)+"\nz" {
			t.Fatalf("after save: version %d, %d chars", after.Version, len([]rune(after.Fields["product_description"])))
		}
		// Only the changed field counts as edited.
		if len(after.EditedFields) != 1 || after.EditedFields[0] != "product_description" {
			t.Fatalf("edited fields: %v", after.EditedFields)
		}
		p = analyst.get(wbURL + "?done=saved")
		want(t, p, http.StatusOK, `id="notice"`, `<span class="chars">20000</span> / 20000`, `<span class="edited">edited</span>`, `id="packet-stale"`)

		// The form of the first version, saved again: a conflict, not an
		// overwrite; the analyst's text is shown again.
		p = save(analyst, tok, version, map[string]string{"product_description": "Stale text from an old tab"})
		want(t, p, http.StatusConflict, `data-code="evidence_draft_changed"`, "changed after you opened this page", "Stale text from an old tab",
			`name="version" value="`+strconv.FormatInt(after.Version, 10)+`"`)
		if now := we.draft(c.ID); now.Version != after.Version || now.Fields["product_description"] != after.Fields["product_description"] {
			t.Fatal("a stale save overwrote the draft")
		}
		// Nothing changed: nothing written.
		p = save(analyst, tok, strconv.FormatInt(after.Version, 10), map[string]string{"product_description": after.Fields["product_description"]})
		if p.status != http.StatusSeeOther || !strings.HasSuffix(p.header.Get("Location"), "done=unchanged") {
			t.Fatalf("unchanged save: %d %s", p.status, p.header.Get("Location"))
		}
		if now := we.draft(c.ID); now.Version != after.Version {
			t.Fatal("an unchanged save moved the version")
		}
		// A link: refused with its code.
		p = save(analyst, tok, strconv.FormatInt(after.Version, 10), map[string]string{"uncategorized_text": "see https://example.com/proof"})
		want(t, p, http.StatusUnprocessableEntity, `data-code="evidence_contains_link"`)
	})
}

// TestWorkbenchActions: stage, submit and accept through actions.Service
// from the page — CSRF, roles, the form's idempotency key, the action's
// status shown, and the API's refusals inline with their codes.
func TestWorkbenchActions(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		we := newWorkbenchEnv(t, d, mock.URL, actions.DefaultPolicy())
		c, _ := we.chargeback(43)
		we.user("ada@example.com", "Ada", auth.RoleAgent)
		we.user("ann@example.com", "Ann", auth.RoleAnalyst)
		agent, analyst := we.browser(), we.browser()
		agent.mustLogin("ada@example.com")
		analyst.mustLogin("ann@example.com")
		wbURL := "/cases/" + c.ID + "/evidence"
		tok := csrfOf(t, analyst.get(wbURL))
		if r := analyst.post(wbURL+"/assemble", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
			t.Fatalf("assemble: %d", r.status)
		}
		p := analyst.get(wbURL)
		keyOf := func(p resp, typ string) string {
			t.Helper()
			m := regexp.MustCompile(`name="key\.` + typ + `" value="([^"]+)"`).FindStringSubmatch(p.body)
			if m == nil {
				t.Fatalf("no key for %s", typ)
			}
			return m[1]
		}
		act := func(b *browser, csrf string, form url.Values) resp {
			t.Helper()
			if csrf != "" {
				form.Set("csrf", csrf)
			}
			return b.post(wbURL+"/actions", form)
		}
		count := func() int {
			t.Helper()
			list, err := we.actions.ForCase(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			return len(list)
		}

		// No CSRF, or an agent: 403 and no action.
		want(t, act(analyst, "", url.Values{"type": {"stage_evidence"}, "key.stage_evidence": {keyOf(p, "stage_evidence")}}), http.StatusForbidden)
		r := act(agent, csrfOf(t, agent.get("/")), url.Values{"type": {"accept_dispute"}, "key.accept_dispute": {"k1"}, "accept_reason": {"no"}})
		want(t, r, http.StatusForbidden)
		lacks(t, r, c.Title)
		want(t, act(agent, csrfOf(t, agent.get("/")), url.Values{"type": {"submit_evidence"}, "key.submit_evidence": {"k2"}}), http.StatusForbidden)
		if n := count(); n != 0 {
			t.Fatalf("%d actions after refusals", n)
		}

		// Accept without a reason: the API's refusal inline.
		want(t, act(analyst, tok, url.Values{"type": {"accept_dispute"}, "key.accept_dispute": {keyOf(p, "accept_dispute")}}), http.StatusBadRequest, `data-code="reason_required"`)

		// Stage: the action succeeds at stripe-mock; the page says so.
		version := versionField.FindStringSubmatch(p.body)[1]
		stage := url.Values{"type": {"stage_evidence"}, "key.stage_evidence": {keyOf(p, "stage_evidence")}, "evidence_version": {version}, "reason": {"draft at Stripe"}}
		r = act(analyst, tok, stage)
		loc := r.header.Get("Location")
		if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, wbURL+"?action=act_") {
			t.Fatalf("stage: %d %s %s", r.status, loc, r.body)
		}
		want(t, analyst.get(loc), http.StatusOK, `id="action-result"`, `data-status="succeeded"`, "Staging at Stripe: succeeded.", `id="draft-status">staged<`)
		// The same form again (a double click): the same action, not a second.
		if r2 := act(analyst, tok, stage); r2.header.Get("Location") != loc {
			t.Fatalf("replayed form: %s, want %s", r2.header.Get("Location"), loc)
		}
		if n := count(); n != 1 {
			t.Fatalf("%d actions after a replayed stage", n)
		}

		// Submit pinned to a version the draft has left: evidence_changed.
		p = analyst.get(wbURL)
		cur := versionField.FindStringSubmatch(p.body)[1]
		r = act(analyst, tok, url.Values{"type": {"submit_evidence"}, "key.submit_evidence": {keyOf(p, "submit_evidence")}, "evidence_version": {"999"}})
		want(t, r, http.StatusConflict, `data-code="evidence_changed"`)
		r = act(analyst, tok, url.Values{"type": {"submit_evidence"}, "key.submit_evidence": {keyOf(p, "submit_evidence")}, "evidence_version": {cur}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
		want(t, analyst.get(r.header.Get("Location")), http.StatusOK, "Submission to Stripe: succeeded.", `id="draft-status">submitted<`, "sent to Stripe as <code>file_")
		if got, _ := we.cases.Get(context.Background(), c.ID); got.State != "under_review" {
			t.Fatalf("case after submission: %s", got.State)
		}
		// After the submission no form to change the evidence is offered,
		// and accepting anyway is refused with the API's code.
		p = analyst.get(wbURL)
		want(t, p, http.StatusOK, `id="submitted-note"`)
		lacks(t, p, `id="fields-form"`, `id="assemble-form"`, `id="send-form"`, `id="accept-form"`)
		want(t, act(analyst, tok, url.Values{"type": {"accept_dispute"}, "key.accept_dispute": {"console-late"}, "accept_reason": {"too late"}}),
			http.StatusConflict, `data-code="evidence_submitted"`)
	})
}

// With submissions approved by a supervisor, the page says the submission
// waits for approval.
func TestWorkbenchSubmitWaitsForApproval(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t)
	d := dbtest.Open(t, db.SQLite)
	pol := actions.DefaultPolicy()
	pol.Evidence.SubmitRequiresApproval = true
	we := newWorkbenchEnv(t, d, mock.URL, pol)
	c, _ := we.chargeback(44)
	we.user("ann@example.com", "Ann", auth.RoleAnalyst)
	analyst := we.browser()
	analyst.mustLogin("ann@example.com")
	wbURL := "/cases/" + c.ID + "/evidence"
	tok := csrfOf(t, analyst.get(wbURL))
	if r := analyst.post(wbURL+"/assemble", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("assemble: %d", r.status)
	}
	p := analyst.get(wbURL)
	key := regexp.MustCompile(`name="key\.submit_evidence" value="([^"]+)"`).FindStringSubmatch(p.body)[1]
	r := analyst.post(wbURL+"/actions", url.Values{"csrf": {tok}, "type": {"submit_evidence"}, "key.submit_evidence": {key}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	want(t, analyst.get(r.header.Get("Location")), http.StatusOK, `data-status="pending_approval"`, "waiting for approval")
}
