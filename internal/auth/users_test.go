package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
)

// api is the real Echo stack with the user and token endpoints, plus
// GET /api/v1/whoami answering the authenticated principal.
type api struct {
	t      *testing.T
	d      *db.DB
	srv    *httptest.Server
	audit  *audit.Log
	users  *auth.UserStore
	tokens *auth.TokenStore
	secret map[string]string // by who
}

func newAPI(t *testing.T, d *db.DB) *api {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	al := audit.New(d, clk)
	a := &api{t: t, d: d, audit: al, users: auth.NewUserStore(d, clk, al.ForAuth()),
		tokens: auth.NewTokenStore(d, clk).WithAuditor(al.ForAuth()), secret: map[string]string{}}
	e := httpx.New(httpx.Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New()})
	g := e.Group("/api/v1", auth.Middleware(a.tokens))
	auth.NewTokenHTTP(a.tokens).Register(g)
	auth.NewUserHTTP(a.users).Register(g)
	g.GET("/whoami", func(c echo.Context) error {
		p, _ := auth.FromContext(c.Request().Context())
		return c.JSON(http.StatusOK, map[string]any{"user_id": p.UserID, "name": p.Name, "role": p.Role})
	})
	a.srv = httptest.NewServer(apispectest.Handler(t, e, apispectest.Skip("/api/v1/whoami")))
	t.Cleanup(a.srv.Close)
	ctx := context.Background()
	for _, r := range auth.Roles() {
		u, err := a.users.Create(ctx, auth.NewUser{Email: string(r) + "@example.com", DisplayName: "The " + string(r), Role: r})
		if err != nil {
			t.Fatal(err)
		}
		if a.secret[string(r)], _, err = a.tokens.Issue(ctx, u.ID, "main", ""); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

type resp struct {
	status int
	body   map[string]any
	raw    string
}

func (r resp) code() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (a *api) call(method, path, who string, body any) resp {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, a.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if s := a.secret[who]; s != "" {
		req.Header.Set("Authorization", "Bearer "+s)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func id(v any) string { return fmt.Sprint(int64(v.(float64))) }

func TestUsersEndpointsByRole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		for _, who := range []string{"agent", "analyst", "supervisor"} {
			if r := a.call("GET", "/api/v1/users", who, nil); r.status != 403 {
				t.Fatalf("%s listing users: %d", who, r.status)
			}
			if r := a.call("POST", "/api/v1/users", who, map[string]any{"email": "x@example.com", "display_name": "X", "role": "admin"}); r.status != 403 {
				t.Fatalf("%s creating a user: %d", who, r.status)
			}
			if r := a.call("PATCH", "/api/v1/users/1", who, map[string]any{"role": "admin"}); r.status != 403 {
				t.Fatalf("%s patching a user: %d", who, r.status)
			}
			if r := a.call("POST", "/api/v1/tokens", who, map[string]any{"user_id": 1}); r.status != 403 {
				t.Fatalf("%s minting a token: %d", who, r.status)
			}
		}
		if r := a.call("GET", "/api/v1/users", "", nil); r.status != 401 {
			t.Fatalf("anonymous: %d", r.status)
		}
		r := a.call("GET", "/api/v1/users", "admin", nil)
		if r.status != 200 || len(r.body["data"].([]any)) != 4 {
			t.Fatalf("admin listing users: %d %s", r.status, r.raw)
		}
		r = a.call("POST", "/api/v1/users", "admin", map[string]any{"email": " Grace@Example.com ", "display_name": "Grace", "role": "analyst", "teams": []string{"disputes", "risk", "disputes"}})
		if r.status != 201 || r.body["email"] != "grace@example.com" || r.body["active"] != true || fmt.Sprint(r.body["teams"]) != "[disputes risk]" {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		grace := id(r.body["id"])
		if r := a.call("GET", "/api/v1/users/"+grace, "admin", nil); r.status != 200 || r.body["display_name"] != "Grace" {
			t.Fatalf("get: %d %s", r.status, r.raw)
		}
		for name, body := range map[string]map[string]any{
			"duplicate email": {"email": "grace@example.com", "display_name": "G2", "role": "agent"},
			"bad email":       {"email": "not an email", "display_name": "G2", "role": "agent"},
			"bad role":        {"email": "g2@example.com", "display_name": "G2", "role": "root"},
			"no name":         {"email": "g2@example.com", "display_name": " ", "role": "agent"},
			"bad team":        {"email": "g2@example.com", "display_name": "G2", "role": "agent", "teams": []string{"Risk Team"}},
		} {
			r := a.call("POST", "/api/v1/users", "admin", body)
			want := 400
			if name == "duplicate email" {
				want = 409
			}
			if r.status != want {
				t.Fatalf("%s: %d %s", name, r.status, r.raw)
			}
		}
		if r := a.call("GET", "/api/v1/users/999", "admin", nil); r.status != 404 {
			t.Fatalf("unknown user: %d", r.status)
		}
		// Pages and filters.
		var emails []string
		cursor := ""
		for pages := 0; ; pages++ {
			r := a.call("GET", "/api/v1/users?limit=2"+cursor, "admin", nil)
			if r.status != 200 || pages > 3 {
				t.Fatalf("page %d: %d %s", pages, r.status, r.raw)
			}
			for _, u := range r.body["data"].([]any) {
				emails = append(emails, u.(map[string]any)["email"].(string))
			}
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = "&cursor=" + next
		}
		if fmt.Sprint(emails) != "[agent@example.com analyst@example.com supervisor@example.com admin@example.com grace@example.com]" {
			t.Fatalf("paged over %v", emails)
		}
		if r := a.call("GET", "/api/v1/users?role=analyst", "admin", nil); len(r.body["data"].([]any)) != 2 {
			t.Fatalf("role filter: %s", r.raw)
		}
		if r := a.call("GET", "/api/v1/users?active=false", "admin", nil); r.status != 200 || len(r.body["data"].([]any)) != 0 {
			t.Fatalf("active filter: %d %s", r.status, r.raw)
		}
		for _, q := range []string{"active=maybe", "role=root", "cursor=nope", "limit=0"} {
			if r := a.call("GET", "/api/v1/users?"+q, "admin", nil); r.status != 400 {
				t.Fatalf("%s: %d", q, r.status)
			}
		}
	})
}

// Requests bind into request structs: fields that are not the client's to
// set are refused, not silently assigned.
func TestUsersRefuseMassAssignment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		for _, body := range []string{
			`{"id": 77, "email": "m@example.com", "display_name": "M", "role": "agent"}`,
			`{"email": "m@example.com", "display_name": "M", "role": "agent", "created_at": "2020-01-01T00:00:00Z"}`,
			`{"email": "m@example.com", "display_name": "M", "role": "agent", "active": false}`,
			`{"email": "m@example.com", "display_name": "M", "role": "agent", "deactivated_at": null}`,
		} {
			if r := a.call("POST", "/api/v1/users", "admin", body); r.status != 400 {
				t.Fatalf("create with %s: %d %s", body, r.status, r.raw)
			}
		}
		for _, body := range []string{`{"id": 99}`, `{"created_at": "2020-01-01T00:00:00Z"}`, `{"updated_at": "2020-01-01T00:00:00Z"}`} {
			if r := a.call("PATCH", "/api/v1/users/1", "admin", body); r.status != 400 {
				t.Fatalf("patch with %s: %d %s", body, r.status, r.raw)
			}
		}
		if r := a.call("POST", "/api/v1/tokens", "admin", `{"user_id": 1, "token_hash": "x"}`); r.status != 400 {
			t.Fatalf("token with its hash: %d", r.status)
		}
		if r := a.call("GET", "/api/v1/users/1", "admin", nil); r.body["email"] != "agent@example.com" || r.body["created_at"] == "2020-01-01T00:00:00Z" {
			t.Fatalf("user changed: %s", r.raw)
		}
		if r := a.call("GET", "/api/v1/users", "admin", nil); len(r.body["data"].([]any)) != 4 {
			t.Fatalf("a user was created: %s", r.raw)
		}
	})
}

