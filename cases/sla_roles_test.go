package cases

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// TestSLARolesDeclared: every state of every kind has its SLA role declared
// beside the FSM; closed states are stopped, open ones are not, and cases
// start with running clocks.
func TestSLARolesDeclared(t *testing.T) {
	t.Parallel()
	for _, lc := range Lifecycles() {
		t.Run(string(lc.Kind), func(t *testing.T) {
			states := lc.States()
			for _, st := range states {
				r, ok := lc.SLA[st]
				if !ok {
					t.Fatalf("state %s has no SLA role", st)
				}
				if !slices.Contains(SLARoles(), r) {
					t.Fatalf("state %s: unknown SLA role %q", st, r)
				}
				if lc.IsClosed(st) != (r == SLAStopped) {
					t.Errorf("state %s (closed %v) has role %s: closed states, and only they, are stopped", st, lc.IsClosed(st), r)
				}
			}
			for st := range lc.SLA {
				if !slices.Contains(states, st) {
					t.Errorf("SLA role declared for %s, which is not a state", st)
				}
			}
			for _, st := range []string{lc.Initial, lc.InquiryInitial} {
				if st != "" && lc.RoleOf(st) != SLARunning {
					t.Errorf("initial state %s is %s; a new case's clocks run", st, lc.RoleOf(st))
				}
			}
		})
	}
	if r := mustLifecycle(KindDispute).RoleOf("under_review"); r != SLAPaused {
		t.Fatalf("a dispute under review is %s, want paused", r)
	}
}

// TestFollowRole checks the clock arithmetic on its own: pausing records
// the time, resuming adds exactly the paused time to both due times, and a
// dispute's resolution stays pinned to its evidence deadline.
func TestFollowRole(t *testing.T) {
	t.Parallel()
	p := DefaultSLAPolicy()
	c := Case{Kind: KindRefundRequest, State: "new", CreatedAt: t0,
		SLA: SLA{FirstResponseDue: t0.Add(24 * time.Hour), ResolutionDue: t0.Add(72 * time.Hour)}}
	p.followRole(&c, t0)
	if c.SLA.Role != SLARunning || c.SLA.PausedAt != nil {
		t.Fatalf("new: %+v", c.SLA)
	}
	c.State = "waiting_on_customer"
	p.followRole(&c, t0.Add(time.Hour))
	p.followRole(&c, t0.Add(5*time.Hour)) // idempotent: still paused since 1h
	if c.SLA.Role != SLAPaused || c.SLA.PausedAt == nil || !c.SLA.PausedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("paused: %+v", c.SLA)
	}
	c.State = "in_progress"
	p.followRole(&c, t0.Add(31*time.Hour+1500*time.Millisecond))
	paused := 30*time.Hour + 1500*time.Millisecond
	if c.SLA.Role != SLARunning || c.SLA.PausedAt != nil || c.SLA.PausedTotal.D() != paused ||
		!c.SLA.FirstResponseDue.Equal(t0.Add(24*time.Hour+paused)) || !c.SLA.ResolutionDue.Equal(t0.Add(72*time.Hour+paused)) {
		t.Fatalf("resumed: %+v", c.SLA)
	}

	due := t0.Add(10 * 24 * time.Hour)
	d := Case{Kind: KindDispute, State: "warning_under_review", CreatedAt: t0, EvidenceDueBy: &due,
		SLA: SLA{FirstResponseDue: t0.Add(4 * time.Hour), ResolutionDue: due.Add(-48 * time.Hour)}}
	p.followRole(&d, t0.Add(24*time.Hour))
	d.State = "needs_response"
	p.followRole(&d, t0.Add(9*24*time.Hour))
	if !d.SLA.ResolutionDue.Equal(due.Add(-48*time.Hour)) || !d.SLA.FirstResponseDue.Equal(due.Add(-48*time.Hour)) {
		t.Fatalf("dispute resumed: resolution %v first response %v; both pinned to due_by − 48h %v",
			d.SLA.ResolutionDue, d.SLA.FirstResponseDue, due.Add(-48*time.Hour))
	}
}

// getCase reads a case over HTTP.
func (a *api) getCase(id string) Case {
	a.t.Helper()
	return decodeCase(a.t, a.want(a.do(auth.RoleSupervisor, "GET", "/cases/"+id, nil), http.StatusOK))
}

