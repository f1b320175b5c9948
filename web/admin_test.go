package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/notifications"
	"github.com/recourse-hq/recourse/webhooks"
)

// adminEnv is a console with every admin service, audited as the API is.
type adminEnv struct {
	*env
	d      *db.DB
	tokens *auth.TokenStore
	inbox  *webhooks.Inbox
	audit  *audit.Log
	woken  *atomic.Int32
	// notices are the notification deliveries (the notifications screen).
	notices *notifications.Store
}

const linkTTL = 2 * time.Hour

func newAdminEnv(t *testing.T, d *db.DB) *adminEnv {
	t.Helper()
	a := &adminEnv{d: d, woken: &atomic.Int32{}}
	en := newEnvWith(t, d, func(o *Options) {
		a.audit = audit.New(d, o.Clock)
		o.Users = auth.NewUserStore(d, o.Clock, a.audit.ForAuth()).WithKnownTeams([]string{"disputes", "risk", "support"})
		a.tokens = auth.NewTokenStore(d, o.Clock).WithAuditor(a.audit.ForAuth())
		a.inbox = webhooks.NewInbox(d).WithAudit(a.audit)
		o.Tokens, o.Inbox, o.Audit = a.tokens, a.inbox, a.audit
		a.notices = notifications.NewStore(d, a.audit)
		o.Notifications = a.notices
		o.Replayed = func() { a.woken.Add(1) }
		o.Policy = struct {
			Actions actions.Policy  `json:"actions"`
			SLA     cases.SLAPolicy `json:"sla"`
		}{actions.DefaultPolicy(), cases.DefaultSLAPolicy()}
		o.PasswordLinkTTL = linkTTL
		o.PublicURL = "https://recourse.example.com/"
	})
	a.env = en
	return a
}

// signedIn returns a browser signed in as a new user with role.
func (a *adminEnv) signedIn(role auth.Role) (*browser, auth.Principal) {
	a.t.Helper()
	email := string(role) + "@example.com"
	p := a.user(email, "The "+string(role), role)
	b := a.browser()
	b.mustLogin(email)
	return b, p
}

// csrfFor returns the session's CSRF token from a page b may open.
func (b *browser) csrf() string {
	b.en.t.Helper()
	return csrfOf(b.en.t, b.get("/"))
}

func (a *adminEnv) deadEvent(id, marker string) {
	a.t.Helper()
	ctx := context.Background()
	now := a.clock.Now()
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":"invoice.payment_failed","data":{"object":{"id":"in_1","note":%q}}}`, id, marker)
	if _, err := a.inbox.InsertBatch(ctx, []webhooks.Event{{ID: id, Type: "invoice.payment_failed", Created: now, ObjectType: "invoice", ObjectID: "in_1", Payload: []byte(payload)}}, now); err != nil {
		a.t.Fatal(err)
	}
	evs, err := a.inbox.Claim(ctx, "test-worker", 10, now, time.Minute)
	if err != nil || len(evs) != 1 {
		a.t.Fatalf("claim: %v %d", err, len(evs))
	}
	if err := a.inbox.Fail(ctx, evs[0], "test-worker", "handler exploded: no such invoice", now, now, true); err != nil {
		a.t.Fatal(err)
	}
}

