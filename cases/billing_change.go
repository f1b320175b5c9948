package cases

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Event types the handlers look at by name (everything else is derived from
// the object's current state).
const (
	evDisputeFundsWithdrawn  = "charge.dispute.funds_withdrawn"
	evDisputeFundsReinstated = "charge.dispute.funds_reinstated"
	evInvoicePaymentFailed   = "invoice.payment_failed"
	evTrialWillEnd           = "customer.subscription.trial_will_end"
)

// OnBillingChange brings cases in line with one applied billing change,
// inside tx, the webhook event's transaction. The webhook worker calls it
// after the mirror applied the event.
//
// It is robust to any order and to duplicates: what a case should be is
// derived from the object's current mirror state (ch carries it, even when
// the event itself is older), never from the event type alone; a case
// therefore reaches the same state whatever order the events arrive in, a
// late or stale event never moves a case backwards or reopens it, and an
// event appears at most once on a case's timeline (unique per case and event
// id), so a replay is a no-op. Every entry it writes has actor "stripe" and
// the event id.
//
// What it does, by object:
//   - dispute: opens (or finds) the dispute case, inquiries in
//     warning_needs_response and tagged "inquiry"; moves it to the dispute's
//     status; tracks the evidence due_by in the SLA; puts funds withdrawn /
//     reinstated on the timeline; resolves open fraud_warning cases on the
//     charge (linking the dispute);
//   - early fraud warning: opens the fraud_warning case, resolved at once
//     when the charge is already refunded or disputed;
//   - charge (refunded) and refund (succeeded): resolve open fraud_warning
//     cases on the charge; refund (failed): opens a refund_failure case;
//   - invoice of a subscription: payment_failed opens the payment_failure
//     case (one per invoice; a new, current failure reopens it); paid →
//     recovered, uncollectible/void → written_off;
//   - subscription: canceled/unpaid/incomplete_expired churns open
//     payment_failure cases; trial_will_end without a default payment method
//     opens trial_conversion, which active converts and
//     canceled/paused/unpaid/incomplete_expired loses; cancel_at_period_end
//     opens cancellation, turning false retains it, deletion cancels it;
//   - any of these whose current status Recourse does not know: its open
//     cases stay put, flagged NeedsAttention, and the timeline says so;
//   - the echo of a Recourse action (Options.Echoes): no new case, and
//     "Stripe confirmed act_…" on the action's case;
//   - invoice.upcoming (Change.Upcoming): nothing — a notice for the
//     customer's billing timeline only.
//
// A stale change (the mirror held a newer state) is recorded as arriving
// after a newer update, never narrated as if it applied.
//
// It returns EINVALID only for a change that can never apply (no event id,
// or no object of the kind it names); other errors are worth a retry.
func (s *Service) OnBillingChange(ctx context.Context, tx *gorm.DB, ch billing.Change) error {
	if ch.Upcoming {
		// A preview of the next renewal: a notice on the customer's billing
		// timeline (the mirror wrote it), never a case.
		return nil
	}
	if err := validateChange(ch); err != nil {
		return err
	}
	if ch.Duplicate {
		return nil // applied before: nothing changed
	}
	echo, isEcho, err := s.findEcho(ctx, tx, ch)
	if err != nil {
		return fmt.Errorf("cases: apply %s %s: %w", ch.EventType, ch.EventID, err)
	}
	// The echo of a Recourse action opens no case: the action's case is
	// where it belongs (existing cases still follow the object's state).
	a := &applier{s: s, ctx: ctx, tx: tx, ch: ch, mirror: s.reader(tx), now: s.clock.Now(), noCreate: isEcho}
	switch ch.Object {
	case billing.KindDispute:
		err = a.dispute(*ch.Dispute)
	case billing.KindFraudWarning:
		err = a.fraudWarning(*ch.FraudWarning)
	case billing.KindCharge:
		err = a.charge(*ch.Charge)
	case billing.KindRefund:
		err = a.refund(*ch.Refund)
	case billing.KindInvoice:
		err = a.invoice(*ch.Invoice)
	case billing.KindSubscription:
		err = a.subscription(*ch.Subscription)
	}
	if err == nil {
		err = a.backfillCustomer()
	}
	if err == nil && isEcho {
		err = a.recordOnActionCase(echo)
	}
	if err != nil {
		return fmt.Errorf("cases: apply %s %s: %w", ch.EventType, ch.EventID, err)
	}
	return nil
}

// linkColumnOf is the case link column holding objects of kind.
var linkColumnOf = map[billing.ObjectKind]string{
	billing.KindSubscription: "subscription_id", billing.KindInvoice: "invoice_id", billing.KindCharge: "charge_id",
	billing.KindDispute: "dispute_id", billing.KindRefund: "refund_id", billing.KindFraudWarning: "fraud_warning_id",
}

// backfillCustomer links the customer, once the mirror knows it, to the
// cases of this object that were opened before it did (e.g. a dispute that
// arrived before its charge). It is a quiet change: no timeline entry.
func (a *applier) backfillCustomer() error {
	col, ok := linkColumnOf[a.ch.Object]
	if !ok || a.ch.CustomerID == "" || a.ch.ObjectID == "" {
		return nil
	}
	cs, err := a.s.st.withoutCustomer(a.ctx, a.tx, col, a.ch.ObjectID)
	if err != nil {
		return err
	}
	for _, c := range cs {
		next := c
		next.Links.Customer = strp(a.ch.CustomerID)
		if a.ch.Object == billing.KindCharge {
			// Opened while the charge was not mirrored (a dispute applied
			// beside its charge), the case also lacks what relatedLinks
			// would have added: the charge's invoice and subscription.
			a.relatedLinks(&next, a.ch.ObjectID)
		}
		if err := a.s.save(a.ctx, a.tx, c, &next); err != nil {
			return err
		}
	}
	return nil
}

// findEcho asks the echo finder (if any) whether ch is the provider's echo
// of a Recourse action. It writes nothing.
func (s *Service) findEcho(ctx context.Context, tx *gorm.DB, ch billing.Change) (ActionEcho, bool, error) {
	if s.echoes == nil {
		return ActionEcho{}, false, nil
	}
	return s.echoes.FindEcho(ctx, tx, ch.IdempotencyKey, ch.Object, ch.ObjectID)
}

// recordOnActionCase puts the event on the timeline of the case whose
// action caused it, as the provider's confirmation of that action (once:
// entries are unique per case, event and type).
func (a *applier) recordOnActionCase(echo ActionEcho) error {
	if _, err := a.s.st.get(a.ctx, a.tx, echo.CaseID, false); errs.Is(err, errs.ENOTFOUND) {
		return nil // an action's case cannot vanish; nothing to record on
	} else if err != nil {
		return err
	}
	summary := fmt.Sprintf("Stripe confirmed %s: %s", echo.ActionID, a.summary())
	_, err := a.s.st.appendEntry(a.ctx, a.tx, a.entry(echo.CaseID, EntryProviderConfirmation, summary))
	return err
}

// validateChange refuses changes that can never apply.
func validateChange(ch billing.Change) error {
	if strings.TrimSpace(ch.EventID) == "" {
		return errs.Invalid("billing change without an event id")
	}
	var id string
	var present bool
	switch ch.Object {
	case billing.KindDispute:
		present = ch.Dispute != nil
		if present {
			id = ch.Dispute.ID
		}
	case billing.KindFraudWarning:
		present = ch.FraudWarning != nil
		if present {
			id = ch.FraudWarning.ID
		}
	case billing.KindCharge:
		present = ch.Charge != nil
		if present {
			id = ch.Charge.ID
		}
	case billing.KindRefund:
		present = ch.Refund != nil
		if present {
			id = ch.Refund.ID
		}
	case billing.KindInvoice:
		present = ch.Invoice != nil
		if present {
			id = ch.Invoice.ID
		}
	case billing.KindSubscription:
		present = ch.Subscription != nil
		if present {
			id = ch.Subscription.ID
		}
	default:
		return nil // customers and unknown objects open no cases
	}
	if !present {
		return errs.Invalid("billing change %s names a %s but carries none", ch.EventID, ch.Object)
	}
	if id == "" {
		return errs.Invalid("billing change %s carries a %s without an id", ch.EventID, ch.Object)
	}
	return nil
}

// applier applies one change; it lives for one OnBillingChange call.
type applier struct {
	s      *Service
	ctx    context.Context
	tx     *gorm.DB
	ch     billing.Change
	mirror BillingReader
	now    time.Time
	// noCreate: the change is the echo of a Recourse action; it opens no case.
	noCreate bool
}

// plan is what one change should do to one case.
type plan struct {
	// target is the state the case should be in ("" leaves the state).
	target string
	// accept are states already consistent with target (work states an
	// agent moved to, e.g. preparing_evidence for needs_response).
	accept []string
	// reopen takes a closed case back to work first, when the kind can.
	reopen bool
	// links to add (links are never overwritten).
	links Links
	// update changes other fields (amount, due times, priority).
	update func(c *Case)
	// entryType names the timeline entry when the state does not change
	// ("" means provider_event).
	entryType string
	// note is appended to the entry's summary.
	note string
	// skipNoop writes nothing at all when the change alters nothing.
	skipNoop bool
}

// summary is the sentence the event contributes to a timeline.
func (a *applier) summary() string {
	s := fmt.Sprintf("%s (%s %s)", a.ch.EventType, a.ch.Object, a.ch.ObjectID)
	if a.ch.Summary != "" {
		s = Redact(a.ch.Summary)
	}
	if l := a.ch.ChargeLookup; l != nil {
		switch {
		case l.Fetched && l.CustomerID != "":
			s += fmt.Sprintf(" — charge %s is not mirrored yet; Stripe says its customer is %s", l.ChargeID, l.CustomerID)
		case !l.Fetched:
			s += fmt.Sprintf(" — charge %s is not mirrored yet and Stripe could not be reached to find its customer; "+
				"the case is linked when the charge arrives", l.ChargeID)
		}
	}
	return s
}

// lockSubject serialises, across transactions, every creation of a
// case of kind on subject (PostgreSQL), so two workers racing on events of
// one object cannot both create a case, open or closed. The unique indexes
// back this up.
func (a *applier) lockSubject(kind Kind, subject string) error {
	if err := a.s.db.Dialect.AdvisoryXactLock(a.ctx, a.tx, db.LockCaseSubject, string(kind)+":"+subject); err != nil {
		return fmt.Errorf("lock %s %s: %w", kind, subject, err)
	}
	return nil
}

// ensure finds the case of kind on subject and applies p to it, or, when
// there is none and create is true, opens one from fresh() with p applied.
//
// Most events find their case, whose row lock (forSubject locks it) is all
// they need; only when there is none is the subject locked and the lookup
// repeated, so that of two transactions racing to open it the second finds
// the first's case.
func (a *applier) ensure(kind Kind, subject string, create bool, fresh func() Case, p func(c *Case, isNew bool) plan) error {
	c, ok, err := a.s.st.forSubject(a.ctx, a.tx, kind, subject)
	if err != nil {
		return err
	}
	if !ok {
		if !create || a.noCreate {
			return nil
		}
		if err := a.lockSubject(kind, subject); err != nil {
			return err
		}
		if c, ok, err = a.s.st.forSubject(a.ctx, a.tx, kind, subject); err != nil {
			return err
		}
	}
	if ok {
		return a.applyTo(c, p(&c, false))
	}
	nc := fresh()
	return a.open(nc, p(&nc, true))
}

// webhookCase returns a new case of kind on subject, from the provider.
func (a *applier) webhookCase(kind Kind, subject string, pr Priority, title string, links Links) Case {
	lc := mustLifecycle(kind)
	if pr == "" {
		pr = lc.DefaultPriority
	}
	c := Case{ID: NewID(a.now), Kind: kind, State: lc.Initial, Status: StatusOpen, Priority: pr, Team: lc.Team,
		Channel: ChannelStripe, Tags: []string{}, Title: Redact(title), Subject: strp(subject), Links: links,
		Version: 1, CreatedAt: a.now, UpdatedAt: a.now}
	c.SLA.FirstResponseDue, c.SLA.ResolutionDue = a.s.sla.dueTimes(kind, lc.Team, pr, a.now, nil)
	return c
}

// move runs p on next in memory: reopen, path to target, links, update.
// It returns the events fired.
func (a *applier) move(next *Case, p plan) ([]string, bool, error) {
	lc := mustLifecycle(next.Kind)
	var fired []string
	reopened := false
	if p.reopen && lc.IsClosed(next.State) {
		if ev, ok := lc.reopenEvent(next.State); ok {
			to, err := lc.Fire(a.ctx, next.State, ev, false)
			if err != nil {
				return nil, false, err
			}
			next.State = to
			fired = append(fired, ev)
			reopened = true
			a.s.resetSLA(next, a.now)
		}
	}
	if p.target != "" && next.State != p.target && !slices.Contains(p.accept, next.State) {
		for _, ev := range lc.pathTo(next.State, p.target) {
			to, err := lc.Fire(a.ctx, next.State, ev, false)
			if err != nil {
				return nil, false, err
			}
			next.State = to
			fired = append(fired, ev)
		}
	}
	next.Links.merge(p.links)
	if p.update != nil {
		p.update(next)
	}
	return fired, reopened, nil
}

// open inserts a new case with p applied and its "opened" entry. When the
// insert loses a race to another transaction (the unique indexes), it applies
// p to the winner instead.
func (a *applier) open(c Case, p plan) error {
	lc := mustLifecycle(c.Kind)
	from := c.State
	fired, _, err := a.move(&c, p)
	if err != nil {
		return err
	}
	if res, closed := lc.Closed[c.State]; closed {
		c.Status, c.Resolution, c.ClosedAt = StatusClosed, &res, &a.now
	}
	late := a.s.sla.startClocks(&c, a.now)
	inserted, err := a.s.st.insert(a.ctx, a.tx, c)
	if err != nil {
		return err
	}
	if !inserted {
		existing, ok, err := a.s.st.forSubject(a.ctx, a.tx, c.Kind, deref(c.Subject))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("open %s case for %s: refused by a unique index, yet none found", c.Kind, deref(c.Subject))
		}
		return a.applyTo(existing, p)
	}
	if err := a.s.announceOpened(a.ctx, a.tx, c); err != nil {
		return err
	}
	summary := a.summary()
	if a.ch.Stale {
		summary = fmt.Sprintf("%s (%s %s) arrived after a newer update", a.ch.EventType, a.ch.Object, a.ch.ObjectID)
	}
	summary += " — " + string(c.Kind) + " case opened in " + from
	if len(fired) > 0 {
		summary += ", now " + c.State + " (" + strings.Join(fired, ", ") + ")"
	}
	if p.note != "" {
		summary += "; " + p.note
	}
	e := a.entry(c.ID, EntryOpened, summary)
	e.ToState = strp(c.State)
	if len(fired) > 0 {
		e.FromState, e.Transition = strp(from), strp(strings.Join(fired, ","))
	}
	if _, err = a.s.st.appendEntry(a.ctx, a.tx, e); err != nil || !late {
		return err
	}
	return a.s.recordOpenedLate(a.ctx, a.tx, c)
}

