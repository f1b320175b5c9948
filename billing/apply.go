package billing

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/stripe/stripe-go/v76"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
)

// ErrNotBillingEvent is returned by Apply for event types the mirror does
// not handle (see HandledTypes). It is not a coded error: the caller chose
// to pass the event and may simply ignore it.
var ErrNotBillingEvent = errors.New("billing: event type is not handled by the billing mirror")

// EventTypeRefundFailed is "refund.failed", which stripe-go v76 has no
// constant for (it came with API 2024-10-28). A failed refund may also
// arrive as refund.updated or charge.refund.updated with status "failed".
const EventTypeRefundFailed = "refund.failed"

// eventKinds maps every handled event type to the kind of object it carries.
var eventKinds = map[string]ObjectKind{
	string(stripe.EventTypeCustomerCreated): KindCustomer,
	string(stripe.EventTypeCustomerUpdated): KindCustomer,
	string(stripe.EventTypeCustomerDeleted): KindCustomer,

	string(stripe.EventTypeCustomerSubscriptionCreated):              KindSubscription,
	string(stripe.EventTypeCustomerSubscriptionUpdated):              KindSubscription,
	string(stripe.EventTypeCustomerSubscriptionDeleted):              KindSubscription,
	string(stripe.EventTypeCustomerSubscriptionTrialWillEnd):         KindSubscription,
	string(stripe.EventTypeCustomerSubscriptionPaused):               KindSubscription,
	string(stripe.EventTypeCustomerSubscriptionResumed):              KindSubscription,
	string(stripe.EventTypeCustomerSubscriptionPendingUpdateApplied): KindSubscription,
	string(stripe.EventTypeCustomerSubscriptionPendingUpdateExpired): KindSubscription,

	string(stripe.EventTypeInvoiceCreated):               KindInvoice,
	string(stripe.EventTypeInvoiceFinalized):             KindInvoice,
	string(stripe.EventTypeInvoiceFinalizationFailed):    KindInvoice,
	string(stripe.EventTypeInvoicePaid):                  KindInvoice,
	string(stripe.EventTypeInvoicePaymentSucceeded):      KindInvoice,
	string(stripe.EventTypeInvoicePaymentFailed):         KindInvoice,
	string(stripe.EventTypeInvoicePaymentActionRequired): KindInvoice,
	string(stripe.EventTypeInvoiceMarkedUncollectible):   KindInvoice,
	string(stripe.EventTypeInvoiceVoided):                KindInvoice,
	string(stripe.EventTypeInvoiceUpdated):               KindInvoice,
	string(stripe.EventTypeInvoiceUpcoming):              KindInvoice,

	string(stripe.EventTypeChargeSucceeded): KindCharge,
	string(stripe.EventTypeChargeFailed):    KindCharge,
	string(stripe.EventTypeChargeCaptured):  KindCharge,
	string(stripe.EventTypeChargeRefunded):  KindCharge,
	string(stripe.EventTypeChargeUpdated):   KindCharge,

	string(stripe.EventTypeChargeDisputeCreated):         KindDispute,
	string(stripe.EventTypeChargeDisputeUpdated):         KindDispute,
	string(stripe.EventTypeChargeDisputeClosed):          KindDispute,
	string(stripe.EventTypeChargeDisputeFundsWithdrawn):  KindDispute,
	string(stripe.EventTypeChargeDisputeFundsReinstated): KindDispute,

	string(stripe.EventTypeChargeRefundUpdated): KindRefund,
	string(stripe.EventTypeRefundCreated):       KindRefund,
	string(stripe.EventTypeRefundUpdated):       KindRefund,
	EventTypeRefundFailed:                       KindRefund,

	string(stripe.EventTypeRadarEarlyFraudWarningCreated): KindFraudWarning,
	string(stripe.EventTypeRadarEarlyFraudWarningUpdated): KindFraudWarning,
}

