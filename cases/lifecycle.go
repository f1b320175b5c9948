package cases

//go:generate go test . -run ^TestCaseDocs$ -update-docs

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/looplab/fsm"

	"github.com/recourse-hq/recourse/internal/errs"
)

// Lifecycle is everything a kind is: its FSM transition table (the one
// declaration of the kind's lifecycle), which of its events agents may fire,
// its closed states with the resolution each records, and its routing
// defaults. Lifecycles are read-only values.
type Lifecycle struct {
	Kind Kind
	// Initial is the state a new case starts in. Disputes that are inquiries
	// start in InquiryInitial instead.
	Initial        string
	InquiryInitial string
	Events         fsm.Events
	// Manual lists the events an agent may fire through the API; the others
	// are fired by Recourse itself (webhooks, actions, the sweeper).
	Manual []string
	// Closed maps each closed state to the resolution it records.
	Closed          map[string]string
	Team            Team
	DefaultPriority Priority
	// Subject names the link the one-open-case rule is keyed on ("" when
	// the kind has none, e.g. billing inquiries).
	Subject string
	// OpenedBy and ClosedBy describe, for people, what drives the kind.
	OpenedBy, ClosedBy string
	// SLA gives every state its SLA role: running (the clocks run: the
	// next move is ours), paused (waiting on the customer, the issuer or a
	// partner team: the clocks stop and the paused time is added back to
	// the due times when the case moves on) or stopped (nothing is left for
	// us to do; every closed state). See SLARole.
	SLA map[string]SLARole
}