// applyTo applies p to the existing case c and records the event on its
// timeline, once.
func (a *applier) applyTo(c Case, p plan) error {
	// Applied before? Only this package's entries count: another package
	// (actions) may have put the provider's confirmation there already.
	seen, err := a.s.st.hasEvent(a.ctx, a.tx, c.ID, a.ch.EventID, webhookEntryTypes)
	if err != nil || seen {
		return err
	}
	next := c
	next.Tags = slices.Clone(c.Tags)
	fired, reopened, err := a.move(&next, p)
	if err != nil {
		return err
	}
	changed := !reflect.DeepEqual(toRow(c).mutableColumns(), toRow(next).mutableColumns())
	if !changed && p.skipNoop {
		return nil
	}
	if a.ch.Stale && !changed {
		// The event lost the ordering to a newer update of its object: say
		// so rather than narrate a change the case does not show.
		_, err := a.s.st.appendEntry(a.ctx, a.tx, a.entry(c.ID, EntryStaleEvent, a.staleSummary()))
		return err
	}
	if changed {
		if err := a.s.save(a.ctx, a.tx, c, &next); err != nil {
			return err
		}
	}
	typ := p.entryType
	if typ == "" {
		typ = EntryProviderEvent
	}
	summary := a.summary()
	if a.ch.Stale {
		// Never narrate a stale event's fact as if it applied: the case
		// follows the object's current state.
		summary = fmt.Sprintf("%s (%s %s) arrived after a newer update; the case follows the current state",
			a.ch.EventType, a.ch.Object, a.ch.ObjectID)
	}
	if len(fired) > 0 {
		typ = EntryTransition
		if reopened {
			typ = EntryReopened
		}
		summary += fmt.Sprintf(" — case %s → %s (%s)", c.State, next.State, strings.Join(fired, ", "))
	}
	if p.note != "" {
		summary += "; " + p.note
	}
	e := a.entry(c.ID, typ, summary)
	if len(fired) > 0 {
		e.FromState, e.ToState, e.Transition = strp(c.State), strp(next.State), strp(strings.Join(fired, ","))
	}
	_, err = a.s.st.appendEntry(a.ctx, a.tx, e)
	return err
}

