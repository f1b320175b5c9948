package cases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// BillingReader is the slice of the billing mirror cases read: related
// objects of a change, and the linked objects shown with a case. Every method
// returns an errs ENOTFOUND error for an object the mirror does not hold.
// *billing.Store satisfies it once bound to a transaction with In(tx).
type BillingReader interface {
	Customer(ctx context.Context, id string) (billing.Customer, error)
	Subscription(ctx context.Context, id string) (billing.Subscription, error)
	Invoice(ctx context.Context, id string) (billing.Invoice, error)
	Charge(ctx context.Context, id string) (billing.Charge, error)
	Dispute(ctx context.Context, id string) (billing.Dispute, error)
	InvoicesBySubscription(ctx context.Context, subID string) ([]billing.Invoice, error)
	DisputesByCharge(ctx context.Context, chargeID string) ([]billing.Dispute, error)
	FraudWarningsByCharge(ctx context.Context, chargeID string) ([]billing.FraudWarning, error)
}

// BillingBinder binds the billing mirror to a transaction (or to the root
// handle, for reads outside one). With the billing store:
//
//	func(tx *gorm.DB) cases.BillingReader { return store.In(tx) }
type BillingBinder func(tx *gorm.DB) BillingReader

// Options configure NewService.
type Options struct {
	// DB is required.
	DB *db.DB
	// Clock defaults to clock.System.
	Clock clock.Clock
	// Audit defaults to an audit log over DB.
	Audit *audit.Log
	// Billing binds the billing mirror; nil means no mirror (linked objects
	// are shown as null and related objects are treated as not mirrored).
	Billing BillingBinder
	// SLA defaults to DefaultSLAPolicy(); it is normalised and validated.
	SLA *SLAPolicy
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Registerer, when set, gets the package's collectors (see Collectors);
	// wiring passes metrics.Metrics.Registry.
	Registerer prometheus.Registerer
	// Echoes, when set, recognises provider events caused by Recourse's own
	// actions (actions.Echoes), so they land on the action's case.
	Echoes EchoFinder
}

// Service opens, moves and serves cases. It is safe for concurrent use.
type Service struct {
	db      *db.DB
	st      store
	clock   clock.Clock
	audit   *audit.Log
	billing BillingBinder
	sla     SLAPolicy
	log     *slog.Logger
	metrics *caseMetrics
	echoes  EchoFinder
	// dueSoon remembers up to which due time sla.due_soon was announced,
	// so a sweep reads only the cases that entered the window since.
	dueSoon struct {
		sync.Mutex
		upTo, since time.Time
	}
}

