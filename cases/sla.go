package cases

import (
	"fmt"
	"time"
)

// Duration is a time.Duration that reads and writes as a Go duration string
// ("48h", "90m") in JSON and YAML (through encoding.TextMarshaler).
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes d as "48h0m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 4h, 30m, 72h)", string(b))
	}
	*d = Duration(v)
	return nil
}

// SLATarget is how long a case of one kind and priority may take to get its
// first response and its resolution, counted from creation.
type SLATarget struct {
	FirstResponse Duration `json:"first_response" yaml:"first_response"`
	Resolution    Duration `json:"resolution" yaml:"resolution"`
}

// Escalation is what the sweeper does to a case when it marks a breach.
type Escalation struct {
	// BumpPriority raises the priority one step (urgent stays urgent).
	BumpPriority bool `json:"bump_priority" yaml:"bump_priority"`
	// Team, when set, moves the case to that team's queue (and unassigns it).
	Team Team `json:"team,omitempty" yaml:"team,omitempty"`
}

// KindSLA is one kind's targets per priority and its escalation on breach.
type KindSLA struct {
	Targets  map[Priority]SLATarget `json:"targets" yaml:"targets"`
	OnBreach Escalation             `json:"on_breach" yaml:"on_breach"`
	// BusinessHours counts the targets in the working time of the case
	// team's calendar (SLAPolicy.Calendars), not around the clock.
	BusinessHours bool `json:"business_hours,omitempty" yaml:"business_hours,omitempty"`
}

// PriorityRules raise a dispute's default priority.
type PriorityRules struct {
	// DisputeUrgentAmount: a dispute of at least this many minor units is
	// urgent (0 disables the rule).
	DisputeUrgentAmount int64 `json:"dispute_urgent_amount" yaml:"dispute_urgent_amount"`
	// DisputeUrgentWithin: a dispute whose evidence is due within this long
	// is urgent.
	DisputeUrgentWithin Duration `json:"dispute_urgent_within" yaml:"dispute_urgent_within"`
}

// SLAPolicy is the case SLA policy: targets per kind × priority, the dispute
// safety margin, what "due soon" means, escalation on breach and the
// priority rules. It is the `sla` section of the operator's policy file;
// decode it over DefaultSLAPolicy() and call Normalize so that what the file
// leaves out keeps its default.
type SLAPolicy struct {
	Kinds map[Kind]KindSLA `json:"kinds" yaml:"kinds"`
	// DisputeMargin: a dispute's resolution is due this long before its
	// evidence due_by (never later than due_by).
	DisputeMargin Duration `json:"dispute_margin" yaml:"dispute_margin"`
	// DueSoon is the window of the sla=due_soon list filter.
	DueSoon  Duration      `json:"due_soon" yaml:"due_soon"`
	Priority PriorityRules `json:"priority" yaml:"priority"`
	// Calendars are the teams' working times, by team; "default" serves
	// teams without one. Used by kinds with business_hours.
	Calendars map[string]*Calendar `json:"calendars,omitempty" yaml:"calendars,omitempty"`
}

// DefaultCalendar names the calendar of teams without their own.
const DefaultCalendar = "default"

// calendar is the calendar kind's targets count in for a case of team, or
// nil for around the clock.
func (p SLAPolicy) calendar(kind Kind, team Team) *Calendar {
	if !p.Kinds[kind].BusinessHours {
		return nil
	}
	c, ok := p.Calendars[string(team)]
	if !ok {
		c = p.Calendars[DefaultCalendar]
	}
	if c == nil || c.loc == nil {
		return nil
	}
	return c
}

func targets(fr, res [4]time.Duration) map[Priority]SLATarget {
	m := make(map[Priority]SLATarget, 4)
	for i, p := range Priorities() {
		m[p] = SLATarget{FirstResponse: Duration(fr[i]), Resolution: Duration(res[i])}
	}
	return m
}