// objectNames is the provider's "object" value for each kind.
var objectNames = map[ObjectKind]string{
	KindCustomer:     "customer",
	KindSubscription: "subscription",
	KindInvoice:      "invoice",
	KindCharge:       "charge",
	KindRefund:       "refund",
	KindDispute:      "dispute",
	KindFraudWarning: "radar.early_fraud_warning",
}

// HandledTypes lists every event type Apply handles, sorted. The webhooks
// wiring registers the mirror for exactly these.
func HandledTypes() []string {
	out := make([]string, 0, len(eventKinds))
	for t := range eventKinds {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// KindOfEventType returns the kind of object an event type carries and
// whether Apply handles that type.
func KindOfEventType(eventType string) (ObjectKind, bool) {
	k, ok := eventKinds[eventType]
	return k, ok
}

func invalidPayload(format string, args ...any) error {
	return errs.Coded(errs.EINVALID, "invalid_billing_event", format, args...)
}

func (e envelope) version() Version { return Version{EventID: e.ID, EventCreated: e.Created} }

// Apply applies one provider event to the mirror and records its fact on
// the customer's timeline, inside the transaction the store is bound to
// (see In; an unbound store opens its own). It returns what changed:
//
//   - an event for an object not yet mirrored creates it (FirstSeen);
//   - an event older than the stored state leaves the state alone and sets
//     Stale (the Change still carries the current state);
//   - an event already applied (same event id) changes nothing and sets
//     Duplicate;
//   - every other event replaces the stored state.
//
// The timeline gets exactly one entry per event id, stale events included.
// Errors: ErrNotBillingEvent for types not in HandledTypes; EINVALID when
// the payload can never apply (not JSON, no object id, wrong object type);
// anything else is a storage error worth retrying.
func (s *Store) Apply(ctx context.Context, ev ProviderEvent) (Change, error) {
	if s.tx == nil {
		var ch Change
		err := s.db.Transact(ctx, func(tx *gorm.DB) error {
			var err error
			ch, err = s.In(tx).Apply(ctx, ev)
			return err
		})
		return ch, err
	}
	typ := ev.Type
	if typ == "" {
		if root, err := decodeObject(ev.Payload); err == nil {
			typ = root.str("type")
		}
	}
	kind, ok := eventKinds[typ]
	if !ok {
		return Change{}, ErrNotBillingEvent
	}
	ev.Type = typ
	env, err := parseEnvelope(ev)
	if err != nil {
		return Change{}, err
	}
	if got := env.Object.str("object"); got != "" && got != objectNames[kind] {
		return Change{}, invalidPayload("event %s (%s) carries a %q, not a %s", env.ID, typ, got, objectNames[kind])
	}
	id := env.Object.str("id")
	if id == "" && kind == KindDispute {
		// The oldest API versions kept one dispute per charge, without an
		// id of its own: key it by its charge.
		if charge := env.Object.id("charge"); charge != "" {
			id = charge
			env.Object["id"] = charge
		}
	}
	if id == "" && typ != string(stripe.EventTypeInvoiceUpcoming) {
		what := ""
		if kind == KindDispute {
			what = " (nor the charge it is on)"
		}
		return Change{}, invalidPayload("event %s (%s) carries a %s without an id%s: Recourse cannot tell which %s it is about",
			env.ID, typ, kind, what, kind)
	}
	if len(id) > maxIDLen {
		return Change{}, invalidPayload("event %s (%s) carries an object id longer than %d characters", env.ID, typ, maxIDLen)
	}
	ch := Change{
		EventID: env.ID, EventType: typ, EventCreated: env.Created,
		RequestID: env.RequestID, IdempotencyKey: env.IdempotencyKey,
		Object: kind, ObjectID: id, Previous: env.previous(),
		Upcoming: typ == string(stripe.EventTypeInvoiceUpcoming),
	}
	if kind == KindSubscription {
		sent := parseSubscription(env.Object, env)
		ch.EventSubscription = &sent
	}

	if entry, found, err := s.timelineEntryByEvent(ctx, env.ID); err != nil {
		return Change{}, err
	} else if found {
		ch.Duplicate = true
		ch.Summary = entry.Summary
		ch.CustomerID = entry.CustomerID
		if err := s.loadCurrent(ctx, env, &ch); err != nil {
			return Change{}, err
		}
		return ch, nil
	}

	var rec timelineRecord
	switch kind {
	case KindCustomer:
		rec, err = s.applyCustomer(ctx, env, &ch)
	case KindSubscription:
		rec, err = s.applySubscription(ctx, env, &ch)
	case KindInvoice:
		rec, err = s.applyInvoice(ctx, env, &ch)
	case KindCharge:
		rec, err = s.applyCharge(ctx, env, &ch)
	case KindRefund:
		rec, err = s.applyRefund(ctx, env, &ch)
	case KindDispute:
		rec, err = s.applyDispute(ctx, env, &ch)
	case KindFraudWarning:
		rec, err = s.applyFraudWarning(ctx, env, &ch)
	}
	if err != nil {
		return Change{}, fmt.Errorf("apply %s %s to %s %s: %w", typ, env.ID, kind, id, err)
	}
	ch.Summary = rec.summary
	if err := s.recordTimeline(ctx, env, &ch, rec); err != nil {
		return Change{}, err
	}
	return ch, nil
}

// maxIDLen bounds provider ids we store; the provider's are far shorter.
const maxIDLen = 255

// timelineRecord is what an apply function tells the timeline.
type timelineRecord struct {
	summary  string
	severity string
	chargeID string // the charge the fact concerns, to attach it to the customer later
}

func timelineFact(chargeID string, summary, severity string) timelineRecord {
	return timelineRecord{summary: summary, severity: severity, chargeID: chargeID}
}

// winnerPrev is the previous status to keep with the winning state.
func winnerPrev(v verdict, incoming, stored string) string {
	if v == verdictNewer {
		return incoming
	}
	return stored
}

func setOutcome(ch *Change, first bool, v verdict) {
	ch.FirstSeen = first
	ch.Stale = v == verdictStale
}

// loadCurrent sets ch's object pointer to the mirror's current state (used
// for duplicates, which change nothing).
func (s *Store) loadCurrent(ctx context.Context, env envelope, ch *Change) error {
	var err error
	switch ch.Object {
	case KindCustomer:
		var c Customer
		c, err = s.Customer(ctx, ch.ObjectID)
		ch.Customer = &c
	case KindSubscription:
		var v Subscription
		v, err = s.Subscription(ctx, ch.ObjectID)
		ch.Subscription = &v
	case KindInvoice:
		if ch.ObjectID == "" {
			inv := parseInvoice(env.Object, env)
			inv.Version = env.version()
			ch.Invoice = &inv
			return nil
		}
		var v Invoice
		v, err = s.Invoice(ctx, ch.ObjectID)
		ch.Invoice = &v
	case KindCharge:
		var v Charge
		v, err = s.Charge(ctx, ch.ObjectID)
		ch.Charge = &v
	case KindRefund:
		var v Refund
		v, err = s.Refund(ctx, ch.ObjectID)
		ch.Refund = &v
	case KindDispute:
		var v Dispute
		v, err = s.Dispute(ctx, ch.ObjectID)
		ch.Dispute = &v
	case KindFraudWarning:
		var v FraudWarning
		v, err = s.FraudWarning(ctx, ch.ObjectID)
		ch.FraudWarning = &v
	}
	return err
}

// --- customers ----------------------------------------------------------------

func (s *Store) applyCustomer(ctx context.Context, env envelope, ch *Change) (timelineRecord, error) {
	in := parseCustomer(env.Object, env)
	in.Version = env.version()
	if erased, err := s.IsErased(ctx, in.ID); err != nil {
		return timelineRecord{}, err
	} else if erased {
		in = in.withoutPersonalData()
	}
	rank := func(c Customer) []int64 { return []int64{boolRank(c.Deleted)} }
	row, first, v, err := upsert(ctx, s, &customerRow{Customer: in}, func(st *customerRow) (*customerRow, verdict) {
		v := compareStates(ordering{version: in.Version, rank: rank(in)}, ordering{version: st.Version, rank: rank(st.Customer)})
		out, other := pickBase(st.Customer, in, v)
		out.Deleted = out.Deleted || other.Deleted // deletion is permanent
		// A deletion stub carries no details: keep the last known ones.
		if out.Deleted {
			keep(&out.Email, other.Email)
			keep(&out.Name, other.Name)
		}
		earliest(&out.Created, other.Created)
		return &customerRow{Customer: out}, v
	})
	if err != nil {
		return timelineRecord{}, err
	}
	setOutcome(ch, first, v)
	cur := row.Customer
	ch.Customer, ch.CustomerID = &cur, cur.ID
	sum, sev := customerSummary(env, in)
	return timelineFact("", sum, sev), nil
}

// --- subscriptions ------------------------------------------------------------

func subscriptionRank(x Subscription) []int64 {
	return []int64{statusRank(subscriptionOrder, x.Status), timeRank(x.CurrentPeriodEnd)}
}

func (s *Store) applySubscription(ctx context.Context, env envelope, ch *Change) (timelineRecord, error) {
	in := parseSubscription(env.Object, env)
	in.Version = env.version()
	if erased, err := s.IsErased(ctx, in.CustomerID); err != nil {
		return timelineRecord{}, err
	} else if erased {
		in = in.withoutPersonalData()
	}
	prevStatus := jsonObject(env.Previous).str("status")
	row, first, v, err := upsert(ctx, s, &subscriptionRow{Subscription: in, PrevStatus: prevStatus}, func(st *subscriptionRow) (*subscriptionRow, verdict) {
		v := compareStates(
			ordering{version: in.Version, rank: subscriptionRank(in), status: in.Status, prevStatus: prevStatus},
			ordering{version: st.Version, rank: subscriptionRank(st.Subscription), status: st.Status, prevStatus: st.PrevStatus})
		out, other := pickBase(st.Subscription, in, v)
		keep(&out.CustomerID, other.CustomerID)
		if out.PriceID == "" && out.Amount == 0 { // a payload without items
			out.PriceID, out.ProductID, out.Amount, out.Interval = other.PriceID, other.ProductID, other.Amount, other.Interval
		}
		keep(&out.Currency, other.Currency)
		keep(&out.LatestInvoiceID, other.LatestInvoiceID)
		earliest(&out.Created, other.Created)
		return &subscriptionRow{Subscription: out, PrevStatus: winnerPrev(v, prevStatus, st.PrevStatus)}, v
	})
	if err != nil {
		return timelineRecord{}, err
	}
	setOutcome(ch, first, v)
	subs, err := s.withCustomerPM(ctx, []Subscription{row.Subscription})
	if err != nil {
		return timelineRecord{}, err
	}
	cur := subs[0]
	ch.Subscription, ch.CustomerID = &cur, cur.CustomerID
	hasPM := in.HasDefaultPaymentMethod
	if !hasPM {
		if hasPM, err = s.customerHasPM(ctx, in.CustomerID); err != nil {
			return timelineRecord{}, err
		}
	}
	sum, sev := subscriptionSummary(env, in, hasPM)
	return timelineFact("", sum, sev), nil
}

// --- invoices -----------------------------------------------------------------

func invoiceRank(x Invoice) []int64 {
	return []int64{statusRank(invoiceOrder, x.Status), int64(x.AttemptCount), x.AmountPaid}
}

func (s *Store) applyInvoice(ctx context.Context, env envelope, ch *Change) (timelineRecord, error) {
	in := parseInvoice(env.Object, env)
	in.Version = env.version()
	if erased, err := s.IsErased(ctx, in.CustomerID); err != nil {
		return timelineRecord{}, err
	} else if erased {
		in = in.withoutPersonalData()
	}
	if env.Type == string(stripe.EventTypeInvoicePaymentFailed) {
		code, err := s.paymentFailureCode(ctx, env.Object, in)
		if err != nil {
			return timelineRecord{}, err
		}
		in.LastFailureCode = code
	}
	if in.ID == "" { // invoice.upcoming: a preview, not an invoice yet
		ch.Invoice, ch.CustomerID = &in, in.CustomerID
		sum, sev := invoiceSummary(env, env.Object, in, s.maxAttempts)
		return timelineFact("", sum, sev), nil
	}
	prevStatus := jsonObject(env.Previous).str("status")
	row, first, v, err := upsert(ctx, s, &invoiceRow{Invoice: in, PrevStatus: prevStatus}, func(st *invoiceRow) (*invoiceRow, verdict) {
		v := compareStates(
			ordering{version: in.Version, rank: invoiceRank(in), status: in.Status, prevStatus: prevStatus},
			ordering{version: st.Version, rank: invoiceRank(st.Invoice), status: st.Status, prevStatus: st.PrevStatus})
		out, other := pickBase(st.Invoice, in, v)
		keep(&out.CustomerID, other.CustomerID)
		keep(&out.SubscriptionID, other.SubscriptionID)
		keep(&out.ChargeID, other.ChargeID)
		keep(&out.PaymentIntentID, other.PaymentIntentID)
		keep(&out.Currency, other.Currency)
		keep(&out.BillingReason, other.BillingReason)
		keep(&out.HostedInvoiceURL, other.HostedInvoiceURL)
		keep(&out.LastFailureCode, other.LastFailureCode) // the last failure's code stays until a newer failure
		earliest(&out.Created, other.Created)
		return &invoiceRow{Invoice: out, PrevStatus: winnerPrev(v, prevStatus, st.PrevStatus)}, v
	})
	if err != nil {
		return timelineRecord{}, err
	}
	setOutcome(ch, first, v)
	invs, err := s.withFailureCodes(ctx, []Invoice{row.Invoice})
	if err != nil {
		return timelineRecord{}, err
	}
	cur := invs[0]
	ch.Invoice, ch.CustomerID = &cur, cur.CustomerID
	sum, sev := invoiceSummary(env, env.Object, in, s.maxAttempts)
	return timelineFact("", sum, sev), nil
}

// paymentFailureCode finds why an invoice payment failed, best effort: the
// expanded charge, the mirrored charge, the expanded payment intent's last
// error, then the invoice's own last errors.
func (s *Store) paymentFailureCode(ctx context.Context, o jsonObject, inv Invoice) (string, error) {
	if code := o.str("charge", "failure_code"); code != "" {
		return code, nil
	}
	if inv.ChargeID != "" {
		var codes []string
		if err := s.conn(ctx).Model(&chargeRow{}).Where("id = ?", inv.ChargeID).Limit(1).Pluck("failure_code", &codes).Error; err != nil {
			return "", fmt.Errorf("look up failure of charge %s: %w", inv.ChargeID, err)
		}
		if len(codes) > 0 && codes[0] != "" {
			return codes[0], nil
		}
	}
	return o.firstStr(
		keyPath("payment_intent", "last_payment_error", "code"),
		keyPath("last_payment_error", "code"),
		keyPath("last_finalization_error", "code"),
	), nil
}

// --- charges ------------------------------------------------------------------

func chargeRank(x Charge) []int64 {
	return []int64{statusRank(chargeOrder, x.Status), x.AmountRefunded, boolRank(x.Disputed), boolRank(x.Refunded)}
}

func (s *Store) applyCharge(ctx context.Context, env envelope, ch *Change) (timelineRecord, error) {
	in := parseCharge(env.Object, env)
	in.Version = env.version()
	if erased, err := s.IsErased(ctx, in.CustomerID); err != nil {
		return timelineRecord{}, err
	} else if erased {
		in = in.withoutPersonalData()
	}
	prevStatus := jsonObject(env.Previous).str("status")
	storedCustomer := ""
	row, first, v, err := upsert(ctx, s, &chargeRow{Charge: in, PrevStatus: prevStatus}, func(st *chargeRow) (*chargeRow, verdict) {
		storedCustomer = st.CustomerID
		v := compareStates(
			ordering{version: in.Version, rank: chargeRank(in), status: in.Status, prevStatus: prevStatus},
			ordering{version: st.Version, rank: chargeRank(st.Charge), status: st.Status, prevStatus: st.PrevStatus})
		out, other := pickBase(st.Charge, in, v)
		keep(&out.CustomerID, other.CustomerID)
		keep(&out.InvoiceID, other.InvoiceID)
		keep(&out.PaymentIntentID, other.PaymentIntentID)
		keep(&out.Currency, other.Currency)
		keep(&out.CardBrand, other.CardBrand)
		keep(&out.CardLast4, other.CardLast4)
		keep(&out.CardFingerprint, other.CardFingerprint)
		earliest(&out.Created, other.Created)
		return &chargeRow{Charge: out, PrevStatus: winnerPrev(v, prevStatus, st.PrevStatus)}, v
	})
	if err != nil {
		return timelineRecord{}, err
	}
	setOutcome(ch, first, v)
	cur := row.Charge
	ch.Charge, ch.CustomerID = &cur, cur.CustomerID
	// The charge gains its customer here: wait for any child event that
	// found it without one (resolveChildCustomer) to commit, so that the
	// attach below sees the child's row. Before the embedded refunds, which
	// such a child may be writing.
	attach := cur.CustomerID != "" && (first || storedCustomer != cur.CustomerID)
	if attach {
		if err := s.db.Dialect.AdvisoryXactLock(ctx, s.conn(ctx), db.LockChargeChildren, cur.ID); err != nil {
			return timelineRecord{}, err
		}
	}
	if err := s.countSucceeded(ctx, cur); err != nil {
		return timelineRecord{}, err
	}

	// Older API versions list the charge's refunds on it: mirror them too,
	// as of this event. Parent (charge) before children keeps lock order.
	for _, ro := range env.Object.list("refunds") {
		r := parseRefund(ro, env)
		if r.ID == "" {
			continue
		}
		keep(&r.ChargeID, cur.ID)
		keep(&r.CustomerID, cur.CustomerID)
		keep(&r.PaymentIntentID, cur.PaymentIntentID)
		if _, _, _, err := s.upsertRefund(ctx, r, env, ""); err != nil {
			return timelineRecord{}, err
		}
	}
	// Children recorded while the charge was unknown or had no customer
	// get it now; once the charge has it, later children resolve it
	// themselves (resolveCustomer), so there is nothing left to attach.
	if attach {
		if err := s.attachToCustomer(ctx, cur.ID, cur.CustomerID); err != nil {
			return timelineRecord{}, err
		}
	}
	sum, sev := chargeSummary(env, env.Object, in)
	return timelineFact(cur.ID, sum, sev), nil
}

// attachToCustomer gives the refunds, disputes, fraud warnings and timeline
// facts of a charge its customer when they were recorded before the charge
// was mirrored. Only rows of this charge are touched, after the charge row
// is locked (parent before children), so it cannot deadlock with the
// children's own events, which never lock the charge.
func (s *Store) attachToCustomer(ctx context.Context, chargeID, customerID string) error {
	for _, table := range []string{"billing_refunds", "billing_disputes", "billing_fraud_warnings", "billing_timeline"} {
		err := s.conn(ctx).Table(table).Where("charge_id = ? AND customer_id = ''", chargeID).
			Update("customer_id", customerID).Error
		if err != nil {
			return fmt.Errorf("attach %s of charge %s to customer: %w", table, chargeID, err)
		}
	}
	return nil
}

// --- refunds ------------------------------------------------------------------

func (s *Store) applyRefund(ctx context.Context, env envelope, ch *Change) (timelineRecord, error) {
	in := parseRefund(env.Object, env)
	if env.Type == EventTypeRefundFailed && in.Status == "" {
		in.Status = "failed"
	}
	if err := s.resolveChildCustomer(ctx, &in.CustomerID, in.ChargeID); err != nil {
		return timelineRecord{}, err
	}
	if in.CustomerID == "" { // a customer found before (from the provider) is kept
		st, err := s.Refund(ctx, in.ID)
		if err != nil && !errs.Is(err, errs.ENOTFOUND) {
			return timelineRecord{}, err
		}
		in.CustomerID = st.CustomerID
	}
	if _, err := s.customerFromProvider(ctx, &in.CustomerID, in.ChargeID, ch); err != nil {
		return timelineRecord{}, err
	}
	row, first, v, err := s.upsertRefund(ctx, in, env, jsonObject(env.Previous).str("status"))
	if err != nil {
		return timelineRecord{}, err
	}
	setOutcome(ch, first, v)
	cur := row.Refund
	if err := s.resolveCustomer(ctx, &cur.CustomerID, cur.ChargeID); err != nil {
		return timelineRecord{}, err
	}
	ch.Refund, ch.CustomerID = &cur, cur.CustomerID
	sum, sev := refundSummary(env, in)
	return timelineFact(cur.ChargeID, sum, sev), nil
}

func (s *Store) upsertRefund(ctx context.Context, in Refund, env envelope, prevStatus string) (*refundRow, bool, verdict, error) {
	in.Version = env.version()
	rank := func(x Refund) []int64 { return []int64{statusRank(refundOrder, x.Status)} }
	return upsert(ctx, s, &refundRow{Refund: in, PrevStatus: prevStatus}, func(st *refundRow) (*refundRow, verdict) {
		v := compareStates(
			ordering{version: in.Version, rank: rank(in), status: in.Status, prevStatus: prevStatus},
			ordering{version: st.Version, rank: rank(st.Refund), status: st.Status, prevStatus: st.PrevStatus})
		out, other := pickBase(st.Refund, in, v)
		keep(&out.ChargeID, other.ChargeID)
		keep(&out.PaymentIntentID, other.PaymentIntentID)
		keep(&out.CustomerID, other.CustomerID)
		keep(&out.Currency, other.Currency)
		keep(&out.Reason, other.Reason)
		if out.Status == "failed" {
			keep(&out.FailureReason, other.FailureReason)
		}
		earliest(&out.Created, other.Created)
		return &refundRow{Refund: out, PrevStatus: winnerPrev(v, prevStatus, st.PrevStatus)}, v
	})
}

// --- disputes -----------------------------------------------------------------

func disputeRank(x Dispute) []int64 {
	return []int64{statusRank(disputeOrder, x.Status), int64(x.SubmissionCount), boolRank(x.HasEvidence), boolRank(x.PastDue)}
}

func (s *Store) applyDispute(ctx context.Context, env envelope, ch *Change) (timelineRecord, error) {
	in := parseDispute(env.Object, env)
	in.Version = env.version()
	if err := s.resolveChildCustomer(ctx, &in.CustomerID, in.ChargeID); err != nil {
		return timelineRecord{}, err
	}
	if in.CustomerID == "" { // a customer found before (from the provider) is kept
		st, err := s.Dispute(ctx, in.ID)
		if err != nil && !errs.Is(err, errs.ENOTFOUND) {
			return timelineRecord{}, err
		}
		in.CustomerID = st.CustomerID
	}
	if c, err := s.customerFromProvider(ctx, &in.CustomerID, in.ChargeID, ch); err != nil {
		return timelineRecord{}, err
	} else if c != nil && in.CardBrand == "" {
		in.CardBrand = c.CardBrand
	}
	prevStatus := jsonObject(env.Previous).str("status")
	row, first, v, err := upsert(ctx, s, &disputeRow{Dispute: in, PrevStatus: prevStatus}, func(st *disputeRow) (*disputeRow, verdict) {
		v := compareStates(
			ordering{version: in.Version, rank: disputeRank(in), status: in.Status, prevStatus: prevStatus},
			ordering{version: st.Version, rank: disputeRank(st.Dispute), status: st.Status, prevStatus: st.PrevStatus})
		out, other := pickBase(st.Dispute, in, v)
		keep(&out.ChargeID, other.ChargeID)
		keep(&out.PaymentIntentID, other.PaymentIntentID)
		keep(&out.CustomerID, other.CustomerID)
		keep(&out.Currency, other.Currency)
		keep(&out.Reason, other.Reason)
		keep(&out.NetworkReasonCode, other.NetworkReasonCode)
		keep(&out.CardBrand, other.CardBrand)
		if out.EvidenceDueBy == nil {
			out.EvidenceDueBy = other.EvidenceDueBy
		}
		// Money movements are facts, whatever order they are reported in.
		out.FundsWithdrawn = out.FundsWithdrawn || other.FundsWithdrawn
		out.FundsReinstated = out.FundsReinstated || other.FundsReinstated
		earliest(&out.Created, other.Created)
		return &disputeRow{Dispute: out, PrevStatus: winnerPrev(v, prevStatus, st.PrevStatus)}, v
	})
	if err != nil {
		return timelineRecord{}, err
	}
	setOutcome(ch, first, v)
	cur := row.Dispute
	if err := s.resolveCustomer(ctx, &cur.CustomerID, cur.ChargeID); err != nil {
		return timelineRecord{}, err
	}
	ch.Dispute, ch.CustomerID = &cur, cur.CustomerID
	sum, sev := disputeSummary(env, in)
	return timelineFact(cur.ChargeID, sum, sev), nil
}

// --- early fraud warnings -------------------------------------------------------

func (s *Store) applyFraudWarning(ctx context.Context, env envelope, ch *Change) (timelineRecord, error) {
	in := parseFraudWarning(env.Object, env)
	in.Version = env.version()
	if err := s.resolveChildCustomer(ctx, &in.CustomerID, in.ChargeID); err != nil {
		return timelineRecord{}, err
	}
	if in.CustomerID == "" { // a customer found before (from the provider) is kept
		st, err := s.FraudWarning(ctx, in.ID)
		if err != nil && !errs.Is(err, errs.ENOTFOUND) {
			return timelineRecord{}, err
		}
		in.CustomerID = st.CustomerID
	}
	if _, err := s.customerFromProvider(ctx, &in.CustomerID, in.ChargeID, ch); err != nil {
		return timelineRecord{}, err
	}
	// A warning stops being actionable (refunded or disputed); never the reverse.
	rank := func(x FraudWarning) []int64 { return []int64{boolRank(!x.Actionable)} }
	row, first, v, err := upsert(ctx, s, &fraudWarningRow{FraudWarning: in}, func(st *fraudWarningRow) (*fraudWarningRow, verdict) {
		v := compareStates(ordering{version: in.Version, rank: rank(in)}, ordering{version: st.Version, rank: rank(st.FraudWarning)})
		out, other := pickBase(st.FraudWarning, in, v)
		keep(&out.ChargeID, other.ChargeID)
		keep(&out.PaymentIntentID, other.PaymentIntentID)
		keep(&out.CustomerID, other.CustomerID)
		keep(&out.FraudType, other.FraudType)
		earliest(&out.Created, other.Created)
		return &fraudWarningRow{FraudWarning: out}, v
	})
	if err != nil {
		return timelineRecord{}, err
	}
	setOutcome(ch, first, v)
	cur := row.FraudWarning
	if err := s.resolveCustomer(ctx, &cur.CustomerID, cur.ChargeID); err != nil {
		return timelineRecord{}, err
	}
	ch.FraudWarning, ch.CustomerID = &cur, cur.CustomerID
	var charge *Charge
	if cur.ChargeID != "" {
		c, err := s.Charge(ctx, cur.ChargeID)
		switch {
		case err == nil:
			charge = &c
		case !errs.Is(err, errs.ENOTFOUND):
			return timelineRecord{}, err
		}
	}
	sum, sev := fraudWarningSummary(env, in, charge)
	return timelineFact(cur.ChargeID, sum, sev), nil
}
