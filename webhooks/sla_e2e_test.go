package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/internal/stripetest"
	"github.com/recourse-hq/recourse/webhooks"
)

// slaStack is the whole path a Stripe event takes, on one database and one
// manual clock: signed delivery over HTTP → inbox → worker → billing mirror
// → cases, the case API over HTTP, and the SLA sweeper.
type slaStack struct {
	t      *testing.T
	clock  *clock.Manual
	worker *webhooks.Worker
	cases  *cases.Service
	srv    *httptest.Server
	token  string
}

func newSLAStack(t *testing.T, d *db.DB, start time.Time) *slaStack {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := &slaStack{t: t, clock: clock.NewManual(start)}
	m := metrics.New()
	store := billing.NewStore(d, st.clock)
	svc, err := cases.NewService(cases.Options{DB: d, Clock: st.clock, Logger: log,
		Billing: func(tx *gorm.DB) cases.BillingReader { return store.In(tx) }})
	if err != nil {
		t.Fatal(err)
	}
	st.cases = svc
	inbox := webhooks.NewInbox(d)
	reg := webhooks.NewRegistry()
	webhooks.RegisterBilling(reg, store, svc)
	st.worker = webhooks.NewWorker(d, inbox, reg, st.clock, log, m, webhooks.WorkerConfig{
		Concurrency: 1, MaxAttempts: 3, Lease: time.Minute, PollInterval: 20 * time.Millisecond,
		BackoffBase: time.Second, BackoffMax: time.Minute,
	})
	intake := webhooks.NewIntake(inbox, st.clock, log, m, webhooks.IntakeConfig{
		Secrets: []string{secretA}, Tolerance: 300 * time.Second, MaxBody: 256 << 10,
	}, nil)
	e := httpx.New(httpx.Options{Logger: log, Metrics: m})
	intake.Register(e)
	tokens := auth.NewTokenStore(d, st.clock)
	svc.Register(e.Group("/api/v1", auth.Middleware(tokens)))
	st.srv = httptest.NewServer(apispectest.Handler(t, e))
	t.Cleanup(func() { st.srv.Close(); intake.Close() })
	if st.token, _, err = tokens.Create(context.Background(), "lead", auth.RoleSupervisor); err != nil {
		t.Fatal(err)
	}
	return st
}

