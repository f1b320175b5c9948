package cases

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/sweep"
)

// sweepBatch is how many cases one sweep transaction marks.
const sweepBatch = 200

// SLA names, as metric labels and on the timeline.
const (
	slaFirstResponse = "first_response"
	slaResolution    = "resolution"
)

// SweepSLAs marks every open case whose clocks run (its state's SLA role is
// running) and whose first-response or resolution due time has passed and
// is not yet marked — never a paused or stopped one: it sets the breach time (and the
// case's breached flag), writes an sla_breached entry (actor system) on the
// timeline and in the audit log, escalates per the kind's policy (priority
// bump and/or a move to a team), and counts the breach in
// recourse_case_sla_breaches_total{kind,sla}. It returns how many breaches it
// marked. Each breach is marked once, even with several sweepers running
// (rows are locked with SKIP LOCKED on PostgreSQL and re-checked by version).
func (s *Service) SweepSLAs(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, cases, err := s.sweepOnce(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if cases < sweepBatch || n == 0 {
			break
		}
	}
	if err := s.announceDueSoon(ctx); err != nil {
		return total, err
	}
	return total, ctx.Err()
}

// announceDueSoon appends sla.due_soon for each running SLA due within the
// policy's due-soon window (sla.due_soon). A sweep reads only the cases the
// last one could not have seen (due past its window, or changed since);
// after a restart it reads the whole window, and the events' keys make a
// repeat write nothing.
func (s *Service) announceDueSoon(ctx context.Context) error {
	if s.sla.DueSoon <= 0 {
		return nil
	}
	s.dueSoon.Lock()
	defer s.dueSoon.Unlock()
	now := s.clock.Now()
	to := now.Add(s.sla.DueSoon.D())
	in := func(t time.Time) bool { return t.After(now) && !t.After(to) }
	after := ""
	for ctx.Err() == nil {
		var page []Case
		err := s.db.Transact(ctx, func(tx *gorm.DB) error {
			var err error
			if page, err = s.st.dueSoonCandidates(ctx, tx, now, to, s.dueSoon.upTo, s.dueSoon.since, after, sweepBatch); err != nil {
				return err
			}
			for _, c := range page {
				if c.SLA.FirstRespondedAt == nil && c.SLA.FirstResponseBreachedAt == nil && in(c.SLA.FirstResponseDue) {
					if err := announceSLA(ctx, tx, events.TypeSLADueSoon, c, slaFirstResponse, c.SLA.FirstResponseDue, now); err != nil {
						return err
					}
				}
				if c.SLA.ResolutionBreachedAt == nil && in(c.SLA.ResolutionDue) {
					if err := announceSLA(ctx, tx, events.TypeSLADueSoon, c, slaResolution, c.SLA.ResolutionDue, now); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("announce SLAs due soon: %w", err)
		}
		if len(page) < sweepBatch {
			// A second of overlap: a case written just before now is read again (its key makes that harmless).
			s.dueSoon.upTo, s.dueSoon.since = to, now.Add(-time.Second)
			return nil
		}
		after = page[len(page)-1].ID
	}
	return ctx.Err()
}

type breach struct {
	kind Kind
	sla  string
}

// sweepOnce marks one batch and returns the breaches marked and the number
// of cases it looked at.
func (s *Service) sweepOnce(ctx context.Context) (int, int, error) {
	now := s.clock.Now()
	var marked []breach
	var seen int
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		marked = marked[:0]
		cands, err := s.st.breachCandidates(ctx, tx, now, sweepBatch)
		if err != nil {
			return err
		}
		seen = len(cands)
		for _, c := range cands {
			bs, err := s.markBreach(ctx, tx, c, now)
			if err != nil {
				return err
			}
			marked = append(marked, bs...)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sweep SLAs: %w", err)
	}
	for _, b := range marked {
		s.metrics.breaches.WithLabelValues(string(b.kind), b.sla).Inc()
	}
	return len(marked), seen, nil
}

// markBreach marks c's past-due SLAs and escalates it. Only running clocks
// breach: a candidate whose state is paused or stopped (a row written before
// its clocks were tracked) has its clocks stopped now instead.
func (s *Service) markBreach(ctx context.Context, tx *gorm.DB, c Case, now time.Time) ([]breach, error) {
	next := c
	if mustLifecycle(c.Kind).RoleOf(c.State) != SLARunning {
		return nil, s.save(ctx, tx, c, &next)
	}
	var out []breach
	var parts []string
	if c.SLA.FirstRespondedAt == nil && c.SLA.FirstResponseBreachedAt == nil && c.SLA.FirstResponseDue.Before(now) {
		next.SLA.FirstResponseBreachedAt = &now
		out = append(out, breach{c.Kind, slaFirstResponse})
		parts = append(parts, BreachFirstResponse+" "+c.SLA.FirstResponseDue.UTC().Format(time.RFC3339))
	}
	if c.SLA.ResolutionBreachedAt == nil && c.SLA.ResolutionDue.Before(now) {
		next.SLA.ResolutionBreachedAt = &now
		out = append(out, breach{c.Kind, slaResolution})
		parts = append(parts, BreachResolution+" "+c.SLA.ResolutionDue.UTC().Format(time.RFC3339))
	}
	if len(out) == 0 {
		return nil, nil
	}
	rule := s.sla.Kinds[c.Kind].OnBreach
	var esc []string
	if rule.BumpPriority && c.Priority != PriorityUrgent {
		next.Priority = c.Priority.Bump()
		esc = append(esc, fmt.Sprintf("priority %s → %s", c.Priority, next.Priority))
	}
	if rule.Team != "" && rule.Team != c.Team {
		next.Team, next.Assignee = rule.Team, nil
		esc = append(esc, fmt.Sprintf("moved from %s to %s", c.Team, rule.Team))
	}
	if err := s.save(ctx, tx, c, &next); err != nil {
		return nil, err
	}
	for _, b := range out {
		due := c.SLA.ResolutionDue
		if b.sla == slaFirstResponse {
			due = c.SLA.FirstResponseDue
		}
		if err := announceSLA(ctx, tx, events.TypeSLABreached, next, b.sla, due, now); err != nil {
			return nil, err
		}
	}
	summary := "SLA breached: " + strings.Join(parts, "; ")
	if len(esc) > 0 {
		summary += " — escalated: " + strings.Join(esc, ", ")
	}
	if _, err := s.st.appendEntry(ctx, tx, TimelineEntry{CaseID: c.ID, At: now, Actor: SystemActor, ActorType: ActorSystem,
		Type: EntrySLABreached, Summary: summary}); err != nil {
		return nil, err
	}
	if err := s.audit.Record(ctx, tx, audit.Entry{Actor: SystemActor, Role: SystemActor, Action: "case.sla_breach", CaseID: c.ID,
		ObjectType: "case", ObjectID: c.ID, Before: audit.Marshal(c), After: audit.Marshal(next), Detail: summary}); err != nil {
		return nil, err
	}
	return out, nil
}

// Run sweeps SLAs now and then every interval until ctx is cancelled,
// logging failures (a failed sweep is retried at the next tick).
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	sweep.Every(ctx, interval, s.log, "cases: SLA sweep failed", "cases: SLA breaches marked", s.SweepSLAs)
}

// recordOpenedLate writes the one breach mark of a case opened after its
// deadline (see SLAPolicy.startClocks) on its timeline and in the audit log,
// inside tx, right after the case is stored. It is not counted in
// recourse_case_sla_breaches_total, which counts the sweeper's marks (after
// their commit); the case shows in recourse_cases_open_breached.
func (s *Service) recordOpenedLate(ctx context.Context, tx *gorm.DB, c Case) error {
	summary := openedLateSummary(c)
	if _, err := s.st.appendEntry(ctx, tx, TimelineEntry{CaseID: c.ID, At: c.CreatedAt, Actor: SystemActor, ActorType: ActorSystem,
		Type: EntrySLABreached, Summary: summary}); err != nil {
		return err
	}
	return s.audit.Record(ctx, tx, audit.Entry{Actor: SystemActor, Role: SystemActor, Action: "case.sla_breach", CaseID: c.ID,
		ObjectType: "case", ObjectID: c.ID, After: audit.Marshal(c), Detail: summary})
}
