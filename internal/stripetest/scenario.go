package stripetest

import (
	"fmt"
	"sort"
	"time"
)

// Story names, as used in Event.Story and by Generator.Story.
const (
	StoryActiveRenews          = "active_renews"
	StoryTrialConverts         = "trial_converts"
	StoryTrialLapsesCanceled   = "trial_lapses_canceled"
	StoryTrialLapsesPaused     = "trial_lapses_paused"
	StoryRenewalRecovers       = "renewal_recovers"
	StoryRenewalChurnsUnpaid   = "renewal_churns_unpaid"
	StoryRenewalChurnsCanceled = "renewal_churns_canceled"
	StoryCancelRetained        = "cancel_retained"
	StoryCancelChurns          = "cancel_churns"
	StoryRefundIssued          = "refund_issued"
	StoryRefundFailed          = "refund_failed"
	StoryFraudWarningRefunded  = "fraud_warning_refunded"
	StoryFraudWarningDisputed  = "fraud_warning_disputed"
	StoryInquiryClosed         = "inquiry_closed"
	StoryChargebackWon         = "chargeback_won"
	StoryChargebackLost        = "chargeback_lost"
)

// Scenario describes one built-in story.
type Scenario struct {
	Name        string
	Description string
	// Weight is the story's relative frequency in Generator.Mix.
	Weight int
	// Run generates the story for one new customer starting at start and
	// returns its events in time order.
	Run func(g *Generator, start time.Time) []Event
}

// Scenarios returns the built-in stories in a fixed order.
func Scenarios() []Scenario {
	return []Scenario{
		{StoryActiveRenews, "paid signup followed by two successful renewals", 12,
			func(g *Generator, t time.Time) []Event { return g.ActiveRenews(t, 2) }},
		{StoryTrialConverts, "trial with a card on file converts to paid", 14, (*Generator).TrialConverts},
		{StoryTrialLapsesCanceled, "trial without a payment method ends and the subscription is canceled", 6, (*Generator).TrialLapsesCanceled},
		{StoryTrialLapsesPaused, "trial without a payment method ends and the subscription is paused", 4, (*Generator).TrialLapsesPaused},
		{StoryRenewalRecovers, "renewal payment fails 1–3 times, then a retry succeeds", 10,
			func(g *Generator, t time.Time) []Event { return g.RenewalRecovers(t, 0) }},
		{StoryRenewalChurnsUnpaid, "every renewal retry fails; subscription unpaid, invoice uncollectible", 5, (*Generator).RenewalChurnsUnpaid},
		{StoryRenewalChurnsCanceled, "every renewal retry fails; subscription canceled, invoice voided", 5, (*Generator).RenewalChurnsCanceled},
		{StoryCancelRetained, "cancel at period end requested, then withdrawn; renewal paid", 6, (*Generator).CancelRetained},
		{StoryCancelChurns, "cancel at period end requested; subscription ends", 9, (*Generator).CancelChurns},
		{StoryRefundIssued, "merchant refunds a payment (full or partial); refund succeeds", 7, (*Generator).RefundIssued},
		{StoryRefundFailed, "merchant refunds a payment; the refund later fails", 3, (*Generator).RefundFailed},
		{StoryFraudWarningRefunded, "early fraud warning; merchant refunds and cancels", 4, (*Generator).FraudWarningRefunded},
		{StoryFraudWarningDisputed, "early fraud warning ignored; fraud chargeback lost", 2, (*Generator).FraudWarningDisputed},
		{StoryInquiryClosed, "inquiry (warning_needs_response) closed as warning_closed", 6, (*Generator).InquiryClosed},
		{StoryChargebackWon, "chargeback with funds withdrawn, evidence submitted, won and reinstated", 6, (*Generator).ChargebackWon},
		{StoryChargebackLost, "chargeback with funds withdrawn, lost", 7, (*Generator).ChargebackLost},
	}
}

// Story runs the named built-in story (see Scenarios).
func (g *Generator) Story(name string, start time.Time) ([]Event, error) {
	for _, sc := range Scenarios() {
		if sc.Name == name {
			return sc.Run(g, start), nil
		}
	}
	return nil, fmt.Errorf("stripetest: unknown story %q", name)
}

// Mix generates n customers, each living one built-in story chosen by
// weight and starting at a random time within 30 days after start, and
// returns all their events interleaved in time order (ties keep generation
// order).
func (g *Generator) Mix(n int, start time.Time) []Event {
	scs := Scenarios()
	weights := make([]int, len(scs))
	for i, sc := range scs {
		weights[i] = sc.Weight
	}
	var all []Event
	for i := 0; i < n; i++ {
		sc := scs[g.weighted(weights)]
		offset := g.between(0, 30*24*time.Hour)
		all = append(all, sc.Run(g, start.Add(offset))...)
	}
	SortEvents(all)
	return all
}

// SortEvents stably sorts events by Created.
func SortEvents(events []Event) {
	sort.SliceStable(events, func(i, j int) bool { return events[i].Created.Before(events[j].Created) })
}

