package disputes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	stripeprovider "github.com/recourse-hq/recourse/billing/stripe"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

type httpResp struct {
	status int
	ctype  string
	raw    []byte
	body   map[string]any
}

func (r httpResp) code() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// TestWorkbenchHTTP drives the workbench over HTTP with real tokens, then
// stages and submits its package through the actions endpoint to
// stripe-mock: permissions, limits as 422, the packet as a PDF, and 409
// once submitted.
func TestWorkbenchHTTP(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := newBench(t, d)
		ctx := context.Background()
		c, dp, ch := b.chargeback(505, time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC),
			stripetest.ChargebackOptions{Brand: "visa", Reason: "product_not_received", Code: "13.1", Renewals: 1})
		b.facts.add(
			fact(ch.CustomerID, disputes.FactLogin, ch.Created.Add(2*time.Hour), ip("203.0.113.70")),
			fact(ch.CustomerID, disputes.FactDelivery, ch.Created.Add(time.Minute), data(`{"what":"workspace provisioned"}`)),
		)

		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		al := audit.New(d, b.clk)
		prov, err := stripeprovider.New(stripeprovider.Config{APIKey: "sk_test_123", APIBase: m.URL, Timeout: 5 * time.Second, MaxNetworkRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		pol := actions.DefaultPolicy()
		svc := actions.NewService(actions.Config{DB: d, Clock: b.clk, Log: log, Provider: prov,
			Mirror: func(tx *gorm.DB) actions.Mirror { return b.store.In(tx) }, Cases: b.cases, Audit: al, Policy: pol, Evidence: b.wb})
		e := httpx.New(httpx.Options{Logger: log, Metrics: metrics.New()})
		ts := auth.NewTokenStore(d, b.clk)
		api := e.Group("/api/v1", auth.Middleware(ts))
		b.wb.Register(api)
		actions.NewHTTP(svc, al, pol).Register(api)
		srv := httptest.NewServer(apispectest.Handler(t, e))
		t.Cleanup(srv.Close)
		tokens := map[string]string{}
		for name, role := range map[string]auth.Role{"agent": auth.RoleAgent, "analyst": auth.RoleAnalyst} {
			tok, _, err := ts.Create(ctx, name, role)
			if err != nil {
				t.Fatal(err)
			}
			tokens[name] = tok
		}
		call := func(method, path, who string, body any) httpResp {
			t.Helper()
			var rd io.Reader
			if body != nil {
				js, _ := json.Marshal(body)
				rd = bytes.NewReader(js)
			}
			req, _ := http.NewRequest(method, srv.URL+"/api/v1"+path, rd)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tokens[who])
			if method == "POST" && strings.HasSuffix(path, "/actions") {
				req.Header.Set("Idempotency-Key", who+path+time.Now().String())
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			r := httpResp{status: res.StatusCode, ctype: res.Header.Get("Content-Type")}
			r.raw, _ = io.ReadAll(res.Body)
			_ = json.Unmarshal(r.raw, &r.body)
			return r
		}
		ev := "/cases/" + c.ID + "/evidence"

		if r := call("GET", ev, "agent", nil); r.status != 403 {
			t.Fatalf("agent reads the workbench: %d", r.status)
		}
		r := call("GET", ev, "analyst", nil)
		if r.status != 200 || r.body["dispute_id"] != dp.ID || r.body["draft"] != nil || r.body["checklist"] == nil || r.body["recommendation"] == nil {
			t.Fatalf("GET evidence: %d %s", r.status, r.raw)
		}
		if r := call("POST", ev+"/assemble", "agent", nil); r.status != 403 {
			t.Fatalf("agent assembles: %d", r.status)
		}
		if r := call("GET", ev+"/packet.pdf", "analyst", nil); r.status != 404 || r.code() != "no_evidence_draft" {
			t.Fatalf("packet before assembly: %d %s", r.status, r.raw)
		}
		r = call("POST", ev+"/assemble", "analyst", nil)
		if r.status != 200 {
			t.Fatalf("assemble: %d %s", r.status, r.raw)
		}
		if r := call("PATCH", ev, "agent", map[string]any{"fields": map[string]string{"uncategorized_text": "x"}}); r.status != 403 {
			t.Fatalf("agent patches: %d", r.status)
		}
		if r := call("PATCH", ev, "analyst", map[string]any{"fields": map[string]string{"uncategorized_text": strings.Repeat("z", 20_001)}}); r.status != 422 || r.code() != "evidence_field_too_long" {
			t.Fatalf("20,001: %d %s", r.status, r.raw)
		}
		if r := call("PATCH", ev, "analyst", map[string]any{"fields": map[string]string{"product_description": "see https://example.com"}}); r.status != 422 || r.code() != "evidence_contains_link" {
			t.Fatalf("link: %d %s", r.status, r.raw)
		}
		r = call("PATCH", ev, "analyst", map[string]any{"fields": map[string]string{"product_description": "Team workspace, monthly."}})
		if r.status != 200 {
			t.Fatalf("patch: %d %s", r.status, r.raw)
		}
		p := call("GET", ev+"/packet.pdf", "analyst", nil)
		if p.status != 200 || p.ctype != "application/pdf" || !bytes.HasPrefix(p.raw, []byte("%PDF")) {
			t.Fatalf("packet: %d %s", p.status, p.ctype)
		}
		if pages := pdfText(t, p.raw); !strings.Contains(pages[0], dp.ID) {
			t.Fatal("the packet's letter lacks the dispute id")
		}

		// Stage, then submit, through the actions endpoint.
		r = call("POST", "/cases/"+c.ID+"/actions", "analyst", map[string]any{"type": "stage_evidence", "reason": "draft at Stripe"})
		if r.status != 201 || r.body["status"] != "succeeded" {
			t.Fatalf("stage: %d %s", r.status, r.raw)
		}
		if r := call("GET", ev, "analyst", nil); r.body["draft"].(map[string]any)["status"] != "staged" {
			t.Fatalf("after staging: %s", r.raw)
		}
		r = call("POST", "/cases/"+c.ID+"/actions", "analyst", map[string]any{"type": "submit_evidence", "reason": "ready"})
		if r.status != 201 || r.body["status"] != "succeeded" {
			t.Fatalf("submit: %d %s", r.status, r.raw)
		}
		draft := call("GET", ev, "analyst", nil).body["draft"].(map[string]any)
		if draft["status"] != "submitted" || !strings.HasPrefix(draft["file_ids"].(map[string]any)["uncategorized_file"].(string), "file_") {
			t.Fatalf("after submission: %v", draft)
		}
		if r := call("POST", ev+"/assemble", "analyst", nil); r.status != 409 || r.code() != "evidence_already_submitted" {
			t.Fatalf("assemble after submission: %d %s", r.status, r.raw)
		}
		if r := call("PATCH", ev, "analyst", map[string]any{"fields": map[string]string{"product_description": "late"}}); r.status != 409 {
			t.Fatalf("patch after submission: %d %s", r.status, r.raw)
		}
		if r := call("POST", "/cases/"+c.ID+"/actions", "analyst", map[string]any{"type": "submit_evidence", "reason": "again"}); r.status != 409 || r.code() != "evidence_already_submitted" {
			t.Fatalf("second submission: %d %s", r.status, r.raw)
		}

		// Assembly and edits are audited with the person who made them.
		var audited []struct{ Action, Actor string }
		if err := d.Gorm.Table("audit_log").Select("action, actor").Where("case_id = ? AND action LIKE ?", c.ID, "evidence.%").Order("id").Scan(&audited).Error; err != nil {
			t.Fatal(err)
		}
		if len(audited) != 2 || audited[0].Action != "evidence.assemble" || audited[1].Action != "evidence.edit" || audited[0].Actor != "analyst" {
			t.Fatalf("audit: %+v", audited)
		}

		// A case that is not a dispute case.
		other, err := b.cases.OpenManual(ctx, auth.Principal{Name: "agent", Role: auth.RoleAgent}, cases.ManualCase{Kind: cases.KindBillingInquiry,
			Channel: cases.ChannelEmail, Title: "Question about an invoice", Links: cases.Links{Customer: &ch.CustomerID}})
		if err != nil {
			t.Fatal(err)
		}
		if r := call("GET", "/cases/"+other.ID+"/evidence", "analyst", nil); r.status != 422 || r.code() != "not_a_dispute_case" {
			t.Fatalf("non-dispute case: %d %s", r.status, r.raw)
		}
		if r := call("GET", "/cases/nope/evidence", "analyst", nil); r.status != 404 {
			t.Fatalf("unknown case: %d", r.status)
		}
	})
}
