package web

import (
	"net/http"
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
