package cases

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
)

// api drives the real Echo handlers over httptest.
type api struct {
	t      testing.TB
	f      *fixture
	e      *echo.Echo
	tokens map[auth.Role]string
}

func newAPI(t testing.TB, d *db.DB) *api {
	t.Helper()
	f := newFixture(t, d)
	ts := auth.NewTokenStore(d, f.clock)
	e := httpx.New(httpx.Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New()})
	f.svc.Register(e.Group("/api/v1", auth.Middleware(ts)))
	a := &api{t: t, f: f, e: e, tokens: map[auth.Role]string{}}
	for role, name := range map[auth.Role]string{auth.RoleAgent: "alice", auth.RoleAnalyst: "ana", auth.RoleSupervisor: "sam"} {
		tok, _, err := ts.Create(context.Background(), name, role)
		if err != nil {
			t.Fatal(err)
		}
		a.tokens[role] = tok
	}
	return a
}

type resp struct {
	status int
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %s", r.body)
	}
	return m
}

func (r resp) errCode(t testing.TB) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// do sends a request as role ("" for no token); body is JSON-encoded unless
// it is a string, sent raw.
func (a *api) do(role auth.Role, method, path string, body any) resp {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, "/api/v1"+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+a.tokens[role])
	}
	rec := httptest.NewRecorder()
	apispectest.Handler(a.t, a.e).ServeHTTP(rec, req)
	return resp{status: rec.Code, body: rec.Body.Bytes()}
}

func (a *api) want(r resp, status int) resp {
	a.t.Helper()
	if r.status != status {
		a.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// decodeCase decodes a case from a response.
func decodeCase(t testing.TB, r resp) Case {
	t.Helper()
	var c Case
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatalf("decode case: %v: %s", err, r.body)
	}
	return c
}

func (a *api) create(role auth.Role, body map[string]any) Case {
	a.t.Helper()
	return decodeCase(a.t, a.want(a.do(role, "POST", "/cases", body), http.StatusCreated))
}

func inquiryBody(title string) map[string]any {
	return map[string]any{"kind": "billing_inquiry", "channel": "chat", "title": title}
}

func TestHTTPAuth(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		for _, r := range []resp{
			a.do("", "GET", "/cases", nil),
			a.do("", "POST", "/cases", inquiryBody("x")),
			a.do("", "GET", "/cases/case_00000000000000000000000000", nil),
		} {
			if r.status != http.StatusUnauthorized || r.errCode(t) != "unauthorized" {
				t.Fatalf("no token: %d %s", r.status, r.body)
			}
		}
		req := httptest.NewRequest("GET", "/api/v1/cases", nil)
		req.Header.Set("Authorization", "Bearer rct_not_a_real_token")
		rec := httptest.NewRecorder()
		apispectest.Handler(a.t, a.e).ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", rec.Code)
		}
	})
}