// NewService returns the case service. It fails when DB is missing, the SLA
// policy is invalid, or the collectors cannot be registered.
func NewService(opt Options) (*Service, error) {
	if opt.DB == nil {
		return nil, errors.New("cases: Options.DB is required")
	}
	s := &Service{db: opt.DB, st: store{dialect: opt.DB.Dialect}, clock: opt.Clock, audit: opt.Audit,
		billing: opt.Billing, log: opt.Logger, echoes: opt.Echoes}
	if s.clock == nil {
		s.clock = clock.System{}
	}
	if s.audit == nil {
		s.audit = audit.New(opt.DB, s.clock)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opt.SLA != nil {
		s.sla = *opt.SLA
	} else {
		s.sla = DefaultSLAPolicy()
	}
	s.sla.Normalize()
	if err := s.sla.Validate(); err != nil {
		return nil, fmt.Errorf("cases: %w", err)
	}
	s.metrics = newCaseMetrics(s)
	if opt.Registerer != nil {
		for _, c := range s.metrics.collectors() {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("cases: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// SLAPolicy returns the policy in force (normalised).
func (s *Service) SLAPolicy() SLAPolicy { return s.sla }

// Collectors returns the package's Prometheus collectors, for wiring that
// registers them itself instead of passing Options.Registerer.
func (s *Service) Collectors() []prometheus.Collector { return s.metrics.collectors() }

// reader returns the billing mirror bound to g, or a mirror that holds
// nothing.
func (s *Service) reader(g *gorm.DB) BillingReader {
	if s.billing == nil {
		return emptyMirror{}
	}
	return s.billing(g)
}

// Get returns case id with its allowed (agent) transitions. ENOTFOUND when
// there is none.
func (s *Service) Get(ctx context.Context, id string) (Case, error) {
	return s.st.get(ctx, s.db.Gorm, id, false)
}

// GetInTx is Get inside tx, locking the case row until tx ends (PostgreSQL).
func (s *Service) GetInTx(ctx context.Context, tx *gorm.DB, id string) (Case, error) {
	return s.st.get(ctx, tx, id, true)
}

// OpenCaseFor returns the open case of kind on subject (a provider id), if
// any, inside tx.
func (s *Service) OpenCaseFor(ctx context.Context, tx *gorm.DB, kind Kind, subject string) (Case, bool, error) {
	c, ok, err := s.st.forSubject(ctx, tx, kind, subject)
	if err != nil || !ok || !c.IsOpen() {
		return Case{}, false, err
	}
	return c, true, nil
}

// Timeline returns case id's timeline, oldest first. ENOTFOUND when the case
// does not exist.
func (s *Service) Timeline(ctx context.Context, id string) ([]TimelineEntry, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return s.st.timeline(ctx, s.db.Gorm, id)
}

// List returns one page of cases matching f. EINVALID for a cursor of
// another sort order or an unknown sort.
func (s *Service) List(ctx context.Context, f Filter, page httpx.PageRequest) (httpx.List[Case], error) {
	rows, next, err := s.st.list(ctx, s.db.Gorm, f, page, s.clock.Now(), s.sla.DueSoon.D())
	if err != nil {
		return httpx.List[Case]{}, err
	}
	if rows == nil {
		rows = []Case{}
	}
	return httpx.List[Case]{Data: rows, NextCursor: next}, nil
}

// AppendTimeline appends entry to case caseID's timeline inside tx. At
// defaults to now and CaseID to caseID. A person's entry (ActorType person)
// records the case's first response if it has none. An entry whose event id
// is already on the timeline is skipped. ENOTFOUND for an unknown case,
// EINVALID for an entry without actor, type or summary.
func (s *Service) AppendTimeline(ctx context.Context, tx *gorm.DB, caseID string, entry TimelineEntry) error {
	entry.CaseID = caseID
	if entry.At.IsZero() {
		entry.At = s.clock.Now()
	}
	entry.Summary = Redact(entry.Summary)
	if entry.Body != nil {
		b := Redact(*entry.Body)
		entry.Body = &b
	}
	if err := entry.Validate(); err != nil {
		return err
	}
	c, err := s.st.get(ctx, tx, caseID, true)
	if err != nil {
		return err
	}
	if _, err := s.st.appendEntry(ctx, tx, entry); err != nil {
		return err
	}
	if entry.ActorType == ActorPerson {
		return s.markFirstResponse(ctx, tx, c)
	}
	return nil
}

// Record is AppendTimeline for callers that know an entry by its parts
// (the actions package): actor is a person's name or "system"; eventID, if
// set, makes the entry idempotent and marks it as caused by that provider
// event. A person's entry counts as the case's first response.
func (s *Service) Record(ctx context.Context, tx *gorm.DB, caseID, actor, entryType, summary, eventID string) error {
	e := TimelineEntry{Actor: actor, ActorType: ActorPerson, Type: entryType, Summary: summary, EventID: strp(eventID)}
	switch actor {
	case SystemActor:
		e.ActorType = ActorSystem
	case StripeActor:
		e.ActorType = ActorStripe
	}
	return s.AppendTimeline(ctx, tx, caseID, e)
}

// markFirstResponse sets first_responded_at on c if it has none.
func (s *Service) markFirstResponse(ctx context.Context, tx *gorm.DB, c Case) error {
	if c.SLA.FirstRespondedAt != nil {
		return nil
	}
	next := c
	next.SLA.FirstRespondedAt = timep(s.clock.Now())
	return s.save(ctx, tx, c, &next)
}

// save writes next over prev (same id) with the version guard, bumping
// version and updated_at and keeping status, resolution and closed_at in
// step with the state.
func (s *Service) save(ctx context.Context, tx *gorm.DB, prev Case, next *Case) error {
	now := s.clock.Now()
	lc := mustLifecycle(next.Kind)
	if res, closed := lc.Closed[next.State]; closed {
		next.Status = StatusClosed
		next.Resolution = &res
		if prev.Status != StatusClosed || next.ClosedAt == nil {
			next.ClosedAt = &now
		}
	} else {
		next.Status = StatusOpen
		next.Resolution = nil
		next.ClosedAt = nil
	}
	s.sla.followRole(next, now)
	next.SLA.Breached = next.SLA.FirstResponseBreachedAt != nil || next.SLA.ResolutionBreachedAt != nil
	next.Version = prev.Version + 1
	next.UpdatedAt = now
	if err := s.st.update(ctx, tx, *next, prev.Version); err != nil {
		return err
	}
	next.AllowedTransitions = lc.Available(next.State, true)
	return nil
}

// FireInTx fires event on case caseID inside tx on behalf of actor (a
// person's name, or "system"), records the transition on the timeline with
// reason, and counts a person's transition as the first response. Unlike
// the API it may fire any of the kind's events, not only the manual ones,
// and it checks no permissions: callers (actions, disputes) apply their own
// policy. ENOTFOUND for an unknown case; ECONFLICT (illegal_transition, with
// the allowed events) when event cannot fire in the case's state.
func (s *Service) FireInTx(ctx context.Context, tx *gorm.DB, caseID, event, actor, reason string) error {
	c, err := s.st.get(ctx, tx, caseID, true)
	if err != nil {
		return err
	}
	at := ActorPerson
	if actor == SystemActor || actor == "" {
		actor, at = SystemActor, ActorSystem
	}
	_, err = s.fire(ctx, tx, c, event, actor, at, Redact(reason), false)
	return err
}

// fire moves c by event and records it; it returns the case after.
func (s *Service) fire(ctx context.Context, tx *gorm.DB, c Case, event, actor string, at ActorType, reason string, manualOnly bool) (Case, error) {
	lc := mustLifecycle(c.Kind)
	to, err := lc.Fire(ctx, c.State, event, manualOnly)
	if err != nil {
		return Case{}, err
	}
	now := s.clock.Now()
	next := c
	next.State = to
	reopened := lc.IsClosed(c.State) && !lc.IsClosed(to)
	if reopened {
		s.resetSLA(&next, now)
	}
	if at == ActorPerson && next.SLA.FirstRespondedAt == nil {
		next.SLA.FirstRespondedAt = &now
	}
	if err := s.save(ctx, tx, c, &next); err != nil {
		return Case{}, err
	}
	summary := fmt.Sprintf("%s: %s → %s", event, c.State, to)
	if reason != "" {
		summary += " — " + reason
	}
	typ := EntryTransition
	if reopened {
		typ = EntryReopened
	}
	if _, err := s.st.appendEntry(ctx, tx, TimelineEntry{CaseID: c.ID, At: now, Actor: actor, ActorType: at, Type: typ,
		Summary: summary, FromState: strp(c.State), ToState: strp(to), Transition: strp(event)}); err != nil {
		return Case{}, err
	}
	return next, nil
}

// resetSLA starts fresh SLA clocks for a reopened case.
func (s *Service) resetSLA(c *Case, now time.Time) {
	fr, res := s.sla.dueTimes(c.Kind, c.Team, c.Priority, now, c.EvidenceDueBy)
	c.SLA = SLA{FirstResponseDue: fr, ResolutionDue: res}
}

// principalActor names the principal for timelines.
func principalActor(p auth.Principal) string { return p.Actor() }

// TransitionRequest is an agent's request to fire an event.
type TransitionRequest struct {
	Event  string
	Reason string
	// Version, when set, must equal the case's version (else ECONFLICT).
	Version *int64
}

// Transition fires an agent event on case id for principal p, audited.
// Dispute cases need the disputes:work permission (EFORBIDDEN otherwise).
// ENOTFOUND, EINVALID (unknown event or bad reason), ECONFLICT for a stale
// version or an event that cannot fire now (details: state and
// allowed_transitions).
func (s *Service) Transition(ctx context.Context, p auth.Principal, id string, req TransitionRequest) (Case, error) {
	reason, err := cleanText("reason", req.Reason, maxReason, false)
	if err != nil {
		return Case{}, err
	}
	var out Case
	err = s.mutate(ctx, req.Version != nil, func(tx *gorm.DB) error {
		c, err := s.st.get(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := checkCaseAccess(p, c, true); err != nil {
			return err
		}
		if err := checkVersion(c, req.Version); err != nil {
			return err
		}
		lc := mustLifecycle(c.Kind)
		if !lc.HasEvent(req.Event) {
			return errs.Coded(errs.EINVALID, "unknown_event", "%q is not an event of %s cases", req.Event, c.Kind).
				WithDetails(map[string]any{"state": c.State, "allowed_transitions": lc.Available(c.State, true)})
		}
		next, err := s.fire(ctx, tx, c, req.Event, principalActor(p), ActorPerson, reason, true)
		if err != nil {
			return err
		}
		out = next
		return s.audit.Record(ctx, tx, audit.Entry{Action: "case.transition", CaseID: c.ID, ObjectType: "case", ObjectID: c.ID,
			Before: audit.Marshal(c), After: audit.Marshal(next), Detail: req.Event})
	})
	return out, err
}

// checkCaseAccess applies the per-object rules: transitions of dispute
// cases need disputes:work.
func checkCaseAccess(p auth.Principal, c Case, transition bool) error {
	if transition && c.Kind == KindDispute && !auth.Allowed(p.Role, auth.PermDisputesWork) {
		return errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not transition dispute cases (needs %s)", p.Role, auth.PermDisputesWork)
	}
	return nil
}

func checkVersion(c Case, v *int64) error {
	if v != nil && *v != c.Version {
		return errs.Coded(errs.ECONFLICT, "version_conflict", "case %s is at version %d, not %d", c.ID, c.Version, *v).
			WithDetails(map[string]any{"version": c.Version})
	}
	return nil
}

// mutate runs fn in a transaction. When the caller did not pin a version, a
// write that lost a race (version_conflict) is retried on fresh data a few
// times; with a pinned version the conflict is the answer.
func (s *Service) mutate(ctx context.Context, pinned bool, fn func(tx *gorm.DB) error) error {
	attempts := 3
	if pinned {
		attempts = 1
	}
	var err error
	for i := 0; i < attempts; i++ {
		err = s.db.Transact(ctx, fn)
		if e, ok := errs.As(err); !ok || e.Code != "version_conflict" {
			return err
		}
	}
	return err
}

// AssignRequest changes who works a case. Nil fields are left alone;
// Unassign clears the assignee.
type AssignRequest struct {
	Assignee *string
	Unassign bool
	Team     *Team
	// Version, when set, must equal the case's version (else ECONFLICT).
	Version *int64
}

// Assign sets the assignee and/or team of case id, audited. Assignment is
// not a response to the customer, so it does not stop the first-response
// clock. ENOTFOUND, EINVALID, ECONFLICT for a stale version.
func (s *Service) Assign(ctx context.Context, p auth.Principal, id string, req AssignRequest) (Case, error) {
	var assignee *string
	if req.Assignee != nil {
		a, err := cleanName("assignee", *req.Assignee, maxName)
		if err != nil {
			return Case{}, err
		}
		assignee = &a
	}
	if req.Team != nil {
		if _, err := ParseTeam(string(*req.Team)); err != nil {
			return Case{}, err
		}
	}
	if assignee == nil && !req.Unassign && req.Team == nil {
		return Case{}, errs.Coded(errs.EINVALID, "invalid_request", "give an assignee (or null to unassign) and/or a team")
	}
	var out Case
	err := s.mutate(ctx, req.Version != nil, func(tx *gorm.DB) error {
		c, err := s.st.get(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := checkVersion(c, req.Version); err != nil {
			return err
		}
		next := c
		if req.Unassign {
			next.Assignee = nil
		} else if assignee != nil {
			next.Assignee = assignee
		}
		if req.Team != nil {
			next.Team = *req.Team
		}
		if err := s.save(ctx, tx, c, &next); err != nil {
			return err
		}
		out = next
		who := "unassigned"
		if next.Assignee != nil {
			who = "assigned to " + *next.Assignee
		}
		summary := fmt.Sprintf("%s (team %s)", who, next.Team)
		if _, err := s.st.appendEntry(ctx, tx, TimelineEntry{CaseID: c.ID, At: s.clock.Now(), Actor: principalActor(p),
			ActorType: ActorPerson, Type: EntryAssigned, Summary: summary}); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "case.assign", CaseID: c.ID, ObjectType: "case", ObjectID: c.ID,
			Before: audit.Marshal(c), After: audit.Marshal(next)})
	})
	return out, err
}

// AddNote appends an internal note to case id, audited. Card numbers in
// body are masked before anything is stored. The first note by a person is
// the case's first response. ENOTFOUND, EINVALID (empty or too long).
func (s *Service) AddNote(ctx context.Context, p auth.Principal, id, body string) (TimelineEntry, error) {
	clean, err := cleanText("body", body, maxNote, true)
	if err != nil {
		return TimelineEntry{}, err
	}
	var out TimelineEntry
	err = s.mutate(ctx, false, func(tx *gorm.DB) error {
		c, err := s.st.get(ctx, tx, id, true)
		if err != nil {
			return err
		}
		e := TimelineEntry{CaseID: c.ID, At: s.clock.Now(), Actor: principalActor(p), ActorType: ActorPerson,
			Type: EntryNote, Summary: "Note by " + principalActor(p), Body: &clean}
		if e, err = s.st.insertEntry(ctx, tx, e); err != nil {
			return err
		}
		if err := s.markFirstResponse(ctx, tx, c); err != nil {
			return err
		}
		out = e
		return s.audit.Record(ctx, tx, audit.Entry{Action: "case.note", CaseID: c.ID, ObjectType: "case", ObjectID: c.ID,
			After: audit.Marshal(map[string]string{"body": clean})})
	})
	return out, err
}

// Escalate moves case id to team (payments, finance, risk, platform or
// engineering) with a required reason, unassigning it; audited, and an agent
// action, so it counts as the first response. ENOTFOUND, EINVALID.
func (s *Service) Escalate(ctx context.Context, p auth.Principal, id string, team Team, reason string) (Case, error) {
	return s.escalate(ctx, p, id, team, reason, nil)
}

// escalate is Escalate; version, when set, must equal the case's version
// (else ECONFLICT).
func (s *Service) escalate(ctx context.Context, p auth.Principal, id string, team Team, reason string, version *int64) (Case, error) {
	if !slices.Contains(EscalationTeams(), team) {
		return Case{}, errs.Coded(errs.EINVALID, "invalid_team", "team must be one of %s (got %q)", joinStrings(EscalationTeams()), team)
	}
	clean, err := cleanText("reason", reason, maxReason, true)
	if err != nil {
		return Case{}, err
	}
	var out Case
	err = s.mutate(ctx, version != nil, func(tx *gorm.DB) error {
		c, err := s.st.get(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := checkVersion(c, version); err != nil {
			return err
		}
		now := s.clock.Now()
		next := c
		next.Team = team
		next.Assignee = nil
		next.EscalatedAt = &now
		if next.SLA.FirstRespondedAt == nil {
			next.SLA.FirstRespondedAt = &now
		}
		if err := s.save(ctx, tx, c, &next); err != nil {
			return err
		}
		out = next
		if _, err := s.st.appendEntry(ctx, tx, TimelineEntry{CaseID: c.ID, At: now, Actor: principalActor(p), ActorType: ActorPerson,
			Type: EntryEscalated, Summary: fmt.Sprintf("Escalated from %s to %s: %s", c.Team, team, clean)}); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "case.escalate", CaseID: c.ID, ObjectType: "case", ObjectID: c.ID,
			Before: audit.Marshal(c), After: audit.Marshal(next), Detail: clean})
	})
	return out, err
}

// UpdateRequest edits a case's priority, tags and business line. Nil fields
// are left alone; ClearBusinessLine removes it.
type UpdateRequest struct {
	Priority          *Priority
	Tags              *[]string
	BusinessLine      *string
	ClearBusinessLine bool
	// NeedsAttention sets or clears the needs-attention flag.
	NeedsAttention *bool
	Version        *int64
}

// Update applies req to case id, audited. ENOTFOUND, EINVALID, ECONFLICT
// for a stale version.
func (s *Service) Update(ctx context.Context, p auth.Principal, id string, req UpdateRequest) (Case, error) {
	if req.Priority != nil {
		if _, err := ParsePriority(string(*req.Priority)); err != nil {
			return Case{}, err
		}
	}
	var tags []string
	if req.Tags != nil {
		t, err := cleanTags(*req.Tags)
		if err != nil {
			return Case{}, err
		}
		tags = t
	}
	var bl *string
	if req.BusinessLine != nil {
		b, err := cleanName("business_line", *req.BusinessLine, maxName)
		if err != nil {
			return Case{}, err
		}
		bl = &b
	}
	if req.Priority == nil && req.Tags == nil && bl == nil && !req.ClearBusinessLine && req.NeedsAttention == nil {
		return Case{}, errs.Coded(errs.EINVALID, "invalid_request", "nothing to update: give priority, tags, business_line and/or needs_attention")
	}
	var out Case
	err := s.mutate(ctx, req.Version != nil, func(tx *gorm.DB) error {
		c, err := s.st.get(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := checkVersion(c, req.Version); err != nil {
			return err
		}
		next := c
		var changes []string
		if req.Priority != nil && *req.Priority != c.Priority {
			next.Priority = *req.Priority
			changes = append(changes, fmt.Sprintf("priority %s → %s", c.Priority, next.Priority))
		}
		if req.Tags != nil {
			next.Tags = tags
			changes = append(changes, "tags ["+strings.Join(tags, ", ")+"]")
		}
		if req.ClearBusinessLine {
			next.BusinessLine = nil
			changes = append(changes, "business line cleared")
		} else if bl != nil {
			next.BusinessLine = bl
			changes = append(changes, "business line "+*bl)
		}
		if req.NeedsAttention != nil && *req.NeedsAttention != c.NeedsAttention {
			next.NeedsAttention = *req.NeedsAttention
			if next.NeedsAttention {
				changes = append(changes, "flagged for attention")
			} else {
				changes = append(changes, "attention flag cleared")
			}
		}
		if err := s.save(ctx, tx, c, &next); err != nil {
			return err
		}
		out = next
		summary := "Updated"
		if len(changes) > 0 {
			summary += ": " + strings.Join(changes, "; ")
		}
		if _, err := s.st.appendEntry(ctx, tx, TimelineEntry{CaseID: c.ID, At: s.clock.Now(), Actor: principalActor(p),
			ActorType: ActorPerson, Type: EntryUpdated, Summary: summary}); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "case.update", CaseID: c.ID, ObjectType: "case", ObjectID: c.ID,
			Before: audit.Marshal(c), After: audit.Marshal(next)})
	})
	return out, err
}

// ManualCase is an agent's request to open a case.
type ManualCase struct {
	Kind         Kind
	Channel      Channel
	Priority     Priority // "" for the kind's default
	Title        string
	Description  string
	Links        Links
	BusinessLine string
	Tags         []string
	// External, when set, links the new case to the ticket it came from, in
	// the same transaction: a ticket already linked is ECONFLICT
	// external_ticket_exists (details.case_id) and no case is made.
	External *ExternalTicket
}

// OpenManual opens a case an agent asked for (refund_request,
// billing_inquiry or cancellation) on behalf of p, audited. Title and
// description are redacted. A cancellation needs links.subscription; a
// refund request links.charge or links.customer. The customer link is filled
// from the mirror when the subscription or charge is known there. EINVALID
// for a bad request; ECONFLICT (open_case_exists, details.case_id) when an
// open case of the kind already exists on the subject.
func (s *Service) OpenManual(ctx context.Context, p auth.Principal, in ManualCase) (Case, error) {
	c, err := s.manualCase(in)
	if err != nil {
		return Case{}, err
	}
	if in.External != nil {
		t, err := cleanExternal(*in.External)
		if err != nil {
			return Case{}, err
		}
		in.External = &t
	}
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		s.fillCustomer(ctx, tx, &c)
		if err := s.withinScope(ctx, tx, c); err != nil {
			return err
		}
		inserted, err := s.st.insert(ctx, tx, c)
		if err != nil {
			return err
		}
		if !inserted {
			existing, ok, err := s.OpenCaseFor(ctx, tx, c.Kind, deref(c.Subject))
			if err != nil {
				return err
			}
			e := errs.Coded(errs.ECONFLICT, "open_case_exists", "an open %s case already exists for %s", c.Kind, deref(c.Subject))
			if ok && auth.ScopeOf(ctx).AllowsCase(string(existing.Team), existing.BusinessLine) {
				e = e.WithDetails(map[string]any{"case_id": existing.ID})
			}
			return e
		}
		if err := s.announceOpened(ctx, tx, c); err != nil {
			return err
		}
		if in.External != nil {
			if err := s.linkExternal(ctx, tx, c.ID, *in.External, ContentHash(in.Title, in.Description)); err != nil {
				return err
			}
		}
		summary := fmt.Sprintf("Opened by %s via %s: %s", principalActor(p), c.Channel, c.Title)
		if _, err := s.st.appendEntry(ctx, tx, TimelineEntry{CaseID: c.ID, At: c.CreatedAt, Actor: principalActor(p),
			ActorType: ActorPerson, Type: EntryOpened, Summary: summary, ToState: strp(c.State)}); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "case.create", CaseID: c.ID, ObjectType: "case", ObjectID: c.ID,
			After: audit.Marshal(c)})
	})
	if err != nil {
		return Case{}, err
	}
	return c, nil
}