// DistinctEvents returns n cheap, distinct customer.updated events (each for
// a different customer, one second apart starting at the Generator's clock),
// for intake and deduplication benchmarks.
func (g *Generator) DistinctEvents(n int) []Event {
	base := g.now()
	out := make([]Event, 0, n)
	for i := 0; i < n; i++ {
		t := base.Add(time.Duration(i) * time.Second)
		cust := g.Customer(CustomerParams{
			Created:  t.Add(-time.Duration(g.rangeInt(1, 400)) * 24 * time.Hour),
			Metadata: map[string]string{"crm_ref": g.randString(10, alnum)},
		})
		out = append(out, g.NewEvent("customer.updated", cust,
			WithCreated(t),
			WithPreviousAttributes(map[string]any{"metadata": map[string]any{"crm_ref": nil}}),
			g.APIRequest()))
	}
	return out
}

// --- story machinery ----------------------------------------------------------

type story struct {
	g    *Generator
	name string
	t    time.Time
	evs  []Event

	reqID, reqKey string // current API request; empty for automatic events

	cust   CustomerParams
	card   Card
	pm     string
	plan   Plan
	sub    SubscriptionParams
	invSeq int

	decline string // decline code used for failed payments
}

// paid records a successful payment.
type paid struct {
	charge  ChargeParams
	invoice string
}

func (g *Generator) newStory(name string, start time.Time, brand string) *story {
	s := &story{g: g, name: name, t: start.Truncate(time.Second)}
	name2, email := g.person()
	s.cust = CustomerParams{
		ID:            g.NewID("cus_"),
		Name:          name2,
		Email:         email,
		Created:       s.t,
		InvoicePrefix: g.randString(8, "ABCDEF0123456789"),
	}
	s.card = g.card(brand, s.t)
	s.plan = g.pickPlan()
	s.decline = []string{"insufficient_funds", "generic_decline", "do_not_honor", "expired_card"}[g.weighted([]int{50, 20, 15, 15})]
	return s
}

// at moves the story clock to t (never backwards).
func (s *story) at(t time.Time) {
	if t = t.Truncate(time.Second); t.After(s.t) {
		s.t = t
	}
}

func (s *story) wait(lo, hi time.Duration) { s.at(s.t.Add(s.g.between(lo, hi))) }

// request starts a new API request; following events carry its id until
// automatic is called.
func (s *story) request() { s.reqID, s.reqKey = s.g.NewID("req_"), s.g.uuid() }

// automatic marks following events as triggered by Stripe itself.
func (s *story) automatic() { s.reqID, s.reqKey = "", "" }

func (s *story) emit(typ string, obj map[string]any, prev map[string]any) {
	s.add(typ, obj, prev, false)
}

// noise emits an event Stripe sends but that WithCoreEventsOnly drops.
func (s *story) noise(typ string, obj map[string]any, prev map[string]any) {
	s.add(typ, obj, prev, true)
}

func (s *story) add(typ string, obj, prev map[string]any, ancillary bool) {
	id := s.g.NewID("evt_") // consumed even when dropped, so ids do not shift
	if ancillary && s.g.coreOnly {
		return
	}
	s.evs = append(s.evs, s.g.NewEvent(typ, obj,
		WithEventID(id),
		WithCreated(s.t),
		WithPreviousAttributes(prev),
		WithRequest(s.reqID, s.reqKey),
		WithStory(s.name)))
}

func (s *story) subObj() map[string]any { return s.g.Subscription(s.sub) }

func (s *story) newInvoice(reason string, periodStart, periodEnd time.Time, trial bool) InvoiceParams {
	s.invSeq++
	return InvoiceParams{
		ID:               s.g.NewID("in_"),
		Customer:         s.cust.ID,
		CustomerEmail:    s.cust.Email,
		CustomerName:     s.cust.Name,
		Subscription:     s.sub.ID,
		SubscriptionItem: s.sub.ItemID,
		Plan:             s.plan,
		Trial:            trial,
		Status:           "draft",
		BillingReason:    reason,
		Number:           fmt.Sprintf("%s-%04d", s.cust.InvoicePrefix, s.invSeq),
		PeriodStart:      periodStart,
		PeriodEnd:        periodEnd,
		Created:          s.t,
	}
}

func (s *story) finalize(inv *InvoiceParams) {
	inv.Status = "open"
	inv.FinalizedAt = s.t
	if !inv.Trial {
		inv.PaymentIntent = s.g.NewID("pi_")
	}
	s.noise("invoice.finalized", s.g.Invoice(*inv), nil)
}

func (s *story) chargeFor(inv *InvoiceParams, status string) ChargeParams {
	desc := "Subscription update"
	if inv.BillingReason == "subscription_create" {
		desc = "Subscription creation"
	}
	cp := ChargeParams{
		ID:            s.g.NewID("ch_"),
		Amount:        s.plan.UnitAmount,
		Currency:      s.plan.Currency,
		Customer:      s.cust.ID,
		Invoice:       inv.ID,
		PaymentIntent: inv.PaymentIntent,
		PaymentMethod: s.pm,
		Status:        status,
		Card:          s.card,
		BillingName:   s.cust.Name,
		BillingEmail:  s.cust.Email,
		Description:   desc,
		RiskScore:     s.g.rangeInt(5, 64),
		Created:       s.t,
	}
	if status == "failed" {
		if s.decline == "expired_card" {
			cp.FailureCode = "expired_card"
		} else {
			cp.FailureCode, cp.DeclineCode = "card_declined", s.decline
		}
	}
	return cp
}

