package main

import (
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/internal/ratelimit"
)

// limits are the service's abuse limits (README "Limits"), one limiter per
// surface so a busy API client behind an office's address does not eat the
// console's budget there: each is a middleware, or off (a pass-through)
// when its setting is 0.
type limits struct {
	apiIP, token, stripe, escalation echo.MiddlewareFunc
	console                          struct{ ip, user *ratelimit.Limiter }
}

func newLimits(cfg config.Config, clk clock.Clock, m *metrics.Metrics) limits {
	newLimiter := func(r ratelimit.Rate) *ratelimit.Limiter {
		return ratelimit.New(r, ratelimit.Options{Now: clk.Now, MaxKeys: cfg.RateLimitMaxKeys})
	}
	rule := func(scope string, r ratelimit.Rate, key ratelimit.KeyFunc) echo.MiddlewareFunc {
		return ratelimit.Rule{Limiter: newLimiter(r), Key: key, Limited: m.RateLimited.WithLabelValues(scope)}.Middleware()
	}
	var l limits
	l.apiIP = rule("ip", cfg.RateLimitIP, ratelimit.ByIP)
	l.token = rule("token", cfg.RateLimitToken, func(c echo.Context) string {
		p, ok := auth.FromContext(c.Request().Context())
		switch {
		case !ok:
			return ""
		case p.TokenID != 0:
			return "token:" + strconv.FormatInt(p.TokenID, 10)
		default:
			return "user:" + strconv.FormatInt(p.UserID, 10)
		}
	})
	l.stripe = rule("stripe", cfg.RateLimitStripe, ratelimit.ByIP)
	l.escalation = rule("escalation", cfg.RateLimitEscalation, func(c echo.Context) string {
		return c.Param("source") + "|" + ratelimit.ByIP(c)
	})
	l.console.ip = newLimiter(cfg.RateLimitIP)
	l.console.user = newLimiter(cfg.RateLimitConsole)
	return l
}