// withinScope refuses a new case outside the scope of ctx's principal: its
// team and business line must be in scope (EINVALID out_of_scope), and so
// must its customer and the customer of every linked mirrored object —
// ENOTFOUND, like an unknown customer, otherwise, so a scoped user cannot
// attach, or learn of, customers beyond their scope.
func (s *Service) withinScope(ctx context.Context, tx *gorm.DB, c Case) error {
	sc := auth.ScopeOf(ctx)
	if sc.Unrestricted() {
		return nil
	}
	customers := []string{deref(c.Links.Customer)}
	r := s.reader(tx)
	if id := c.Links.Subscription; id != nil {
		if v, err := r.Subscription(ctx, *id); err == nil {
			customers = append(customers, v.CustomerID)
		}
	}
	if id := c.Links.Charge; id != nil {
		if v, err := r.Charge(ctx, *id); err == nil {
			customers = append(customers, v.CustomerID)
		}
	}
	if id := c.Links.Invoice; id != nil {
		if v, err := r.Invoice(ctx, *id); err == nil {
			customers = append(customers, v.CustomerID)
		}
	}
	for _, id := range customers {
		ok, err := auth.CustomerVisible(ctx, tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return errs.NotFound("no customer %q", id)
		}
	}
	if !sc.AllowsCase(string(c.Team), c.BusinessLine) {
		return errs.Coded(errs.EINVALID, "out_of_scope", "a %s case goes to team %s with business line %q; your access is limited to %s",
			c.Kind, c.Team, deref(c.BusinessLine), sc)
	}
	return nil
}