// staleSummary narrates an event that arrived after a newer update of its
// object and changed nothing.
func (a *applier) staleSummary() string {
	return fmt.Sprintf("%s (%s %s) arrived after a newer update; nothing changed", a.ch.EventType, a.ch.Object, a.ch.ObjectID)
}

// entry is a provider timeline entry for this change.
func (a *applier) entry(caseID, typ, summary string) TimelineEntry {
	occurred := a.ch.EventCreated.UTC()
	e := TimelineEntry{CaseID: caseID, At: a.now, Actor: StripeActor, ActorType: ActorStripe, Type: typ,
		Summary: summary, EventID: strp(a.ch.EventID)}
	if !occurred.IsZero() {
		e.OccurredAt = &occurred
	}
	return e
}

// ---- disputes and fraud warnings ----

// disputeTarget maps a dispute status to the case state it implies, with
// the work states consistent with it. Each dispute status billing
// knows is a state of the dispute lifecycle of the same name; unknown
// statuses (newer API versions add some) imply nothing.
func disputeTarget(status string) (string, []string) {
	switch {
	case status == billing.DisputeStatusNeedsResponse:
		return status, []string{"preparing_evidence"}
	case billing.KnownDisputeStatus(status):
		return status, nil
	}
	return "", nil
}

func (a *applier) dispute(d billing.Dispute) error {
	// Before the dispute's own case: every path that takes this lock takes
	// it before locking any case row, so none waits on the other's rows.
	if err := a.lockFraudCase(d.ChargeID); err != nil {
		return err
	}
	customer := firstNonEmpty(a.ch.CustomerID, d.CustomerID)
	links := Links{Customer: strp(customer), Charge: strp(d.ChargeID), Dispute: strp(d.ID)}
	target, accept := disputeTarget(d.Status)
	entryType := ""
	switch a.ch.EventType {
	case evDisputeFundsWithdrawn:
		entryType = EntryFundsWithdrew
	case evDisputeFundsReinstated:
		entryType = EntryFundsBack
	}
	note := ""
	inquiry := d.IsInquiry()
	fresh := func() Case {
		pr := a.s.sla.disputePriority(d, a.now)
		kind := "Dispute"
		if inquiry {
			kind = "Inquiry"
		}
		title := fmt.Sprintf("%s: %s, %s", kind, firstNonEmpty(d.Reason, "unknown reason"), formatMoney(d.Amount, d.Currency))
		c := a.webhookCase(KindDispute, d.ID, pr, title, links)
		if inquiry {
			c.State = mustLifecycle(KindDispute).InquiryInitial
			c.Tags = append(c.Tags, "inquiry")
		}
		if d.Reason != "" {
			c.Tags = append(c.Tags, "reason:"+d.Reason)
		}
		a.relatedLinks(&c, d.ChargeID)
		return c
	}
	err := a.ensure(KindDispute, d.ID, true, fresh, func(c *Case, isNew bool) plan {
		return plan{target: target, accept: accept, links: links, entryType: entryType, note: note,
			update: func(c *Case) { a.disputeFields(c, d) }}
	})
	if err != nil {
		return err
	}
	if err := a.flagUnknownStatus(billing.KnownDisputeStatus, "dispute_id", d.ID, d.Status); err != nil {
		return err
	}
	// A dispute on a charge resolves its open early-fraud-warning cases.
	if d.ChargeID == "" {
		return nil
	}
	open, err := a.s.st.byLink(a.ctx, a.tx, KindFraudWarning, "charge_id", d.ChargeID, true)
	if err != nil {
		return err
	}
	for _, c := range open {
		p := plan{target: "disputed", links: Links{Dispute: strp(d.ID)}, note: "dispute " + d.ID + " opened on the charge"}
		if err := a.applyTo(c, p); err != nil {
			return err
		}
	}
	return nil
}

