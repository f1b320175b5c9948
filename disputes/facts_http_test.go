package disputes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/internal/pan"
)

type factsAPI struct {
	t      testing.TB
	e      *echo.Echo
	store  *disputes.FactStore
	audit  *audit.Log
	tokens map[auth.Role]string
}

func newFactsAPI(t testing.TB, d *db.DB) *factsAPI {
	t.Helper()
	clk := clock.NewManual(factsNow)
	log := audit.New(d, clk)
	s := disputes.NewFactStore(d, clk).WithAudit(log)
	ts := auth.NewTokenStore(d, clk)
	e := httpx.New(httpx.Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New()})
	s.Register(e.Group("/api/v1", httpx.BodyLimit(4<<20), auth.Middleware(ts)))
	a := &factsAPI{t: t, e: e, store: s, audit: log, tokens: map[auth.Role]string{}}
	for _, role := range auth.Roles() {
		tok, _, err := ts.Create(context.Background(), "tok_"+string(role), role)
		if err != nil {
			t.Fatal(err)
		}
		a.tokens[role] = tok
	}
	return a
}

func (a *factsAPI) do(role auth.Role, method, path string, body any) (int, []byte) {
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
	req.Header.Set("Content-Type", "application/json")
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+a.tokens[role])
	}
	rec := httptest.NewRecorder()
	apispectest.Handler(a.t, a.e).ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func errCode(t testing.TB, body []byte) string {
	t.Helper()
	var b httpx.ErrorBody
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("not an error body: %s", body)
	}
	return b.Error.Code
}

func loginBatch(n int) map[string]any {
	facts := make([]map[string]any, n)
	for i := range facts {
		facts[i] = login(fmt.Sprint("f_", i), factsNow.Add(-time.Duration(i+1)*time.Second))
	}
	return map[string]any{"facts": facts}
}

func TestFactsHTTP(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		a := newFactsAPI(t, d)
		at := factsNow.Add(-time.Hour).Format(time.RFC3339)
		body := map[string]any{"facts": []any{
			map[string]any{"id": "f_81", "kind": "login", "occurred_at": at, "ip": "203.0.113.7", "device_id": "dev_9", "user_agent": "Mozilla/5.0"},
			map[string]any{"id": "bad", "kind": "teleport", "occurred_at": at},
			42,
			map[string]any{"id": "c1", "kind": "consent", "occurred_at": at, "policy": map[string]any{"key": "terms", "version": "3"}, "data": map[string]any{"checkbox": "I agree", "card": "4242424242424242"}},
		}}
		// Who may write: analysts, supervisors, admins (the integration token).
		for role, want := range map[auth.Role]int{"": 401, auth.RoleAgent: 403} {
			if st, b := a.do(role, "POST", "/customers/cus_A/facts", body); st != want {
				t.Fatalf("%q: %d %s", role, st, b)
			}
		}
		st, b := a.do(auth.RoleAnalyst, "POST", "/customers/cus_A/facts", body)
		if st != 200 {
			t.Fatalf("analyst: %d %s", st, b)
		}
		var res disputes.PutResult
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		if res.Accepted != 2 || res.Duplicates != 0 || len(res.Rejected) != 2 || res.Rejected[0].Index != 1 || res.Rejected[0].Error.Code != "fact_kind_unknown" ||
			res.Rejected[1].Index != 2 || res.Rejected[1].Error.Code != "fact_malformed" {
			t.Fatalf("result %s", b)
		}
		for _, role := range []auth.Role{auth.RoleSupervisor, auth.RoleAdmin} {
			st, b := a.do(role, "POST", "/customers/cus_A/facts", body)
			if st != 200 || !strings.Contains(string(b), `"accepted":0,"duplicates":2`) {
				t.Fatalf("%s resend: %d %s", role, st, b)
			}
		}
		// One audit entry per batch, with the counts.
		entries, err := a.audit.List(context.Background(), audit.Filter{Action: "facts.put"}, httpx.PageRequest{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries.Data) != 3 || entries.Data[2].Detail != "4 facts: 2 accepted, 0 duplicates, 2 rejected" || entries.Data[2].Actor != "tok_analyst" || entries.Data[2].ObjectID != "cus_A" {
			t.Fatalf("audit %+v", entries.Data)
		}

		// Who may read.
		for role, want := range map[auth.Role]int{"": 401, auth.RoleAgent: 403, auth.RoleAnalyst: 200, auth.RoleSupervisor: 200, auth.RoleAdmin: 200} {
			if st, b := a.do(role, "GET", "/customers/cus_A/facts", nil); st != want {
				t.Fatalf("read as %q: %d %s", role, st, b)
			}
		}
		st, b = a.do(auth.RoleAnalyst, "GET", "/customers/cus_A/facts?kind=consent,notice&kind=login&from="+at+"&limit=5", nil)
		var list struct {
			Facts   []disputes.Fact `json:"facts"`
			HasMore bool            `json:"has_more"`
		}
		if st != 200 || json.Unmarshal(b, &list) != nil || len(list.Facts) != 2 || list.Facts[0].ID != "c1" || list.Facts[1].ID != "f_81" || list.HasMore || pan.Contains(string(b)) {
			t.Fatalf("list: %d %s", st, b)
		}
		st, b = a.do(auth.RoleAnalyst, "GET", "/customers/cus_A/facts?limit=1", nil)
		if st != 200 || json.Unmarshal(b, &list) != nil || len(list.Facts) != 1 || !list.HasMore {
			t.Fatalf("limit=1: %d %s", st, b)
		}
		st, b = a.do(auth.RoleAnalyst, "GET", "/customers/cus_A/facts?to="+at, nil)
		if st != 200 || !strings.Contains(string(b), `"facts":[]`) {
			t.Fatalf("to exclusive: %d %s", st, b)
		}
		st, b = a.do(auth.RoleAnalyst, "GET", "/customers/cus_B/facts", nil)
		if st != 200 || !strings.Contains(string(b), `"facts":[]`) {
			t.Fatalf("other customer: %d %s", st, b)
		}
		for _, q := range []string{"kind=teleport", "from=yesterday", "to=2026-13-01T00:00:00Z", "limit=0", "limit=10001", "limit=x", "colour=red", "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "limit=1&limit=2"} {
			if st, b := a.do(auth.RoleAnalyst, "GET", "/customers/cus_A/facts?"+q, nil); st != 400 || errCode(t, b) != "invalid_parameter" {
				t.Errorf("%s: %d %s", q, st, b)
			}
		}
	})
}