// manualCase validates in and builds the new case.
func (s *Service) manualCase(in ManualCase) (Case, error) {
	if !slices.Contains(ManualKinds(), in.Kind) {
		return Case{}, errs.Coded(errs.EINVALID, "invalid_kind", "agents open %s cases (got %q)", joinStrings(ManualKinds()), in.Kind)
	}
	if _, err := ParseManualChannel(string(in.Channel)); err != nil {
		return Case{}, err
	}
	lc := mustLifecycle(in.Kind)
	pr := lc.DefaultPriority
	if in.Priority != "" {
		p, err := ParsePriority(string(in.Priority))
		if err != nil {
			return Case{}, err
		}
		pr = p
	}
	title, err := cleanText("title", in.Title, maxTitle, true)
	if err != nil {
		return Case{}, err
	}
	desc, err := cleanText("description", in.Description, maxDescription, false)
	if err != nil {
		return Case{}, err
	}
	tags, err := cleanTags(in.Tags)
	if err != nil {
		return Case{}, err
	}
	var links Links
	for _, f := range in.Links.fields() {
		if v := *f.p; v != nil {
			id, err := cleanProviderID(f.name, *v)
			if err != nil {
				return Case{}, err
			}
			for _, g := range links.fields() {
				if g.name == f.name {
					*g.p = &id
				}
			}
		}
	}
	var bl *string
	if in.BusinessLine != "" {
		b, err := cleanName("business_line", in.BusinessLine, maxName)
		if err != nil {
			return Case{}, err
		}
		bl = &b
	}
	var subject *string
	switch in.Kind {
	case KindCancellation:
		if links.Subscription == nil {
			return Case{}, errs.Coded(errs.EINVALID, "invalid_links", "a cancellation needs links.subscription")
		}
		subject = links.Subscription
	case KindRefundRequest:
		if links.Charge == nil && links.Customer == nil {
			return Case{}, errs.Coded(errs.EINVALID, "invalid_links", "a refund request needs links.charge or links.customer")
		}
		subject = links.Charge
	}
	now := s.clock.Now()
	c := Case{ID: NewID(now), Kind: in.Kind, State: lc.Initial, Status: StatusOpen, Priority: pr, Team: lc.Team,
		BusinessLine: bl, Channel: in.Channel, Tags: tags, Title: title, Description: desc, Subject: subject, Links: links,
		Version: 1, CreatedAt: now, UpdatedAt: now}
	c.SLA.FirstResponseDue, c.SLA.ResolutionDue = s.sla.dueTimes(c.Kind, c.Team, pr, now, nil)
	s.sla.startClocks(&c, now)
	c.AllowedTransitions = lc.Available(c.State, true)
	return c, nil
}

