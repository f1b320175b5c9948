// Package cases owns Recourse's cases: the kinds of subscription and payment
// problems agents work, each kind's lifecycle (one looplab/fsm transition
// table per kind, declared in lifecycle.go), the append-only timeline,
// assignment, priority, SLA clocks and their sweeper, internal notes with
// card-number redaction, the service that opens and moves cases from billing
// changes (webhooks) and from agents, and its HTTP handlers.
//
// Invariants the package keeps, whatever order provider events arrive in:
//   - within one kind and provider object (the case's subject) there is at
//     most one open case; a partial unique index enforces it in the database;
//   - every state change goes through the kind's FSM and is written with
//     `WHERE id = ? AND version = ?`: a stale write is ECONFLICT (409);
//   - a provider event appears at most once on a case's timeline
//     (unique (case_id, event_id)), so a replayed event changes nothing;
//   - no full card number is stored: free text from people is redacted.
package cases

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Kind is what a case is about.
type Kind string

// Case kinds.
const (
	KindDispute         Kind = "dispute"
	KindFraudWarning    Kind = "fraud_warning"
	KindPaymentFailure  Kind = "payment_failure"
	KindTrialConversion Kind = "trial_conversion"
	KindCancellation    Kind = "cancellation"
	KindRefundFailure   Kind = "refund_failure"
	KindRefundRequest   Kind = "refund_request"
	KindBillingInquiry  Kind = "billing_inquiry"
)

// Kinds lists every kind in a stable order.
func Kinds() []Kind {
	return []Kind{KindDispute, KindFraudWarning, KindPaymentFailure, KindTrialConversion,
		KindCancellation, KindRefundFailure, KindRefundRequest, KindBillingInquiry}
}

// ParseKind returns the kind named s, or EINVALID.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", errs.Coded(errs.EINVALID, "invalid_kind", "kind must be one of %s (got %q)", joinStrings(Kinds()), s)
}

// ManualKinds are the kinds an agent may open through the API.
func ManualKinds() []Kind { return []Kind{KindRefundRequest, KindBillingInquiry, KindCancellation} }

// Status says whether a case still needs work. It follows from the state:
// a case is closed exactly when its FSM is in one of the kind's closed states.
type Status string

// Case statuses.
const (
	StatusOpen   Status = "open"
	StatusClosed Status = "closed"
)

// ParseStatus returns the status named s, or EINVALID.
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case StatusOpen, StatusClosed:
		return Status(s), nil
	}
	return "", errs.Coded(errs.EINVALID, "invalid_status", "status must be open or closed (got %q)", s)
}

// Priority orders the work. Its rank is stored beside it so lists can sort
// by it.
type Priority string

// Priorities, lowest first.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Priorities lists every priority, lowest first.
func Priorities() []Priority {
	return []Priority{PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent}
}

// ParsePriority returns the priority named s, or EINVALID.
func ParsePriority(s string) (Priority, error) {
	for _, p := range Priorities() {
		if string(p) == s {
			return p, nil
		}
	}
	return "", errs.Coded(errs.EINVALID, "invalid_priority", "priority must be one of %s (got %q)", joinStrings(Priorities()), s)
}

// Rank is 1 (low) to 4 (urgent); 0 for an unknown priority.
func (p Priority) Rank() int { return slices.Index(Priorities(), p) + 1 }

// Bump returns the next higher priority (urgent stays urgent).
func (p Priority) Bump() Priority {
	r := p.Rank()
	if r < 1 {
		return PriorityNormal
	}
	if r >= len(Priorities()) {
		return PriorityUrgent
	}
	return Priorities()[r]
}

func priorityOfRank(r int) Priority {
	if r < 1 || r > len(Priorities()) {
		return PriorityNormal
	}
	return Priorities()[r-1]
}

// Team is a queue cases are routed to.
type Team string

// Teams. The first five own kinds by default; payments, finance, risk,
// platform and engineering are the escalation targets.
const (
	TeamDisputes       Team = "disputes"
	TeamRisk           Team = "risk"
	TeamBillingSupport Team = "billing_support"
	TeamPayments       Team = "payments"
	TeamSupport        Team = "support"
	TeamFinance        Team = "finance"
	TeamPlatform       Team = "platform"
	TeamEngineering    Team = "engineering"
)