// lifecycles declares every kind's lifecycle, once. Event names are the
// transition names the API accepts and the timeline shows.
var lifecycles = []Lifecycle{
	{
		Kind: KindDispute, Initial: "needs_response", InquiryInitial: "warning_needs_response",
		Events: fsm.Events{
			{Name: "submit_inquiry_response", Src: []string{"warning_needs_response"}, Dst: "warning_under_review"},
			{Name: "escalate_to_chargeback", Src: []string{"warning_needs_response", "warning_under_review"}, Dst: "needs_response"},
			{Name: "close_inquiry", Src: []string{"warning_needs_response", "warning_under_review"}, Dst: "warning_closed"},
			{Name: "start_evidence", Src: []string{"needs_response"}, Dst: "preparing_evidence"},
			{Name: "submit_evidence", Src: []string{"needs_response", "preparing_evidence"}, Dst: "under_review"},
			{Name: "win", Src: []string{"needs_response", "preparing_evidence", "under_review"}, Dst: "won"},
			{Name: "lose", Src: []string{"needs_response", "preparing_evidence", "under_review", "accepted"}, Dst: "lost"},
			// accept: Recourse accepted the loss at Stripe (accept_dispute);
			// closed, awaiting Stripe's lost.
			{Name: "accept", Src: []string{"needs_response", "preparing_evidence"}, Dst: "accepted"},
			{Name: "prevent", Src: []string{"warning_needs_response", "warning_under_review", "needs_response", "preparing_evidence", "under_review"}, Dst: "prevented"},
			{Name: "charge_refunded", Src: []string{"warning_needs_response", "warning_under_review", "needs_response", "preparing_evidence", "under_review"}, Dst: "charge_refunded"},
		},
		Manual: []string{"submit_inquiry_response", "start_evidence", "submit_evidence"},
		Closed: map[string]string{"won": "won", "lost": "lost", "warning_closed": "warning_closed", "accepted": "accepted",
			"prevented": "prevented", "charge_refunded": "charge_refunded"},
		Team:            TeamDisputes,
		DefaultPriority: PriorityHigh,
		Subject:         "dispute",
		OpenedBy:        "`charge.dispute.created` (inquiries too, tagged `inquiry`), or any later dispute event when that one was missed",
		ClosedBy:        "the dispute's status: `won`, `lost`, `warning_closed`, `prevented` (API 2025-08-27), `charge_refunded` (older APIs) (`charge.dispute.closed`); `accepted` when Recourse accepts it (`accept_dispute`), then `lost` when Stripe confirms",
		SLA: map[string]SLARole{
			"warning_needs_response": SLARunning, "needs_response": SLARunning, "preparing_evidence": SLARunning,
			// Evidence (or the inquiry response) is with the issuer, who
			// decides in 60–75 days: nothing for us to do but wait.
			"warning_under_review": SLAPaused, "under_review": SLAPaused,
			"won": SLAStopped, "lost": SLAStopped, "warning_closed": SLAStopped,
			"prevented": SLAStopped, "charge_refunded": SLAStopped,
			// Accepted by us: Stripe's `lost` follows; nothing is left to do.
			"accepted": SLAStopped,
		},
	},
	{
		Kind: KindFraudWarning, Initial: "needs_review",
		Events: fsm.Events{
			{Name: "refund", Src: []string{"needs_review"}, Dst: "refunded"},
			{Name: "dispute_opened", Src: []string{"needs_review"}, Dst: "disputed"},
			{Name: "dismiss", Src: []string{"needs_review"}, Dst: "dismissed"},
		},
		Manual:          []string{"dismiss"},
		Closed:          map[string]string{"refunded": "refunded", "disputed": "disputed", "dismissed": "dismissed"},
		Team:            TeamRisk,
		DefaultPriority: PriorityHigh,
		Subject:         "charge",
		OpenedBy:        "`radar.early_fraud_warning.created` (one case per charge; the warning is linked)",
		ClosedBy:        "a refund of the charge, or a dispute opening on it (linked)",
		SLA: map[string]SLARole{
			"needs_review": SLARunning,
			"refunded":     SLAStopped, "disputed": SLAStopped, "dismissed": SLAStopped,
		},
	},
	{
		Kind: KindPaymentFailure, Initial: "failing",
		Events: fsm.Events{
			{Name: "contact_customer", Src: []string{"failing"}, Dst: "awaiting_customer"},
			{Name: "recover", Src: []string{"failing", "awaiting_customer", "churned", "written_off", "dismissed"}, Dst: "recovered"},
			{Name: "churn", Src: []string{"failing", "awaiting_customer", "written_off"}, Dst: "churned"},
			{Name: "write_off", Src: []string{"failing", "awaiting_customer"}, Dst: "written_off"},
			{Name: "dismiss", Src: []string{"failing", "awaiting_customer"}, Dst: "dismissed"},
			{Name: "reopen", Src: []string{"churned", "written_off", "dismissed"}, Dst: "failing"},
		},
		Manual:          []string{"contact_customer", "dismiss"},
		Closed:          map[string]string{"recovered": "recovered", "churned": "churned", "written_off": "written_off", "dismissed": "dismissed"},
		Team:            TeamBillingSupport,
		DefaultPriority: PriorityNormal,
		Subject:         "invoice",
		OpenedBy:        "`invoice.payment_failed` on a subscription invoice (one case per invoice; a new failure reopens it)",
		ClosedBy:        "`invoice.paid` → `recovered`; subscription canceled/unpaid → `churned`; invoice uncollectible/void → `written_off` (when both, `churned`; a later payment still makes it `recovered`)",
		SLA: map[string]SLARole{
			"failing":           SLARunning,
			"awaiting_customer": SLAPaused, // the customer was asked to update their card
			"recovered":         SLAStopped, "churned": SLAStopped, "written_off": SLAStopped, "dismissed": SLAStopped,
		},
	},
	{
		Kind: KindTrialConversion, Initial: "trial_ending",
		Events: fsm.Events{
			{Name: "contact_customer", Src: []string{"trial_ending"}, Dst: "awaiting_customer"},
			{Name: "convert", Src: []string{"trial_ending", "awaiting_customer", "lost", "dismissed"}, Dst: "converted"},
			{Name: "lose", Src: []string{"trial_ending", "awaiting_customer"}, Dst: "lost"},
			{Name: "dismiss", Src: []string{"trial_ending", "awaiting_customer"}, Dst: "dismissed"},
			{Name: "reopen", Src: []string{"dismissed"}, Dst: "trial_ending"},
		},
		Manual:          []string{"contact_customer", "dismiss"},
		Closed:          map[string]string{"converted": "converted", "lost": "lost", "dismissed": "dismissed"},
		Team:            TeamBillingSupport,
		DefaultPriority: PriorityNormal,
		Subject:         "subscription",
		OpenedBy:        "`customer.subscription.trial_will_end` when neither subscription nor customer has a default payment method (a new one reopens a dismissed case)",
		ClosedBy:        "subscription `active` → `converted`; `canceled`, `paused`, `unpaid`, `incomplete_expired` → `lost`",
		SLA: map[string]SLARole{
			"trial_ending":      SLARunning,
			"awaiting_customer": SLAPaused, // the customer was asked to add a payment method
			"converted":         SLAStopped, "lost": SLAStopped, "dismissed": SLAStopped,
		},
	},
	{
		Kind: KindCancellation, Initial: "requested",
		Events: fsm.Events{
			{Name: "offer_retention", Src: []string{"requested"}, Dst: "retention_offered"},
			{Name: "retain", Src: []string{"requested", "retention_offered"}, Dst: "retained"},
			{Name: "cancel", Src: []string{"requested", "retention_offered"}, Dst: "canceled"},
			{Name: "reopen", Src: []string{"retained"}, Dst: "requested"},
		},
		Manual:          []string{"offer_retention", "retain"},
		Closed:          map[string]string{"retained": "retained", "canceled": "canceled"},
		Team:            TeamBillingSupport,
		DefaultPriority: PriorityNormal,
		Subject:         "subscription",
		OpenedBy:        "`cancel_at_period_end` turning true, or an agent",
		ClosedBy:        "`cancel_at_period_end` back to false → `retained`; `customer.subscription.deleted` → `canceled`",
		SLA: map[string]SLARole{
			"requested":         SLARunning,
			"retention_offered": SLAPaused, // the customer is considering the offer
			"retained":          SLAStopped, "canceled": SLAStopped,
		},
	},
	{
		Kind: KindRefundFailure, Initial: "failed",
		Events: fsm.Events{
			{Name: "investigate", Src: []string{"failed"}, Dst: "investigating"},
			{Name: "resolve", Src: []string{"failed", "investigating"}, Dst: "resolved"},
		},
		Manual:          []string{"investigate", "resolve"},
		Closed:          map[string]string{"resolved": "resolved"},
		Team:            TeamPayments,
		DefaultPriority: PriorityNormal,
		Subject:         "refund",
		OpenedBy:        "a refund whose status is `failed` (`refund.failed`, `refund.updated`, `charge.refund.updated`)",
		ClosedBy:        "an agent",
		SLA: map[string]SLARole{
			"failed": SLARunning, "investigating": SLARunning,
			"resolved": SLAStopped,
		},
	},
	{
		Kind: KindRefundRequest, Initial: "new",
		Events: fsm.Events{
			{Name: "start", Src: []string{"new"}, Dst: "in_progress"},
			{Name: "await_customer", Src: []string{"new", "in_progress"}, Dst: "waiting_on_customer"},
			{Name: "customer_replied", Src: []string{"waiting_on_customer"}, Dst: "in_progress"},
			{Name: "refund", Src: []string{"new", "in_progress", "waiting_on_customer"}, Dst: "refunded"},
			{Name: "decline", Src: []string{"new", "in_progress", "waiting_on_customer"}, Dst: "declined"},
			{Name: "reopen", Src: []string{"refunded", "declined"}, Dst: "in_progress"},
		},
		Manual:          []string{"start", "await_customer", "customer_replied", "refund", "decline", "reopen"},
		Closed:          map[string]string{"refunded": "refunded", "declined": "declined"},
		Team:            TeamSupport,
		DefaultPriority: PriorityNormal,
		Subject:         "charge",
		OpenedBy:        "an agent (chat, email, in_app, phone, internal)",
		ClosedBy:        "an agent",
		SLA: map[string]SLARole{
			"new": SLARunning, "in_progress": SLARunning,
			"waiting_on_customer": SLAPaused,
			"refunded":            SLAStopped, "declined": SLAStopped,
		},
	},
	{
		Kind: KindBillingInquiry, Initial: "new",
		Events: fsm.Events{
			{Name: "start", Src: []string{"new"}, Dst: "in_progress"},
			{Name: "await_customer", Src: []string{"new", "in_progress"}, Dst: "waiting_on_customer"},
			{Name: "customer_replied", Src: []string{"waiting_on_customer"}, Dst: "in_progress"},
			{Name: "resolve", Src: []string{"new", "in_progress", "waiting_on_customer"}, Dst: "resolved"},
			{Name: "reopen", Src: []string{"resolved"}, Dst: "in_progress"},
		},
		Manual:          []string{"start", "await_customer", "customer_replied", "resolve", "reopen"},
		Closed:          map[string]string{"resolved": "resolved"},
		Team:            TeamSupport,
		DefaultPriority: PriorityNormal,
		OpenedBy:        "an agent (chat, email, in_app, phone, internal)",
		ClosedBy:        "an agent",
		SLA: map[string]SLARole{
			"new": SLARunning, "in_progress": SLARunning,
			"waiting_on_customer": SLAPaused,
			"resolved":            SLAStopped,
		},
	},
}