// disputePriority is high, or urgent for a large amount or a near deadline.
// Whether a deadline is near is the billing dispute's rule (Dispute.Deadline) (a response is
// awaited, one is possible, and less than DisputeUrgentWithin is left), not
// a second copy of it here.
func (p SLAPolicy) disputePriority(d billing.Dispute, now time.Time) Priority {
	if p.Priority.DisputeUrgentAmount > 0 && d.Amount >= p.Priority.DisputeUrgentAmount {
		return PriorityUrgent
	}
	if info := d.Deadline(now); info.AwaitingResponse && !info.NoResponsePossible &&
		info.Left <= p.Priority.DisputeUrgentWithin.D() {
		return PriorityUrgent
	}
	return PriorityHigh
}

// disputeFields keeps a dispute case's amount, inquiry flag, evidence due
// time (and the resolution due time that follows it) and priority current.
func (a *applier) disputeFields(c *Case, d billing.Dispute) {
	if d.Amount > 0 {
		c.Amount = &d.Amount
	}
	if d.Currency != "" {
		cur := d.Currency
		c.Currency = &cur
	}
	c.Inquiry = strings.HasPrefix(c.State, "warning_")
	if d.EvidenceDueBy != nil && !d.EvidenceDueBy.IsZero() {
		due := d.EvidenceDueBy.UTC()
		if c.EvidenceDueBy == nil || !c.EvidenceDueBy.Equal(due) {
			c.EvidenceDueBy = &due
			// Relative to creation, so the result does not depend on when
			// the event is processed.
			c.SLA.ResolutionDue = a.s.sla.disputeResolutionDue(due, c.CreatedAt)
			if c.SLA.FirstResponseDue.After(c.SLA.ResolutionDue) {
				c.SLA.FirstResponseDue = c.SLA.ResolutionDue
			}
		}
	}
	if c.IsOpen() {
		if pr := a.s.sla.disputePriority(d, a.now); pr.Rank() > c.Priority.Rank() {
			c.Priority = pr
		}
	}
}