// deliver posts ev, signed, to the webhook endpoint and lets the worker
// apply it.
func (st *slaStack) deliver(ev stripetest.Event) {
	st.t.Helper()
	payload, err := ev.Marshal()
	if err != nil {
		st.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, st.srv.URL+"/webhooks/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", sign(payload, secretA, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		st.t.Fatalf("deliver %s %s: %d", ev.Type, ev.ID, resp.StatusCode)
	}
	for i := 0; ; i++ {
		n, err := st.worker.RunOnce(context.Background())
		if err != nil {
			st.t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if i > 100 {
			st.t.Fatal("worker never drained")
		}
	}
}

// sweepUntil moves the clock to t a day at a time, sweeping SLAs each day.
func (st *slaStack) sweepUntil(t time.Time) {
	st.t.Helper()
	for st.clock.Now().Before(t) {
		next := st.clock.Now().Add(24 * time.Hour)
		if next.After(t) {
			next = t
		}
		st.clock.Set(next)
		if _, err := st.cases.SweepSLAs(context.Background()); err != nil {
			st.t.Fatal(err)
		}
	}
}

func (st *slaStack) get(path string, out any) {
	st.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, st.srv.URL+"/api/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+st.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		st.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		st.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

type slaCaseView struct {
	ID    string `json:"id"`
	State string `json:"state"`
	SLA   struct {
		Role                 string  `json:"role"`
		Breached             bool    `json:"breached"`
		ResolutionBreachedAt *string `json:"resolution_breached_at"`
	} `json:"sla"`
	Timeline []struct {
		Type    string `json:"type"`
		Summary string `json:"summary"`
	} `json:"timeline"`
}

func (st *slaStack) disputeCase() (slaCaseView, bool) {
	st.t.Helper()
	var list struct {
		Data []slaCaseView `json:"data"`
	}
	st.get("/cases?kind=dispute", &list)
	if len(list.Data) == 0 {
		return slaCaseView{}, false
	}
	if len(list.Data) > 1 {
		st.t.Fatalf("%d dispute cases", len(list.Data))
	}
	var c slaCaseView
	st.get("/cases/"+list.Data[0].ID, &c)
	return c, true
}

// TestChargebackUnderReviewKeepsItsSLA replays generated chargeback stories
// (evidence submitted, then the bank decides 55–75 days after the dispute
// opened) as signed webhooks over HTTP, with the sweeper running every
// simulated day, on both databases: the dispute case waits under_review
// with its clocks paused and is never marked past its resolution due time.
// (Nobody here answers the case, so a first-response breach is allowed.)
func TestChargebackUnderReviewKeepsItsSLA(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for _, won := range []bool{true, false} {
		t.Run(map[bool]string{true: "won", false: "lost"}[won], func(t *testing.T) { slaChargebackStory(t, start, won) })
	}
}

func slaChargebackStory(t *testing.T, start time.Time, won bool) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		st := newSLAStack(t, d, start)
		g := stripetest.New(42, stripetest.WithClock(st.clock.Now))
		evs := g.Chargeback(start, stripetest.ChargebackOptions{Won: won})
		sawPaused := false
		for _, ev := range evs {
			st.sweepUntil(ev.Created)
			st.deliver(ev)
			if c, ok := st.disputeCase(); ok && c.State == "under_review" {
				if c.SLA.Role != "paused" {
					t.Errorf("under review after %s: sla role %q, want paused", ev.Type, c.SLA.Role)
				}
				sawPaused = true
			}
		}
		st.sweepUntil(st.clock.Now().Add(30 * 24 * time.Hour))
		c, ok := st.disputeCase()
		if !ok {
			t.Fatal("no dispute case")
		}
		want := map[bool]string{true: "won", false: "lost"}[won]
		if c.State != want || c.SLA.Role != "stopped" || !sawPaused {
			t.Fatalf("dispute case %s (role %s), want %s after under_review (seen: %v)", c.State, c.SLA.Role, want, sawPaused)
		}
		if c.SLA.ResolutionBreachedAt != nil {
			t.Fatalf("resolution breached at %s", *c.SLA.ResolutionBreachedAt)
		}
		for _, e := range c.Timeline {
			if e.Type == cases.EntrySLABreached && strings.Contains(e.Summary, "resolution") {
				t.Fatalf("resolution breach on the timeline: %s", e.Summary)
			}
		}
	})
}

// TestDisputeOpenedAfterItsDeadline: a chargeback whose events reach
// Recourse only a month after the dispute opened (past its evidence due_by:
// a webhook endpoint added late, a replay) opens a case that is breached
// once, "opened after the deadline" — not again by any sweep or later event.
func TestDisputeOpenedAfterItsDeadline(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		st := newSLAStack(t, d, start)
		g := stripetest.New(7, stripetest.WithClock(st.clock.Now))
		evs := g.Chargeback(start, stripetest.ChargebackOptions{NoResponse: true})
		late := false
		for _, ev := range evs {
			if strings.HasPrefix(ev.Type, "charge.dispute.") && !late {
				st.sweepUntil(ev.Created.Add(30 * 24 * time.Hour))
				st.deliver(ev)
				late = true
				c, ok := st.disputeCase()
				if !ok || !c.SLA.Breached || c.SLA.ResolutionBreachedAt == nil {
					t.Fatalf("dispute opened after its deadline: %+v", c)
				}
				st.sweepUntil(st.clock.Now().Add(10 * 24 * time.Hour))
				continue
			}
			st.sweepUntil(ev.Created)
			st.deliver(ev)
		}
		st.sweepUntil(st.clock.Now().Add(10 * 24 * time.Hour))
		c, _ := st.disputeCase()
		var breaches []string
		for _, e := range c.Timeline {
			if e.Type == cases.EntrySLABreached {
				breaches = append(breaches, e.Summary)
			}
		}
		if len(breaches) != 1 || !strings.Contains(breaches[0], "opened after the deadline") {
			t.Fatalf("breach entries %q, want one, opened after the deadline", breaches)
		}
		if c.State != "lost" {
			t.Fatalf("state %s", c.State)
		}
	})
}
