package ratelimit

import (
	"net/netip"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/recourse-hq/recourse/internal/errs"
)

// KeyFunc names the bucket a request draws from; "" lets it through
// unlimited (e.g. no principal yet).
type KeyFunc func(c echo.Context) string

// Rule is one limit applied to a group of routes.
type Rule struct {
	// Limiter holds the buckets; nil turns the rule off.
	Limiter *Limiter
	// Key picks the bucket (ByIP, ByToken, …).
	Key KeyFunc
	// Deny answers a request over the limit, after Retry-After is set;
	// nil returns the API's error (429 rate_limited), which the error
	// handler writes in the error envelope.
	Deny func(c echo.Context, d Decision) error
	// Limited counts refusals (may be nil): recourse_http_rate_limited_total{scope}.
	Limited prometheus.Counter
}

// Header names sent with every limited response (IETF draft
// "RateLimit header fields"): the burst, the whole requests left now, and
// the seconds until the bucket is full again. When two rules apply (the
// address, then the token), the inner one's figures are the ones sent.
const (
	HeaderLimit     = "RateLimit-Limit"
	HeaderRemaining = "RateLimit-Remaining"
	HeaderReset     = "RateLimit-Reset"
)

// Middleware applies r: it takes a token from the request's bucket and
// lets the request through, or refuses it with Retry-After (whole
// seconds until a token is back, at least 1).
func (r Rule) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if r.Limiter == nil {
			return next
		}
		return func(c echo.Context) error {
			key := r.Key(c)
			if key == "" {
				return next(c)
			}
			d := r.Limiter.Allow(key)
			h := c.Response().Header()
			h.Set(HeaderLimit, strconv.Itoa(d.Limit))
			h.Set(HeaderRemaining, strconv.Itoa(d.Remaining))
			h.Set(HeaderReset, strconv.Itoa(d.ResetSeconds()))
			if d.Allowed {
				return next(c)
			}
			h.Set("Retry-After", strconv.Itoa(d.RetryAfterSeconds()))
			if r.Limited != nil {
				r.Limited.Inc()
			}
			if r.Deny != nil {
				return r.Deny(c, d)
			}
			return Refusal(d)
		}
	}
}

// Refusal is the API's answer over a limit: ERATELIMIT (429) rate_limited,
// with the wait in its details.
func Refusal(d Decision) error {
	return errs.Coded(errs.ERATELIMIT, "rate_limited", "too many requests: retry in %d s", d.RetryAfterSeconds()).
		WithDetails(map[string]any{"retry_after_seconds": d.RetryAfterSeconds(), "limit": d.Limit})
}

// ByIP keys a request by its client address (echo.Context.RealIP, which
// trusts forwarding headers only as the server's IPExtractor allows), as
// AddressKey.
func ByIP(c echo.Context) string { return AddressKey(c.RealIP()) }

// AddressKey is the bucket key of a client address: an IPv4 address as
// is, an IPv6 address by its /64 — one subscriber's network, from which
// any of 2^64 addresses is free to use, so per-address buckets would
// let one client rotate past its limit.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
