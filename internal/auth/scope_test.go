package auth_test

import (
	"context"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
)

func strp(s string) *string { return &s }

// scopeCases are the edges of the rule: each dimension in and out, a case
// without a business line, both dimensions at once, and the empty scope.
var scopeCases = []struct {
	name  string
	scope auth.Scope
	team  string
	bl    *string
	want  bool
}{
	{"empty scope: everything", auth.Scope{}, "risk", nil, true},
	{"empty scope, with a business line", auth.Scope{}, "risk", strp("apac"), true},
	{"team in", auth.Scope{Teams: []string{"disputes"}}, "disputes", nil, true},
	{"team out", auth.Scope{Teams: []string{"disputes"}}, "risk", nil, false},
	{"one of two teams", auth.Scope{Teams: []string{"disputes", "risk"}}, "risk", strp("x"), true},
	{"business line in", auth.Scope{BusinessLines: []string{"emea"}}, "risk", strp("emea"), true},
	{"business line out", auth.Scope{BusinessLines: []string{"emea"}}, "risk", strp("apac"), false},
	{"no business line is out once lines are scoped", auth.Scope{BusinessLines: []string{"emea"}}, "risk", nil, false},
	{"both in", auth.Scope{Teams: []string{"disputes"}, BusinessLines: []string{"emea"}}, "disputes", strp("emea"), true},
	{"team in, line out", auth.Scope{Teams: []string{"disputes"}, BusinessLines: []string{"emea"}}, "disputes", strp("apac"), false},
	{"team out, line in", auth.Scope{Teams: []string{"disputes"}, BusinessLines: []string{"emea"}}, "risk", strp("emea"), false},
	{"team in, no line", auth.Scope{Teams: []string{"disputes"}, BusinessLines: []string{"emea"}}, "disputes", nil, false},
	{"business lines are exact", auth.Scope{BusinessLines: []string{"emea"}}, "risk", strp("EMEA"), false},
}

func TestScopeAllowsCase(t *testing.T) {
	t.Parallel()
	for _, c := range scopeCases {
		if got := c.scope.AllowsCase(c.team, c.bl); got != c.want {
			t.Errorf("%s: AllowsCase(%s, %v) = %t, want %t", c.name, c.team, c.bl, got, c.want)
		}
	}
}

// The SQL form of the rule, on both databases, agrees with AllowsCase on
// every edge (NULL business lines included).
func TestScopeCaseSQLAgreesWithTheRule(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		for _, c := range scopeCases {
			cond, args := c.scope.CaseSQL("c")
			if cond == "" {
				if !c.want {
					t.Errorf("%s: no condition, but the rule refuses", c.name)
				}
				continue
			}
			var bl any
			if c.bl != nil {
				bl = *c.bl
			}
			var n int64
			q := "SELECT COUNT(*) FROM (SELECT CAST(? AS TEXT) AS team, CAST(? AS TEXT) AS business_line) c WHERE " + cond
			if err := d.Gorm.Raw(q, append([]any{c.team, bl}, args...)...).Scan(&n).Error; err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if (n == 1) != c.want {
				t.Errorf("%s: SQL says %t, the rule %t", c.name, n == 1, c.want)
			}
		}
	})
}

func TestScopeCovers(t *testing.T) {
	t.Parallel()
	all := auth.Scope{}
	d := auth.Scope{Teams: []string{"disputes"}}
	dr := auth.Scope{Teams: []string{"disputes", "risk"}}
	de := auth.Scope{Teams: []string{"disputes"}, BusinessLines: []string{"emea"}}
	for _, c := range []struct {
		name string
		a, b auth.Scope
		want bool
	}{
		{"everything covers a scope", all, de, true},
		{"a scope does not cover everything", d, all, false},
		{"a scope covers itself", de, de, true},
		{"a narrower team list", dr, d, true},
		{"a wider team list", d, dr, false},
		{"adding a line narrows", d, de, true},
		{"dropping a line widens", de, d, false},
	} {
		if got := c.a.Covers(c.b); got != c.want {
			t.Errorf("%s: %v covers %v = %t, want %t", c.name, c.a, c.b, got, c.want)
		}
	}
}