func TestHTTPCreateAndGet(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		a.f.mirror.put(billing.Subscription{ID: "sub_h1", CustomerID: "cus_h1", Status: "active"},
			billing.Customer{ID: "cus_h1", Email: "h@example.com"})
		r := a.want(a.do(auth.RoleAgent, "POST", "/cases", map[string]any{
			"kind": "cancellation", "channel": "email", "priority": "high", "title": "Please cancel my plan",
			"description": "Customer wrote in", "links": map[string]any{"subscription": "sub_h1"},
			"business_line": "subscriptions", "tags": []string{"VIP", "vip", "eu"},
		}), http.StatusCreated)
		m := r.json(t)
		for _, k := range []string{"id", "kind", "state", "status", "resolution", "priority", "assignee", "team", "business_line",
			"channel", "links", "sla", "allowed_transitions", "version", "created_at", "updated_at"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("case JSON lacks %q: %s", k, r.body)
			}
		}
		links := m["links"].(map[string]any)
		for _, k := range []string{"customer", "subscription", "invoice", "charge", "dispute"} {
			if _, ok := links[k]; !ok {
				t.Fatalf("links lacks %q", k)
			}
		}
		sla := m["sla"].(map[string]any)
		for _, k := range []string{"first_response_due", "resolution_due", "breached"} {
			if _, ok := sla[k]; !ok {
				t.Fatalf("sla lacks %q", k)
			}
		}
		c := decodeCase(t, r)
		if !strings.HasPrefix(c.ID, "case_") || len(c.ID) != 31 || c.Kind != KindCancellation || c.State != "requested" ||
			c.Status != StatusOpen || c.Priority != PriorityHigh || c.Team != TeamBillingSupport || c.Channel != ChannelEmail ||
			c.Resolution != nil || c.Assignee != nil || c.Version != 1 || deref(c.BusinessLine) != "subscriptions" {
			t.Fatalf("created case %+v", c)
		}
		if !slices.Equal(c.Tags, []string{"vip", "eu"}) {
			t.Fatalf("tags %v", c.Tags)
		}
		wantLink(t, "customer", c.Links.Customer, "cus_h1") // filled from the mirror
		if !slices.Equal(c.AllowedTransitions, []string{"offer_retention", "retain"}) {
			t.Fatalf("allowed %v", c.AllowedTransitions)
		}
		if want := t0.Add(4 * time.Hour); !c.SLA.FirstResponseDue.Equal(want) {
			t.Fatalf("first response due %v, want %v", c.SLA.FirstResponseDue, want)
		}

		g := a.want(a.do(auth.RoleAgent, "GET", "/cases/"+c.ID, nil), http.StatusOK).json(t)
		linked := g["linked"].(map[string]any)
		if linked["subscription"] == nil || linked["customer"] == nil || linked["invoice"] != nil {
			t.Fatalf("linked %v", linked)
		}
		// A list is never null, even empty (the OpenAPI document says array).
		if fw, ok := linked["fraud_warnings"].([]any); !ok || len(fw) != 0 {
			t.Fatalf("linked.fraud_warnings = %#v, want []", linked["fraud_warnings"])
		}
		tl := g["timeline"].([]any)
		if len(tl) != 1 || tl[0].(map[string]any)["actor"] != "alice" || tl[0].(map[string]any)["type"] != EntryOpened {
			t.Fatalf("timeline %v", tl)
		}
		// The same subscription cannot have two open cancellation cases.
		dup := a.do(auth.RoleAgent, "POST", "/cases", map[string]any{"kind": "cancellation", "channel": "phone",
			"title": "again", "links": map[string]any{"subscription": "sub_h1"}})
		if dup.status != http.StatusConflict || dup.errCode(t) != "open_case_exists" {
			t.Fatalf("duplicate: %d %s", dup.status, dup.body)
		}
		if det := dup.json(t)["error"].(map[string]any)["details"].(map[string]any); det["case_id"] != c.ID {
			t.Fatalf("duplicate details %v", det)
		}
		// Audited.
		var n int64
		d.Gorm.Table("audit_log").Where("action = 'case.create' AND case_id = ? AND actor = 'alice'", c.ID).Count(&n)
		if n != 1 {
			t.Fatalf("%d audit entries for the create", n)
		}
	})
}