// transition fires an agent event over HTTP.
func (a *api) transition(role auth.Role, id, event string) Case {
	a.t.Helper()
	return decodeCase(a.t, a.want(a.do(role, "POST", "/cases/"+id+"/transitions", map[string]any{"event": event}), http.StatusOK))
}

// sweep runs the SLA sweeper and checks how many breaches it marked.
func (a *api) sweep(want int, why string) {
	a.t.Helper()
	n, err := a.f.svc.SweepSLAs(context.Background())
	if err != nil {
		a.t.Fatalf("sweep (%s): %v", why, err)
	}
	if n != want {
		a.t.Fatalf("sweep (%s) marked %d breaches, want %d", why, n, want)
	}
}

// breachEntries returns the sla_breached entries of a case, over HTTP.
func (a *api) breachEntries(id string) []TimelineEntry {
	a.t.Helper()
	var body struct {
		Data []TimelineEntry `json:"data"`
	}
	r := a.want(a.do(auth.RoleSupervisor, "GET", "/cases/"+id+"/timeline", nil), http.StatusOK)
	if err := json.Unmarshal(r.body, &body); err != nil {
		a.t.Fatal(err)
	}
	var out []TimelineEntry
	for _, e := range body.Data {
		if e.Type == EntrySLABreached {
			out = append(out, e)
		}
	}
	return out
}

// TestSLAPausedTimeAddedBack: over HTTP, a billing inquiry waiting on the
// customer does not breach however long it waits; when the customer replies
// the time spent waiting is added back to its due times exactly, and it
// breaches just after the moved due time, not just before.
func TestSLAPausedTimeAddedBack(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		c := a.create(auth.RoleAgent, inquiryBody("Why was I charged twice?")) // normal: 24h / 3d
		if c.SLA.Role != SLARunning || c.SLA.PausedAt != nil || c.SLA.PausedTotal != 0 {
			t.Fatalf("new case clocks: %+v", c.SLA)
		}
		resDue := c.SLA.ResolutionDue
		if !resDue.Equal(t0.Add(72 * time.Hour)) {
			t.Fatalf("resolution due %v", resDue)
		}

		a.f.clock.Advance(time.Hour)
		c = a.transition(auth.RoleAgent, c.ID, "await_customer") // also the first response
		if c.SLA.Role != SLAPaused || c.SLA.PausedAt == nil || !c.SLA.PausedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("waiting on the customer: %+v", c.SLA)
		}
		// Ten days of waiting: far past the 3-day resolution due time, yet
		// nothing breaches and the case is not "due soon".
		for day := 1; day <= 10; day++ {
			a.f.clock.Set(t0.Add(time.Duration(day) * 24 * time.Hour))
			a.sweep(0, "paused")
		}
		if ids := a.walk("sla=due_soon", 50); slices.Contains(ids, c.ID) {
			t.Fatal("a paused case is listed as due soon")
		}
		if got := a.getCase(c.ID); got.SLA.Breached || got.SLA.Role != SLAPaused {
			t.Fatalf("after 10 days paused: %+v", got.SLA)
		}

		resume := t0.Add(10*24*time.Hour + 30*time.Minute + 250*time.Millisecond)
		a.f.clock.Set(resume)
		c = a.transition(auth.RoleAgent, c.ID, "customer_replied")
		paused := resume.Sub(t0.Add(time.Hour))
		if c.SLA.Role != SLARunning || c.SLA.PausedAt != nil || c.SLA.PausedTotal.D() != paused {
			t.Fatalf("resumed: %+v (paused %v)", c.SLA, paused)
		}
		if want := resDue.Add(paused); !c.SLA.ResolutionDue.Equal(want) {
			t.Fatalf("resolution due %v, want %v + %v = %v", c.SLA.ResolutionDue, resDue, paused, want)
		}
		got := a.getCase(c.ID) // as stored
		if !got.SLA.ResolutionDue.Equal(c.SLA.ResolutionDue) || got.SLA.PausedTotal != c.SLA.PausedTotal {
			t.Fatalf("stored clocks %+v, answered %+v", got.SLA, c.SLA)
		}
		m := a.want(a.do(auth.RoleAgent, "GET", "/cases/"+c.ID, nil), http.StatusOK).json(t)
		sla := m["sla"].(map[string]any)
		if sla["role"] != "running" || sla["paused_at"] != nil || sla["paused_total"] != paused.String() {
			t.Fatalf("sla JSON %v", sla)
		}

		a.f.clock.Set(c.SLA.ResolutionDue.Add(-time.Second))
		a.sweep(0, "a second before the moved due time")
		a.f.clock.Set(c.SLA.ResolutionDue)
		a.sweep(0, "at the moved due time")
		a.f.clock.Set(c.SLA.ResolutionDue.Add(time.Second))
		a.sweep(1, "a second after the moved due time")
		got = a.getCase(c.ID)
		if !got.SLA.Breached || got.SLA.ResolutionBreachedAt == nil || got.SLA.FirstResponseBreachedAt != nil {
			t.Fatalf("after the moved due time: %+v", got.SLA)
		}
		if n := len(a.breachEntries(c.ID)); n != 1 {
			t.Fatalf("%d breach entries", n)
		}
	})
}