// Permissions that span every customer are refused within a scope,
// whatever the role; the rest follow the role alone.
func TestScopedPrincipalPermits(t *testing.T) {
	t.Parallel()
	scoped := auth.Principal{Role: auth.RoleAdmin, Scope: auth.Scope{Teams: []string{"disputes"}}}
	free := auth.Principal{Role: auth.RoleAdmin}
	for perm := range auth.Table() {
		if !auth.Permits(free, perm) {
			t.Errorf("an unscoped admin lacks %s", perm)
		}
		if got := auth.Permits(scoped, perm); got == auth.UnscopedOnly(perm) {
			t.Errorf("a scoped admin: Permits(%s) = %t", perm, got)
		}
	}
	for _, perm := range []auth.Permission{auth.PermAuditRead, auth.PermDisputesStats, auth.PermUsersManage, auth.PermTokensManage, auth.PermWebhookEventsRead} {
		if auth.Permits(scoped, perm) {
			t.Errorf("a scoped admin holds %s", perm)
		}
	}
	// Reports are computed over the scope instead (reports.Query.Scope).
	if !auth.Permits(scoped, auth.PermReportsRead) {
		t.Error("a scoped admin cannot read reports")
	}
}

// Setting a scope: known teams only, audited as user.scope, read back on
// GET, and applied to a token issued before it at its next request.
// A scoped actor cannot widen a scope, their own or anybody's.
func TestScopeSetAndAppliedToAnExistingToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		var audited []auth.Change
		users := auth.NewUserStore(d, clock.System{}, func(_ context.Context, _ *gorm.DB, c auth.Change) error {
			audited = append(audited, c)
			return nil
		}).WithKnownTeams([]string{"disputes", "risk", "support"})
		tokens := auth.NewTokenStore(d, clock.System{})
		u, err := users.Create(ctx, auth.NewUser{Email: "bpo@example.com", DisplayName: "BPO", Role: auth.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		secret, _, err := tokens.Issue(ctx, u.ID, "bpo", "")
		if err != nil {
			t.Fatal(err)
		}
		p, err := tokens.Authenticate(ctx, secret)
		if err != nil || !p.Scope.Unrestricted() {
			t.Fatalf("before: %v %v", p.Scope, err)
		}
		if _, err := users.Update(ctx, u.ID, auth.UserPatch{Scope: &auth.Scope{Teams: []string{"nope"}}}); !errs.Is(err, errs.EINVALID) {
			t.Fatalf("unknown team: %v", err)
		}
		sc := auth.Scope{Teams: []string{" risk", "disputes", "risk"}, BusinessLines: []string{"emea"}}
		got, err := users.Update(ctx, u.ID, auth.UserPatch{Scope: &sc})
		if err != nil || fmt.Sprint(got.Scope.Teams, got.Scope.BusinessLines) != "[disputes risk] [emea]" {
			t.Fatalf("set: %v %v", got.Scope, err)
		}
		if len(audited) == 0 || audited[len(audited)-1].Action != "user.scope" || audited[len(audited)-1].Detail != "unrestricted → teams=disputes,risk business_lines=emea" {
			t.Fatalf("audit: %+v", audited)
		}
		if g, _ := users.Get(ctx, u.ID); g.Scope.String() != "teams=disputes,risk business_lines=emea" {
			t.Fatalf("get: %v", g.Scope)
		}
		p, err = tokens.Authenticate(ctx, secret)
		if err != nil || p.Scope.String() != "teams=disputes,risk business_lines=emea" {
			t.Fatalf("the existing token: %v %v", p.Scope, err)
		}
		// The same scope again changes and audits nothing.
		n := len(audited)
		if _, err := users.Update(ctx, u.ID, auth.UserPatch{Scope: &sc}); err != nil || len(audited) != n {
			t.Fatalf("same scope: %v, %d audit entries more", err, len(audited)-n)
		}
		// A scoped actor may narrow, never widen (nor clear).
		me := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.ActorUser, UserID: 999, Role: auth.RoleAdmin, Scope: auth.Scope{Teams: []string{"disputes", "risk"}}})
		if _, err := users.Update(me, u.ID, auth.UserPatch{Scope: &auth.Scope{}}); !errs.Is(err, errs.EFORBIDDEN) {
			t.Fatalf("a scoped actor cleared a scope: %v", err)
		}
		if _, err := users.Update(me, u.ID, auth.UserPatch{Scope: &auth.Scope{Teams: []string{"support"}}}); !errs.Is(err, errs.EFORBIDDEN) {
			t.Fatalf("a scoped actor widened a scope: %v", err)
		}
		if _, err := users.Update(me, u.ID, auth.UserPatch{Scope: &auth.Scope{Teams: []string{"risk"}}}); err != nil {
			t.Fatalf("a scoped actor narrowing: %v", err)
		}
		// Clearing applies at once too.
		if _, err := users.Update(ctx, u.ID, auth.UserPatch{Scope: &auth.Scope{}}); err != nil {
			t.Fatal(err)
		}
		if p, _ = tokens.Authenticate(ctx, secret); !p.Scope.Unrestricted() {
			t.Fatalf("after clearing: %v", p.Scope)
		}
	})
}