// fillCustomer sets links.customer from the mirror when a linked
// subscription, charge or invoice names one (best effort).
func (s *Service) fillCustomer(ctx context.Context, tx *gorm.DB, c *Case) {
	if c.Links.Customer != nil {
		return
	}
	r := s.reader(tx)
	if c.Links.Subscription != nil {
		if sub, err := r.Subscription(ctx, *c.Links.Subscription); err == nil && sub.CustomerID != "" {
			c.Links.Customer = strp(sub.CustomerID)
			return
		}
	}
	if c.Links.Charge != nil {
		if ch, err := r.Charge(ctx, *c.Links.Charge); err == nil && ch.CustomerID != "" {
			c.Links.Customer = strp(ch.CustomerID)
			return
		}
	}
	if c.Links.Invoice != nil {
		if inv, err := r.Invoice(ctx, *c.Links.Invoice); err == nil && inv.CustomerID != "" {
			c.Links.Customer = strp(inv.CustomerID)
		}
	}
}

// Linked are the mirrored objects a case links to; nil when not mirrored.
type Linked struct {
	Customer      *billing.Customer      `json:"customer"`
	Subscription  *billing.Subscription  `json:"subscription"`
	Invoice       *billing.Invoice       `json:"invoice"`
	Charge        *billing.Charge        `json:"charge"`
	Dispute       *billing.Dispute       `json:"dispute"`
	FraudWarnings []billing.FraudWarning `json:"fraud_warnings"`
}

