package cases

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

func TestSLAPolicyConfig(t *testing.T) {
	t.Parallel()
	def := DefaultSLAPolicy()
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds() {
		for _, p := range Priorities() {
			tg := def.Kinds[k].Targets[p]
			if tg.FirstResponse <= 0 || tg.Resolution < tg.FirstResponse {
				t.Errorf("%s/%s: %+v", k, p, tg)
			}
		}
	}
	b, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"dispute_margin":"48h0m0s"`) {
		t.Fatalf("durations are not strings: %s", b)
	}
	// An operator file overrides a part; Normalize fills in the rest.
	p := DefaultSLAPolicy()
	p.Kinds = nil
	if err := json.Unmarshal([]byte(`{"kinds":{"dispute":{"targets":{"high":{"first_response":"30m"}},"on_breach":{"team":"finance"}}},"due_soon":"2h"}`), &p); err != nil {
		t.Fatal(err)
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	hi := p.Kinds[KindDispute].Targets[PriorityHigh]
	if hi.FirstResponse.D() != 30*time.Minute || hi.Resolution != def.Kinds[KindDispute].Targets[PriorityHigh].Resolution {
		t.Fatalf("merged target %+v", hi)
	}
	if p.Kinds[KindDispute].OnBreach.Team != TeamFinance || p.DueSoon.D() != 2*time.Hour || p.Kinds[KindRefundRequest].Targets == nil {
		t.Fatalf("merged policy %+v", p)
	}
	bad := DefaultSLAPolicy()
	if err := json.Unmarshal([]byte(`{"dispute_margin":"two days"}`), &bad); err == nil {
		t.Fatal("bad duration accepted")
	}
	bad = DefaultSLAPolicy()
	bad.Kinds["nonsense"] = KindSLA{}
	if bad.Validate() == nil {
		t.Fatal("unknown kind accepted")
	}
}

func TestDisputeResolutionDue(t *testing.T) {
	t.Parallel()
	p := DefaultSLAPolicy()
	now := t0
	for _, tc := range []struct {
		left, want time.Duration // due_by - now, resolution_due - now
	}{
		{10 * 24 * time.Hour, 8 * 24 * time.Hour}, // due_by - 48h
		{96 * time.Hour, 48 * time.Hour},
		{48 * time.Hour, 24 * time.Hour}, // less than twice the margin left: half
		{2 * time.Hour, time.Hour},
		{-time.Hour, -time.Hour}, // already past: due_by itself
	} {
		due := now.Add(tc.left)
		got := p.disputeResolutionDue(due, now)
		if !got.Equal(now.Add(tc.want)) || got.After(due) {
			t.Errorf("due_by in %v: resolution due in %v, want %v", tc.left, got.Sub(now), tc.want)
		}
	}
}

func TestSweepSLAs(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		agent := principalOf("alice", auth.RoleAgent)
		open := func(title string) Case {
			c, err := f.svc.OpenManual(ctx, agent, ManualCase{Kind: KindBillingInquiry, Channel: ChannelEmail, Title: title})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		quiet := open("nobody answers") // normal: first response 24h, resolution 3d
		answered := open("answered in time")
		closed := open("closed quickly")
		if _, err := f.svc.AddNote(ctx, agent, answered.ID, "looking into it"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Transition(ctx, agent, closed.ID, TransitionRequest{Event: "resolve"}); err != nil {
			t.Fatal(err)
		}
		if n, err := f.svc.SweepSLAs(ctx); err != nil || n != 0 {
			t.Fatalf("early sweep: %d, %v", n, err)
		}
		f.clock.Advance(25 * time.Hour)
		n, err := f.svc.SweepSLAs(ctx)
		if err != nil || n != 1 {
			t.Fatalf("sweep after 25h: %d, %v", n, err)
		}
		c, _ := f.svc.Get(ctx, quiet.ID)
		if !c.SLA.Breached || c.SLA.FirstResponseBreachedAt == nil || c.SLA.ResolutionBreachedAt != nil || c.Priority != PriorityHigh {
			t.Fatalf("after first-response breach: %+v", c)
		}
		tl := f.timeline(c.ID)
		last := tl[len(tl)-1]
		if last.Type != EntrySLABreached || last.Actor != SystemActor || last.ActorType != ActorSystem ||
			!strings.Contains(last.Summary, "priority normal → high") {
			t.Fatalf("breach entry %+v", last)
		}
		if got := gauge(t, f.reg, "recourse_case_sla_breaches_total", "billing_inquiry", "first_response"); got != 1 {
			t.Fatalf("breach counter %v", got)
		}
		// Idempotent.
		if n, _ := f.svc.SweepSLAs(ctx); n != 0 {
			t.Fatalf("second sweep marked %d", n)
		}
		// Resolution: both open cases breach it after 3 days; the closed one does not.
		f.clock.Advance(48 * time.Hour)
		if n, err := f.svc.SweepSLAs(ctx); err != nil || n != 2 {
			t.Fatalf("resolution sweep: %d, %v", n, err)
		}
		c, _ = f.svc.Get(ctx, quiet.ID)
		if c.Priority != PriorityUrgent || c.SLA.ResolutionBreachedAt == nil {
			t.Fatalf("after resolution breach: %+v", c)
		}
		if cl, _ := f.svc.Get(ctx, closed.ID); cl.SLA.Breached {
			t.Fatal("closed case marked breached")
		}
		if a, _ := f.svc.Get(ctx, answered.ID); a.SLA.FirstResponseBreachedAt != nil || a.SLA.ResolutionBreachedAt == nil {
			t.Fatalf("answered case: %+v", a.SLA)
		}
		// Metrics: gauges read at scrape time from the registry.
		if got := gauge(t, f.reg, "recourse_case_sla_breaches_total", "billing_inquiry", "resolution"); got != 2 {
			t.Fatalf("resolution breaches %v", got)
		}
		for kind, want := range map[string]float64{"billing_inquiry": 2, "dispute": 0, "cancellation": 0} {
			if got := gauge(t, f.reg, "recourse_cases_open_breached", kind); got != want {
				t.Errorf("recourse_cases_open_breached{kind=%q} = %v, want %v", kind, got, want)
			}
		}
		if got := gauge(t, f.reg, "recourse_cases_open", "billing_inquiry"); got != 2 {
			t.Errorf("recourse_cases_open{billing_inquiry} = %v", got)
		}
		var audits int64
		d.Gorm.Table("audit_log").Where("action = 'case.sla_breach' AND actor = 'system'").Count(&audits)
		if audits != 3 {
			t.Fatalf("%d breach audits", audits)
		}
	})
}

func TestSweepEscalatesToTeam(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		pol := DefaultSLAPolicy()
		ks := pol.Kinds[KindDispute]
		ks.OnBreach = Escalation{Team: TeamFinance}
		pol.Kinds[KindDispute] = ks
		f := newFixture(t, d, fixtureOpts{sla: &pol})
		ctx := context.Background()
		dp := dispute("dp_sla", "needs_response")
		f.mustApply(change(evID(), "charge.dispute.created", t0, dp))
		c := f.only(KindDispute, "dp_sla")
		if _, err := f.svc.Assign(ctx, principalOf("sam", auth.RoleSupervisor), c.ID, AssignRequest{Assignee: strp("ana")}); err != nil {
			t.Fatal(err)
		}
		// Resolution is due 48h before the evidence deadline.
		f.clock.Set(dp.EvidenceDueBy.Add(-47 * time.Hour))
		if n, err := f.svc.SweepSLAs(ctx); err != nil || n != 2 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		c = f.only(KindDispute, "dp_sla")
		if c.Team != TeamFinance || c.Assignee != nil || c.Priority != PriorityHigh {
			t.Fatalf("escalation: team %s assignee %v priority %s", c.Team, c.Assignee, c.Priority)
		}
	})
}

func TestRunStops(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	f := newFixture(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.svc.Run(ctx, 10*time.Millisecond)
		close(done)
	}()
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// gauge reads one sample (counter or gauge) of name with label values, in
// label order, from reg; 0 when absent.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			lp := m.GetLabel()
			if len(lp) != len(labels) {
				continue
			}
			// Gather sorts labels by name: kind < sla.
			for i, l := range lp {
				if l.GetValue() != labels[i] {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// TestSLAPolicyYAML decodes the `sla` section of an operator's policy file
// the way the wiring does (yaml.v3, over the defaults, then Normalize).
func TestSLAPolicyYAML(t *testing.T) {
	t.Parallel()
	const doc = `
kinds:
  payment_failure:
    targets:
      urgent: {first_response: 30m, resolution: 12h}
    on_breach: {bump_priority: false, team: finance}
dispute_margin: 72h
priority:
  dispute_urgent_amount: 50000
`
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &node); err != nil {
		t.Fatal(err)
	}
	p := DefaultSLAPolicy()
	if err := node.Decode(&p); err != nil {
		t.Fatal(err)
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	pf := p.Kinds[KindPaymentFailure]
	if pf.Targets[PriorityUrgent].FirstResponse.D() != 30*time.Minute || pf.Targets[PriorityNormal].Resolution.D() != 7*24*time.Hour ||
		pf.OnBreach.Team != TeamFinance || pf.OnBreach.BumpPriority {
		t.Fatalf("payment_failure policy %+v", pf)
	}
	if p.DisputeMargin.D() != 72*time.Hour || p.Priority.DisputeUrgentAmount != 50000 || p.Priority.DisputeUrgentWithin.D() != 72*time.Hour {
		t.Fatalf("policy %+v", p)
	}
	if len(p.Kinds) != len(Kinds()) {
		t.Fatalf("%d kinds after normalising", len(p.Kinds))
	}
}
