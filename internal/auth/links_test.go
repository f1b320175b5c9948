package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || e.Code != code {
		t.Fatalf("want error %s, got %v", code, err)
	}
}

// TestPasswordLink: a link works once, until just before it expires, and
// never for a password outside the rules (which leaves it usable); using it
// ends the user's sessions and is audited as theirs.
func TestPasswordLink(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
		al := audit.New(d, clk)
		users := auth.NewUserStore(d, clk, al.ForAuth())
		admin, err := users.Create(ctx, auth.NewUser{Email: "root@example.com", DisplayName: "Root", Role: auth.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		u, err := users.Create(ctx, auth.NewUser{Email: "ada@example.com", DisplayName: "Ada", Role: auth.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		actx := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.ActorUser, UserID: admin.ID, Name: "Root", Role: auth.RoleAdmin})
		tok, link, err := users.CreatePasswordLink(actx, u.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !link.ExpiresAt.Equal(clk.Now().Add(24*time.Hour)) || link.CreatedBy != "Root" || len(tok) != 64 {
			t.Fatalf("link %+v token %q", link, tok)
		}
		var stored int64
		d.Gorm.Table("password_links").Where("token_hash = ?", tok).Count(&stored)
		if stored != 0 {
			t.Fatal("the token itself is stored")
		}
		// A session of the user, to be ended.
		if err := d.Gorm.Exec("INSERT INTO console_sessions (id, user_id, csrf, created_at, last_seen_at, expires_at) VALUES ('s1', ?, 'c', ?, ?, ?)",
			u.ID, clk.Now(), clk.Now(), clk.Now().Add(time.Hour)).Error; err != nil {
			t.Fatal(err)
		}

		if got, err := users.PasswordLinkUser(ctx, tok); err != nil || got.ID != u.ID {
			t.Fatalf("link user: %v %v", got.ID, err)
		}
		// 11 characters: refused, and the link still works.
		_, err = users.UsePasswordLink(ctx, tok, strings.Repeat("a", 11))
		wantCode(t, err, "password_too_short")
		_, err = users.UsePasswordLink(ctx, tok, strings.Repeat("a", 73))
		wantCode(t, err, "password_too_long")
		_, err = users.UsePasswordLink(ctx, "nope", strings.Repeat("a", 12))
		wantCode(t, err, "link_unknown")
		// Just before expiry: accepted, with 12 characters.
		clk.Advance(24*time.Hour - time.Second)
		if _, err := users.UsePasswordLink(ctx, tok, strings.Repeat("b", 12)); err != nil {
			t.Fatal(err)
		}
		if _, err := users.CheckPassword(ctx, "ada@example.com", strings.Repeat("b", 12)); err != nil {
			t.Fatalf("sign in with the new password: %v", err)
		}
		var sessions int64
		d.Gorm.Table("console_sessions").Where("user_id = ?", u.ID).Count(&sessions)
		if sessions != 0 {
			t.Fatalf("%d sessions survived the password change", sessions)
		}
		// Second use: refused.
		_, err = users.UsePasswordLink(ctx, tok, strings.Repeat("c", 12))
		wantCode(t, err, "link_used")
		_, err = users.PasswordLinkUser(ctx, tok)
		wantCode(t, err, "link_used")

		// Just past expiry: refused.
		tok2, _, err := users.CreatePasswordLink(actx, u.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		_, err = users.UsePasswordLink(ctx, tok2, strings.Repeat("d", 12))
		wantCode(t, err, "link_expired")

		// A newer link spends the older ones when used.
		tok3, _, _ := users.CreatePasswordLink(actx, u.ID, 0)
		tok4, _, _ := users.CreatePasswordLink(actx, u.ID, 0)
		if _, err := users.UsePasswordLink(ctx, tok4, strings.Repeat("e", 12)); err != nil {
			t.Fatal(err)
		}
		_, err = users.UsePasswordLink(ctx, tok3, strings.Repeat("f", 12))
		wantCode(t, err, "link_used")

		// A deactivated user gets no link.
		if _, err := users.Deactivate(actx, u.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = users.CreatePasswordLink(actx, u.ID, 0)
		wantCode(t, err, "user_inactive")

		// Creation is audited as the admin's, use as the user's own.
		l, err := al.List(ctx, audit.Filter{}, httpx.PageRequest{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, e := range l.Data {
			if strings.HasPrefix(e.Action, "user.password_link") {
				seen[e.Action] = e.Actor
			}
		}
		if seen["user.password_link.create"] != "Root" || seen["user.password_link.use"] != "Ada" {
			t.Fatalf("audit: %v", seen)
		}
	})
}

// TestNoSelfDeactivation: an admin cannot deactivate themselves even when
// another admin remains; another admin can.
func TestNoSelfDeactivation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		users := auth.NewUserStore(d, clock.NewManual(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)), nil)
		a, _ := users.Create(ctx, auth.NewUser{Email: "a@example.com", DisplayName: "A", Role: auth.RoleAdmin})
		b, _ := users.Create(ctx, auth.NewUser{Email: "b@example.com", DisplayName: "B", Role: auth.RoleAdmin})
		actx := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.ActorUser, UserID: a.ID, Name: "A", Role: auth.RoleAdmin})
		_, err := users.Deactivate(actx, a.ID)
		wantCode(t, err, "self_deactivate")
		if _, err := users.Deactivate(actx, b.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPasswordLinkRace: of several simultaneous uses of one link, exactly
// one sets a password.
func TestPasswordLinkRace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		users := auth.NewUserStore(d, clock.NewManual(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)), nil)
		u, err := users.Create(ctx, auth.NewUser{Email: "ada@example.com", DisplayName: "Ada", Role: auth.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := users.CreatePasswordLink(ctx, u.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		const n = 4
		errc := make(chan error, n)
		for i := range n {
			go func() {
				_, err := users.UsePasswordLink(ctx, tok, fmt.Sprintf("password number %d", i))
				errc <- err
			}()
		}
		ok := 0
		for range n {
			err := <-errc
			if err == nil {
				ok++
				continue
			}
			if e, isCoded := errs.As(err); !isCoded || (e.Code != "link_used" && e.Kind != errs.ECONFLICT && e.Kind != errs.EUNAVAILABLE) {
				t.Errorf("a losing use: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d uses succeeded, want 1", ok)
		}
	})
}