// pay collects inv successfully at the story clock.
func (s *story) pay(inv *InvoiceParams) paid {
	inv.AttemptCount++
	var cp ChargeParams
	if !inv.Trial {
		cp = s.chargeFor(inv, "succeeded")
		inv.Charge = cp.ID
		s.noise("charge.succeeded", s.g.Charge(cp), nil)
	} else {
		inv.AttemptCount = 0
	}
	inv.Status = "paid"
	inv.PaidAt = s.t
	inv.NextPaymentAttempt = time.Time{}
	obj := s.g.Invoice(*inv)
	if inv.Trial {
		s.noise("invoice.paid", obj, nil)
	} else {
		s.emit("invoice.paid", obj, nil)
	}
	s.noise("invoice.payment_succeeded", s.g.Invoice(*inv), nil)
	s.cust.Currency = s.plan.Currency
	return paid{charge: cp, invoice: inv.ID}
}

// fail records a failed payment attempt; next is the next retry (zero when
// no retry is scheduled).
func (s *story) fail(inv *InvoiceParams, next time.Time) {
	inv.AttemptCount++
	cp := s.chargeFor(inv, "failed")
	inv.Charge = cp.ID
	inv.NextPaymentAttempt = next
	s.noise("charge.failed", s.g.Charge(cp), nil)
	s.emit("invoice.payment_failed", s.g.Invoice(*inv), nil)
}

// rollPeriod starts a new billing period at the given time and returns the
// previous_attributes of the change.
func (s *story) rollPeriod(at time.Time, latestInvoice string) map[string]any {
	prev := map[string]any{
		"current_period_end":   s.sub.CurrentPeriodEnd.Unix(),
		"current_period_start": s.sub.CurrentPeriodStart.Unix(),
		"latest_invoice":       nullable(s.sub.LatestInvoice),
	}
	s.sub.CurrentPeriodStart = at
	s.sub.CurrentPeriodEnd = s.plan.Next(at)
	s.sub.LatestInvoice = latestInvoice
	return prev
}