// relatedLinks adds the invoice and subscription behind a charge, from the
// mirror (best effort).
func (a *applier) relatedLinks(c *Case, chargeID string) {
	if chargeID == "" {
		return
	}
	chg, err := a.mirror.Charge(a.ctx, chargeID)
	if err != nil || chg.InvoiceID == "" {
		return
	}
	l := Links{Invoice: strp(chg.InvoiceID), Customer: strp(chg.CustomerID)}
	if inv, err := a.mirror.Invoice(a.ctx, chg.InvoiceID); err == nil {
		l.Subscription = strp(inv.SubscriptionID)
	}
	c.Links.merge(l)
}

// fraudTarget says how a fraud warning on chargeID stands, from the mirror:
// "disputed" (with the dispute) when a dispute is open on the charge,
// "refunded" when the charge was refunded, "" otherwise.
func (a *applier) fraudTarget(chargeID string) (string, string, *billing.Charge, error) {
	if chargeID == "" {
		return "", "", nil, nil
	}
	disputes, err := a.mirror.DisputesByCharge(a.ctx, chargeID)
	if err != nil && !errs.Is(err, errs.ENOTFOUND) {
		return "", "", nil, err
	}
	var chg *billing.Charge
	if c, err := a.mirror.Charge(a.ctx, chargeID); err == nil {
		chg = &c
	} else if !errs.Is(err, errs.ENOTFOUND) {
		return "", "", nil, err
	}
	if len(disputes) > 0 {
		first := disputes[0]
		for _, d := range disputes[1:] {
			if d.Created.Before(first.Created) {
				first = d
			}
		}
		return "disputed", first.ID, chg, nil
	}
	if chg != nil && (chg.Refunded || chg.AmountRefunded > 0) {
		return "refunded", "", chg, nil
	}
	return "", "", chg, nil
}

