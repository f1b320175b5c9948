package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/ratelimit"
)

// The console's abuse limits: per signed-in user, and per address before
// any session (the sign-in page too). Over either: a 429 page with
// Retry-After from the bucket; other users are unaffected; after the wait
// (the injected clock) the next request passes.
func TestConsoleRateLimits(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Run("per user", func(t *testing.T) {
			en := newEnvWith(t, d, func(o *Options) {
				o.UserLimit = ratelimit.New(ratelimit.Rate{PerSecond: 0.5, Burst: 3}, ratelimit.Options{Now: o.Clock.Now})
			})
			en.user("ada@example.com", "Ada", auth.RoleAgent)
			en.user("bob@example.com", "Bob", auth.RoleAgent)
			ada, bob := en.browser(), en.browser()
			ada.mustLogin("ada@example.com")
			bob.mustLogin("bob@example.com")
			for range 3 {
				want(t, ada.get("/"), http.StatusOK)
			}
			p := ada.get("/")
			want(t, p, http.StatusTooManyRequests, "Too many requests. Wait 2 seconds")
			if p.header.Get("Retry-After") != "2" || p.header.Get("Content-Security-Policy") == "" {
				t.Fatalf("429 page headers: %v", p.header)
			}
			want(t, bob.get("/"), http.StatusOK)
			en.clock.Advance(2 * time.Second)
			want(t, ada.get("/"), http.StatusOK)
			want(t, ada.get("/"), http.StatusTooManyRequests)
		})
		t.Run("per address, before the session", func(t *testing.T) {
			en := newEnvWith(t, d, func(o *Options) {
				o.IPLimit = ratelimit.New(ratelimit.Rate{PerSecond: 1, Burst: 2}, ratelimit.Options{Now: o.Clock.Now})
			})
			b := en.browser()
			want(t, b.get("/login"), http.StatusOK)
			want(t, b.get("/login"), http.StatusOK)
			p := b.get("/")
			want(t, p, http.StatusTooManyRequests, "Too many requests")
			if p.header.Get("Retry-After") != "1" {
				t.Fatalf("Retry-After %q", p.header.Get("Retry-After"))
			}
			en.clock.Advance(time.Second)
			want(t, b.get("/login"), http.StatusOK)
		})
	})
}

// Console forms are bounded: a body over the limit is a 413 page, whether
// signed in or not; the sign-in form just at the limit is read.
func TestConsoleBodyLimit(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		p := en.user("ada@example.com", "Ada", auth.RoleAgent)
		b := en.browser()
		csrf := csrfOf(t, b.get("/login"))
		form := func(n int) url.Values {
			v := url.Values{"csrf": {csrf}, "email": {"ada@example.com"}, "password": {"wrong"}, "pad": {""}}
			v.Set("pad", strings.Repeat("x", n-len(v.Encode())))
			return v
		}
		if got := len(form(maxFormBytes).Encode()); got != maxFormBytes {
			t.Fatalf("form of %d bytes", got)
		}
		want(t, b.post("/login", form(maxFormBytes)), http.StatusUnauthorized, "Wrong email or password")
		want(t, b.post("/login", form(maxFormBytes+1)), http.StatusRequestEntityTooLarge, "This form is too large")
		b.mustLogin("ada@example.com")
		cs := openCase(t, en, p, "Too long a note")
		page := b.get("/cases/" + cs.ID)
		note := url.Values{"csrf": {csrfOf(t, page)}, "body": {strings.Repeat("n", maxFormBytes)}}
		want(t, b.post("/cases/"+cs.ID+"/notes", note), http.StatusRequestEntityTooLarge, "This form is too large")
	})
}