func (s *story) setStatus(status string) map[string]any {
	prev := map[string]any{"status": s.sub.Status}
	s.sub.Status = status
	return prev
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// signupTrial creates the customer and a trialing subscription with its $0
// trial invoice.
func (s *story) signupTrial(withPM bool, missingPM string) {
	g := s.g
	if withPM {
		s.pm = g.NewID("pm_")
		s.cust.DefaultPaymentMethod = s.pm
	}
	s.request()
	s.noise("customer.created", g.Customer(s.cust), nil)
	s.wait(2*time.Second, 40*time.Second)
	s.request()
	s.sub = SubscriptionParams{
		ID:                        g.NewID("sub_"),
		Customer:                  s.cust.ID,
		Status:                    "trialing",
		Created:                   s.t,
		Plan:                      s.plan,
		ItemID:                    g.NewID("si_"),
		TrialStart:                s.t,
		TrialEnd:                  s.t.AddDate(0, 0, s.plan.TrialDays),
		TrialMissingPaymentMethod: missingPM,
		DefaultPaymentMethod:      s.pm,
	}
	g.normalizeSubscription(&s.sub)
	inv := s.newInvoice("subscription_create", s.t, s.t, true)
	s.sub.LatestInvoice = inv.ID
	s.emit("customer.subscription.created", s.subObj(), nil)
	s.noise("invoice.created", g.Invoice(inv), nil)
	s.finalize(&inv)
	s.pay(&inv)
}

// signupPaid creates the customer and a subscription paid up front: the
// subscription starts incomplete and becomes active once the first invoice
// is paid.
func (s *story) signupPaid() paid {
	g := s.g
	s.pm = g.NewID("pm_")
	s.cust.DefaultPaymentMethod = s.pm
	s.request()
	s.noise("customer.created", g.Customer(s.cust), nil)
	s.wait(2*time.Second, 40*time.Second)
	s.request()
	s.sub = SubscriptionParams{
		ID:                   g.NewID("sub_"),
		Customer:             s.cust.ID,
		Status:               "incomplete",
		Created:              s.t,
		Plan:                 s.plan,
		ItemID:               g.NewID("si_"),
		DefaultPaymentMethod: s.pm,
	}
	g.normalizeSubscription(&s.sub)
	inv := s.newInvoice("subscription_create", s.t, s.t, false)
	s.sub.LatestInvoice = inv.ID
	s.emit("customer.subscription.created", s.subObj(), nil)
	s.noise("invoice.created", g.Invoice(inv), nil)
	s.finalize(&inv)
	s.wait(3*time.Second, 45*time.Second)
	s.request()
	p := s.pay(&inv)
	s.emitSub("customer.subscription.updated", s.setStatus("active"))
	return p
}

// emitSub emits a subscription event with the current subscription state.
// Pass prev from setStatus/rollPeriod: arguments are evaluated before the
// object is built.
func (s *story) emitSub(typ string, prev map[string]any) {
	s.emit(typ, s.subObj(), prev)
}

// openCycle starts a renewal at the end of the current period: the
// subscription rolls over, the draft invoice is created, and about an hour
// later it is finalized. It returns the open invoice.
func (s *story) openCycle() InvoiceParams {
	s.automatic()
	s.at(s.sub.CurrentPeriodEnd)
	inv := s.newInvoice("subscription_cycle", s.sub.CurrentPeriodStart, s.t, false)
	s.emitSub("customer.subscription.updated", s.rollPeriod(s.t, inv.ID))
	s.noise("invoice.created", s.g.Invoice(inv), nil)
	s.wait(time.Hour, time.Hour+5*time.Minute)
	s.finalize(&inv)
	return inv
}

// renew runs one successful renewal.
func (s *story) renew() paid {
	inv := s.openCycle()
	return s.pay(&inv)
}

func (s *story) events() []Event { return s.evs }

// --- subscription stories -----------------------------------------------------

// ActiveRenews simulates a paid signup followed by the given number of
// successful renewals.
func (g *Generator) ActiveRenews(start time.Time, renewals int) []Event {
	s := g.newStory(StoryActiveRenews, start, "")
	s.signupPaid()
	for i := 0; i < renewals; i++ {
		s.renew()
	}
	return s.events()
}

// TrialConverts simulates a trial with a card on file that converts:
// customer.subscription.created (trialing) → customer.subscription.trial_will_end
// (three days before the end) → invoice.paid → customer.subscription.updated
// (trialing → active).
func (g *Generator) TrialConverts(start time.Time) []Event {
	s := g.newStory(StoryTrialConverts, start, "")
	s.signupTrial(true, "create_invoice")
	s.automatic()
	s.at(s.sub.TrialEnd.Add(-72 * time.Hour))
	s.emit("customer.subscription.trial_will_end", s.subObj(), nil)

	s.at(s.sub.TrialEnd)
	inv := s.newInvoice("subscription_cycle", s.sub.CurrentPeriodStart, s.t, false)
	s.noise("invoice.created", g.Invoice(inv), nil)
	s.finalize(&inv)
	s.pay(&inv)
	s.wait(time.Second, 3*time.Second)
	prev := merge(s.rollPeriod(s.sub.TrialEnd, inv.ID), s.setStatus("active"))
	s.emit("customer.subscription.updated", s.subObj(), prev)
	return s.events()
}

func (g *Generator) trialLapses(name, behavior string, start time.Time) []Event {
	s := g.newStory(name, start, "")
	s.signupTrial(false, behavior)
	s.automatic()
	s.at(s.sub.TrialEnd.Add(-72 * time.Hour))
	s.emit("customer.subscription.trial_will_end", s.subObj(), nil)
	s.at(s.sub.TrialEnd)
	if behavior == "cancel" {
		s.sub.Status = "canceled"
		s.sub.CanceledAt = s.t
		s.sub.EndedAt = s.t
		s.emit("customer.subscription.deleted", s.subObj(), nil)
		return s.events()
	}
	prev := s.setStatus("paused")
	s.emit("customer.subscription.updated", s.subObj(), prev)
	s.emit("customer.subscription.paused", s.subObj(), nil)
	return s.events()
}

// TrialLapsesCanceled simulates a trial without a payment method whose
// end behavior is "cancel": trial_will_end → customer.subscription.deleted
// (status canceled).
func (g *Generator) TrialLapsesCanceled(start time.Time) []Event {
	return g.trialLapses(StoryTrialLapsesCanceled, "cancel", start)
}

// TrialLapsesPaused simulates a trial without a payment method whose end
// behavior is "pause": trial_will_end → customer.subscription.updated
// (trialing → paused) → customer.subscription.paused.
func (g *Generator) TrialLapsesPaused(start time.Time) []Event {
	return g.trialLapses(StoryTrialLapsesPaused, "pause", start)
}

// retryGaps is the dunning schedule: retries 3, 5 and 7 days after the
// previous attempt (four attempts in total).
var retryGaps = []time.Duration{3 * 24 * time.Hour, 5 * 24 * time.Hour, 7 * 24 * time.Hour}

// RenewalRecovers simulates a paid subscription whose first renewal fails
// `failures` times (1–3; 0 or out of range picks at random) before a retry
// succeeds: invoice.payment_failed (attempt_count 1..n, next_payment_attempt
// set) with the subscription going past_due, then invoice.paid and the
// subscription back to active.
func (g *Generator) RenewalRecovers(start time.Time, failures int) []Event {
	s := g.newStory(StoryRenewalRecovers, start, "")
	if failures < 1 || failures > len(retryGaps) {
		failures = g.rangeInt(1, len(retryGaps))
	}
	s.signupPaid()
	inv := s.openCycle()
	for k := 0; k < failures; k++ {
		next := s.t.Add(retryGaps[k])
		s.fail(&inv, next)
		if k == 0 {
			s.emitSub("customer.subscription.updated", s.setStatus("past_due"))
		}
		s.at(next)
	}
	s.pay(&inv)
	s.emitSub("customer.subscription.updated", s.setStatus("active"))
	return s.events()
}

// failAll runs a renewal whose every attempt fails and returns the invoice.
func (s *story) failAll() InvoiceParams {
	s.signupPaid()
	inv := s.openCycle()
	for k := 0; k <= len(retryGaps); k++ {
		var next time.Time
		if k < len(retryGaps) {
			next = s.t.Add(retryGaps[k])
		}
		s.fail(&inv, next)
		if k == 0 {
			s.emitSub("customer.subscription.updated", s.setStatus("past_due"))
		}
		if !next.IsZero() {
			s.at(next)
		}
	}
	s.wait(time.Second, 5*time.Second)
	return inv
}

// RenewalChurnsUnpaid simulates a renewal whose four payment attempts all
// fail: invoice.payment_failed ×4 → customer.subscription.updated
// (past_due → unpaid) → invoice.marked_uncollectible.
func (g *Generator) RenewalChurnsUnpaid(start time.Time) []Event {
	s := g.newStory(StoryRenewalChurnsUnpaid, start, "")
	inv := s.failAll()
	s.emitSub("customer.subscription.updated", s.setStatus("unpaid"))
	inv.Status = "uncollectible"
	inv.MarkedUncollectibleAt = s.t
	s.emit("invoice.marked_uncollectible", g.Invoice(inv), nil)
	return s.events()
}

// RenewalChurnsCanceled simulates a renewal whose four payment attempts all
// fail: invoice.payment_failed ×4 → customer.subscription.deleted (reason
// payment_failed) → invoice.voided.
func (g *Generator) RenewalChurnsCanceled(start time.Time) []Event {
	s := g.newStory(StoryRenewalChurnsCanceled, start, "")
	inv := s.failAll()
	s.sub.Status = "canceled"
	s.sub.CanceledAt, s.sub.EndedAt = s.t, s.t
	s.sub.CancellationReason = "payment_failed"
	s.emit("customer.subscription.deleted", s.subObj(), nil)
	inv.Status = "void"
	inv.VoidedAt = s.t
	s.emit("invoice.voided", g.Invoice(inv), nil)
	return s.events()
}

var cancelFeedback = []string{"too_expensive", "unused", "switched_service", "missing_features", "too_complex", "low_quality", "customer_service", "other"}

var cancelComments = []string{
	"", "", "Not using it enough right now.", "Found a cheaper option.",
	"Budget cuts this quarter.", "Missing integrations we need.",
}

// requestCancel records a cancel-at-period-end request made in the customer
// portal some days into the current period.
func (s *story) requestCancel() {
	s.wait(3*24*time.Hour, 20*24*time.Hour)
	s.request()
	prev := map[string]any{
		"cancel_at":            nil,
		"cancel_at_period_end": false,
		"canceled_at":          nil,
		"cancellation_details": map[string]any{"comment": nil, "feedback": nil, "reason": nil},
	}
	s.sub.CancelAtPeriodEnd = true
	s.sub.CancelAt = s.sub.CurrentPeriodEnd
	s.sub.CanceledAt = s.t
	s.sub.CancellationReason = "cancellation_requested"
	s.sub.CancellationFeedback = cancelFeedback[s.g.intn(len(cancelFeedback))]
	s.sub.CancellationComment = cancelComments[s.g.intn(len(cancelComments))]
	s.emit("customer.subscription.updated", s.subObj(), prev)
}

// CancelRetained simulates a customer who schedules cancellation at period
// end (customer.subscription.updated with cancel_at_period_end true and
// previous_attributes), then withdraws it (cancel_at_period_end back to
// false), and renews.
func (g *Generator) CancelRetained(start time.Time) []Event {
	s := g.newStory(StoryCancelRetained, start, "")
	s.signupPaid()
	s.requestCancel()
	// Withdraw before the period ends.
	remaining := s.sub.CurrentPeriodEnd.Sub(s.t)
	s.at(s.t.Add(g.between(remaining/10, remaining*8/10)))
	s.request()
	prev := map[string]any{
		"cancel_at":            s.sub.CancelAt.Unix(),
		"cancel_at_period_end": true,
		"canceled_at":          s.sub.CanceledAt.Unix(),
		"cancellation_details": map[string]any{
			"comment":  nullable(s.sub.CancellationComment),
			"feedback": s.sub.CancellationFeedback,
			"reason":   s.sub.CancellationReason,
		},
	}
	s.sub.CancelAtPeriodEnd = false
	s.sub.CancelAt, s.sub.CanceledAt = time.Time{}, time.Time{}
	s.sub.CancellationReason, s.sub.CancellationFeedback, s.sub.CancellationComment = "", "", ""
	s.emit("customer.subscription.updated", s.subObj(), prev)
	s.renew()
	return s.events()
}

// CancelChurns simulates a customer who schedules cancellation at period end
// and leaves: customer.subscription.updated (cancel_at_period_end true) →
// customer.subscription.deleted at the period end.
func (g *Generator) CancelChurns(start time.Time) []Event {
	s := g.newStory(StoryCancelChurns, start, "")
	s.signupPaid()
	s.requestCancel()
	s.automatic()
	s.at(s.sub.CurrentPeriodEnd)
	s.sub.Status = "canceled"
	s.sub.EndedAt = s.t
	s.emit("customer.subscription.deleted", s.subObj(), nil)
	return s.events()
}

// --- refund stories -----------------------------------------------------------

// refundCharge issues a refund of amount against p at the story clock and
// emits refund.created and charge.refunded. It returns the refund params.
func (s *story) refundCharge(p paid, amount int64, reason string) RefundParams {
	s.request()
	rp := RefundParams{
		ID:            s.g.NewID("re_"),
		Amount:        amount,
		Charge:        p.charge.ID,
		PaymentIntent: p.charge.PaymentIntent,
		Currency:      p.charge.Currency,
		Status:        "pending",
		Reason:        reason,
		Created:       s.t,
	}
	s.emit("refund.created", s.g.Refund(rp), nil)
	cp := p.charge
	prevRefunded := map[string]any{"amount_refunded": cp.AmountRefunded}
	cp.AmountRefunded += amount
	if cp.AmountRefunded >= cp.Amount {
		prevRefunded["refunded"] = false
	}
	s.emit("charge.refunded", s.g.Charge(cp), prevRefunded)
	return rp
}

// settleRefund moves a refund out of pending and emits refund.updated and
// charge.refund.updated.
func (s *story) settleRefund(rp *RefundParams, status, failure string) {
	prev := map[string]any{"status": rp.Status}
	rp.Status = status
	rp.FailureReason = failure
	if status == "succeeded" {
		prev["destination_details"] = map[string]any{"card": map[string]any{"reference": nil, "reference_status": "pending"}}
	} else {
		prev["failure_reason"] = nil
	}
	s.emit("refund.updated", s.g.Refund(*rp), prev)
	s.noise("charge.refund.updated", s.g.Refund(*rp), prev)
}

// cancelNow cancels the subscription immediately via the API.
func (s *story) cancelNow(reason, comment string) {
	s.request()
	s.sub.Status = "canceled"
	s.sub.CanceledAt, s.sub.EndedAt = s.t, s.t
	s.sub.CancellationReason = reason
	s.sub.CancellationComment = comment
	s.emit("customer.subscription.deleted", s.subObj(), nil)
}

// RefundIssued simulates a refund of a subscription payment: refund.created
// (pending) and charge.refunded, then refund.updated (succeeded). About two
// thirds of refunds are full, and those also cancel the subscription.
func (g *Generator) RefundIssued(start time.Time) []Event {
	s := g.newStory(StoryRefundIssued, start, "")
	p := s.signupPaid()
	s.wait(6*time.Hour, 20*24*time.Hour)
	full := g.chance(0.67)
	amount := p.charge.Amount
	if !full {
		amount = amount / int64(g.rangeInt(2, 4))
	}
	rp := s.refundCharge(p, amount, []string{"requested_by_customer", "requested_by_customer", "duplicate"}[g.intn(3)])
	if full {
		s.cancelNow("cancellation_requested", "Refunded at customer request.")
	}
	s.automatic()
	s.wait(12*time.Hour, 3*24*time.Hour)
	s.settleRefund(&rp, "succeeded", "")
	return s.events()
}

// RefundFailed simulates a refund that fails days later because the card
// was closed or reported lost: refund.created (pending), charge.refunded,
// then refund.updated with status failed and a failure_reason.
func (g *Generator) RefundFailed(start time.Time) []Event {
	s := g.newStory(StoryRefundFailed, start, "")
	p := s.signupPaid()
	s.wait(24*time.Hour, 25*24*time.Hour)
	rp := s.refundCharge(p, p.charge.Amount, "requested_by_customer")
	s.automatic()
	s.wait(3*24*time.Hour, 10*24*time.Hour)
	reason := []string{"expired_or_canceled_card", "lost_or_stolen_card", "unknown"}[g.weighted([]int{60, 30, 10})]
	s.settleRefund(&rp, "failed", reason)
	return s.events()
}

// --- fraud and dispute stories --------------------------------------------------

var efwFraudTypes = []string{"unauthorized_use_of_card", "made_with_stolen_card", "made_with_lost_card", "fraudulent_card_application", "misc"}

func (s *story) earlyFraudWarning(p paid) EarlyFraudWarningParams {
	s.automatic()
	w := EarlyFraudWarningParams{
		ID:            s.g.NewID("issfr_"),
		Charge:        p.charge.ID,
		PaymentIntent: p.charge.PaymentIntent,
		FraudType:     efwFraudTypes[s.g.weighted([]int{45, 30, 10, 5, 10})],
		Created:       s.t,
	}
	s.emit("radar.early_fraud_warning.created", s.g.EarlyFraudWarning(w), nil)
	return w
}

func (s *story) warningActioned(w *EarlyFraudWarningParams) {
	w.Actioned = true
	s.emit("radar.early_fraud_warning.updated", s.g.EarlyFraudWarning(*w), map[string]any{"actionable": true})
}

// FraudWarningRefunded simulates an early fraud warning on a subscription
// payment (radar.early_fraud_warning.created) after which the merchant
// refunds the charge as fraudulent, cancels the subscription, and the
// warning stops being actionable.
func (g *Generator) FraudWarningRefunded(start time.Time) []Event {
	s := g.newStory(StoryFraudWarningRefunded, start, []string{"visa", "mastercard"}[g.intn(2)])
	p := s.signupPaid()
	s.wait(24*time.Hour, 12*24*time.Hour)
	w := s.earlyFraudWarning(p)
	s.wait(20*time.Minute, 30*time.Hour)
	rp := s.refundCharge(p, p.charge.Amount, "fraudulent")
	s.cancelNow("cancellation_requested", "Canceled after an early fraud warning.")
	s.automatic()
	s.wait(time.Minute, 10*time.Minute)
	s.warningActioned(&w)
	s.wait(12*time.Hour, 2*24*time.Hour)
	s.settleRefund(&rp, "succeeded", "")
	return s.events()
}

// ChargebackOptions controls Generator.Chargeback.
type ChargebackOptions struct {
	// Brand is the card brand (default: random).
	Brand string
	// Reason is the Stripe dispute reason (default: random among the brand's
	// chargeback codes). Code overrides the network reason code.
	Reason, Code string
	// Won selects the outcome.
	Won bool
	// NoResponse skips the merchant's evidence submission; the dispute is
	// then lost once evidence is past due (Won is ignored).
	NoResponse bool
	// CancelSubscription cancels the subscription (reason
	// payment_disputed) when the dispute arrives.
	CancelSubscription bool
	// Renewals is the number of successful renewals before the disputed
	// payment.
	Renewals int
}

// Chargeback simulates a customer who disputes a subscription payment:
// charge.dispute.created (needs_response) → charge.dispute.funds_withdrawn →
// [charge.dispute.updated (under_review, evidence submitted)] →
// charge.dispute.closed (won or lost) → [charge.dispute.funds_reinstated
// when won].
func (g *Generator) Chargeback(start time.Time, opt ChargebackOptions) []Event {
	name := StoryChargebackLost
	if opt.Won && !opt.NoResponse {
		name = StoryChargebackWon
	}
	return g.chargeback(name, start, opt, nil)
}

// ChargebackWon is Chargeback with a random brand, reason and history and a
// won outcome.
func (g *Generator) ChargebackWon(start time.Time) []Event {
	return g.Chargeback(start, ChargebackOptions{
		Won:      true,
		Renewals: g.rangeInt(0, 2),
	})
}

// ChargebackLost is Chargeback with a random brand, reason and history and
// a lost outcome; about a third of the time the merchant never responds, and
// half the time the subscription is canceled when the dispute arrives.
func (g *Generator) ChargebackLost(start time.Time) []Event {
	return g.Chargeback(start, ChargebackOptions{
		NoResponse:         g.chance(0.33),
		CancelSubscription: g.chance(0.5),
		Renewals:           g.rangeInt(0, 2),
	})
}

// FraudWarningDisputed simulates an early fraud warning that the merchant
// ignores, followed by a fraudulent chargeback that is lost without a
// response; the warning becomes non-actionable once the dispute exists.
func (g *Generator) FraudWarningDisputed(start time.Time) []Event {
	brand := []string{"visa", "mastercard"}[g.intn(2)]
	opt := ChargebackOptions{Brand: brand, Reason: "fraudulent", NoResponse: true, CancelSubscription: true}
	return g.chargeback(StoryFraudWarningDisputed, start, opt, func(s *story, p paid) func() {
		s.wait(24*time.Hour, 5*24*time.Hour)
		w := s.earlyFraudWarning(p)
		s.wait(3*24*time.Hour, 14*24*time.Hour)
		return func() { s.warningActioned(&w) }
	})
}

// disputeState tracks a dispute through a story.
type disputeState struct {
	p DisputeParams
}

func (s *story) disputeObj(d *disputeState) map[string]any { return s.g.Dispute(d.p) }

func evidenceNulls(fields ...string) map[string]any {
	m := map[string]any{}
	for _, f := range fields {
		m[f] = nil
	}
	return m
}

// submitEvidence records the merchant's evidence submission and emits
// charge.dispute.updated with newStatus.
func (s *story) submitEvidence(d *disputeState, p paid, newStatus string) {
	s.request()
	prevStatus := d.p.Status
	d.p.Evidence = map[string]any{
		"customer_email_address": s.cust.Email,
		"customer_name":          s.cust.Name,
		"product_description":    s.plan.Name + " subscription, billed " + intervalAdverb(s.plan.Interval) + ".",
		"service_date":           p.charge.Created.UTC().Format("2006-01-02"),
		"uncategorized_text":     "Customer signed up on " + s.sub.Created.UTC().Format("January 2, 2006") + " and used the service during the billed period.",
	}
	switch d.p.Reason {
	case "subscription_canceled", "credit_not_processed":
		d.p.Evidence["cancellation_rebuttal"] = "No cancellation request was received before the renewal date."
	case "duplicate":
		d.p.Evidence["duplicate_charge_explanation"] = "Each charge pays a different billing period."
	case "fraudulent", "unrecognized":
		d.p.Evidence["access_activity_log"] = "Logged-in sessions from the cardholder's usual device after the charge."
	}
	keys := make([]string, 0, len(d.p.Evidence))
	for k := range d.p.Evidence {
		keys = append(keys, k)
	}
	prev := map[string]any{
		"evidence": evidenceNulls(keys...),
		"evidence_details": map[string]any{
			"has_evidence":     false,
			"submission_count": 0,
		},
		"status": prevStatus,
	}
	d.p.HasEvidence = true
	d.p.SubmissionCount = 1
	d.p.Status = newStatus
	s.emit("charge.dispute.updated", s.disputeObj(d), prev)
}

func (g *Generator) chargeback(name string, start time.Time, opt ChargebackOptions, prelude func(*story, paid) func()) []Event {
	if opt.Brand == "" {
		opt.Brand = []string{"visa", "mastercard", "amex"}[g.weighted([]int{55, 30, 15})]
	}
	if opt.Reason == "" {
		codes := chargebackCodes[opt.Brand]
		if len(codes) == 0 {
			codes = chargebackCodes["visa"]
		}
		rc := codes[g.intn(len(codes))]
		opt.Reason = rc.Reason
		if opt.Code == "" {
			opt.Code = rc.Code
		}
	}
	if opt.Code == "" {
		opt.Code = NetworkReasonCode(opt.Brand, opt.Reason, false)
	}

	s := g.newStory(name, start, opt.Brand)
	p := s.signupPaid()
	for i := 0; i < opt.Renewals; i++ {
		p = s.renew()
	}
	var afterDispute func()
	if prelude != nil {
		afterDispute = prelude(s, p)
	} else {
		s.wait(3*24*time.Hour, 20*24*time.Hour)
	}

	s.automatic()
	d := &disputeState{p: DisputeParams{
		ID:                g.NewID("dp_"),
		Amount:            p.charge.Amount,
		Currency:          p.charge.Currency,
		Charge:            p.charge.ID,
		PaymentIntent:     p.charge.PaymentIntent,
		Reason:            opt.Reason,
		Status:            "needs_response",
		Brand:             opt.Brand,
		NetworkReasonCode: opt.Code,
		EvidenceDueBy:     endOfDay(s.t.AddDate(0, 0, g.rangeInt(10, 21))),
		Created:           s.t,
	}}
	s.emit("charge.dispute.created", s.disputeObj(d), nil)
	withdrawal := g.DisputeFundsTransaction(d.p.ID, d.p.Charge, d.p.Currency, d.p.Amount, false, s.t)
	d.p.BalanceTransactions = []map[string]any{withdrawal}
	s.emit("charge.dispute.funds_withdrawn", s.disputeObj(d), nil)
	if afterDispute != nil {
		afterDispute()
	}
	if opt.CancelSubscription {
		s.wait(time.Second, 5*time.Second)
		s.automatic()
		s.sub.Status = "canceled"
		s.sub.CanceledAt, s.sub.EndedAt = s.t, s.t
		s.sub.CancellationReason = "payment_disputed"
		s.emit("customer.subscription.deleted", s.subObj(), nil)
	}

	won := opt.Won && !opt.NoResponse
	if opt.NoResponse {
		s.automatic()
		s.at(d.p.EvidenceDueBy.Add(time.Second))
		d.p.PastDue = true
		prevStatus := d.p.Status
		d.p.Status = "lost"
		s.emit("charge.dispute.closed", s.disputeObj(d), map[string]any{
			"evidence_details": map[string]any{"past_due": false},
			"status":           prevStatus,
		})
		return s.events()
	}

	s.at(d.p.Created.Add(g.between(24*time.Hour, d.p.EvidenceDueBy.Sub(d.p.Created)-12*time.Hour)))
	s.submitEvidence(d, p, "under_review")

	s.automatic()
	s.at(d.p.Created.Add(g.between(55*24*time.Hour, 75*24*time.Hour)))
	prev := map[string]any{"status": d.p.Status}
	if won {
		d.p.Status = "won"
	} else {
		d.p.Status = "lost"
	}
	s.emit("charge.dispute.closed", s.disputeObj(d), prev)
	if won {
		reinstated := g.DisputeFundsTransaction(d.p.ID, d.p.Charge, d.p.Currency, d.p.Amount, true, s.t)
		d.p.BalanceTransactions = append(d.p.BalanceTransactions, reinstated)
		s.emit("charge.dispute.funds_reinstated", s.disputeObj(d), nil)
	}
	return s.events()
}

// InquiryClosed simulates an inquiry (a retrieval request reported as a
// dispute with status warning_needs_response and is_charge_refundable
// true) on a Visa or Mastercard payment. Most of the time the merchant
// responds (charge.dispute.updated, warning_under_review); either way the
// inquiry ends with charge.dispute.closed (warning_closed). No funds move.
func (g *Generator) InquiryClosed(start time.Time) []Event {
	brand := []string{"visa", "mastercard"}[g.weighted([]int{60, 40})]
	s := g.newStory(StoryInquiryClosed, start, brand)
	p := s.signupPaid()
	if g.chance(0.4) {
		p = s.renew()
	}
	s.wait(5*24*time.Hour, 25*24*time.Hour)
	s.automatic()
	codes := inquiryCodes[brand]
	rc := codes[g.intn(len(codes))]
	d := &disputeState{p: DisputeParams{
		ID:                g.NewID("dp_"),
		Amount:            p.charge.Amount,
		Currency:          p.charge.Currency,
		Charge:            p.charge.ID,
		PaymentIntent:     p.charge.PaymentIntent,
		Reason:            rc.Reason,
		Status:            "warning_needs_response",
		Brand:             brand,
		NetworkReasonCode: rc.Code,
		EvidenceDueBy:     endOfDay(s.t.AddDate(0, 0, g.rangeInt(7, 10))),
		Created:           s.t,
	}}
	s.emit("charge.dispute.created", s.disputeObj(d), nil)
	if g.chance(0.7) {
		s.at(d.p.Created.Add(g.between(6*time.Hour, d.p.EvidenceDueBy.Sub(d.p.Created)-6*time.Hour)))
		s.submitEvidence(d, p, "warning_under_review")
	}
	s.automatic()
	s.at(d.p.EvidenceDueBy.Add(g.between(24*time.Hour, 30*24*time.Hour)))
	prev := map[string]any{"status": d.p.Status}
	d.p.Status = "warning_closed"
	s.emit("charge.dispute.closed", s.disputeObj(d), prev)
	return s.events()
}

func intervalAdverb(interval string) string {
	switch interval {
	case "day":
		return "daily"
	case "week":
		return "weekly"
	case "year":
		return "yearly"
	}
	return "monthly"
}