func TestHTTPValidation(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		c := a.create(auth.RoleAgent, inquiryBody("question"))
		for name, tc := range map[string]struct {
			method, path string
			body         any
			status       int
			code         string
		}{
			"unknown field":         {"POST", "/cases", map[string]any{"kind": "billing_inquiry", "channel": "chat", "title": "x", "state": "resolved"}, 400, "malformed_json"},
			"unknown link":          {"POST", "/cases", map[string]any{"kind": "billing_inquiry", "channel": "chat", "title": "x", "links": map[string]any{"payout": "po_1"}}, 400, "malformed_json"},
			"bad kind":              {"POST", "/cases", map[string]any{"kind": "chargeback", "channel": "chat", "title": "x"}, 400, "invalid_kind"},
			"webhook kind":          {"POST", "/cases", map[string]any{"kind": "dispute", "channel": "chat", "title": "x"}, 400, "invalid_kind"},
			"bad channel":           {"POST", "/cases", map[string]any{"kind": "billing_inquiry", "channel": "stripe", "title": "x"}, 400, "invalid_channel"},
			"bad priority":          {"POST", "/cases", map[string]any{"kind": "billing_inquiry", "channel": "chat", "title": "x", "priority": "p1"}, 400, "invalid_priority"},
			"no title":              {"POST", "/cases", map[string]any{"kind": "billing_inquiry", "channel": "chat", "title": "  "}, 400, "invalid_title"},
			"cancel without sub":    {"POST", "/cases", map[string]any{"kind": "cancellation", "channel": "chat", "title": "x"}, 400, "invalid_links"},
			"refund without target": {"POST", "/cases", map[string]any{"kind": "refund_request", "channel": "chat", "title": "x"}, 400, "invalid_links"},
			"bad link id":           {"POST", "/cases", map[string]any{"kind": "billing_inquiry", "channel": "chat", "title": "x", "links": map[string]any{"customer": "cus 1"}}, 400, "invalid_links"},
			"not json":              {"POST", "/cases", "{", 400, "malformed_json"},
			"empty body":            {"POST", "/cases/" + c.ID + "/notes", "", 400, "body_required"},
			"unknown query":         {"GET", "/cases?assigne=bob", nil, 400, "invalid_parameter"},
			"bad sort":              {"GET", "/cases?sort=title", nil, 400, "invalid_sort"},
			"bad status":            {"GET", "/cases?status=pending", nil, 400, "invalid_status"},
			"bad team":              {"GET", "/cases?team=legal", nil, 400, "invalid_team"},
			"bad state":             {"GET", "/cases?kind=dispute&state=resolved", nil, 400, "invalid_state"},
			"bad sla":               {"GET", "/cases?sla=late", nil, 400, "invalid_sla"},
			"bad time":              {"GET", "/cases?created_after=yesterday", nil, 400, "invalid_created_after"},
			"limit too big":         {"GET", "/cases?limit=500", nil, 400, "invalid_limit"},
			"limit huge":            {"GET", "/cases?limit=99999999999999999999", nil, 400, "invalid_limit"},
			"repeated filter":       {"GET", "/cases?kind=dispute&kind=refund_request", nil, 400, "invalid_parameter"},
			"a thousand filters":    {"GET", "/cases?" + strings.TrimSuffix(strings.Repeat("kind=dispute&", 1000), "&"), nil, 400, "query_too_complex"},
			"long customer":         {"GET", "/cases?customer=cus_" + strings.Repeat("x", MaxFilterValueLen), nil, 400, "invalid_parameter"},
			"long subject":          {"GET", "/cases?subject=" + strings.Repeat("x", MaxFilterValueLen+1), nil, 400, "invalid_parameter"},
			"bad cursor":            {"GET", "/cases?cursor=zzz", nil, 400, "invalid_cursor"},
			"unknown case":          {"GET", "/cases/case_00000000000000000000000000", nil, 404, "not_found"},
			"malformed id":          {"GET", "/cases/42", nil, 404, "not_found"},
			"unknown timeline":      {"GET", "/cases/case_00000000000000000000000000/timeline", nil, 404, "not_found"},
			"transition unknown":    {"POST", "/cases/case_00000000000000000000000000/transitions", map[string]any{"event": "start"}, 404, "not_found"},
			"unknown event":         {"POST", "/cases/" + c.ID + "/transitions", map[string]any{"event": "teleport"}, 400, "unknown_event"},
			"no event":              {"POST", "/cases/" + c.ID + "/transitions", map[string]any{"reason": "x"}, 400, "invalid_event"},
			"escalate no reason":    {"POST", "/cases/" + c.ID + "/escalate", map[string]any{"team": "finance"}, 400, "invalid_reason"},
			"escalate bad team":     {"POST", "/cases/" + c.ID + "/escalate", map[string]any{"team": "support", "reason": "x"}, 400, "invalid_team"},
			"assign nothing":        {"POST", "/cases/" + c.ID + "/assign", map[string]any{}, 400, "invalid_request"},
			"assign bad team":       {"POST", "/cases/" + c.ID + "/assign", map[string]any{"team": "legal"}, 400, "invalid_team"},
			"patch nothing":         {"PATCH", "/cases/" + c.ID, map[string]any{}, 400, "invalid_request"},
			"patch bad priority":    {"PATCH", "/cases/" + c.ID, map[string]any{"priority": "p0"}, 400, "invalid_priority"},
			"patch state":           {"PATCH", "/cases/" + c.ID, map[string]any{"state": "resolved"}, 400, "malformed_json"},
			"empty note":            {"POST", "/cases/" + c.ID + "/notes", map[string]any{"body": " "}, 400, "invalid_body"},
		} {
			r := a.do(auth.RoleSupervisor, tc.method, tc.path, tc.body)
			if r.status != tc.status || r.errCode(t) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", name, r.status, r.body, tc.status, tc.code)
			}
		}
	})
}