// TestSLAReopenAndStop: a closed (stopped) case never breaches; reopening it
// starts fresh clocks, with no paused time carried over.
func TestSLAReopenAndStop(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		c := a.create(auth.RoleAgent, map[string]any{"kind": "refund_request", "channel": "chat", "title": "Refund please",
			"links": map[string]any{"charge": "ch_reopen"}})
		a.f.clock.Advance(2 * time.Hour)
		c = a.transition(auth.RoleAgent, c.ID, "await_customer")
		a.f.clock.Advance(5 * time.Hour)
		c = a.transition(auth.RoleAgent, c.ID, "decline")
		if c.Status != StatusClosed || c.SLA.Role != SLAStopped || c.SLA.PausedAt == nil {
			t.Fatalf("declined: %s %+v", c.Status, c.SLA)
		}
		a.f.clock.Advance(30 * 24 * time.Hour)
		a.sweep(0, "closed for 30 days")

		reopenAt := a.f.clock.Now()
		c = a.transition(auth.RoleAgent, c.ID, "reopen")
		if c.SLA.Role != SLARunning || c.SLA.PausedAt != nil || c.SLA.PausedTotal != 0 || c.SLA.Breached ||
			!c.SLA.ResolutionDue.Equal(reopenAt.Add(72*time.Hour)) {
			t.Fatalf("reopened: fresh clocks from %v expected, got %+v", reopenAt, c.SLA)
		}
		a.f.clock.Set(c.SLA.ResolutionDue.Add(-time.Second))
		a.sweep(0, "a second before the reopened case's resolution due time (the reopening agent responded)")
		a.f.clock.Set(c.SLA.ResolutionDue.Add(time.Second))
		a.sweep(1, "resolution of the reopened case")
	})
}

// TestDisputeUnderReviewNeverBreaches: a dispute whose evidence was
// submitted sits under_review for 70 days (the issuer decides) without a
// breach; the decision closes it, still without one.
func TestDisputeUnderReviewNeverBreaches(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		dp := dispute("dp_review", "needs_response") // evidence due t0+10d: resolution due t0+8d
		a.f.mustApply(change(evID(), "charge.dispute.created", t0, dp))
		c := a.f.only(KindDispute, "dp_review")
		a.f.clock.Advance(time.Hour)
		a.want(a.do(auth.RoleAnalyst, "POST", "/cases/"+c.ID+"/notes", map[string]any{"body": "gathering evidence"}), http.StatusCreated)
		a.sweep(0, "answered within the hour")
		a.f.clock.Set(t0.Add(3 * 24 * time.Hour))
		c = a.transition(auth.RoleAnalyst, c.ID, "start_evidence")
		c = a.transition(auth.RoleAnalyst, c.ID, "submit_evidence")
		if c.State != "under_review" || c.SLA.Role != SLAPaused {
			t.Fatalf("submitted: %s %+v", c.State, c.SLA)
		}
		// Stripe confirms the submission; the case stays paused.
		dp.Status = "under_review"
		a.f.mirror.put(dp)
		a.f.clock.Advance(time.Minute)
		a.f.mustApply(change(evID(), "charge.dispute.updated", a.f.clock.Now(), dp))
		for day := 4; day <= 73; day++ {
			a.f.clock.Set(t0.Add(time.Duration(day) * 24 * time.Hour))
			a.sweep(0, "under review")
		}
		got := a.getCase(c.ID)
		if got.State != "under_review" || got.SLA.Breached || got.SLA.Role != SLAPaused || got.SLA.PausedAt == nil {
			t.Fatalf("after 70 days under review: %s %+v", got.State, got.SLA)
		}
		dp.Status = "won"
		a.f.mirror.put(dp)
		a.f.mustApply(change(evID(), "charge.dispute.closed", a.f.clock.Now(), dp))
		got = a.getCase(c.ID)
		wantState(t, got, "won", StatusClosed)
		if got.SLA.Breached || got.SLA.Role != SLAStopped {
			t.Fatalf("won: %+v", got.SLA)
		}
		a.f.clock.Advance(30 * 24 * time.Hour)
		a.sweep(0, "won")
		if n := len(a.breachEntries(c.ID)); n != 0 {
			t.Fatalf("%d breach entries on a dispute that never missed anything", n)
		}
		// The list filters agree.
		if ids := a.walk("sla=breached", 50); len(ids) != 0 {
			t.Fatalf("breached cases %v", ids)
		}
	})
}