// lockFraudCase orders a fraud warning's look at its charge (fraudTarget)
// with the events that resolve its case — the charge refunded, a refund, a
// dispute — applied at the same time by another worker: all take the lock
// ensure takes to open the case, so whichever comes second sees the first's
// case or the charge's new state, never neither.
func (a *applier) lockFraudCase(chargeID string) error {
	if chargeID == "" {
		return nil
	}
	return a.lockSubject(KindFraudWarning, chargeID)
}

func (a *applier) fraudWarning(w billing.FraudWarning) error {
	if err := a.lockFraudCase(w.ChargeID); err != nil {
		return err
	}
	target, disputeID, chg, err := a.fraudTarget(w.ChargeID)
	if err != nil {
		return err
	}
	links := Links{Customer: strp(firstNonEmpty(a.ch.CustomerID, w.CustomerID)), Charge: strp(w.ChargeID),
		FraudWarning: strp(w.ID), Dispute: strp(disputeID)}
	fresh := func() Case {
		title := "Early fraud warning: " + firstNonEmpty(w.FraudType, "unknown type")
		if chg != nil {
			title += ", " + formatMoney(chg.Amount, chg.Currency)
		}
		c := a.webhookCase(KindFraudWarning, firstNonEmpty(w.ChargeID, w.ID), "", title, links)
		if chg != nil {
			amt, cur := chg.Amount, chg.Currency
			c.Amount, c.Currency = &amt, &cur
		}
		if w.FraudType != "" {
			c.Tags = append(c.Tags, "fraud_type:"+w.FraudType)
		}
		if !w.Actionable {
			c.Tags = append(c.Tags, "not_actionable")
		}
		return c
	}
	// One fraud_warning case per charge (the object a refund or dispute
	// resolves it by); the warning itself is linked.
	subject := firstNonEmpty(w.ChargeID, w.ID)
	return a.ensure(KindFraudWarning, subject, true, fresh, func(c *Case, isNew bool) plan {
		note := ""
		if disputeID != "" {
			note = "dispute " + disputeID + " is open on the charge"
		}
		return plan{target: target, links: links, note: note}
	})
}