func TestHTTPTransitions(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		c := a.create(auth.RoleAgent, inquiryBody("why was I charged twice?"))
		a.f.clock.Advance(time.Hour)
		r := a.want(a.do(auth.RoleAgent, "POST", "/cases/"+c.ID+"/transitions", map[string]any{"event": "start", "reason": "on it", "version": 1}), 200)
		got := decodeCase(t, r)
		if got.State != "in_progress" || got.Version != 2 || got.SLA.FirstRespondedAt == nil || !got.SLA.FirstRespondedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("after start: %+v", got)
		}
		// Stale version → 409.
		stale := a.do(auth.RoleAgent, "POST", "/cases/"+c.ID+"/transitions", map[string]any{"event": "resolve", "version": 1})
		if stale.status != 409 || stale.errCode(t) != "version_conflict" {
			t.Fatalf("stale: %d %s", stale.status, stale.body)
		}
		// Illegal → 409 with the allowed ones and the state.
		ill := a.do(auth.RoleAgent, "POST", "/cases/"+c.ID+"/transitions", map[string]any{"event": "customer_replied"})
		if ill.status != 409 || ill.errCode(t) != "illegal_transition" {
			t.Fatalf("illegal: %d %s", ill.status, ill.body)
		}
		det := ill.json(t)["error"].(map[string]any)["details"].(map[string]any)
		if det["state"] != "in_progress" || fmt.Sprint(det["allowed_transitions"]) != "[await_customer resolve]" {
			t.Fatalf("details %v", det)
		}
		// Without a version: applies to the current one.
		got = decodeCase(t, a.want(a.do(auth.RoleAgent, "POST", "/cases/"+c.ID+"/transitions", map[string]any{"event": "resolve"}), 200))
		if got.Status != StatusClosed || deref(got.Resolution) != "resolved" || !slices.Equal(got.AllowedTransitions, []string{"reopen"}) {
			t.Fatalf("resolved: %+v", got)
		}
		tl := a.f.timeline(c.ID)
		last := tl[len(tl)-1]
		if last.Actor != "alice" || last.ActorType != ActorPerson || deref(last.Transition) != "resolve" || last.Type != EntryTransition {
			t.Fatalf("timeline %+v", last)
		}
		var audits int64
		d.Gorm.Table("audit_log").Where("action = 'case.transition' AND case_id = ?", c.ID).Count(&audits)
		if audits != 2 {
			t.Fatalf("%d transition audits", audits)
		}

		// Dispute cases: an agent may not transition them (403), an analyst
		// may; provider-only events are refused with the allowed list.
		a.f.mustApply(change(evID(), "charge.dispute.created", t0, dispute("dp_h", "needs_response")))
		dc := a.f.only(KindDispute, "dp_h")
		if r := a.do(auth.RoleAgent, "POST", "/cases/"+dc.ID+"/transitions", map[string]any{"event": "start_evidence"}); r.status != 403 {
			t.Fatalf("agent on dispute: %d %s", r.status, r.body)
		}
		seen := decodeCase(t, a.want(a.do(auth.RoleAgent, "GET", "/cases/"+dc.ID, nil), 200))
		if len(seen.AllowedTransitions) != 0 {
			t.Fatalf("agent sees dispute transitions %v", seen.AllowedTransitions)
		}
		if r := a.do(auth.RoleAnalyst, "POST", "/cases/"+dc.ID+"/transitions", map[string]any{"event": "win"}); r.status != 409 || r.errCode(t) != "illegal_transition" {
			t.Fatalf("analyst firing a provider event: %d %s", r.status, r.body)
		}
		got = decodeCase(t, a.want(a.do(auth.RoleAnalyst, "POST", "/cases/"+dc.ID+"/transitions", map[string]any{"event": "start_evidence"}), 200))
		if got.State != "preparing_evidence" {
			t.Fatalf("analyst transition: %+v", got)
		}
	})
}