// DefaultSLAPolicy returns the built-in policy. Targets are listed low,
// normal, high, urgent.
func DefaultSLAPolicy() SLAPolicy {
	const h, d = time.Hour, 24 * time.Hour
	bump := Escalation{BumpPriority: true}
	standard := KindSLA{Targets: targets([4]time.Duration{48 * h, 24 * h, 4 * h, 1 * h}, [4]time.Duration{7 * d, 3 * d, 2 * d, 1 * d}), OnBreach: bump}
	return SLAPolicy{
		Kinds: map[Kind]KindSLA{
			// A dispute's resolution follows its evidence due_by; these apply
			// when it has none.
			KindDispute:         {Targets: targets([4]time.Duration{24 * h, 8 * h, 4 * h, 1 * h}, [4]time.Duration{14 * d, 10 * d, 7 * d, 5 * d}), OnBreach: bump},
			KindFraudWarning:    {Targets: targets([4]time.Duration{24 * h, 8 * h, 2 * h, 1 * h}, [4]time.Duration{7 * d, 3 * d, 2 * d, 1 * d}), OnBreach: bump},
			KindPaymentFailure:  {Targets: targets([4]time.Duration{48 * h, 24 * h, 4 * h, 2 * h}, [4]time.Duration{14 * d, 7 * d, 3 * d, 2 * d}), OnBreach: bump},
			KindTrialConversion: {Targets: targets([4]time.Duration{24 * h, 12 * h, 4 * h, 2 * h}, [4]time.Duration{5 * d, 3 * d, 2 * d, 1 * d}), OnBreach: bump},
			KindCancellation:    standard,
			KindRefundFailure:   {Targets: targets([4]time.Duration{48 * h, 24 * h, 4 * h, 1 * h}, [4]time.Duration{7 * d, 3 * d, 2 * d, 1 * d}), OnBreach: Escalation{BumpPriority: true}},
			KindRefundRequest:   standard,
			KindBillingInquiry:  standard,
		},
		DisputeMargin: Duration(48 * h),
		DueSoon:       Duration(4 * h),
		Priority:      PriorityRules{DisputeUrgentAmount: 100_000, DisputeUrgentWithin: Duration(72 * h)},
	}
}

// Normalize fills what p leaves out from the defaults: missing kinds,
// missing priorities of a kind, zero durations.
func (p *SLAPolicy) Normalize() {
	def := DefaultSLAPolicy()
	if p.Kinds == nil {
		p.Kinds = map[Kind]KindSLA{}
	}
	for _, k := range Kinds() {
		ks, ok := p.Kinds[k]
		if !ok {
			p.Kinds[k] = def.Kinds[k]
			continue
		}
		if ks.Targets == nil {
			ks.Targets = map[Priority]SLATarget{}
		}
		for _, pr := range Priorities() {
			t := ks.Targets[pr]
			dt := def.Kinds[k].Targets[pr]
			if t.FirstResponse == 0 {
				t.FirstResponse = dt.FirstResponse
			}
			if t.Resolution == 0 {
				t.Resolution = dt.Resolution
			}
			ks.Targets[pr] = t
		}
		p.Kinds[k] = ks
	}
	for _, c := range p.Calendars {
		if c != nil && c.loc == nil {
			_ = c.compile() // Validate reports a bad calendar
		}
	}
	if p.DisputeMargin == 0 {
		p.DisputeMargin = def.DisputeMargin
	}
	if p.DueSoon == 0 {
		p.DueSoon = def.DueSoon
	}
	if p.Priority.DisputeUrgentWithin == 0 {
		p.Priority.DisputeUrgentWithin = def.Priority.DisputeUrgentWithin
	}
}