// Teams lists every team.
func Teams() []Team {
	return []Team{TeamDisputes, TeamRisk, TeamBillingSupport, TeamPayments, TeamSupport, TeamFinance, TeamPlatform, TeamEngineering}
}

// EscalationTeams are the teams a case may be escalated to.
func EscalationTeams() []Team {
	return []Team{TeamPayments, TeamFinance, TeamRisk, TeamPlatform, TeamEngineering}
}

// ParseTeam returns the team named s, or EINVALID.
func ParseTeam(s string) (Team, error) {
	for _, t := range Teams() {
		if string(t) == s {
			return t, nil
		}
	}
	return "", errs.Coded(errs.EINVALID, "invalid_team", "team must be one of %s (got %q)", joinStrings(Teams()), s)
}

// Channel is where a case came from.
type Channel string

// Channels. Cases opened from provider events have channel stripe; agents
// open cases from the others.
const (
	ChannelStripe   Channel = "stripe"
	ChannelChat     Channel = "chat"
	ChannelEmail    Channel = "email"
	ChannelInApp    Channel = "in_app"
	ChannelPhone    Channel = "phone"
	ChannelInternal Channel = "internal"
)

// ManualChannels lists the channels an agent may open a case from.
func ManualChannels() []Channel {
	return []Channel{ChannelChat, ChannelEmail, ChannelInApp, ChannelPhone, ChannelInternal}
}

// ParseManualChannel returns the agent channel named s, or EINVALID.
func ParseManualChannel(s string) (Channel, error) {
	for _, c := range ManualChannels() {
		if string(c) == s {
			return c, nil
		}
	}
	return "", errs.Coded(errs.EINVALID, "invalid_channel", "channel must be one of %s (got %q)", joinStrings(ManualChannels()), s)
}

// ActorType says who wrote a timeline entry. It is auth.ActorKind, the one
// actor vocabulary, which the audit log records too.
type ActorType = auth.ActorKind

// Actor types. A timeline entry names a person (the API principal's user),
// the system (sweeper, automation), an operator at the command line, or the
// provider (with the event id).
const (
	ActorPerson = auth.ActorUser
	ActorSystem = auth.ActorSystem
	ActorCLI    = auth.ActorCLI
	ActorStripe = auth.ActorStripe
)

// Actor names for non-person entries. A person is named by their API
// principal; other packages pass these constants, never the bare strings.
const (
	SystemActor = string(auth.ActorSystem)
	StripeActor = string(auth.ActorStripe)
)

// Links are the provider objects a case is about, by provider id.
type Links struct {
	Customer     *string `json:"customer"`
	Subscription *string `json:"subscription"`
	Invoice      *string `json:"invoice"`
	Charge       *string `json:"charge"`
	Dispute      *string `json:"dispute"`
	Refund       *string `json:"refund"`
	FraudWarning *string `json:"fraud_warning"`
}

// fields returns the links by name, for iteration.
func (l *Links) fields() []struct {
	name string
	p    **string
} {
	return []struct {
		name string
		p    **string
	}{
		{"customer", &l.Customer}, {"subscription", &l.Subscription}, {"invoice", &l.Invoice},
		{"charge", &l.Charge}, {"dispute", &l.Dispute}, {"refund", &l.Refund}, {"fraud_warning", &l.FraudWarning},
	}
}

// merge sets every link o has that l lacks and reports whether l changed.
// Links, once set, are never overwritten by a later event.
func (l *Links) merge(o Links) bool {
	changed := false
	of := o.fields()
	for i, f := range l.fields() {
		v := *of[i].p
		if *f.p == nil && v != nil && *v != "" {
			s := *v
			*f.p = &s
			changed = true
		}
	}
	return changed
}

// SLA is a case's service-level clock.
type SLA struct {
	FirstResponseDue        time.Time  `json:"first_response_due"`
	ResolutionDue           time.Time  `json:"resolution_due"`
	FirstRespondedAt        *time.Time `json:"first_responded_at"`
	Breached                bool       `json:"breached"`
	FirstResponseBreachedAt *time.Time `json:"first_response_breached_at"`
	ResolutionBreachedAt    *time.Time `json:"resolution_breached_at"`
	// Role is what the case's state does to the clocks (running, paused,
	// stopped); PausedAt is when they stopped (nil while running);
	// PausedTotal is the paused time already added back to the due times.
	Role        SLARole    `json:"role"`
	PausedAt    *time.Time `json:"paused_at"`
	PausedTotal Duration   `json:"paused_total"`
}