func TestHTTPAssignEscalatePatch(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		c := a.create(auth.RoleAgent, inquiryBody("refund?"))
		got := decodeCase(t, a.want(a.do(auth.RoleSupervisor, "POST", "/cases/"+c.ID+"/assign", map[string]any{"assignee": "bob", "team": "billing_support"}), 200))
		if deref(got.Assignee) != "bob" || got.Team != TeamBillingSupport || got.SLA.FirstRespondedAt != nil {
			t.Fatalf("assign: %+v", got)
		}
		got = decodeCase(t, a.want(a.do(auth.RoleSupervisor, "POST", "/cases/"+c.ID+"/assign", map[string]any{"assignee": nil}), 200))
		if got.Assignee != nil || got.Team != TeamBillingSupport {
			t.Fatalf("unassign: %+v", got)
		}
		a.want(a.do(auth.RoleSupervisor, "POST", "/cases/"+c.ID+"/assign", map[string]any{"assignee": "bob"}), 200)

		got = decodeCase(t, a.want(a.do(auth.RoleAgent, "POST", "/cases/"+c.ID+"/escalate", map[string]any{"team": "finance", "reason": "needs a credit note"}), 200))
		if got.Team != TeamFinance || got.Assignee != nil || got.EscalatedAt == nil || got.SLA.FirstRespondedAt == nil {
			t.Fatalf("escalate: %+v", got)
		}
		v := got.Version
		got = decodeCase(t, a.want(a.do(auth.RoleAgent, "PATCH", "/cases/"+c.ID, map[string]any{"priority": "urgent", "tags": []string{"Refund"}, "business_line": "live_gifts", "version": v}), 200))
		if got.Priority != PriorityUrgent || !slices.Equal(got.Tags, []string{"refund"}) || deref(got.BusinessLine) != "live_gifts" || got.Version != v+1 {
			t.Fatalf("patch: %+v", got)
		}
		if r := a.do(auth.RoleAgent, "PATCH", "/cases/"+c.ID, map[string]any{"priority": "low", "version": v}); r.status != 409 || r.errCode(t) != "version_conflict" {
			t.Fatalf("stale patch: %d %s", r.status, r.body)
		}
		got = decodeCase(t, a.want(a.do(auth.RoleAgent, "PATCH", "/cases/"+c.ID, map[string]any{"business_line": nil}), 200))
		if got.BusinessLine != nil || got.Priority != PriorityUrgent {
			t.Fatalf("clear business line: %+v", got)
		}
		types := []string{}
		for _, e := range a.f.timeline(c.ID) {
			types = append(types, e.Type)
		}
		want := []string{EntryOpened, EntryAssigned, EntryAssigned, EntryAssigned, EntryEscalated, EntryUpdated, EntryUpdated}
		if !slices.Equal(types, want) {
			t.Fatalf("timeline %v, want %v", types, want)
		}
		var rows []struct {
			Action string
			Before *string
			After  *string
		}
		d.Gorm.Table("audit_log").Where("case_id = ?", c.ID).Order("id").Find(&rows)
		actions := []string{}
		for _, r := range rows {
			actions = append(actions, r.Action)
			if r.Action != "case.create" && (r.Before == nil || r.After == nil) {
				t.Errorf("%s audit lacks before/after", r.Action)
			}
		}
		if !slices.Equal(actions, []string{"case.create", "case.assign", "case.assign", "case.assign", "case.escalate", "case.update", "case.update"}) {
			t.Fatalf("audit %v", actions)
		}
	})
}

