package ratelimit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time           { return f.t }
func (f *fakeClock) add(d time.Duration)      { f.t = f.t.Add(d) }
func newClock() *fakeClock                    { return &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)} }
func limiter(r Rate, clk *fakeClock) *Limiter { return New(r, Options{Now: clk.now}) }

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"20:100": {20, 100}, "0.5:10": {0.5, 10}, " 3 : 7 ": {3, 7}, "5": {5, 5}, "0.2": {0.2, 1},
		"0": {}, "": {}, "off": {}, "0:10": {}, "10:0": {},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"fast", "-1:10", "10:-1", "10:x", "NaN:1", "Inf:1"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

// Exactly the burst is allowed, one more is refused with the wait until a
// token is back; after that wait (on the injected clock) one more passes.
func TestBurstEdgeAndRefill(t *testing.T) {
	clk := newClock()
	l := limiter(Rate{PerSecond: 0.5, Burst: 3}, clk) // a token every 2 s
	for i := range 3 {
		d := l.Allow("a")
		if !d.Allowed || d.Remaining != 2-i || d.Limit != 3 {
			t.Fatalf("request %d of the burst: %+v", i+1, d)
		}
	}
	d := l.Allow("a")
	if d.Allowed || d.RetryAfter != 2*time.Second || d.RetryAfterSeconds() != 2 || d.Remaining != 0 || d.ResetSeconds() != 6 {
		t.Fatalf("one past the burst: %+v", d)
	}
	if !l.Allow("b").Allowed {
		t.Fatal("another key was limited by a's bucket")
	}
	clk.add(1500 * time.Millisecond)
	if d := l.Allow("a"); d.Allowed || d.RetryAfter != 500*time.Millisecond || d.RetryAfterSeconds() != 1 {
		t.Fatalf("before the refill: %+v (Retry-After rounds up, at least 1)", d)
	}
	clk.add(500 * time.Millisecond)
	if d := l.Allow("a"); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after the refill: %+v", d)
	}
	if l.Allow("a").Allowed {
		t.Fatal("the refill gave more than one token")
	}
	clk.add(time.Hour)
	if d := l.Allow("a"); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("a long wait refills to the burst, no further: %+v", d)
	}
}

// Idle buckets (full again) are dropped; the map never grows past MaxKeys,
// however many keys an attacker rotates through.
func TestBoundedMemory(t *testing.T) {
	clk := newClock()
	l := New(Rate{PerSecond: 1, Burst: 10}, Options{Now: clk.now, MaxKeys: 100})
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
		if n := l.Len(); n > 100 {
			t.Fatalf("%d buckets held, cap 100", n)
		}
	}
	// The most recent keys are kept, with their tokens spent.
	if d := l.Allow("10.0.39.15"); d.Remaining != 8 {
		t.Fatalf("recent key lost its bucket: %+v", d)
	}
	clk.add(10 * time.Second) // every bucket is full again
	l.Allow("fresh")
	if n := l.Len(); n != 1 {
		t.Fatalf("idle buckets not evicted: %d held", n)
	}
}

func TestNilLimiterAllows(t *testing.T) {
	l := New(Rate{}, Options{})
	if l != nil || !l.Allow("x").Allowed || l.Len() != 0 {
		t.Fatal("an off rate must give a nil limiter that allows everything")
	}
}

func TestMiddleware(t *testing.T) {
	clk := newClock()
	e := echo.New()
	rule := Rule{Limiter: limiter(Rate{PerSecond: 1, Burst: 2}, clk), Key: func(c echo.Context) string { return c.Request().Header.Get("X-Key") }}
	h := rule.Middleware()(func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	do := func(key string) (*httptest.ResponseRecorder, error) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-Key", key)
		rec := httptest.NewRecorder()
		return rec, h(e.NewContext(req, rec))
	}
	for range 2 {
		if rec, err := do("k"); err != nil || rec.Code != 204 {
			t.Fatalf("within the burst: %d %v", rec.Code, err)
		}
	}
	rec, err := do("k")
	if err == nil || rec.Header().Get("Retry-After") != "1" || rec.Header().Get(HeaderRemaining) != "0" || rec.Header().Get(HeaderLimit) != "2" {
		t.Fatalf("over the burst: err %v, headers %v", err, rec.Header())
	}
	if rec, err := do(""); err != nil || rec.Code != 204 || rec.Header().Get(HeaderLimit) != "" {
		t.Fatalf("no key must skip the limit: %d %v", rec.Code, err)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"::ffff:192.0.2.7":          "192.0.2.7",
		"2001:db8:1:2:aaaa::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::9": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":           "2001:db8:1:3::/64",
		"fe80::1%eth0":              "fe80::/64",
		"not an address":            "not an address",
	} {
		if got := AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// Concurrent requests never get more than the burst between them.
func TestConcurrentAllowNeverExceedsBurst(t *testing.T) {
	clk := newClock() // never moves: no refill
	// 160 other keys churn past the cap of 100; "shared", used every other
	// call by each goroutine, stays among the most recent and is kept.
	l := New(Rate{PerSecond: 1, Burst: 50}, Options{Now: clk.now, MaxKeys: 100})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if l.Allow("shared").Allowed {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprintf("g%d-%d", g, i%20)) // churn other keys past the cap
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n > 50 {
		t.Fatalf("%d allowed, burst 50", n)
	}
}