// LinkedObjects reads c's linked objects from the mirror, best effort: an
// object the mirror does not hold (or cannot read right now) is nil, and
// read errors other than ENOTFOUND are logged.
func (s *Service) LinkedObjects(ctx context.Context, c Case) Linked {
	r := s.reader(s.db.Gorm)
	out := Linked{FraudWarnings: []billing.FraudWarning{}} // [] in JSON, never null
	note := func(what string, err error) bool {
		if err == nil {
			return true
		}
		if !errs.Is(err, errs.ENOTFOUND) {
			s.log.Warn("cases: read linked object", "case_id", c.ID, "object", what, "err", err)
		}
		return false
	}
	if id := deref(c.Links.Customer); id != "" {
		if v, err := r.Customer(ctx, id); note("customer", err) {
			out.Customer = &v
		}
	}
	if id := deref(c.Links.Subscription); id != "" {
		if v, err := r.Subscription(ctx, id); note("subscription", err) {
			out.Subscription = &v
		}
	}
	if id := deref(c.Links.Invoice); id != "" {
		if v, err := r.Invoice(ctx, id); note("invoice", err) {
			out.Invoice = &v
		}
	}
	if id := deref(c.Links.Charge); id != "" {
		if v, err := r.Charge(ctx, id); note("charge", err) {
			out.Charge = &v
		}
		if v, err := r.FraudWarningsByCharge(ctx, id); note("fraud_warnings", err) && len(v) > 0 {
			out.FraudWarnings = v
		}
	}
	if id := deref(c.Links.Dispute); id != "" {
		if v, err := r.Dispute(ctx, id); note("dispute", err) {
			out.Dispute = &v
		}
	}
	return out
}