// NextDue is the deadline the case is working against now: the first
// response due time while no first response has been made (when it comes
// before the resolution due time), else the resolution due time. The queue's
// countdown shows it and sort=sla orders by it.
func (s SLA) NextDue() time.Time {
	if s.FirstRespondedAt == nil && !s.FirstResponseDue.IsZero() && s.FirstResponseDue.Before(s.ResolutionDue) {
		return s.FirstResponseDue
	}
	return s.ResolutionDue
}

// Case is one unit of work. It is also the JSON shape the API serves.
type Case struct {
	ID           string   `json:"id"`
	Kind         Kind     `json:"kind"`
	State        string   `json:"state"`
	Status       Status   `json:"status"`
	Resolution   *string  `json:"resolution"`
	Priority     Priority `json:"priority"`
	Assignee     *string  `json:"assignee"`
	Team         Team     `json:"team"`
	BusinessLine *string  `json:"business_line"`
	Channel      Channel  `json:"channel"`
	Tags         []string `json:"tags"`
	Title        string   `json:"title"`
	Description  string   `json:"description"`
	// Inquiry marks a dispute that is an inquiry (retrieval/warning), not yet
	// a chargeback.
	Inquiry bool `json:"inquiry"`
	// NeedsAttention flags a case for a person: the provider reported
	// something Recourse cannot act on by itself (a status it does not
	// know yet). An agent clears it (PATCH /cases/{id}).
	NeedsAttention bool `json:"needs_attention"`
	// Subject is the provider object the one-open-case rule is keyed on, when
	// the kind has one.
	Subject       *string    `json:"subject"`
	Links         Links      `json:"links"`
	Amount        *int64     `json:"amount"`
	Currency      *string    `json:"currency"`
	EvidenceDueBy *time.Time `json:"evidence_due_by"`
	SLA           SLA        `json:"sla"`
	EscalatedAt   *time.Time `json:"escalated_at"`
	// AllowedTransitions are the events an agent may fire next (through
	// POST /cases/{id}/transitions), sorted.
	AllowedTransitions []string   `json:"allowed_transitions"`
	Version            int64      `json:"version"`
	CreatedAt          time.Time  `json:"created_at"`
	UpdatedAt          time.Time  `json:"updated_at"`
	ClosedAt           *time.Time `json:"closed_at"`
}

// IsOpen reports whether the case still needs work.
func (c Case) IsOpen() bool { return c.Status == StatusOpen }

// TimelineEntry is one fact on a case's timeline. The timeline is append-only.
type TimelineEntry struct {
	ID        int64     `json:"id"`
	CaseID    string    `json:"case_id"`
	At        time.Time `json:"at"` // when Recourse recorded it
	Actor     string    `json:"actor"`
	ActorType ActorType `json:"actor_type"`
	Type      string    `json:"type"`
	Summary   string    `json:"summary"`
	// EventID is the provider event that caused the entry, if any.
	EventID *string `json:"event_id"`
	// OccurredAt is when the provider event happened, if any.
	OccurredAt *time.Time `json:"occurred_at"`
	FromState  *string    `json:"from_state"`
	ToState    *string    `json:"to_state"`
	Transition *string    `json:"transition"`
	// Body is the text of a note (already redacted).
	Body *string `json:"body,omitempty"`
}

// Timeline entry types written by this package. Other packages (actions,
// disputes) add their own, e.g. "action.requested".
const (
	EntryOpened        = "opened"
	EntryReopened      = "reopened"
	EntryTransition    = "transition"
	EntryProviderEvent = "provider_event"
	EntryFundsWithdrew = "funds_withdrawn"
	EntryFundsBack     = "funds_reinstated"
	EntryNote          = "note"
	EntryAssigned      = "assigned"
	EntryEscalated     = "escalated"
	EntryUpdated       = "updated"
	EntrySLABreached   = "sla_breached"
	// EntryProviderConfirmation: a provider event that echoes a Recourse
	// action taken on the case ("Stripe confirmed act_…").
	EntryProviderConfirmation = "provider_confirmation"
	// EntryUnknownStatus: the provider reported a status Recourse does not
	// know; the case is flagged NeedsAttention.
	EntryUnknownStatus = "unknown_status"
	// EntryStaleEvent: a provider event that arrived after a newer update
	// of its object and changed nothing.
	EntryStaleEvent = "stale_event"
	// EntryActionOutcome: a case moved by the outcome of an action.
	EntryActionOutcome = "action_outcome"
)