func TestHTTPNotesRedacted(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		const pan = "4242424242424242"
		c := a.create(auth.RoleAgent, map[string]any{"kind": "refund_request", "channel": "chat",
			"title": "refund card 4242-4242-4242-4242", "description": "paid with " + pan, "links": map[string]any{"customer": "cus_n"}})
		if strings.Contains(c.Title, "4242-4242-4242-4242") || !strings.Contains(c.Description, "**** **** **** 4242") {
			t.Fatalf("create not redacted: %q %q", c.Title, c.Description)
		}
		a.f.clock.Advance(30 * time.Minute)
		r := a.want(a.do(auth.RoleAgent, "POST", "/cases/"+c.ID+"/notes", map[string]any{"body": "customer says card 4242 4242 4242 4242 exp 12/29"}), 201)
		var e TimelineEntry
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatal(err)
		}
		if deref(e.Body) != "customer says card **** **** **** 4242 exp 12/29" || e.Actor != "alice" || e.Type != EntryNote {
			t.Fatalf("note %+v", e)
		}
		got, _ := a.f.svc.Get(context.Background(), c.ID)
		if got.SLA.FirstRespondedAt == nil || !got.SLA.FirstRespondedAt.Equal(t0.Add(30*time.Minute)) {
			t.Fatalf("first response %v", got.SLA.FirstRespondedAt)
		}
		// The full number is nowhere in the database.
		for _, table := range []string{"cases", "case_timeline", "audit_log"} {
			var rows []map[string]any
			if err := d.Gorm.Table(table).Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				for col, v := range row {
					s := fmt.Sprint(v)
					if b, ok := v.([]byte); ok {
						s = string(b)
					}
					digits := strings.NewReplacer(" ", "", "-", "").Replace(s)
					if strings.Contains(digits, pan) {
						t.Fatalf("%s.%s holds the card number: %q", table, col, s)
					}
				}
			}
		}
		// Timeline endpoint: oldest first, with the documented fields.
		tl := a.want(a.do(auth.RoleAgent, "GET", "/cases/"+c.ID+"/timeline", nil), 200).json(t)["data"].([]any)
		if len(tl) != 2 {
			t.Fatalf("timeline %v", tl)
		}
		for _, k := range []string{"at", "actor", "type", "summary", "event_id"} {
			if _, ok := tl[1].(map[string]any)[k]; !ok {
				t.Fatalf("timeline entry lacks %s", k)
			}
		}
	})
}

func TestHTTPKinds(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		data := a.want(a.do(auth.RoleAgent, "GET", "/case-kinds", nil), 200).json(t)["data"].([]any)
		if len(data) != len(Kinds()) {
			t.Fatalf("%d kinds", len(data))
		}
		if m := data[0].(map[string]any); m["kind"] != "dispute" || !strings.HasPrefix(m["mermaid"].(string), "stateDiagram-v2") {
			t.Fatalf("first kind %v", m)
		}
	})
}

// seedList opens a varied set of cases for list tests.
func seedList(t *testing.T, a *api) []Case {
	t.Helper()
	ctx := context.Background()
	s := a.f.svc
	kinds := []string{"billing_inquiry", "refund_request", "cancellation"}
	lines := []string{"subscriptions", "live_gifts", ""}
	prios := []string{"low", "normal", "high", "urgent"}
	for i := 0; i < 30; i++ {
		body := map[string]any{"kind": kinds[i%3], "channel": "chat", "title": fmt.Sprintf("case %d", i),
			"priority": prios[i%4], "links": map[string]any{"customer": fmt.Sprintf("cus_l%d", i%4)}}
		switch kinds[i%3] {
		case "cancellation":
			body["links"].(map[string]any)["subscription"] = fmt.Sprintf("sub_l%d", i)
		case "refund_request":
			body["links"].(map[string]any)["charge"] = fmt.Sprintf("ch_l%d", i)
		}
		if lines[i%3] != "" {
			body["business_line"] = lines[i%3]
		}
		c := a.create(auth.RoleAgent, body)
		if i%5 == 0 {
			if _, err := s.Assign(ctx, principalOf("sam", auth.RoleSupervisor), c.ID, AssignRequest{Assignee: strp("bob")}); err != nil {
				t.Fatal(err)
			}
		}
		if i%7 == 0 {
			if _, err := s.Transition(ctx, principalOf("sam", auth.RoleSupervisor), c.ID, TransitionRequest{Event: map[string]string{
				"billing_inquiry": "resolve", "refund_request": "decline", "cancellation": "retain"}[kinds[i%3]]}); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 != 3 { // some share a created_at: the id breaks ties
			a.f.clock.Advance(time.Minute)
		}
	}
	a.f.mustApply(change(evID(), "charge.dispute.created", a.f.clock.Now(), dispute("dp_l", "needs_response")))
	var all []Case
	var rows []caseRow
	if err := a.f.db.Gorm.Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		all = append(all, r.toCase())
	}
	return all
}