// TestInquiryResumesPinnedToTheDeadline: an inquiry answered (paused) and
// then escalated to a chargeback resumes with its resolution due pinned to
// the chargeback's evidence deadline, not pushed past it by the pause.
func TestInquiryResumesPinnedToTheDeadline(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		dp := dispute("dp_inq", "warning_needs_response")
		a.f.mustApply(change(evID(), "charge.dispute.created", t0, dp))
		c := a.f.only(KindDispute, "dp_inq")
		a.f.clock.Advance(time.Hour)
		c = a.transition(auth.RoleAnalyst, c.ID, "submit_inquiry_response")
		if c.SLA.Role != SLAPaused {
			t.Fatalf("inquiry answered: %+v", c.SLA)
		}
		a.f.clock.Set(t0.Add(20 * 24 * time.Hour))
		a.sweep(0, "inquiry with the issuer")
		due := t0.Add(30 * 24 * time.Hour)
		dp.Status, dp.EvidenceDueBy = "needs_response", &due
		a.f.mirror.put(dp)
		a.f.mustApply(change(evID(), "charge.dispute.updated", a.f.clock.Now(), dp))
		got := a.getCase(c.ID)
		if got.State != "needs_response" || got.SLA.Role != SLARunning || got.SLA.PausedAt != nil {
			t.Fatalf("escalated: %s %+v", got.State, got.SLA)
		}
		if want := due.Add(-48 * time.Hour); !got.SLA.ResolutionDue.Equal(want) {
			t.Fatalf("resolution due %v, want due_by − 48h = %v", got.SLA.ResolutionDue, want)
		}
		a.f.clock.Set(due.Add(-48*time.Hour - time.Second))
		a.sweep(0, "just before the chargeback's resolution due time")
		a.f.clock.Set(due.Add(-48*time.Hour + time.Second))
		a.sweep(1, "just after it")
	})
}