func TestUserTokensAndDeactivation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		r := a.call("POST", "/api/v1/users", "admin", map[string]any{"email": "sam@example.com", "display_name": "Sam", "role": "supervisor", "teams": []string{"payments"}})
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		sam := id(r.body["id"])
		if r := a.call("POST", "/api/v1/tokens", "admin", map[string]any{"name": "no user", "role": "agent"}); r.status != 400 || r.code() != "user_required" {
			t.Fatalf("token without user: %d %s", r.status, r.raw)
		}
		if r := a.call("POST", "/api/v1/tokens", "admin", map[string]any{"user_id": r.body["id"], "name": "too high", "role": "admin"}); r.status != 400 || r.code() != "role_above_user" {
			t.Fatalf("token above its user: %d %s", r.status, r.raw)
		}
		if r := a.call("POST", "/api/v1/tokens", "admin", map[string]any{"user_id": 999, "name": "nobody"}); r.status != 404 {
			t.Fatalf("token for unknown user: %d %s", r.status, r.raw)
		}
		for _, name := range []string{"laptop", "phone"} {
			r := a.call("POST", "/api/v1/tokens", "admin", map[string]any{"user_id": json.Number(sam), "name": name})
			if r.status != 201 || r.body["role"] != "supervisor" || id(r.body["user_id"]) != sam {
				t.Fatalf("token %s: %d %s", name, r.status, r.raw)
			}
			a.secret["sam-"+name] = r.body["token"].(string)
		}
		r = a.call("POST", "/api/v1/tokens", "admin", map[string]any{"user_id": json.Number(sam), "name": "read only", "role": "agent"})
		if r.status != 201 {
			t.Fatalf("lower-role token: %d %s", r.status, r.raw)
		}
		a.secret["sam-agent"] = r.body["token"].(string)
		for _, who := range []string{"sam-laptop", "sam-phone"} {
			if r := a.call("GET", "/api/v1/whoami", who, nil); r.status != 200 || id(r.body["user_id"]) != sam || r.body["name"] != "Sam" || r.body["role"] != "supervisor" {
				t.Fatalf("%s: %d %s", who, r.status, r.raw)
			}
		}
		if r := a.call("GET", "/api/v1/whoami", "sam-agent", nil); r.body["role"] != "agent" {
			t.Fatalf("a token acts with its own lower role: %s", r.raw)
		}
		// Demoting the user demotes every token: none acts above its user.
		if r := a.call("PATCH", "/api/v1/users/"+sam, "admin", map[string]any{"role": "analyst", "teams": []string{}}); r.status != 200 || r.body["role"] != "analyst" || fmt.Sprint(r.body["teams"]) != "[]" {
			t.Fatalf("demote: %d %s", r.status, r.raw)
		}
		if r := a.call("GET", "/api/v1/whoami", "sam-laptop", nil); r.body["role"] != "analyst" {
			t.Fatalf("demoted user's token: %s", r.raw)
		}
		// Deactivation revokes every token at once.
		r = a.call("PATCH", "/api/v1/users/"+sam, "admin", map[string]any{"active": false})
		if r.status != 200 || r.body["active"] != false || r.body["deactivated_at"] == nil {
			t.Fatalf("deactivate: %d %s", r.status, r.raw)
		}
		for _, who := range []string{"sam-laptop", "sam-phone", "sam-agent"} {
			if r := a.call("GET", "/api/v1/whoami", who, nil); r.status != 401 {
				t.Fatalf("%s after deactivation: %d %s", who, r.status, r.raw)
			}
		}
		toks := a.call("GET", "/api/v1/tokens", "admin", nil)
		for _, tk := range toks.body["data"].([]any) {
			tk := tk.(map[string]any)
			if id(tk["user_id"]) == sam && tk["revoked_at"] == nil {
				t.Fatalf("token of a deactivated user not revoked: %v", tk)
			}
		}
		if r := a.call("POST", "/api/v1/tokens", "admin", map[string]any{"user_id": json.Number(sam), "name": "again"}); r.status != 400 || r.code() != "user_inactive" {
			t.Fatalf("token for a deactivated user: %d %s", r.status, r.raw)
		}
		// Reactivated, the old tokens stay revoked; a new one works.
		if r := a.call("PATCH", "/api/v1/users/"+sam, "admin", map[string]any{"active": true}); r.status != 200 || r.body["active"] != true {
			t.Fatalf("reactivate: %d %s", r.status, r.raw)
		}
		if r := a.call("GET", "/api/v1/whoami", "sam-laptop", nil); r.status != 401 {
			t.Fatalf("old token after reactivation: %d", r.status)
		}
		r = a.call("POST", "/api/v1/tokens", "admin", map[string]any{"user_id": json.Number(sam), "name": "new laptop"})
		if r.status != 201 {
			t.Fatalf("new token: %d %s", r.status, r.raw)
		}
		a.secret["sam-new"] = r.body["token"].(string)
		if r := a.call("GET", "/api/v1/whoami", "sam-new", nil); r.status != 200 {
			t.Fatalf("new token: %d", r.status)
		}
		// Revoking a token through the API: it stops working at once; a
		// second revocation finds no active token.
		r = a.call("POST", "/api/v1/tokens", "admin", map[string]any{"user_id": json.Number(sam), "name": "short lived"})
		if r.status != 201 {
			t.Fatalf("token to revoke: %d %s", r.status, r.raw)
		}
		a.secret["sam-short"] = r.body["token"].(string)
		short := id(r.body["id"])
		if r := a.call("DELETE", "/api/v1/tokens/"+short, "admin", nil); r.status != 204 {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}
		if r := a.call("GET", "/api/v1/whoami", "sam-short", nil); r.status != 401 {
			t.Fatalf("revoked token: %d", r.status)
		}
		if r := a.call("DELETE", "/api/v1/tokens/"+short, "admin", nil); r.status != 404 {
			t.Fatalf("second revocation: %d %s", r.status, r.raw)
		}
		// The last active admin can be neither deactivated nor demoted.
		admin := a.call("GET", "/api/v1/whoami", "admin", nil)
		adminID := id(admin.body["user_id"])
		if r := a.call("PATCH", "/api/v1/users/"+adminID, "admin", map[string]any{"active": false}); r.status != 409 || r.code() != "last_admin" {
			t.Fatalf("deactivating the last admin: %d %s", r.status, r.raw)
		}
		if r := a.call("PATCH", "/api/v1/users/"+adminID, "admin", map[string]any{"role": "agent"}); r.status != 409 || r.code() != "last_admin" {
			t.Fatalf("demoting the last admin: %d %s", r.status, r.raw)
		}
		if r := a.call("PATCH", "/api/v1/users/"+sam, "admin", map[string]any{"email": "admin@example.com"}); r.status != 409 || r.code() != "email_taken" {
			t.Fatalf("taking another's email: %d %s", r.status, r.raw)
		}

		// A patch that changes nothing is answered and not audited.
		countAudit := func() int {
			l, err := a.audit.List(context.Background(), audit.Filter{}, httpx.PageRequest{Limit: 200})
			if err != nil {
				t.Fatal(err)
			}
			return len(l.Data)
		}
		n := countAudit()
		if r := a.call("PATCH", "/api/v1/users/"+sam, "admin", map[string]any{}); r.status != 200 || r.body["display_name"] != "Sam" {
			t.Fatalf("empty patch: %d %s", r.status, r.raw)
		}
		if countAudit() != n {
			t.Fatal("an empty patch was audited")
		}

		// Every change is in the audit log with the admin as its actor.
		list, err := a.audit.List(context.Background(), audit.Filter{}, httpx.PageRequest{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, e := range list.Data {
			if e.ObjectType == "user" && e.ObjectID == sam || e.Action == "token.create" || e.Action == "token.revoke" {
				if e.ObjectType == "user" && e.ObjectID == sam && (e.Actor != "The admin" || e.ActorKind != auth.ActorUser || e.ActorUserID == nil || fmt.Sprint(*e.ActorUserID) != adminID) {
					t.Fatalf("audit entry %s: actor %s/%s/%v", e.Action, e.Actor, e.ActorKind, e.ActorUserID)
				}
				seen[e.Action]++
			}
		}
		if seen["user.update"] < 1 || seen["user.deactivate"] != 1 || seen["user.reactivate"] != 1 || seen["token.create"] < 4 {
			t.Fatalf("audit: %v", seen)
		}
	})
}