// resolveFraudByRefund resolves the open fraud_warning cases on chargeID.
func (a *applier) resolveFraudByRefund(chargeID string) error {
	if err := a.lockFraudCase(chargeID); err != nil || chargeID == "" {
		return err
	}
	open, err := a.s.st.byLink(a.ctx, a.tx, KindFraudWarning, "charge_id", chargeID, true)
	if err != nil {
		return err
	}
	for _, c := range open {
		if err := a.applyTo(c, plan{target: "refunded", note: "the charge was refunded"}); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) charge(c billing.Charge) error {
	if c.Refunded || c.AmountRefunded > 0 {
		return a.resolveFraudByRefund(c.ID)
	}
	return nil
}

func (a *applier) refund(r billing.Refund) error {
	if r.Status == "succeeded" {
		if err := a.resolveFraudByRefund(r.ChargeID); err != nil {
			return err
		}
	}
	failed := r.Status == "failed"
	links := Links{Customer: strp(firstNonEmpty(a.ch.CustomerID, r.CustomerID)), Charge: strp(r.ChargeID), Refund: strp(r.ID)}
	fresh := func() Case {
		title := "Refund failed: " + formatMoney(r.Amount, r.Currency)
		if r.FailureReason != "" {
			title += " (" + r.FailureReason + ")"
		}
		c := a.webhookCase(KindRefundFailure, r.ID, "", title, links)
		amt, cur := r.Amount, r.Currency
		c.Amount, c.Currency = &amt, &cur
		return c
	}
	// Only a failed refund opens a case; later events of a refund that has
	// one still land on its timeline.
	if err := a.ensure(KindRefundFailure, r.ID, failed, fresh, func(c *Case, isNew bool) plan {
		return plan{links: links}
	}); err != nil {
		return err
	}
	return a.flagUnknownStatus(knownStatus(billing.KindRefund), "refund_id", r.ID, r.Status)
}

// ---- invoices and subscriptions ----

// churned reports whether a subscription status ends the customer's
// relationship (for payment failures).
func churned(status string) bool {
	return status == "canceled" || status == "unpaid" || status == "incomplete_expired"
}

// paymentFailureTarget is what a payment_failure case should be, from the
// invoice and (when mirrored) its subscription. Outcomes rank recovered >
// churned > written_off, and the lifecycle only ever moves up that ranking,
// so the case ends the same whichever of "subscription unpaid" and "invoice
// uncollectible" arrives first.
func paymentFailureTarget(inv billing.Invoice, sub *billing.Subscription) string {
	switch {
	case inv.Status == "paid":
		return "recovered"
	case sub != nil && churned(sub.Status):
		return "churned"
	case inv.Status == "uncollectible" || inv.Status == "void":
		return "written_off"
	}
	return ""
}

func (a *applier) subscriptionOf(id string) (*billing.Subscription, error) {
	if id == "" {
		return nil, nil
	}
	sub, err := a.mirror.Subscription(a.ctx, id)
	if errs.Is(err, errs.ENOTFOUND) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &sub, nil
}

func (a *applier) invoice(inv billing.Invoice) error {
	if inv.SubscriptionID == "" {
		return nil // only subscription invoices are renewals worth a case
	}
	isFailure := a.ch.EventType == evInvoicePaymentFailed
	if isFailure {
		// A failure may open a case from the subscription's state as read
		// here; the subscription's churn, applied at the same time by
		// another process, closes the cases it finds. Both take this lock
		// first, so the second sees the first's case or the churn.
		if err := a.lockChurn(inv.SubscriptionID); err != nil {
			return err
		}
	}
	sub, err := a.subscriptionOf(inv.SubscriptionID)
	if err != nil {
		return err
	}
	target := paymentFailureTarget(inv, sub)
	links := Links{Customer: strp(firstNonEmpty(a.ch.CustomerID, inv.CustomerID)), Subscription: strp(inv.SubscriptionID),
		Invoice: strp(inv.ID), Charge: strp(inv.ChargeID)}
	fresh := func() Case {
		title := fmt.Sprintf("Renewal failed: %s", formatMoney(inv.AmountDue, inv.Currency))
		c := a.webhookCase(KindPaymentFailure, inv.ID, "", title, links)
		amt, cur := inv.AmountDue, inv.Currency
		c.Amount, c.Currency = &amt, &cur
		if inv.LastFailureCode != "" {
			c.Tags = append(c.Tags, "failure:"+inv.LastFailureCode)
		}
		return c
	}
	err = a.ensure(KindPaymentFailure, inv.ID, isFailure, fresh, func(c *Case, isNew bool) plan {
		p := plan{target: target, links: links, skipNoop: !isFailure}
		// A new failure of an invoice that is still open reopens a case that
		// was closed meanwhile; a stale one (the mirror knows newer) never does.
		p.reopen = isFailure && !a.ch.Stale && inv.Status == "open" && target == ""
		if isFailure && inv.AttemptCount > 0 {
			p.note = fmt.Sprintf("attempt %d", inv.AttemptCount)
		}
		return p
	})
	if err != nil {
		return err
	}
	return a.flagUnknownStatus(knownStatus(billing.KindInvoice), "invoice_id", inv.ID, inv.Status)
}

// lockChurn orders a subscription's churn with the payment failures of its
// invoices (see invoice). One customer's events share a worker loop, but
// replicas run the same loops.
func (a *applier) lockChurn(subscriptionID string) error {
	return a.lockSubject(KindPaymentFailure, "subscription:"+subscriptionID)
}

func (a *applier) subscription(sub billing.Subscription) error {
	if churned(sub.Status) {
		if err := a.lockChurn(sub.ID); err != nil {
			return err
		}
		// Open cases, and written-off ones (churned outranks written_off).
		cs, err := a.s.st.byLink(a.ctx, a.tx, KindPaymentFailure, "subscription_id", sub.ID, false)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.IsOpen() || c.State == "written_off" {
				if err := a.applyTo(c, plan{target: "churned", note: "subscription " + sub.Status, skipNoop: true}); err != nil {
					return err
				}
			}
		}
	}
	if err := a.trial(sub); err != nil {
		return err
	}
	if err := a.cancellation(sub); err != nil {
		return err
	}
	return a.flagUnknownStatus(knownStatus(billing.KindSubscription), "subscription_id", sub.ID, sub.Status)
}