// Validate reports the first setting out of range: unknown kinds,
// priorities or teams, negative durations.
func (p SLAPolicy) Validate() error {
	for k, ks := range p.Kinds {
		if _, ok := LifecycleOf(k); !ok {
			return fmt.Errorf("sla.kinds: unknown kind %q", k)
		}
		for pr, t := range ks.Targets {
			if pr.Rank() == 0 {
				return fmt.Errorf("sla.kinds.%s.targets: unknown priority %q", k, pr)
			}
			if t.FirstResponse < 0 || t.Resolution < 0 {
				return fmt.Errorf("sla.kinds.%s.targets.%s: durations must not be negative", k, pr)
			}
		}
		if ks.OnBreach.Team != "" {
			if _, err := ParseTeam(string(ks.OnBreach.Team)); err != nil {
				return fmt.Errorf("sla.kinds.%s.on_breach.team: unknown team %q", k, ks.OnBreach.Team)
			}
		}
	}
	if p.DisputeMargin < 0 || p.DueSoon < 0 || p.Priority.DisputeUrgentWithin < 0 || p.Priority.DisputeUrgentAmount < 0 {
		return fmt.Errorf("sla: durations and amounts must not be negative")
	}
	for name, c := range p.Calendars {
		if name != DefaultCalendar {
			if _, err := ParseTeam(name); err != nil {
				return fmt.Errorf("sla.calendars: %q is neither a team nor %q", name, DefaultCalendar)
			}
		}
		if c == nil {
			return fmt.Errorf("sla.calendars.%s: empty", name)
		}
		if err := c.compile(); err != nil {
			return fmt.Errorf("sla.calendars.%s: %w", name, err)
		}
	}
	for k, ks := range p.Kinds {
		if !ks.BusinessHours {
			continue
		}
		lc, _ := LifecycleOf(k)
		if p.Calendars[string(lc.Team)] == nil && p.Calendars[DefaultCalendar] == nil {
			return fmt.Errorf("sla.kinds.%s.business_hours: no calendar for team %s and no %q calendar", k, lc.Team, DefaultCalendar)
		}
	}
	return nil
}

// target returns the policy for kind at priority (defaults when missing).
func (p SLAPolicy) target(kind Kind, pr Priority) SLATarget {
	if t, ok := p.Kinds[kind].Targets[pr]; ok && t.FirstResponse > 0 && t.Resolution > 0 {
		return t
	}
	return DefaultSLAPolicy().Kinds[kind].Targets[pr]
}

// dueTimes returns the first-response and resolution due times of a case of
// kind, team and priority created at now (in the team's working time when
// the kind counts business hours); evidenceDueBy (disputes) moves the
// resolution due time, see disputeResolutionDue.
func (p SLAPolicy) dueTimes(kind Kind, team Team, pr Priority, now time.Time, evidenceDueBy *time.Time) (time.Time, time.Time) {
	t := p.target(kind, pr)
	fr := now.Add(t.FirstResponse.D())
	res := now.Add(t.Resolution.D())
	if cal := p.calendar(kind, team); cal != nil {
		fr, res = cal.Add(now, t.FirstResponse.D()), cal.Add(now, t.Resolution.D())
	}
	if evidenceDueBy != nil && !evidenceDueBy.IsZero() {
		res = p.disputeResolutionDue(*evidenceDueBy, now)
	}
	if fr.After(res) {
		fr = res
	}
	return fr, res
}

// disputeResolutionDue is due_by minus the safety margin, never later than
// due_by; when less than twice the margin is left, half of what is left is
// kept as the margin so the due time stays ahead of now.
func (p SLAPolicy) disputeResolutionDue(dueBy, now time.Time) time.Time {
	margin := p.DisputeMargin.D()
	left := dueBy.Sub(now)
	if left <= 0 {
		return dueBy
	}
	if left < 2*margin {
		margin = left / 2
	}
	return dueBy.Add(-margin)
}

// SLARole says what a state does to a case's SLA clocks. Each kind declares
// the role of every one of its states in its lifecycle (Lifecycle.SLA).
type SLARole string

// SLA roles.
const (
	// SLARunning: the next move is ours; the clocks run and the sweeper
	// marks what falls past due.
	SLARunning SLARole = "running"
	// SLAPaused: waiting on someone else (the customer, the issuer, a
	// partner team). The clocks stop; when the case moves back to a running
	// state, the time spent paused is added to its due times. Nothing
	// breaches while paused.
	SLAPaused SLARole = "paused"
	// SLAStopped: nothing is left for us to do (every closed state). Nothing
	// breaches; a case reopened from here starts fresh clocks.
	SLAStopped SLARole = "stopped"
)