func codeOf(p resp) string {
	m := regexp.MustCompile(`data-code="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestAdminScreensByRole: every admin screen and POST answers each role
// exactly as the API's permission table does; a refused role gets the 403
// page with none of the screen's data.
func TestAdminScreensByRole(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAdminEnv(t, d)
		ctx := context.Background()
		target, err := a.users.Create(ctx, auth.NewUser{Email: "secret.person@example.com", DisplayName: "Secret Person", Role: auth.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.tokens.Issue(ctx, target.ID, "hidden-token-label", ""); err != nil {
			t.Fatal(err)
		}
		a.deadEvent("evt_hidden_1", "PAYLOAD_MARKER")
		a.delivery("ntf_hidden", "failed", "ops-hook", "ntf-hidden-marker: HTTP 500")
		if err := a.audit.Record(ctx, nil, audit.Entry{Action: "case.note", Actor: "Auditor Marker", ActorKind: auth.ActorUser, Detail: "audit-detail-marker"}); err != nil {
			t.Fatal(err)
		}
		screens := []struct {
			path   string
			perm   auth.Permission
			marker string // data only the allowed see
		}{
			{"/admin/users", auth.PermUsersManage, "secret.person@example.com"},
			{"/admin/tokens", auth.PermTokensManage, "hidden-token-label"},
			{"/admin/webhooks", auth.PermWebhookEventsRead, "evt_hidden_1"},
			{"/admin/webhooks?status=dead", auth.PermWebhookEventsRead, "evt_hidden_1"},
			{"/admin/webhooks/evt_hidden_1", auth.PermWebhookEventsRead, "handler exploded"},
			{"/admin/policy", auth.PermPolicyRead, "agent limit"},
			{"/admin/audit", auth.PermAuditRead, "audit-detail-marker"},
			{"/admin/notifications", auth.PermNotificationsRead, "ntf-hidden-marker"},
			{"/admin/notifications?status=failed", auth.PermNotificationsRead, "ntf-hidden-marker"},
			{"/export/audit.csv", auth.PermAuditRead, "audit-detail-marker"},
			{"/export/webhook-events.csv?status=dead", auth.PermWebhookEventsRead, "evt_hidden_1"},
		}
		posts := []struct {
			path string
			perm auth.Permission
			form url.Values
		}{
			{"/admin/users", auth.PermUsersManage, url.Values{"email": {"new@example.com"}, "name": {"New"}, "role": {"agent"}}},
			{fmt.Sprintf("/admin/users/%d/role", target.ID), auth.PermUsersManage, url.Values{"role": {"admin"}}},
			{fmt.Sprintf("/admin/users/%d/active", target.ID), auth.PermUsersManage, url.Values{"active": {"false"}}},
			{fmt.Sprintf("/admin/users/%d/link", target.ID), auth.PermUsersManage, url.Values{}},
			{fmt.Sprintf("/admin/users/%d/scope", target.ID), auth.PermUsersManage, url.Values{"teams": {"disputes"}}},
			{"/admin/tokens", auth.PermTokensManage, url.Values{"user_id": {fmt.Sprint(target.ID)}, "name": {"x"}}},
			{"/admin/tokens/1/revoke", auth.PermTokensManage, url.Values{}},
			{"/admin/webhooks/evt_hidden_1/replay", auth.PermWebhookEventsReplay, url.Values{}},
			{"/admin/notifications/ntf_hidden/replay", auth.PermNotificationsReplay, url.Values{}},
		}
		for _, role := range auth.Roles() {
			b, _ := a.signedIn(role)
			home := b.get("/")
			if !strings.Contains(home.body, `href="/admin"`) {
				t.Fatalf("%s: no Admin link in the nav (policy:read is every role's)", role)
			}
			for _, s := range screens {
				p := b.get(s.path)
				if auth.Allowed(role, s.perm) {
					want(t, p, http.StatusOK, s.marker)
					continue
				}
				want(t, p, http.StatusForbidden, string(s.perm))
				for _, m := range []string{"secret.person", "hidden-token-label", "evt_hidden_1", "handler exploded", "audit-detail-marker", "PAYLOAD_MARKER", "ntf-hidden-marker"} {
					if strings.Contains(p.body, m) {
						t.Fatalf("%s GET %s: 403 page shows %q", role, s.path, m)
					}
				}
			}
			idx := b.get("/admin")
			want(t, idx, http.StatusOK, "Policy in force")
			if strings.Contains(idx.body, `href="/admin/users"`) != auth.Allowed(role, auth.PermUsersManage) {
				t.Fatalf("%s: admin index offers Users wrongly", role)
			}
			csrf := b.csrf()
			for _, s := range posts {
				if auth.Allowed(role, s.perm) {
					continue
				}
				f := url.Values{"csrf": {csrf}}
				for k, v := range s.form {
					f[k] = v
				}
				want(t, b.post(s.path, f), http.StatusForbidden, string(s.perm))
			}
		}
		// Nothing a refused POST asked for happened.
		u, err := a.users.Get(ctx, target.ID)
		if err != nil || u.Role != auth.RoleAgent || !u.Active {
			t.Fatalf("target after refused posts: %+v %v", u, err)
		}
		if _, err := a.users.ByEmail(ctx, "new@example.com"); err == nil {
			t.Fatal("a refused POST created a user")
		}
		if rec, _ := a.inbox.Get(ctx, "evt_hidden_1"); rec.Status != webhooks.StatusDead {
			t.Fatalf("a refused replay moved the event to %s", rec.Status)
		}
		if st := a.deliveryStatus("ntf_hidden"); st != "failed" {
			t.Fatalf("a refused replay moved the notification to %s", st)
		}
		var links int64
		d.Gorm.Table("password_links").Count(&links)
		if links != 0 {
			t.Fatal("a refused POST made a password link")
		}
	})
}

// TestAdminUsers: create, change role, deactivate and reactivate through the
// UserStore, with the API's rules and codes shown inline; no CSRF, no change.
func TestAdminUsers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAdminEnv(t, d)
		ctx := context.Background()
		b, me := a.signedIn(auth.RoleAdmin)
		page := b.get("/admin/users")
		want(t, page, http.StatusOK, `id="create-user"`, "admin@example.com", "(you)")
		csrf := csrfOf(t, page)

		// No CSRF token: 403, nothing created.
		want(t, b.post("/admin/users", url.Values{"email": {"ada@example.com"}, "name": {"Ada"}, "role": {"agent"}}), http.StatusForbidden)
		if _, err := a.users.ByEmail(ctx, "ada@example.com"); err == nil {
			t.Fatal("created without CSRF")
		}
		p := b.post("/admin/users", url.Values{"csrf": {csrf}, "email": {"ada@example.com"}, "name": {"Ada Lovelace"}, "role": {"analyst"}})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/admin/users?done=created" {
			t.Fatalf("create: %d %s", p.status, p.body)
		}
		want(t, b.get("/admin/users?done=created"), http.StatusOK, "User created", "ada@example.com", "Ada Lovelace", "analyst")
		ada, err := a.users.ByEmail(ctx, "ada@example.com")
		if err != nil || ada.Role != auth.RoleAnalyst {
			t.Fatalf("created: %+v %v", ada, err)
		}
		// A bad email: 400 inline with the API's code, what was typed kept.
		p = b.post("/admin/users", url.Values{"csrf": {csrf}, "email": {"not an email"}, "name": {"Bob"}, "role": {"agent"}})
		want(t, p, http.StatusBadRequest, `value="Bob"`)
		if codeOf(p) != "invalid_email" {
			t.Fatalf("code %q", codeOf(p))
		}
		p = b.post("/admin/users", url.Values{"csrf": {csrf}, "email": {"ada@example.com"}, "name": {"Ada"}, "role": {"agent"}})
		if p.status != http.StatusConflict || codeOf(p) != "email_taken" {
			t.Fatalf("duplicate: %d %q", p.status, codeOf(p))
		}

		// Change role.
		p = b.post(fmt.Sprintf("/admin/users/%d/role", ada.ID), url.Values{"csrf": {csrf}, "role": {"supervisor"}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("role: %d %s", p.status, p.body)
		}
		if u, _ := a.users.Get(ctx, ada.ID); u.Role != auth.RoleSupervisor {
			t.Fatalf("role now %s", u.Role)
		}
		// The last active admin (me) cannot be demoted, nor deactivate themselves.
		p = b.post(fmt.Sprintf("/admin/users/%d/role", me.UserID), url.Values{"csrf": {csrf}, "role": {"agent"}})
		if p.status != http.StatusConflict || codeOf(p) != "last_admin" {
			t.Fatalf("demote last admin: %d %q", p.status, codeOf(p))
		}
		if _, err := a.users.Update(ctx, ada.ID, auth.UserPatch{Role: ptrRole(auth.RoleAdmin)}); err != nil {
			t.Fatal(err)
		}
		p = b.post(fmt.Sprintf("/admin/users/%d/active", me.UserID), url.Values{"csrf": {csrf}, "active": {"false"}})
		if p.status != http.StatusConflict || codeOf(p) != "self_deactivate" {
			t.Fatalf("deactivate self: %d %q", p.status, codeOf(p))
		}
		// Deactivate and reactivate another user; their session ends.
		ab := a.browser()
		if err := a.users.SetPassword(ctx, ada.ID, password); err != nil {
			t.Fatal(err)
		}
		ab.mustLogin("ada@example.com")
		p = b.post(fmt.Sprintf("/admin/users/%d/active", ada.ID), url.Values{"csrf": {csrf}, "active": {"false"}})
		if p.status != http.StatusSeeOther || !strings.HasSuffix(p.header.Get("Location"), "done=deactivated") {
			t.Fatalf("deactivate: %d %s", p.status, p.body)
		}
		if u, _ := a.users.Get(ctx, ada.ID); u.Active {
			t.Fatal("still active")
		}
		if q := ab.get("/"); q.status != http.StatusSeeOther {
			t.Fatalf("deactivated user's session still works: %d", q.status)
		}
		want(t, b.get("/admin/users?done=deactivated"), http.StatusOK, "deactivated", "Reactivate")
		p = b.post(fmt.Sprintf("/admin/users/%d/active", ada.ID), url.Values{"csrf": {csrf}, "active": {"true"}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("reactivate: %d", p.status)
		}
		if u, _ := a.users.Get(ctx, ada.ID); !u.Active {
			t.Fatal("not reactivated")
		}
		// Scope: known teams only (the API's code), shown on the page, and
		// both fields empty clear it.
		p = b.post(fmt.Sprintf("/admin/users/%d/scope", ada.ID), url.Values{"csrf": {csrf}, "teams": {"nope"}, "business_lines": {""}})
		if p.status != http.StatusBadRequest || codeOf(p) != "invalid_scope" {
			t.Fatalf("unknown team: %d %q", p.status, codeOf(p))
		}
		p = b.post(fmt.Sprintf("/admin/users/%d/scope", ada.ID), url.Values{"csrf": {csrf}, "teams": {"risk, disputes"}, "business_lines": {"emea"}})
		if p.status != http.StatusSeeOther || !strings.HasSuffix(p.header.Get("Location"), "done=scope") {
			t.Fatalf("scope: %d %s", p.status, p.body)
		}
		if u, _ := a.users.Get(ctx, ada.ID); u.Scope.String() != "teams=disputes,risk business_lines=emea" {
			t.Fatalf("scope now %s", u.Scope)
		}
		want(t, b.get("/admin/users?done=scope"), http.StatusOK, "Scope changed", `value="disputes,risk"`, `value="emea"`)
		p = b.post(fmt.Sprintf("/admin/users/%d/scope", ada.ID), url.Values{"csrf": {csrf}, "teams": {""}, "business_lines": {""}})
		if u, _ := a.users.Get(ctx, ada.ID); p.status != http.StatusSeeOther || !u.Scope.Unrestricted() {
			t.Fatalf("clear scope: %d %s", p.status, u.Scope)
		}
		// Last sign-in is shown where a session is on record.
		want(t, b.get("/admin/users"), http.StatusOK, `<time datetime="2026-11-20T09:00:00Z">`)
	})
}

func ptrRole(r auth.Role) *auth.Role { return &r }

var secretPattern = regexp.MustCompile(`rct_[0-9a-f]{64}`)

// TestAdminTokens: the secret is on the creation response only; the list
// never has it; revoking stops it.
func TestAdminTokens(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAdminEnv(t, d)
		ctx := context.Background()
		b, _ := a.signedIn(auth.RoleAdmin)
		page := b.get("/admin/tokens")
		want(t, page, http.StatusOK, "No API tokens yet", `id="create-token"`)
		csrf := csrfOf(t, page)
		ag := a.user("agent@example.com", "Agent Smith", auth.RoleAgent)

		want(t, b.post("/admin/tokens", url.Values{"user_id": {fmt.Sprint(ag.UserID)}, "name": {"ci"}}), http.StatusForbidden)
		// A role above the user's: the API's refusal, inline.
		p := b.post("/admin/tokens", url.Values{"csrf": {csrf}, "user_id": {fmt.Sprint(ag.UserID)}, "name": {"ci"}, "role": {"admin"}})
		if p.status != http.StatusBadRequest || codeOf(p) != "role_above_user" {
			t.Fatalf("role above user: %d %q", p.status, codeOf(p))
		}
		p = b.post("/admin/tokens", url.Values{"csrf": {csrf}, "user_id": {fmt.Sprint(ag.UserID)}, "name": {"billing integration"}})
		want(t, p, http.StatusCreated, "shown on this page only", "billing integration")
		secret := secretPattern.FindString(p.body)
		if secret == "" {
			t.Fatalf("no secret on the result page:\n%s", p.body)
		}
		who, err := a.tokens.Authenticate(ctx, secret)
		if err != nil || who.UserID != ag.UserID {
			t.Fatalf("the shown secret: %+v %v", who, err)
		}
		list := b.get("/admin/tokens")
		want(t, list, http.StatusOK, "billing integration", "Agent Smith", secret[:10])
		if strings.Contains(list.body, secret) || secretPattern.MatchString(list.body) {
			t.Fatal("the token list shows a secret")
		}
		toks, _ := a.tokens.List(ctx)
		p = b.post(fmt.Sprintf("/admin/tokens/%d/revoke", toks[0].ID), url.Values{"csrf": {csrf}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d %s", p.status, p.body)
		}
		want(t, b.get("/admin/tokens?done=revoked"), http.StatusOK, "Token revoked", "revoked 2026")
		if _, err := a.tokens.Authenticate(ctx, secret); err == nil {
			t.Fatal("revoked token still works")
		}
		p = b.post(fmt.Sprintf("/admin/tokens/%d/revoke", toks[0].ID), url.Values{"csrf": {csrf}})
		if p.status != http.StatusNotFound || codeOf(p) == "" {
			t.Fatalf("revoke twice: %d %q", p.status, codeOf(p))
		}
	})
}

// TestAdminWebhooks: the inbox by status, dead letters with attempts and
// last error, detail without payload, and replay through Inbox.Replay.
func TestAdminWebhooks(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAdminEnv(t, d)
		ctx := context.Background()
		b, _ := a.signedIn(auth.RoleAdmin)
		want(t, b.get("/admin/webhooks"), http.StatusOK, "No webhook events have arrived yet")
		want(t, b.get("/admin/webhooks?status=dead"), http.StatusOK, "No dead letters")
		a.deadEvent("evt_dead_1", "PAYLOAD_MARKER")
		if _, err := a.inbox.InsertBatch(ctx, []webhooks.Event{{ID: "evt_pending_1", Type: "customer.created", Created: a.clock.Now(), Payload: []byte(`{}`)}}, a.clock.Now()); err != nil {
			t.Fatal(err)
		}
		all := b.get("/admin/webhooks")
		want(t, all, http.StatusOK, "evt_dead_1", "evt_pending_1")
		dead := b.get("/admin/webhooks?status=dead")
		want(t, dead, http.StatusOK, "evt_dead_1", "dead letter", "handler exploded: no such invoice", `<td class="num">1</td>`)
		if strings.Contains(dead.body, "evt_pending_1") {
			t.Fatal("the dead-letter filter shows a pending event")
		}
		bad := b.get("/admin/webhooks?status=bogus")
		if bad.status != http.StatusBadRequest || codeOf(bad) == "" {
			t.Fatalf("bad status: %d %q", bad.status, codeOf(bad))
		}
		det := b.get("/admin/webhooks/evt_dead_1")
		want(t, det, http.StatusOK, "invoice.payment_failed", "handler exploded", `id="replay"`)
		if strings.Contains(det.body, "PAYLOAD_MARKER") {
			t.Fatal("the detail page shows the raw payload")
		}
		want(t, b.get("/admin/webhooks/evt_nope"), http.StatusNotFound)
		csrf := csrfOf(t, det)
		want(t, b.post("/admin/webhooks/evt_dead_1/replay", url.Values{}), http.StatusForbidden)
		p := b.post("/admin/webhooks/evt_dead_1/replay", url.Values{"csrf": {csrf}})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/admin/webhooks/evt_dead_1?done=replayed" {
			t.Fatalf("replay: %d %s", p.status, p.body)
		}
		if rec, _ := a.inbox.Get(ctx, "evt_dead_1"); rec.Status != webhooks.StatusPending || rec.Attempts != 0 {
			t.Fatalf("after replay: %s %d", rec.Status, rec.Attempts)
		}
		if a.woken.Load() != 1 {
			t.Fatalf("worker woken %d times", a.woken.Load())
		}
		after := b.get("/admin/webhooks/evt_dead_1?done=replayed")
		want(t, after, http.StatusOK, "Replayed")
		if strings.Contains(after.body, `id="replay"`) {
			t.Fatal("a pending event offers replay")
		}
		// Replaying what is not dead: the API's 409 not_dead, inline.
		p = b.post("/admin/webhooks/evt_dead_1/replay", url.Values{"csrf": {csrf}})
		if p.status != http.StatusConflict || codeOf(p) != "not_dead" {
			t.Fatalf("replay twice: %d %q", p.status, codeOf(p))
		}
		l, _ := a.audit.List(ctx, audit.Filter{Action: "webhook_event.replay"}, pageOf(10))
		if len(l.Data) != 1 || l.Data[0].Actor != "The admin" {
			t.Fatalf("replay audit: %+v", l.Data)
		}
	})
}

// TestAdminPolicyAndAudit: the policy document readably; the audit log
// filtered and keyset-paged as the API does.
func TestAdminPolicyAndAudit(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAdminEnv(t, d)
		ctx := context.Background()
		b, _ := a.signedIn(auth.RoleSupervisor)
		pol := b.get("/admin/policy")
		want(t, pol, http.StatusOK, "<dt>refund</dt>", "<dt>agent limit</dt>", "<dt>kinds</dt>", "users:manage", "webhook_events:replay")
		want(t, b.get("/admin/audit"), http.StatusOK)
		base := time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC)
		for i := range 121 {
			e := audit.Entry{At: base, Actor: "Ada", ActorKind: auth.ActorUser, Role: "agent", Action: "case.note", CaseID: "case_a", Detail: fmt.Sprintf("note %03d", i)}
			if i%5 == 0 {
				e.Actor, e.Action, e.CaseID, e.At = "Bob", "case.assign", "case_b", base.AddDate(0, 0, 1)
			}
			if err := a.audit.Record(ctx, nil, e); err != nil {
				t.Fatal(err)
			}
		}
		first := b.get("/admin/audit?actor=Ada")
		want(t, first, http.StatusOK, "note 119", `id="next"`)
		if strings.Contains(first.body, "case_b") {
			t.Fatal("actor filter leaks Bob's entries")
		}
		m := regexp.MustCompile(`id="next" rel="next" href="([^"]+)"`).FindStringSubmatch(first.body)
		if m == nil {
			t.Fatal("no next link")
		}
		second := b.get(html.UnescapeString(m[1]))
		want(t, second, http.StatusOK, "note 001")
		if strings.Contains(second.body, "note 119") || strings.Contains(second.body, `id="next"`) || strings.Contains(second.body, "case_b") {
			t.Fatal("second page repeats, leaks or goes on")
		}
		want(t, b.get("/admin/audit?action=case.assign&case=case_b"), http.StatusOK, "note 000", "note 120")
		// Dates: from is inclusive from midnight, to includes its whole day.
		day := b.get("/admin/audit?from=2026-11-19&to=2026-11-19")
		want(t, day, http.StatusOK, "case_b")
		if strings.Contains(day.body, "case_a") {
			t.Fatal("date filter leaks the day before")
		}
		want(t, b.get("/admin/audit?to=2026-11-17"), http.StatusOK, "No audit entries match")
		bad := b.get("/admin/audit?from=yesterday")
		if bad.status != http.StatusBadRequest || codeOf(bad) != "invalid_time" {
			t.Fatalf("bad date: %d %q", bad.status, codeOf(bad))
		}
		cur := b.get("/admin/audit?cursor=garbage")
		if cur.status != http.StatusBadRequest || codeOf(cur) == "" {
			t.Fatalf("bad cursor: %d %q", cur.status, codeOf(cur))
		}
	})
}