// LifecycleOf returns kind's lifecycle; ok is false for an unknown kind.
func LifecycleOf(kind Kind) (Lifecycle, bool) {
	for _, lc := range lifecycles {
		if lc.Kind == kind {
			return lc, true
		}
	}
	return Lifecycle{}, false
}

// Lifecycles returns every kind's lifecycle, in Kinds() order.
func Lifecycles() []Lifecycle { return slices.Clone(lifecycles) }

// machine builds a fresh FSM in state; one per operation, no callbacks.
func (lc Lifecycle) machine(state string) *fsm.FSM { return fsm.NewFSM(state, lc.Events, nil) }

// RoleOf returns the SLA role of state: as declared, else stopped for a
// closed state and running for any other (the lifecycle test requires every
// state to be declared).
func (lc Lifecycle) RoleOf(state string) SLARole {
	if r, ok := lc.SLA[state]; ok {
		return r
	}
	if lc.IsClosed(state) {
		return SLAStopped
	}
	return SLARunning
}

// StatesWithRole lists the kind's states whose SLA role is r, sorted.
func (lc Lifecycle) StatesWithRole(r SLARole) []string {
	var out []string
	for _, st := range lc.States() {
		if lc.RoleOf(st) == r {
			out = append(out, st)
		}
	}
	return out
}