// trialTarget is what a trial_conversion case should be for a subscription
// status.
func trialTarget(status string) string {
	switch status {
	case "active":
		return "converted"
	case "canceled", "paused", "unpaid", "incomplete_expired":
		return "lost"
	}
	return ""
}

// lacksPaymentMethod reports whether neither the subscription nor its
// customer (when mirrored) has a default payment method.
func (a *applier) lacksPaymentMethod(sub billing.Subscription) (bool, error) {
	if sub.HasDefaultPaymentMethod {
		return false, nil
	}
	if sub.CustomerID == "" {
		return true, nil
	}
	cus, err := a.mirror.Customer(a.ctx, sub.CustomerID)
	if errs.Is(err, errs.ENOTFOUND) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !cus.HasDefaultPaymentMethod, nil
}

func (a *applier) trial(sub billing.Subscription) error {
	isTWE := a.ch.EventType == evTrialWillEnd
	lacks := false
	if isTWE {
		// Judge the reminder by the subscription as the reminder found it:
		// a card added later (or a reminder delivered late) does not undo
		// that the trial was about to end without one.
		snap := sub
		if a.ch.EventSubscription != nil {
			snap.HasDefaultPaymentMethod = a.ch.EventSubscription.HasDefaultPaymentMethod
		}
		var err error
		if lacks, err = a.lacksPaymentMethod(snap); err != nil {
			return err
		}
	}
	target := trialTarget(sub.Status)
	links := Links{Customer: strp(firstNonEmpty(a.ch.CustomerID, sub.CustomerID)), Subscription: strp(sub.ID)}
	fresh := func() Case {
		title := "Trial ends without a payment method"
		if sub.TrialEnd != nil {
			title = "Trial ends " + sub.TrialEnd.UTC().Format("2006-01-02") + " without a payment method"
		}
		c := a.webhookCase(KindTrialConversion, sub.ID, "", title, links)
		if sub.Amount > 0 {
			amt, cur := sub.Amount, sub.Currency
			c.Amount, c.Currency = &amt, &cur
		}
		return c
	}
	return a.ensure(KindTrialConversion, sub.ID, isTWE && lacks, fresh, func(c *Case, isNew bool) plan {
		return plan{target: target, links: links, skipNoop: !isTWE,
			reopen: isTWE && lacks && !a.ch.Stale && sub.Status == "trialing"}
	})
}

func (a *applier) cancellation(sub billing.Subscription) error {
	was := a.ch.Previous.CancelAtPeriodEnd
	turnedOn := was != nil && !*was
	turnedOff := was != nil && *was
	canceled := sub.Status == "canceled"
	pending := sub.CancelAtPeriodEnd && !canceled
	links := Links{Customer: strp(firstNonEmpty(a.ch.CustomerID, sub.CustomerID)), Subscription: strp(sub.ID)}
	fresh := func() Case {
		title := "Cancellation requested"
		if sub.CurrentPeriodEnd != nil {
			title += ", effective " + sub.CurrentPeriodEnd.UTC().Format("2006-01-02")
		}
		c := a.webhookCase(KindCancellation, sub.ID, "", title, links)
		if sub.Amount > 0 {
			amt, cur := sub.Amount, sub.Currency
			c.Amount, c.Currency = &amt, &cur
		}
		if sub.CancellationFeedback != "" {
			c.Tags = append(c.Tags, "feedback:"+sub.CancellationFeedback)
		}
		return c
	}
	// The case follows the subscription's current state: deleted → canceled;
	// a pending cancellation keeps (or puts) it open; cancel_at_period_end
	// back to false retains it — for a case the provider opened, or when
	// this event is the one that turned it off (an agent's case may predate
	// any cancel_at_period_end).
	return a.ensure(KindCancellation, sub.ID, turnedOn || pending, fresh, func(c *Case, isNew bool) plan {
		p := plan{links: links, skipNoop: !turnedOn && !turnedOff}
		switch {
		case canceled:
			p.target = "canceled"
		case pending:
			p.reopen = true
		case turnedOff || isNew || c.Channel == ChannelStripe:
			p.target = "retained"
		}
		return p
	})
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