var linkPattern = regexp.MustCompile(`https://recourse\.example\.com/password/set\?token=([0-9a-f]{64})`)

// TestPasswordLinkPages: an admin makes a link; it sets a password once
// (12 characters, not 11), until just before it expires; using it ends
// the user's sessions; the form needs its CSRF token.
func TestPasswordLinkPages(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAdminEnv(t, d)
		ctx := context.Background()
		b, _ := a.signedIn(auth.RoleAdmin)
		ada := a.user("ada@example.com", "Ada", auth.RoleAgent)
		adaOld := a.browser()
		adaOld.mustLogin("ada@example.com")
		csrf := b.csrf()

		makeLink := func() string {
			t.Helper()
			p := b.post(fmt.Sprintf("/admin/users/%d/link", ada.UserID), url.Values{"csrf": {csrf}})
			want(t, p, http.StatusCreated, "works once", "ada@example.com")
			m := linkPattern.FindStringSubmatch(p.body)
			if m == nil {
				t.Fatalf("no link on the page:\n%s", p.body)
			}
			return m[1]
		}
		tok := makeLink()
		if !strings.Contains(b.get("/admin/users").body, "ada@example.com") || strings.Contains(b.get("/admin/users").body, tok) {
			t.Fatal("the users page shows the link token")
		}

		u := a.browser() // the user, not signed in
		form := u.get("/password/set?token=" + tok)
		want(t, form, http.StatusOK, "Set your password", "ada@example.com", `name="token" value="`+tok+`"`)
		fcsrf := csrfOf(t, form)
		set := func(pw, confirm string) resp {
			return u.post("/password/set", url.Values{"csrf": {fcsrf}, "token": {tok}, "password": {pw}, "confirm": {confirm}})
		}
		// No CSRF: 403.
		want(t, u.post("/password/set", url.Values{"token": {tok}, "password": {"a long enough pw"}, "confirm": {"a long enough pw"}}), http.StatusForbidden)
		p := set("elevenchars", "elevenchars")
		if p.status != http.StatusBadRequest || codeOf(p) != "password_too_short" {
			t.Fatalf("11 characters: %d %q", p.status, codeOf(p))
		}
		p = set("twelve chars", "twelve charz")
		if p.status != http.StatusBadRequest || codeOf(p) != "passwords_differ" {
			t.Fatalf("differ: %d %q", p.status, codeOf(p))
		}
		sessionsOf := func() int64 {
			var n int64
			if err := d.Gorm.Table("console_sessions").Where("user_id = ?", ada.UserID).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		if sessionsOf() != 1 {
			t.Fatal("Ada's session is not on record")
		}
		// Just before expiry, 12 characters: accepted.
		a.clock.Advance(linkTTL - time.Second)
		want(t, set("twelve chars", "twelve chars"), http.StatusOK, "Your password is set")
		if n := sessionsOf(); n != 0 {
			t.Fatalf("%d sessions survived the password change", n)
		}
		b.mustLogin("admin@example.com") // the admin's session idled out meanwhile
		csrf = b.csrf()
		nb := a.browser()
		if p := nb.login("ada@example.com", "twelve chars"); p.status != http.StatusSeeOther {
			t.Fatalf("sign in with the new password: %d", p.status)
		}
		// Second use: refused, on the page and on POST.
		again := u.get("/password/set?token=" + tok)
		if again.status != http.StatusBadRequest || codeOf(again) != "link_used" || strings.Contains(again.body, `id="set-password"`) {
			t.Fatalf("second open: %d %q", again.status, codeOf(again))
		}
		p = set("another password", "another password")
		if p.status != http.StatusBadRequest || codeOf(p) != "link_used" {
			t.Fatalf("second use: %d %q", p.status, codeOf(p))
		}
		if _, err := a.users.CheckPassword(ctx, "ada@example.com", "another password"); err == nil {
			t.Fatal("a used link set a password")
		}
		// Just past expiry: refused.
		tok = makeLink()
		a.clock.Advance(linkTTL)
		p = set("expired but long", "expired but long")
		if p.status != http.StatusBadRequest || codeOf(p) != "link_expired" {
			t.Fatalf("expired: %d %q", p.status, codeOf(p))
		}
		if p := u.get("/password/set?token=nonsense"); p.status != http.StatusBadRequest || codeOf(p) != "link_unknown" {
			t.Fatalf("unknown: %d %q", p.status, codeOf(p))
		}
		// Creation and use are audited.
		l, _ := a.audit.List(ctx, audit.Filter{Action: "user.password_link.use"}, pageOf(10))
		if len(l.Data) != 1 || l.Data[0].Actor != "Ada" {
			t.Fatalf("use audit: %+v", l.Data)
		}
		l, _ = a.audit.List(ctx, audit.Filter{Action: "user.password_link.create"}, pageOf(10))
		if len(l.Data) != 2 || l.Data[0].Actor != "The admin" {
			t.Fatalf("create audit: %+v", l.Data)
		}
	})
}

func pageOf(n int) httpx.PageRequest { return httpx.PageRequest{Limit: n} }

func TestReadableDuration(t *testing.T) {
	for in, want := range map[string]string{"168h0m0s": "7 days", "24h0m0s": "1 day", "4h0m0s": "4 hours", "1h30m0s": "90 minutes",
		"10s": "10 seconds", "1.5s": "1.5s", "pending": "pending", "0s": "0s", "usd": "usd"} {
		if got := readableDuration(in); got != want {
			t.Errorf("readableDuration(%q) = %q, want %q", in, got, want)
		}
	}
}
