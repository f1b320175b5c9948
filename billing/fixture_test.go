package billing

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// t0 is when test stories start.
var t0 = time.Date(2026, time.November, 1, 9, 0, 0, 0, time.UTC)

// fixture is one migrated database with a store and a generator.
type fixture struct {
	t     *testing.T
	d     *db.DB
	clock *clock.Manual
	store *Store
	gen   *stripetest.Generator
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	clk := clock.NewManual(t0.Add(-24 * time.Hour))
	return &fixture{
		t: t, d: d, clock: clk,
		store: NewStore(d, clk),
		gen:   stripetest.New(42, stripetest.WithClock(func() time.Time { return t0 })),
	}
}

func providerEvent(e stripetest.Event) ProviderEvent {
	return ProviderEvent{ID: e.ID, Type: e.Type, Created: e.Created.UTC(), Livemode: e.Livemode,
		APIVersion: stripetest.APIVersion, Payload: e.Payload}
}

// tryApply applies e the way the webhook worker does: in a transaction,
// through a store bound to it.
func (f *fixture) tryApply(e stripetest.Event) (Change, error) {
	var ch Change
	err := f.d.Transact(context.Background(), func(tx *gorm.DB) error {
		var err error
		ch, err = f.store.In(tx).Apply(context.Background(), providerEvent(e))
		return err
	})
	return ch, err
}

func (f *fixture) apply(e stripetest.Event) Change {
	f.t.Helper()
	ch, err := f.tryApply(e)
	if err != nil {
		f.t.Fatalf("apply %s %s: %v", e.Type, e.ID, err)
	}
	return ch
}

func (f *fixture) applyAll(evs []stripetest.Event) {
	f.t.Helper()
	for _, e := range evs {
		f.apply(e)
	}
}

// event builds an event of typ carrying obj created at `at`.
func (f *fixture) event(typ string, obj map[string]any, at time.Time, opts ...stripetest.EventOption) stripetest.Event {
	return f.gen.NewEvent(typ, obj, append([]stripetest.EventOption{stripetest.WithCreated(at)}, opts...)...)
}

// timeline returns the customer's whole timeline, newest first.
func (f *fixture) timeline(customerID string) []TimelineEntry {
	f.t.Helper()
	var out []TimelineEntry
	page := httpx.PageRequest{Limit: httpx.MaxLimit}
	for {
		l, err := f.store.Timeline(context.Background(), customerID, page)
		if err != nil {
			f.t.Fatalf("timeline of %s: %v", customerID, err)
		}
		out = append(out, l.Data...)
		if l.NextCursor == nil {
			return out
		}
		page.Cursor = *l.NextCursor
	}
}

// timelineRows counts timeline facts recorded for an event id.
func (f *fixture) timelineRows(eventID string) int64 {
	f.t.Helper()
	var n int64
	if err := f.d.Gorm.Model(&timelineRow{}).Where("event_id = ?", eventID).Count(&n).Error; err != nil {
		f.t.Fatalf("count timeline rows: %v", err)
	}
	return n
}

func (f *fixture) entry(eventID string) TimelineEntry {
	f.t.Helper()
	e, ok, err := f.store.timelineEntryByEvent(context.Background(), eventID)
	if err != nil || !ok {
		f.t.Fatalf("timeline fact of %s: found=%v err=%v", eventID, ok, err)
	}
	return e
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func wantErrIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptrDay(t *time.Time) string {
	if t == nil {
		return "<nil>"
	}
	return t.UTC().Format("2006-01-02")
}

// eventsOf returns the events of the given types, in order.
func eventsOf(evs []stripetest.Event, types ...string) []stripetest.Event {
	var out []stripetest.Event
	for _, e := range evs {
		for _, t := range types {
			if e.Type == t {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

func firstOf(t *testing.T, evs []stripetest.Event, typ string) stripetest.Event {
	t.Helper()
	for _, e := range evs {
		if e.Type == typ {
			return e
		}
	}
	t.Fatalf("no %s event in story", typ)
	return stripetest.Event{}
}

func lastOf(t *testing.T, evs []stripetest.Event, typ string) stripetest.Event {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return evs[i]
		}
	}
	t.Fatalf("no %s event in story", typ)
	return stripetest.Event{}
}