// webhookEntryTypes are the entry types OnBillingChange writes; one of them
// on a case for an event means the event was applied to that case.
var webhookEntryTypes = []string{EntryOpened, EntryReopened, EntryTransition, EntryProviderEvent, EntryFundsWithdrew, EntryFundsBack,
	EntryUnknownStatus, EntryStaleEvent}

// Validate checks an entry before it is appended: EINVALID when it names no
// actor, type or summary, or when a provider entry lacks its event id.
func (e TimelineEntry) Validate() error {
	switch {
	case e.CaseID == "":
		return errs.Invalid("timeline entry needs a case id")
	case strings.TrimSpace(e.Actor) == "":
		return errs.Invalid("timeline entry needs an actor")
	case e.Type == "" || len(e.Type) > 64:
		return errs.Invalid("timeline entry type must be 1–64 characters")
	case strings.TrimSpace(e.Summary) == "":
		return errs.Invalid("timeline entry needs a summary")
	}
	switch e.ActorType {
	case ActorPerson, ActorSystem:
	case ActorStripe:
		if e.EventID == nil || *e.EventID == "" {
			return errs.Invalid("a provider timeline entry needs its event id")
		}
	default:
		return errs.Invalid("timeline entry actor type must be person, system or stripe")
	}
	return nil
}

// Limits on free text.
const (
	maxTitle       = 200
	maxDescription = 10_000
	maxNote        = 20_000
	maxReason      = 2_000
	maxTags        = 20
	maxTag         = 50
	maxName        = 100
	maxProviderID  = 255
)

// cleanText trims s, redacts card numbers and checks its length and that it
// holds no control characters other than newlines and tabs.
func cleanText(field, s string, maxLen int, required bool) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			return "", errs.Coded(errs.EINVALID, "invalid_"+field, "%s is required", field)
		}
		return "", nil
	}
	if !utf8.ValidString(s) {
		return "", errs.Coded(errs.EINVALID, "invalid_"+field, "%s must be valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return "", errs.Coded(errs.EINVALID, "invalid_"+field, "%s must not contain control characters", field)
		}
	}
	if utf8.RuneCountInString(s) > maxLen {
		return "", errs.Coded(errs.EINVALID, "invalid_"+field, "%s must be at most %d characters", field, maxLen)
	}
	return Redact(s), nil
}

// cleanName checks a short identifier-like value (assignee, business line,
// tag): 1–max printable characters without spaces at either end.
func cleanName(field, s string, maxLen int) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || utf8.RuneCountInString(s) > maxLen || !utf8.ValidString(s) {
		return "", errs.Coded(errs.EINVALID, "invalid_"+field, "%s must be 1–%d characters", field, maxLen)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "", errs.Coded(errs.EINVALID, "invalid_"+field, "%s must be printable", field)
		}
	}
	return Redact(s), nil
}

// cleanTags validates, lowercases and de-duplicates tags, keeping order.
func cleanTags(tags []string) ([]string, error) {
	if len(tags) > maxTags {
		return nil, errs.Coded(errs.EINVALID, "invalid_tags", "at most %d tags", maxTags)
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		c, err := cleanName("tags", strings.ToLower(t), maxTag)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// cleanProviderID checks a provider object id (cus_…, ch_…): printable
// ASCII without spaces.
func cleanProviderID(field, s string) (string, error) {
	if s == "" || len(s) > maxProviderID {
		return "", errs.Coded(errs.EINVALID, "invalid_links", "links.%s must be 1–%d characters", field, maxProviderID)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "", errs.Coded(errs.EINVALID, "invalid_links", "links.%s must be a provider id such as cus_123", field)
		}
	}
	return s, nil
}

func joinStrings[T ~string](vs []T) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = string(v)
	}
	return strings.Join(parts, ", ")
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func timep(t time.Time) *time.Time { return &t }

// formatMoney renders minor units for people: 4900 usd → "49.00 USD".
func formatMoney(amount int64, currency string) string { return billing.FormatMoney(amount, currency) }