func TestFactsHTTPLimits(t *testing.T) {
	t.Parallel()
	a := newFactsAPI(t, dbtest.Open(t, db.SQLite))
	st, b := a.do(auth.RoleAnalyst, "POST", "/customers/cus_A/facts", loginBatch(1000))
	if st != 200 || !strings.Contains(string(b), `"accepted":1000`) {
		t.Fatalf("1,000 facts: %d %.300s", st, b)
	}
	st, b = a.do(auth.RoleAnalyst, "POST", "/customers/cus_B/facts", loginBatch(1001))
	if st != 422 || errCode(t, b) != "too_many_facts" || !strings.Contains(string(b), "1000") {
		t.Fatalf("1,001 facts: %d %s", st, b)
	}
	if fs, _ := a.store.Facts(context.Background(), "cus_B", disputes.FactQuery{}); len(fs) != 0 {
		t.Fatalf("a refused batch kept %d facts", len(fs))
	}
	for _, body := range []string{`{"facts": [`, `not json`, `{"facts": {}}`, `{"fact": []}`, `{}`, ``, `{"facts": []} x`} {
		if st, b := a.do(auth.RoleAnalyst, "POST", "/customers/cus_A/facts", body); st != 400 {
			t.Errorf("%q: %d %s", body, st, b)
		}
	}
	if st, b := a.do(auth.RoleAnalyst, "POST", "/customers/cus_A/facts", `{"facts": []}`); st != 200 || string(bytes.TrimSpace(b)) != `{"accepted":0,"duplicates":0,"rejected":[]}` {
		t.Errorf("empty batch: %d %s", st, b)
	}
}

func TestPoliciesHTTP(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		a := newFactsAPI(t, d)
		doc := map[string]any{"key": "terms", "version": "3", "title": "Terms of Service", "body": "By subscribing you agree…", "effective_at": "2026-01-01T00:00:00Z"}
		for role, want := range map[auth.Role]int{"": 401, auth.RoleAgent: 403, auth.RoleAnalyst: 403} {
			if st, b := a.do(role, "POST", "/policies", doc); st != want {
				t.Fatalf("%q: %d %s", role, st, b)
			}
		}
		if st, b := a.do(auth.RoleSupervisor, "POST", "/policies", doc); st != 201 || !strings.Contains(string(b), `"created_by":"tok_supervisor"`) {
			t.Fatalf("create: %d %s", st, b)
		}
		if st, b := a.do(auth.RoleAdmin, "POST", "/policies", doc); st != 200 || !strings.Contains(string(b), `"created_by":"tok_supervisor"`) {
			t.Fatalf("same again: %d %s", st, b)
		}
		doc["body"] = "changed"
		if st, b := a.do(auth.RoleAdmin, "POST", "/policies", doc); st != 409 || errCode(t, b) != "policy_version_exists" {
			t.Fatalf("changed: %d %s", st, b)
		}
		for _, bad := range []string{`{"key":"terms"}`, `{"key":"terms","version":"4","title":"t","body":"b","effective_at":"soon"}`, `{"key":"terms","version":"4","title":"t","body":"b","effective_at":"2026-01-01T00:00:00Z","extra":1}`} {
			if st, b := a.do(auth.RoleAdmin, "POST", "/policies", bad); st != 400 {
				t.Errorf("%s: %d %s", bad, st, b)
			}
		}
		doc2 := map[string]any{"key": "cancellation", "version": "2", "title": "Cancellation policy", "body": "Cancel any time.", "effective_at": "2026-01-01T00:00:00Z"}
		if st, b := a.do(auth.RoleAdmin, "POST", "/policies", doc2); st != 201 {
			t.Fatalf("create 2: %d %s", st, b)
		}
		entries, err := a.audit.List(context.Background(), audit.Filter{Action: "policy_document.create"}, httpx.PageRequest{Limit: 10})
		if err != nil || len(entries.Data) != 2 || entries.Data[1].ObjectID != "terms/3" {
			t.Fatalf("audit %+v %v", entries.Data, err)
		}
		st, b := a.do(auth.RoleAgent, "GET", "/policies", nil)
		if st != 200 || !strings.Contains(string(b), `"key":"cancellation"`) || !strings.Contains(string(b), `"key":"terms"`) {
			t.Fatalf("list: %d %s", st, b)
		}
		st, b = a.do(auth.RoleAnalyst, "GET", "/policies?key=terms", nil)
		if st != 200 || strings.Contains(string(b), "cancellation") {
			t.Fatalf("list terms: %d %s", st, b)
		}
		st, b = a.do(auth.RoleAnalyst, "GET", "/policies/terms/3", nil)
		if st != 200 || !strings.Contains(string(b), `"title":"Terms of Service"`) {
			t.Fatalf("get: %d %s", st, b)
		}
		if st, b := a.do(auth.RoleAnalyst, "GET", "/policies/terms/9", nil); st != 404 {
			t.Fatalf("get unknown: %d %s", st, b)
		}
	})
}