// IsClosed reports whether state is one of the kind's closed states.
func (lc Lifecycle) IsClosed(state string) bool {
	_, ok := lc.Closed[state]
	return ok
}

// States lists every state of the kind, sorted.
func (lc Lifecycle) States() []string {
	seen := map[string]bool{lc.Initial: true}
	if lc.InquiryInitial != "" {
		seen[lc.InquiryInitial] = true
	}
	for _, e := range lc.Events {
		for _, s := range e.Src {
			seen[s] = true
		}
		seen[e.Dst] = true
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// HasState reports whether state belongs to the kind.
func (lc Lifecycle) HasState(state string) bool { return slices.Contains(lc.States(), state) }

// HasEvent reports whether event is one of the kind's events.
func (lc Lifecycle) HasEvent(event string) bool {
	for _, e := range lc.Events {
		if e.Name == event {
			return true
		}
	}
	return false
}

// IsManual reports whether agents may fire event through the API.
func (lc Lifecycle) IsManual(event string) bool { return slices.Contains(lc.Manual, event) }

// Available returns the events that can fire in state, sorted; manualOnly
// keeps only the ones agents may fire.
func (lc Lifecycle) Available(state string, manualOnly bool) []string {
	out := []string{}
	for _, e := range lc.machine(state).AvailableTransitions() {
		if !manualOnly || lc.IsManual(e) {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// Fire runs event on a fresh FSM in state and returns the new state. An
// event that cannot fire in state is ECONFLICT with code
// "illegal_transition" and details {"state", "allowed_transitions"}
// (allowed: manual events only when manualOnly).
func (lc Lifecycle) Fire(ctx context.Context, state, event string, manualOnly bool) (string, error) {
	illegal := func() error {
		return errs.Coded(errs.ECONFLICT, "illegal_transition", "%s cannot fire in state %s of a %s case", event, state, lc.Kind).
			WithDetails(map[string]any{"state": state, "allowed_transitions": lc.Available(state, manualOnly)})
	}
	if manualOnly && !lc.IsManual(event) {
		return "", illegal()
	}
	f := lc.machine(state)
	if err := f.Event(ctx, event); err != nil {
		var invalid fsm.InvalidEventError
		var unknown fsm.UnknownEventError
		if errors.As(err, &invalid) || errors.As(err, &unknown) {
			return "", illegal()
		}
		return "", errs.Wrap(errs.EINTERNAL, err, "fire %s on %s case", event, lc.Kind)
	}
	return f.Current(), nil
}

// pathTo returns the shortest sequence of events that takes a case from
// state to target, or nil when target cannot be reached (or is where the case
// already is). The search never passes through an event that takes a closed
// case back to an open state: reopening is always an explicit decision, not a
// detour on the way to somewhere else.
func (lc Lifecycle) pathTo(from, target string) []string {
	if from == target {
		return nil
	}
	type step struct {
		state string
		path  []string
	}
	seen := map[string]bool{from: true}
	queue := []step{{from, nil}}
	events := slices.Clone(lc.Events)
	sort.Slice(events, func(i, j int) bool { return events[i].Name < events[j].Name })
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, e := range events {
			if !slices.Contains(e.Src, cur.state) || seen[e.Dst] {
				continue
			}
			if lc.IsClosed(cur.state) && !lc.IsClosed(e.Dst) {
				continue
			}
			p := append(slices.Clone(cur.path), e.Name)
			if e.Dst == target {
				return p
			}
			seen[e.Dst] = true
			queue = append(queue, step{e.Dst, p})
		}
	}
	return nil
}

// reopenEvent returns the event that takes a closed case in state back to
// an open state, if the kind has one.
func (lc Lifecycle) reopenEvent(state string) (string, bool) {
	for _, e := range lc.Events {
		if slices.Contains(e.Src, state) && lc.IsClosed(state) && !lc.IsClosed(e.Dst) {
			return e.Name, true
		}
	}
	return "", false
}

// mustLifecycle returns kind's lifecycle; callers have validated kind.
func mustLifecycle(kind Kind) Lifecycle {
	lc, ok := LifecycleOf(kind)
	if !ok {
		panic("cases: no lifecycle for kind " + string(kind))
	}
	return lc
}

// slaRoles returns the role of every state of the kind.
func (lc Lifecycle) slaRoles() map[string]SLARole {
	out := make(map[string]SLARole)
	for _, st := range lc.States() {
		out[st] = lc.RoleOf(st)
	}
	return out
}

// slaClasses is the Mermaid that styles a diagram's states by SLA role:
// paused states amber, stopped ones grey, running ones left plain.
func (lc Lifecycle) slaClasses() string {
	var b strings.Builder
	b.WriteString("    %% SLA roles: running (plain), paused (amber), stopped (grey)\n")
	b.WriteString("    classDef paused fill:#fff3cd,stroke:#b08800\n")
	b.WriteString("    classDef stopped fill:#e9ecef,stroke:#6c757d\n")
	for _, r := range []SLARole{SLAPaused, SLAStopped} {
		if sts := lc.StatesWithRole(r); len(sts) > 0 {
			b.WriteString("    class " + strings.Join(sts, ", ") + " " + string(r) + "\n")
		}
	}
	return b.String()
}