// TestOpenedAfterTheDeadline: a dispute first seen after its evidence
// deadline opens breached, once, "opened after the deadline"; no sweep or
// later event marks it again. One first seen under review (evidence already
// with the issuer) is paused, not breached.
func TestOpenedAfterTheDeadline(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		a.f.clock.Set(t0.Add(40 * 24 * time.Hour))
		late := dispute("dp_late", "needs_response") // due_by t0+10d: 30 days ago
		a.f.mustApply(change(evID(), "charge.dispute.updated", a.f.clock.Now(), late))
		c := a.f.only(KindDispute, "dp_late")
		got := a.getCase(c.ID)
		now := a.f.clock.Now()
		if !got.SLA.Breached || got.SLA.ResolutionBreachedAt == nil || !got.SLA.ResolutionBreachedAt.Equal(now) ||
			got.SLA.Role != SLARunning {
			t.Fatalf("opened after the deadline: %+v", got.SLA)
		}
		entries := a.breachEntries(c.ID)
		if len(entries) != 1 || !strings.Contains(entries[0].Summary, "opened after the deadline") ||
			entries[0].Actor != SystemActor {
			t.Fatalf("breach entries %+v", entries)
		}
		if got.Priority != PriorityUrgent {
			t.Fatalf("priority %s", got.Priority) // a past deadline is urgent already; no escalation on top
		}
		for i := 0; i < 5; i++ {
			a.f.clock.Advance(24 * time.Hour)
			a.sweep(0, "already marked")
			a.f.mustApply(change(evID(), "charge.dispute.updated", a.f.clock.Now(), late))
		}
		if n := len(a.breachEntries(c.ID)); n != 1 {
			t.Fatalf("%d breach entries, want 1", n)
		}
		var audits int64
		d.Gorm.Table("audit_log").Where("action = 'case.sla_breach' AND case_id = ?", c.ID).Count(&audits)
		if audits != 1 {
			t.Fatalf("%d breach audit entries, want 1", audits)
		}

		reviewed := dispute("dp_late_review", "under_review")
		a.f.mustApply(change(evID(), "charge.dispute.updated", a.f.clock.Now(), reviewed))
		r := a.f.only(KindDispute, "dp_late_review")
		if r.SLA.Breached || r.SLA.Role != SLAPaused {
			t.Fatalf("first seen under review after the deadline: %+v", r.SLA)
		}
		a.f.clock.Advance(60 * 24 * time.Hour)
		a.sweep(0, "under review")
		if n := len(a.breachEntries(r.ID)); n != 0 {
			t.Fatalf("%d breach entries on a dispute under review", n)
		}
	})
}

// TestCaseKindsShowSLARoles: GET /case-kinds gives every state its SLA role
// and the Mermaid diagrams style states by role.
func TestCaseKindsShowSLARoles(t *testing.T) {
	t.Parallel()
	a := newAPI(t, dbtest.Open(t, db.SQLite))
	var body struct {
		Data []struct {
			Kind     Kind               `json:"kind"`
			States   []string           `json:"states"`
			SLARoles map[string]SLARole `json:"sla_roles"`
			Mermaid  string             `json:"mermaid"`
		} `json:"data"`
	}
	r := a.want(a.do(auth.RoleAgent, "GET", "/case-kinds", nil), http.StatusOK)
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Data) != len(Kinds()) {
		t.Fatalf("%d kinds", len(body.Data))
	}
	for _, k := range body.Data {
		for _, st := range k.States {
			if k.SLARoles[st] == "" {
				t.Errorf("%s: state %s has no sla role", k.Kind, st)
			}
		}
		if k.Kind == KindDispute {
			if k.SLARoles["under_review"] != SLAPaused || k.SLARoles["needs_response"] != SLARunning || k.SLARoles["won"] != SLAStopped {
				t.Errorf("dispute roles %v", k.SLARoles)
			}
			if !strings.Contains(k.Mermaid, "class under_review, warning_under_review paused") ||
				!strings.Contains(k.Mermaid, "classDef paused") {
				t.Errorf("dispute diagram does not show SLA roles:\n%s", k.Mermaid)
			}
		}
	}
}

// TestSweepStopsUntrackedPausedClocks: a case in a paused state whose row
// does not say so (written before its clocks were tracked) is not marked
// breached by the sweeper; its clocks are stopped instead, and it then
// resumes like any other.
func TestSweepStopsUntrackedPausedClocks(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		c := a.create(auth.RoleAgent, inquiryBody("Invoice question"))
		c = a.transition(auth.RoleAgent, c.ID, "await_customer")
		if err := d.Gorm.Exec("UPDATE cases SET sla_paused_at = NULL WHERE id = ?", c.ID).Error; err != nil {
			t.Fatal(err)
		}
		a.f.clock.Advance(5 * 24 * time.Hour)
		a.sweep(0, "untracked paused case past its due times")
		got := a.getCase(c.ID)
		if got.SLA.Breached || got.SLA.PausedAt == nil || !got.SLA.PausedAt.Equal(a.f.clock.Now()) {
			t.Fatalf("after the sweep: %+v", got.SLA)
		}
		a.f.clock.Advance(24 * time.Hour)
		got = a.transition(auth.RoleAgent, c.ID, "customer_replied")
		if got.SLA.PausedTotal.D() != 24*time.Hour || !got.SLA.ResolutionDue.Equal(c.SLA.ResolutionDue.Add(24*time.Hour)) {
			t.Fatalf("resumed: %+v", got.SLA)
		}
	})
}