// SLARoles lists the roles in the order docs and clients show them.
func SLARoles() []SLARole { return []SLARole{SLARunning, SLAPaused, SLAStopped} }

// followRole keeps c's clocks in step with the SLA role of its state, at
// now. Entering a paused or stopped state records when the clocks stopped
// (sla.paused_at); moving from there to a running state adds the time since
// then to both due times and to sla.paused_total. A dispute's resolution due
// time stays pinned to the evidence deadline (due_by − margin): the
// provider's deadline does not wait for anybody. Every write of a case goes
// through here (Service.save), so it is idempotent.
func (p SLAPolicy) followRole(c *Case, now time.Time) {
	role := mustLifecycle(c.Kind).RoleOf(c.State)
	c.SLA.Role = role
	switch {
	case role != SLARunning && c.SLA.PausedAt == nil:
		at := now
		c.SLA.PausedAt = &at
	case role == SLARunning && c.SLA.PausedAt != nil:
		d := max(now.Sub(*c.SLA.PausedAt), 0)
		if cal := p.calendar(c.Kind, c.Team); cal != nil {
			// The due times move by the working time spent paused.
			w := cal.Between(*c.SLA.PausedAt, now)
			c.SLA.FirstResponseDue = cal.Add(c.SLA.FirstResponseDue, w)
			c.SLA.ResolutionDue = cal.Add(c.SLA.ResolutionDue, w)
		} else {
			c.SLA.FirstResponseDue = c.SLA.FirstResponseDue.Add(d)
			c.SLA.ResolutionDue = c.SLA.ResolutionDue.Add(d)
		}
		c.SLA.PausedAt = nil
		c.SLA.PausedTotal += Duration(d)
		if c.EvidenceDueBy != nil && !c.EvidenceDueBy.IsZero() {
			if pinned := p.disputeResolutionDue(*c.EvidenceDueBy, c.CreatedAt); c.SLA.ResolutionDue.After(pinned) {
				c.SLA.ResolutionDue = pinned
			}
		}
		if c.SLA.FirstResponseDue.After(c.SLA.ResolutionDue) {
			c.SLA.FirstResponseDue = c.SLA.ResolutionDue
		}
	}
}

// startClocks sets the clocks of a case about to be opened at now (its
// state, due times and evidence deadline already known) and reports whether
// it is opened after its deadline: running, and its resolution already due
// (a dispute first seen after its evidence due_by). Such a case is marked
// breached at once — both clocks, in one mark — so the sweeper never finds
// it late again: one breach, "opened after the deadline", and no escalation
// (nobody here missed anything). Record it with recordOpenedLate once the
// case is stored.
func (p SLAPolicy) startClocks(c *Case, now time.Time) bool {
	p.followRole(c, now)
	if c.SLA.Role != SLARunning || c.SLA.ResolutionBreachedAt != nil || c.SLA.ResolutionDue.After(now) {
		return false
	}
	at := now
	c.SLA.ResolutionBreachedAt = &at
	if c.SLA.FirstRespondedAt == nil && c.SLA.FirstResponseBreachedAt == nil && !c.SLA.FirstResponseDue.After(now) {
		c.SLA.FirstResponseBreachedAt = &at
	}
	c.SLA.Breached = true
	return true
}

// The phrases an sla_breached timeline entry's summary names each breached
// clock with ("SLA breached: first response was due …; resolution was due
// …"); reports count breaches by them, so they are part of the timeline's
// vocabulary.
const (
	BreachFirstResponse = "first response was due"
	BreachResolution    = "resolution was due"
)

// openedLateSummary is the timeline line of a case opened after its deadline.
func openedLateSummary(c Case) string {
	s := "SLA breached: opened after the deadline — " + BreachResolution + " " + c.SLA.ResolutionDue.UTC().Format(time.RFC3339)
	if c.EvidenceDueBy != nil {
		s += " (evidence due_by " + c.EvidenceDueBy.UTC().Format(time.RFC3339) + ")"
	}
	return s
}