// emptyMirror is the BillingReader used when no mirror is wired: it holds
// nothing.
type emptyMirror struct{}

func notMirrored(kind, id string) error { return errs.NotFound("%s %s is not mirrored", kind, id) }

func (emptyMirror) Customer(_ context.Context, id string) (billing.Customer, error) {
	return billing.Customer{}, notMirrored("customer", id)
}
func (emptyMirror) Subscription(_ context.Context, id string) (billing.Subscription, error) {
	return billing.Subscription{}, notMirrored("subscription", id)
}
func (emptyMirror) Invoice(_ context.Context, id string) (billing.Invoice, error) {
	return billing.Invoice{}, notMirrored("invoice", id)
}
func (emptyMirror) Charge(_ context.Context, id string) (billing.Charge, error) {
	return billing.Charge{}, notMirrored("charge", id)
}
func (emptyMirror) Dispute(_ context.Context, id string) (billing.Dispute, error) {
	return billing.Dispute{}, notMirrored("dispute", id)
}
func (emptyMirror) InvoicesBySubscription(context.Context, string) ([]billing.Invoice, error) {
	return nil, nil
}
func (emptyMirror) DisputesByCharge(context.Context, string) ([]billing.Dispute, error) {
	return nil, nil
}
func (emptyMirror) FraudWarningsByCharge(context.Context, string) ([]billing.FraudWarning, error) {
	return nil, nil
}