// walk pages through GET /cases?query with limit n and returns the ids.
func (a *api) walk(query string, n int) []string {
	a.t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; pages < 100; pages++ {
		q := query + "&limit=" + fmt.Sprint(n)
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		m := a.want(a.do(auth.RoleSupervisor, "GET", "/cases?"+q, nil), 200).json(a.t)
		data := m["data"].([]any)
		if len(data) > n {
			a.t.Fatalf("page of %d > limit %d", len(data), n)
		}
		for _, d := range data {
			ids = append(ids, d.(map[string]any)["id"].(string))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			return ids
		}
		cursor = next
	}
	a.t.Fatal("pagination does not end")
	return nil
}

func TestHTTPListPaginationAndFilters(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		all := seedList(t, a)
		ids := func(cs []Case) []string {
			out := make([]string, len(cs))
			for i, c := range cs {
				out[i] = c.ID
			}
			return out
		}
		sorted := func(less func(x, y Case) bool) []string {
			cp := slices.Clone(all)
			sort.SliceStable(cp, func(i, j int) bool { return less(cp[i], cp[j]) })
			return ids(cp)
		}
		byCreated := func(x, y Case) bool {
			if !x.CreatedAt.Equal(y.CreatedAt) {
				return x.CreatedAt.Before(y.CreatedAt)
			}
			return x.ID < y.ID
		}
		for name, tc := range map[string]struct {
			query string
			want  []string
		}{
			"default newest first": {"x=", nil},
			"created_at":           {"sort=created_at", sorted(byCreated)},
			"priority": {"sort=priority", sorted(func(x, y Case) bool {
				if x.Priority.Rank() != y.Priority.Rank() {
					return x.Priority.Rank() > y.Priority.Rank()
				}
				return byCreated(x, y)
			})},
			"sla": {"sort=sla", sorted(func(x, y Case) bool {
				if !x.SLA.NextDue().Equal(y.SLA.NextDue()) {
					return x.SLA.NextDue().Before(y.SLA.NextDue())
				}
				return x.ID < y.ID
			})},
		} {
			want := tc.want
			if want == nil {
				want = sorted(func(x, y Case) bool { return byCreated(y, x) })
			}
			q := tc.query
			if q == "x=" {
				q = "sort=-created_at"
			}
			for _, n := range []int{1, 4, 7, 200} {
				if got := a.walk(q, n); !slices.Equal(got, want) {
					t.Fatalf("%s (limit %d):\n got %v\nwant %v", name, n, got, want)
				}
			}
		}
		// A cursor of one sort is refused by another.
		m := a.want(a.do(auth.RoleAgent, "GET", "/cases?sort=priority&limit=2", nil), 200).json(t)
		if r := a.do(auth.RoleAgent, "GET", "/cases?sort=sla&cursor="+url.QueryEscape(m["next_cursor"].(string)), nil); r.status != 400 {
			t.Fatalf("cross-sort cursor: %d", r.status)
		}

		filter := func(pred func(c Case) bool) []string {
			var out []Case
			for _, c := range all {
				if pred(c) {
					out = append(out, c)
				}
			}
			sort.Slice(out, func(i, j int) bool { return byCreated(out[j], out[i]) })
			return ids(out)
		}
		mid := all[0].CreatedAt.Add(10 * time.Minute)
		for q, pred := range map[string]func(c Case) bool{
			"kind=cancellation&status=open":       func(c Case) bool { return c.Kind == KindCancellation && c.Status == StatusOpen },
			"status=closed":                       func(c Case) bool { return c.Status == StatusClosed },
			"kind=billing_inquiry&state=resolved": func(c Case) bool { return c.Kind == KindBillingInquiry && c.State == "resolved" },
			"assignee=bob&status=open":            func(c Case) bool { return deref(c.Assignee) == "bob" && c.IsOpen() },
			"assignee=none&team=support":          func(c Case) bool { return c.Assignee == nil && c.Team == TeamSupport },
			"team=disputes":                       func(c Case) bool { return c.Team == TeamDisputes },
			"priority=urgent&kind=refund_request": func(c Case) bool { return c.Priority == PriorityUrgent && c.Kind == KindRefundRequest },
			"business_line=live_gifts":            func(c Case) bool { return deref(c.BusinessLine) == "live_gifts" },
			"customer=cus_l1":                     func(c Case) bool { return deref(c.Links.Customer) == "cus_l1" },
			"subject=sub_l2":                      func(c Case) bool { return deref(c.Links.Subscription) == "sub_l2" },
			"subject=ch_dp_l":                     func(c Case) bool { return deref(c.Links.Charge) == "ch_dp_l" },
			"subject=cus_l3&status=open":          func(c Case) bool { return deref(c.Links.Customer) == "cus_l3" && c.IsOpen() },
			"created_after=" + url.QueryEscape(mid.Format(time.RFC3339)) + "&kind=cancellation": func(c Case) bool {
				return c.CreatedAt.After(mid) && c.Kind == KindCancellation
			},
			"created_before=" + url.QueryEscape(mid.Format(time.RFC3339)): func(c Case) bool { return c.CreatedAt.Before(mid) },
		} {
			want := filter(pred)
			if len(want) == 0 {
				t.Fatalf("%s: the seed has no matching case; the test proves nothing", q)
			}
			if got := a.walk(q, 3); !slices.Equal(got, want) {
				t.Errorf("%s:\n got %v\nwant %v", q, got, want)
			}
		}

		// A state with a status it can never have matches nothing (and is
		// not even queried).
		if got := a.walk("status=open&state=resolved", 5); len(got) != 0 {
			t.Fatalf("open resolved cases: %v", got)
		}
		if got := a.walk("status=closed&state=resolved", 5); len(got) == 0 {
			t.Fatal("no closed resolved cases")
		}

		// SLA filters: move the clock so some first responses are due soon
		// and sweep so some are breached.
		if got := a.walk("sla=breached", 50); len(got) != 0 {
			t.Fatalf("breached before any sweep: %v", got)
		}
		a.f.clock.Advance(21 * time.Hour) // normal first response (24h) is now due within 4h
		soon := a.walk("sla=due_soon", 50)
		if len(soon) == 0 {
			t.Fatal("nothing due soon")
		}
		for _, id := range soon {
			c, _ := a.f.svc.Get(context.Background(), id)
			due := c.SLA.ResolutionDue
			if c.SLA.FirstRespondedAt == nil && c.SLA.FirstResponseDue.Before(due) {
				due = c.SLA.FirstResponseDue
			}
			if !c.IsOpen() || due.After(a.f.clock.Now().Add(4*time.Hour)) {
				t.Fatalf("%s is not due soon: %+v", id, c.SLA)
			}
		}
		if _, err := a.f.svc.SweepSLAs(context.Background()); err != nil {
			t.Fatal(err)
		}
		breached := a.walk("sla=breached&status=open", 50)
		if len(breached) == 0 {
			t.Fatal("nothing breached after the sweep")
		}
	})
}

