// Package ratelimit is the service's abuse limiter: a token bucket per key
// (an API token, a console user, a client address, a webhook source) with
// bounded memory, and the Echo middleware that answers 429 with
// Retry-After computed from the bucket.
//
// Memory is bounded two ways. A bucket idle long enough to have refilled
// is the same as no bucket, so it is dropped (idle eviction, least
// recently used first). And the map never holds more than MaxKeys
// buckets: a new key beyond that evicts the least recently used one. An
// attacker rotating addresses therefore costs at most MaxKeys buckets;
// the price is that an evicted key starts again with a full bucket.
package ratelimit

import (
	"container/list"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is a sustained rate (tokens per second) and a burst (bucket size).
// The zero Rate (or a zero field) is "no limit".
type Rate struct {
	PerSecond float64
	Burst     int
}

// Off reports whether r limits nothing.
func (r Rate) Off() bool { return r.PerSecond <= 0 || r.Burst <= 0 }

// String is the setting's form, "rps:burst" ("0" when off).
func (r Rate) String() string {
	if r.Off() {
		return "0"
	}
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + ":" + strconv.Itoa(r.Burst)
}

// ParseRate reads "rps:burst" (e.g. "20:100", "0.5:10"); "0", "off" or ""
// is no limit. A rate without a burst ("20") gets a burst of one second's
// worth (at least 1).
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || strings.EqualFold(s, "off") {
		return Rate{}, nil
	}
	rps, burst, hasBurst := strings.Cut(s, ":")
	r, err := strconv.ParseFloat(strings.TrimSpace(rps), 64)
	if err != nil || r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return Rate{}, fmt.Errorf("%q is not requests per second and a burst, like 20:100 (0 turns the limit off)", s)
	}
	b := int(math.Max(1, math.Ceil(r)))
	if hasBurst {
		if b, err = strconv.Atoi(strings.TrimSpace(burst)); err != nil || b < 0 {
			return Rate{}, fmt.Errorf("%q is not requests per second and a burst, like 20:100 (0 turns the limit off)", s)
		}
	}
	if r == 0 || b == 0 {
		return Rate{}, nil
	}
	return Rate{PerSecond: r, Burst: b}, nil
}

// DefaultMaxKeys is how many buckets a Limiter keeps at most unless told.
const DefaultMaxKeys = 100_000

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// Limit is the bucket size (the burst); Remaining the whole tokens
	// left after this request.
	Limit, Remaining int
	// RetryAfter is how long until one token is back (0 when allowed).
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1:
// the value of a Retry-After header.
func (d Decision) RetryAfterSeconds() int { return ceilSeconds(d.RetryAfter, 1) }

// ResetSeconds is Reset in whole seconds, rounded up.
func (d Decision) ResetSeconds() int { return ceilSeconds(d.Reset, 0) }

func ceilSeconds(d time.Duration, least int) int {
	n := int(math.Ceil(d.Seconds()))
	if n < least {
		n = least
	}
	return n
}

// Limiter holds one token bucket per key. It is safe for concurrent use.
// A nil *Limiter allows everything.
type Limiter struct {
	rate    Rate
	now     func() time.Time
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // front: most recently used
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// Options configure New.
type Options struct {
	// Now is the clock (nil: time.Now); tests move it instead of sleeping.
	Now func() time.Time
	// MaxKeys caps the buckets kept (0: DefaultMaxKeys).
	MaxKeys int
}

// New returns a limiter of rate r per key, or nil (allow everything) when
// r is off.
func New(r Rate, opt Options) *Limiter {
	if r.Off() {
		return nil
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxKeys <= 0 {
		opt.MaxKeys = DefaultMaxKeys
	}
	return &Limiter{rate: r, now: opt.Now, maxKeys: opt.MaxKeys, buckets: make(map[string]*list.Element)}
}

// Rate is the limiter's rate (the zero Rate for a nil limiter).
func (l *Limiter) Rate() Rate {
	if l == nil {
		return Rate{}
	}
	return l.rate
}

// fill is how long an empty bucket takes to fill: after that long idle a
// bucket is as good as none.
func (l *Limiter) fill() time.Duration {
	return time.Duration(float64(l.rate.Burst) / l.rate.PerSecond * float64(time.Second))
}

// Allow takes one token from key's bucket, if there is one.
func (l *Limiter) Allow(key string) Decision {
	if l == nil {
		return Decision{Allowed: true}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdle(now)
	var b *bucket
	if el, ok := l.buckets[key]; ok {
		b = el.Value.(*bucket)
		l.lru.MoveToFront(el)
		if since := now.Sub(b.last); since > 0 {
			b.tokens = math.Min(float64(l.rate.Burst), b.tokens+since.Seconds()*l.rate.PerSecond)
			b.last = now
		}
	} else {
		for len(l.buckets) >= l.maxKeys {
			l.remove(l.lru.Back())
		}
		b = &bucket{key: key, tokens: float64(l.rate.Burst), last: now}
		l.buckets[key] = l.lru.PushFront(b)
	}
	d := Decision{Limit: l.rate.Burst}
	if b.tokens >= 1 {
		b.tokens--
		d.Allowed = true
	} else {
		d.RetryAfter = l.secondsFor(1 - b.tokens)
	}
	d.Remaining = int(math.Floor(b.tokens))
	d.Reset = l.secondsFor(float64(l.rate.Burst) - b.tokens)
	return d
}

func (l *Limiter) secondsFor(tokens float64) time.Duration {
	if tokens <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(tokens / l.rate.PerSecond * float64(time.Second)))
}

// evictIdle drops buckets unused for long enough to be full again, least
// recently used first (so it stops at the first one still in use).
func (l *Limiter) evictIdle(now time.Time) {
	idle := l.fill()
	for el := l.lru.Back(); el != nil; el = l.lru.Back() {
		if now.Sub(el.Value.(*bucket).last) < idle {
			return
		}
		l.remove(el)
	}
}

func (l *Limiter) remove(el *list.Element) {
	delete(l.buckets, el.Value.(*bucket).key)
	l.lru.Remove(el)
}

// Len is the number of buckets held (for tests and metrics).
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