// TestHTTPReopenConflict: reopening a case while another open case of the
// same kind holds its subject is refused with 409, not a second open case.
func TestHTTPReopenConflict(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		body := map[string]any{"kind": "refund_request", "channel": "email", "title": "refund", "links": map[string]any{"charge": "ch_rc"}}
		first := a.create(auth.RoleAgent, body)
		a.want(a.do(auth.RoleAgent, "POST", "/cases/"+first.ID+"/transitions", map[string]any{"event": "decline", "reason": "outside window"}), 200)
		second := a.create(auth.RoleAgent, body)
		r := a.do(auth.RoleAgent, "POST", "/cases/"+first.ID+"/transitions", map[string]any{"event": "reopen"})
		if r.status != 409 || r.errCode(t) != "open_case_exists" {
			t.Fatalf("reopen over an open case: %d %s", r.status, r.body)
		}
		got, _ := a.f.svc.Get(context.Background(), first.ID)
		wantState(t, got, "declined", StatusClosed)
		a.want(a.do(auth.RoleAgent, "POST", "/cases/"+second.ID+"/transitions", map[string]any{"event": "refund"}), 200)
		a.want(a.do(auth.RoleAgent, "POST", "/cases/"+first.ID+"/transitions", map[string]any{"event": "reopen"}), 200)
	})
}
