package billing

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

var proPlan = stripetest.Plan{PriceID: "price_pro", ProductID: "prod_pro", Name: "Pro", UnitAmount: 4900, Currency: "usd", Interval: "month", TrialDays: 14}

func TestHandledTypes(t *testing.T) {
	t.Parallel()
	want := []string{
		"customer.created", "customer.updated", "customer.deleted",
		"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
		"customer.subscription.trial_will_end", "customer.subscription.paused", "customer.subscription.resumed",
		"customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired",
		"invoice.created", "invoice.finalized", "invoice.finalization_failed", "invoice.paid",
		"invoice.payment_succeeded", "invoice.payment_failed", "invoice.payment_action_required",
		"invoice.marked_uncollectible", "invoice.voided", "invoice.updated", "invoice.upcoming",
		"charge.succeeded", "charge.failed", "charge.captured", "charge.refunded", "charge.updated",
		"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
		"charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated", "charge.refund.updated",
		"refund.created", "refund.updated", "refund.failed",
		"radar.early_fraud_warning.created", "radar.early_fraud_warning.updated",
	}
	got := HandledTypes()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("HandledTypes() =\n%v\nwant\n%v", got, want)
	}
}

// applyCase is one event type's effect on the mirror.
type applyCase struct {
	name     string
	typ      string
	obj      func(f *fixture) map[string]any
	prev     map[string]any
	before   func(f *fixture) // events applied first (context such as a charge)
	summary  string           // exact, when set
	severity string
	check    func(t *testing.T, f *fixture, ch Change)
}

func TestApplyEachEventType(t *testing.T) {
	t.Parallel()
	at := t0.Add(10 * 24 * time.Hour) // 2026-11-11 09:00
	periodStart := t0                 // 2026-11-01
	periodEnd := t0.AddDate(0, 1, 0)  // 2026-12-01
	cust := "cus_Each"
	sub := func(f *fixture, p stripetest.SubscriptionParams) map[string]any {
		p.Customer = cust
		p.Plan = proPlan
		if p.Created.IsZero() {
			p.Created = periodStart
		}
		if p.Status != "trialing" && p.CurrentPeriodStart.IsZero() {
			p.CurrentPeriodStart = periodStart
		}
		return f.gen.Subscription(p)
	}
	renewal := func(f *fixture, p stripetest.InvoiceParams) map[string]any {
		p.Customer = cust
		p.Subscription = "sub_Renewing"
		p.Plan = proPlan
		p.BillingReason = "subscription_cycle"
		p.Created = at
		return f.gen.Invoice(p)
	}
	charge := func(f *fixture, p stripetest.ChargeParams) map[string]any {
		p.Customer = cust
		p.Amount = 4900
		p.Currency = "usd"
		p.Card = stripetest.Card{Brand: "visa", Last4: "4242", Fingerprint: "fpAbc"}
		if p.Created.IsZero() {
			p.Created = at
		}
		return f.gen.Charge(p)
	}
	mirrorCharge := func(id string) func(f *fixture) {
		return func(f *fixture) {
			f.apply(f.event("charge.succeeded", charge(f, stripetest.ChargeParams{ID: id, Invoice: "in_Paid"}), at.Add(-time.Hour)))
		}
	}
	dispute := func(f *fixture, p stripetest.DisputeParams) map[string]any {
		p.Amount = 4900
		p.Currency = "usd"
		p.Charge = "ch_Disputed"
		p.Reason = "subscription_canceled"
		p.Created = at
		p.EvidenceDueBy = time.Date(2026, 12, 10, 23, 59, 59, 0, time.UTC)
		return f.gen.Dispute(p)
	}
	refund := func(f *fixture, p stripetest.RefundParams) map[string]any {
		p.ID = orDefault(p.ID, "re_Each")
		p.Amount = 4900
		p.Currency = "usd"
		p.Charge = "ch_Refunded"
		p.Created = at
		return f.gen.Refund(p)
	}

	cases := []applyCase{
		{name: "customer created", typ: "customer.created",
			obj: func(f *fixture) map[string]any {
				return f.gen.Customer(stripetest.CustomerParams{ID: cust, Name: "Ava Smith", Email: "ava@example.com", DefaultPaymentMethod: "pm_1", Created: periodStart})
			},
			summary: "Customer created: Ava Smith (ava@example.com)", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "email", ch.Customer.Email, "ava@example.com")
				eq(t, "has pm", ch.Customer.HasDefaultPaymentMethod, true)
				eq(t, "first seen", ch.FirstSeen, true)
			}},
		{name: "customer updated: payment method removed", typ: "customer.updated",
			obj: func(f *fixture) map[string]any {
				return f.gen.Customer(stripetest.CustomerParams{ID: cust, Name: "Ava Smith", Email: "ava@example.com", Created: periodStart})
			},
			prev:    map[string]any{"invoice_settings": map[string]any{"default_payment_method": "pm_1"}},
			summary: "Default payment method removed", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "has pm", ch.Customer.HasDefaultPaymentMethod, false)
				eq(t, "first seen", ch.FirstSeen, false)
			}},
		{name: "customer deleted", typ: "customer.deleted",
			obj: func(f *fixture) map[string]any {
				return f.gen.Customer(stripetest.CustomerParams{ID: "cus_Gone", Name: "Gone", Email: "gone@example.com"})
			},
			summary: "Customer deleted", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "deleted", ch.Customer.Deleted, true) }},

		{name: "subscription created (trial)", typ: "customer.subscription.created",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Trial", Status: "trialing"})
			},
			summary: "Trial started: $49.00/month, trial ends 2026-11-15, no payment method yet", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				s := ch.Subscription
				eq(t, "status", s.Status, "trialing")
				eq(t, "trial end", ptrDay(s.TrialEnd), "2026-11-15")
				eq(t, "period end", ptrDay(s.CurrentPeriodEnd), "2026-11-15")
				eq(t, "amount", s.Amount, int64(4900))
				eq(t, "price", s.PriceID, "price_pro")
				eq(t, "product", s.ProductID, "prod_pro")
				eq(t, "interval", s.Interval, "month")
				eq(t, "customer", ch.CustomerID, cust)
			}},
		{name: "subscription trial will end without payment method", typ: "customer.subscription.trial_will_end",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Trial", Status: "trialing"})
			},
			before:  func(f *fixture) {}, // created at t0, trial ends t0+14d; the event is 3 days before
			summary: "Trial ends in 3 days — no payment method", severity: SeverityWarning},
		{name: "subscription cancel at period end on", typ: "customer.subscription.updated",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Cancel", Status: "active", CancelAtPeriodEnd: true,
					CanceledAt: at, CancellationReason: "cancellation_requested", CancellationFeedback: "too_expensive"})
			},
			prev:    map[string]any{"cancel_at": nil, "cancel_at_period_end": false, "canceled_at": nil},
			summary: "Cancellation scheduled for 2026-12-01 (end of period): cancellation_requested, feedback too_expensive", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "cancel at period end", ch.Subscription.CancelAtPeriodEnd, true)
				eq(t, "cancel at", ptrDay(ch.Subscription.CancelAt), "2026-12-01")
				eq(t, "feedback", ch.Subscription.CancellationFeedback, "too_expensive")
				eq(t, "previous", ch.Previous.CancelAtPeriodEnd != nil && !*ch.Previous.CancelAtPeriodEnd, true)
			}},
		{name: "subscription cancel at period end off", typ: "customer.subscription.updated",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Cancel", Status: "active"})
			},
			prev:    map[string]any{"cancel_at": periodEnd.Unix(), "cancel_at_period_end": true},
			summary: "Scheduled cancellation withdrawn", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "cancel at period end", ch.Subscription.CancelAtPeriodEnd, false)
				eq(t, "stale", ch.Stale, false)
			}},
		{name: "subscription past due", typ: "customer.subscription.updated",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_PastDue", Status: "past_due", DefaultPaymentMethod: "pm_9"})
			},
			prev:    map[string]any{"status": "active"},
			summary: "Subscription past due: renewal payment failed", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "status", ch.Subscription.Status, "past_due")
				eq(t, "has pm", ch.Subscription.HasDefaultPaymentMethod, true)
			}},
		{name: "subscription deleted", typ: "customer.subscription.deleted",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Cancel", Status: "canceled", EndedAt: at,
					CancellationReason: "cancellation_requested", CancellationFeedback: "switched_service", CancellationComment: "Found a cheaper option."})
			},
			summary: `Subscription canceled: cancellation_requested, feedback switched_service — "Found a cheaper option."`, severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "status", ch.Subscription.Status, "canceled")
				eq(t, "ended", ptrDay(ch.Subscription.EndedAt), "2026-11-11")
				eq(t, "comment", ch.Subscription.CancellationComment, "Found a cheaper option.")
			}},
		{name: "subscription paused", typ: "customer.subscription.paused",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Paused", Status: "paused"})
			},
			summary: "Subscription paused", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "status", ch.Subscription.Status, "paused") }},
		{name: "subscription resumed", typ: "customer.subscription.resumed",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Paused", Status: "active"})
			},
			summary: "Subscription resumed ($49.00/month)", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "status", ch.Subscription.Status, "active") }},
		{name: "subscription pending update applied", typ: "customer.subscription.pending_update_applied",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Pending", Status: "active", Quantity: 2})
			},
			summary: "Pending subscription change applied ($98.00/month)", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "amount", ch.Subscription.Amount, int64(9800)) }},
		{name: "subscription pending update expired", typ: "customer.subscription.pending_update_expired",
			obj: func(f *fixture) map[string]any {
				return sub(f, stripetest.SubscriptionParams{ID: "sub_Pending", Status: "active", Quantity: 2})
			},
			summary: "Pending subscription change expired: its payment was not completed", severity: SeverityWarning},

		{name: "invoice created", typ: "invoice.created",
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Renewal", Status: "draft"})
			},
			summary: "Renewal invoice created: $49.00", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "status", ch.Invoice.Status, "draft")
				eq(t, "subscription", ch.Invoice.SubscriptionID, "sub_Renewing")
				eq(t, "amount due", ch.Invoice.AmountDue, int64(4900))
			}},
		{name: "invoice finalized", typ: "invoice.finalized",
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Renewal", Status: "open"})
			},
			summary: "Renewal invoice finalized: $49.00 due", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "status", ch.Invoice.Status, "open")
				if ch.Invoice.HostedInvoiceURL == "" {
					t.Error("hosted invoice URL not kept")
				}
			}},
		{name: "invoice payment failed", typ: "invoice.payment_failed",
			before: func(f *fixture) {
				f.apply(f.event("charge.failed", charge(f, stripetest.ChargeParams{ID: "ch_Declined", Invoice: "in_Renewal", Status: "failed"}), at))
			},
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Renewal", Status: "open", AttemptCount: 2, Charge: "ch_Declined",
					NextPaymentAttempt: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)})
			},
			summary: "Renewal failed (attempt 2 of 4, card_declined), next retry 2026-11-25", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "attempts", ch.Invoice.AttemptCount, 2)
				eq(t, "failure code", ch.Invoice.LastFailureCode, "card_declined")
				eq(t, "next attempt", ptrDay(ch.Invoice.NextPaymentAttempt), "2026-11-25")
				eq(t, "charge", ch.Invoice.ChargeID, "ch_Declined")
			}},
		{name: "invoice payment action required", typ: "invoice.payment_action_required",
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Renewal", Status: "open", AttemptCount: 3, Charge: "ch_Declined"})
			},
			summary: "Renewal payment needs the customer to authenticate: $49.00", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "attempts", ch.Invoice.AttemptCount, 3)
				eq(t, "failure code kept", ch.Invoice.LastFailureCode, "card_declined")
			}},
		{name: "invoice paid", typ: "invoice.paid",
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Renewal", Status: "paid", AttemptCount: 3})
			},
			summary: "Renewal paid $49.00", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "status", ch.Invoice.Status, "paid")
				eq(t, "amount paid", ch.Invoice.AmountPaid, int64(4900))
			}},
		{name: "invoice payment succeeded", typ: "invoice.payment_succeeded",
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Renewal", Status: "paid", AttemptCount: 3})
			},
			summary: "Renewal payment succeeded $49.00", severity: SeverityInfo},
		{name: "invoice finalization failed", typ: "invoice.finalization_failed",
			obj: func(f *fixture) map[string]any {
				o := renewal(f, stripetest.InvoiceParams{ID: "in_NoTax", Status: "draft"})
				o["last_finalization_error"] = map[string]any{"code": "customer_tax_location_invalid", "type": "invalid_request_error"}
				return o
			},
			summary: "Renewal invoice could not be finalized: customer_tax_location_invalid", severity: SeverityWarning},
		{name: "invoice marked uncollectible", typ: "invoice.marked_uncollectible",
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Lost", Status: "uncollectible", AttemptCount: 4})
			},
			summary: "Renewal invoice marked uncollectible: $49.00 written off", severity: SeverityCritical,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "status", ch.Invoice.Status, "uncollectible") }},
		{name: "invoice voided", typ: "invoice.voided",
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Void", Status: "void", AttemptCount: 4})
			},
			summary: "Renewal invoice voided: $49.00", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "status", ch.Invoice.Status, "void") }},
		{name: "invoice updated", typ: "invoice.updated",
			obj: func(f *fixture) map[string]any {
				return renewal(f, stripetest.InvoiceParams{ID: "in_Void", Status: "void", AttemptCount: 4, Metadata: map[string]string{"note": "x"}})
			},
			prev:    map[string]any{"metadata": map[string]any{}},
			summary: "Renewal invoice updated (metadata)", severity: SeverityInfo},
		{name: "invoice upcoming (no id: timeline only)", typ: "invoice.upcoming",
			obj: func(f *fixture) map[string]any {
				o := renewal(f, stripetest.InvoiceParams{Status: "draft", PeriodEnd: periodEnd, NextPaymentAttempt: periodEnd})
				delete(o, "id")
				return o
			},
			summary: "Upcoming renewal invoice: $49.00 on 2026-12-01", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "object id", ch.ObjectID, "")
				eq(t, "customer", ch.CustomerID, cust)
				if ch.Invoice == nil || ch.Invoice.AmountDue != 4900 {
					t.Errorf("invoice preview = %+v", ch.Invoice)
				}
				var n int64
				f.d.Gorm.Model(&invoiceRow{}).Where("id = ''").Count(&n)
				eq(t, "rows without id", n, int64(0))
			}},

		{name: "charge succeeded", typ: "charge.succeeded",
			obj: func(f *fixture) map[string]any {
				return charge(f, stripetest.ChargeParams{ID: "ch_Paid", Invoice: "in_Paid"})
			},
			summary: "Payment succeeded $49.00 (visa ending 4242)", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				c := ch.Charge
				eq(t, "status", c.Status, "succeeded")
				eq(t, "paid", c.Paid, true)
				eq(t, "brand", c.CardBrand, "visa")
				eq(t, "last4", c.CardLast4, "4242")
				eq(t, "fingerprint", c.CardFingerprint, "fpAbc")
				eq(t, "invoice", c.InvoiceID, "in_Paid")
			}},
		{name: "charge failed", typ: "charge.failed",
			obj: func(f *fixture) map[string]any {
				return charge(f, stripetest.ChargeParams{ID: "ch_Failed", Status: "failed", FailureCode: "card_declined", DeclineCode: "insufficient_funds"})
			},
			summary: "Payment failed $49.00 (visa ending 4242): card_declined / insufficient_funds", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "failure code", ch.Charge.FailureCode, "card_declined")
				eq(t, "failure message", ch.Charge.FailureMessage, "Your card has insufficient funds.")
			}},
		{name: "charge captured", typ: "charge.captured",
			obj: func(f *fixture) map[string]any {
				return charge(f, stripetest.ChargeParams{ID: "ch_Captured"})
			},
			summary: "Payment captured $49.00 (visa ending 4242)", severity: SeverityInfo},
		{name: "charge refunded, with its refunds listed", typ: "charge.refunded",
			obj: func(f *fixture) map[string]any {
				o := charge(f, stripetest.ChargeParams{ID: "ch_Refunded", AmountRefunded: 1600})
				o["refunds"] = map[string]any{"object": "list", "data": []any{
					f.gen.Refund(stripetest.RefundParams{ID: "re_Listed", Amount: 1600, Charge: "ch_Refunded", Currency: "usd", Status: "pending", Created: at}),
				}}
				return o
			},
			summary: "Payment partially refunded: $16.00 of $49.00", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "amount refunded", ch.Charge.AmountRefunded, int64(1600))
				r := must[Refund](t)(f.store.Refund(context.Background(), "re_Listed"))
				eq(t, "listed refund status", r.Status, "pending")
				eq(t, "listed refund customer", r.CustomerID, cust)
			}},
		{name: "charge updated", typ: "charge.updated",
			obj: func(f *fixture) map[string]any {
				return charge(f, stripetest.ChargeParams{ID: "ch_Paid", Invoice: "in_Paid", Description: "Pro"})
			},
			prev:    map[string]any{"description": nil},
			summary: "Payment $49.00 updated (description)", severity: SeverityInfo},

		{name: "dispute created", typ: "charge.dispute.created", before: func(f *fixture) {
			f.apply(f.event("charge.succeeded", charge(f, stripetest.ChargeParams{ID: "ch_Disputed"}), at.Add(-time.Hour)))
		},
			obj: func(f *fixture) map[string]any {
				return dispute(f, stripetest.DisputeParams{ID: "dp_Each", Status: "needs_response", Brand: "visa"})
			},
			summary: "Disputed $49.00: subscription_canceled, evidence due 2026-12-10", severity: SeverityCritical,
			check: func(t *testing.T, f *fixture, ch Change) {
				d := ch.Dispute
				eq(t, "status", d.Status, "needs_response")
				eq(t, "customer (via charge)", d.CustomerID, cust)
				eq(t, "network code", d.NetworkReasonCode, "13.2")
				eq(t, "brand", d.CardBrand, "visa")
				eq(t, "due", ptrDay(d.EvidenceDueBy), "2026-12-10")
				eq(t, "inquiry", d.IsInquiry(), false)
			}},
		{name: "dispute funds withdrawn", typ: "charge.dispute.funds_withdrawn",
			obj: func(f *fixture) map[string]any {
				return dispute(f, stripetest.DisputeParams{ID: "dp_Each", Status: "needs_response"})
			},
			summary: "Dispute funds withdrawn: $49.00", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "withdrawn", ch.Dispute.FundsWithdrawn, true) }},
		{name: "dispute updated (evidence submitted)", typ: "charge.dispute.updated",
			obj: func(f *fixture) map[string]any {
				return dispute(f, stripetest.DisputeParams{ID: "dp_Each", Status: "under_review", HasEvidence: true, SubmissionCount: 1})
			},
			prev:    map[string]any{"status": "needs_response", "evidence_details": map[string]any{"has_evidence": false, "submission_count": 0}},
			summary: "Dispute evidence submitted: $49.00, now under_review", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "submissions", ch.Dispute.SubmissionCount, 1)
				eq(t, "withdrawn kept", ch.Dispute.FundsWithdrawn, true)
			}},
		{name: "dispute closed won", typ: "charge.dispute.closed",
			obj: func(f *fixture) map[string]any {
				return dispute(f, stripetest.DisputeParams{ID: "dp_Each", Status: "won", HasEvidence: true, SubmissionCount: 1})
			},
			prev:    map[string]any{"status": "under_review"},
			summary: "Dispute won: $49.00 (subscription_canceled)", severity: SeverityInfo},
		{name: "dispute funds reinstated", typ: "charge.dispute.funds_reinstated",
			obj: func(f *fixture) map[string]any {
				return dispute(f, stripetest.DisputeParams{ID: "dp_Each", Status: "won", HasEvidence: true, SubmissionCount: 1})
			},
			summary: "Dispute funds reinstated: $49.00", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "reinstated", ch.Dispute.FundsReinstated, true)
				eq(t, "withdrawn", ch.Dispute.FundsWithdrawn, true)
				eq(t, "status", ch.Dispute.Status, "won")
			}},
		{name: "dispute closed lost", typ: "charge.dispute.closed",
			obj: func(f *fixture) map[string]any {
				return dispute(f, stripetest.DisputeParams{ID: "dp_Lost", Status: "lost", PastDue: true})
			},
			summary: "Dispute lost: $49.00 (subscription_canceled), no evidence submitted", severity: SeverityCritical},
		{name: "inquiry opened", typ: "charge.dispute.created",
			obj: func(f *fixture) map[string]any {
				return dispute(f, stripetest.DisputeParams{ID: "dp_Inquiry", Status: "warning_needs_response"})
			},
			summary: "Inquiry opened on $49.00: subscription_canceled, response due 2026-12-10", severity: SeverityWarning,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "inquiry", ch.Dispute.IsInquiry(), true)
				eq(t, "refundable", ch.Dispute.IsChargeRefundable, true)
			}},
		{name: "inquiry closed", typ: "charge.dispute.closed",
			obj: func(f *fixture) map[string]any {
				return dispute(f, stripetest.DisputeParams{ID: "dp_Inquiry", Status: "warning_closed"})
			},
			summary: "Inquiry closed: $49.00 (subscription_canceled)", severity: SeverityInfo},

		{name: "refund created", typ: "refund.created", before: mirrorCharge("ch_Refunded"),
			obj: func(f *fixture) map[string]any {
				return refund(f, stripetest.RefundParams{Status: "pending", Reason: "requested_by_customer"})
			},
			summary: "Refund requested: $49.00 (requested_by_customer)", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "status", ch.Refund.Status, "pending")
				eq(t, "customer (via charge)", ch.Refund.CustomerID, cust)
			}},
		{name: "refund updated succeeded", typ: "refund.updated",
			obj: func(f *fixture) map[string]any {
				return refund(f, stripetest.RefundParams{Status: "succeeded", Reason: "requested_by_customer"})
			},
			prev:    map[string]any{"status": "pending"},
			summary: "Refund succeeded: $49.00 (requested_by_customer)", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "status", ch.Refund.Status, "succeeded") }},
		{name: "refund failed (raw refund.failed)", typ: "refund.failed",
			obj: func(f *fixture) map[string]any {
				return refund(f, stripetest.RefundParams{Status: "failed", FailureReason: "lost_or_stolen_card"})
			},
			summary: "Refund failed: $49.00 (lost_or_stolen_card) — the customer did not get the money back", severity: SeverityCritical,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "status", ch.Refund.Status, "failed")
				eq(t, "failure reason", ch.Refund.FailureReason, "lost_or_stolen_card")
			}},
		{name: "charge.refund.updated failed", typ: "charge.refund.updated",
			obj: func(f *fixture) map[string]any {
				return refund(f, stripetest.RefundParams{ID: "re_Other", Status: "failed", FailureReason: "expired_or_canceled_card"})
			},
			prev:    map[string]any{"status": "pending", "failure_reason": nil},
			summary: "Refund failed: $49.00 (expired_or_canceled_card) — the customer did not get the money back", severity: SeverityCritical,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "object", ch.Object, KindRefund) }},

		{name: "early fraud warning created", typ: "radar.early_fraud_warning.created", before: mirrorCharge("ch_Fraud"),
			obj: func(f *fixture) map[string]any {
				return f.gen.EarlyFraudWarning(stripetest.EarlyFraudWarningParams{ID: "issfr_Each", Charge: "ch_Fraud", FraudType: "made_with_stolen_card", Created: at})
			},
			summary: "Early fraud warning (made_with_stolen_card) on $49.00 payment — a refund now can prevent a dispute", severity: SeverityCritical,
			check: func(t *testing.T, f *fixture, ch Change) {
				eq(t, "actionable", ch.FraudWarning.Actionable, true)
				eq(t, "customer (via charge)", ch.FraudWarning.CustomerID, cust)
			}},
		{name: "early fraud warning updated", typ: "radar.early_fraud_warning.updated",
			obj: func(f *fixture) map[string]any {
				return f.gen.EarlyFraudWarning(stripetest.EarlyFraudWarningParams{ID: "issfr_Each", Charge: "ch_Fraud", FraudType: "made_with_stolen_card", Actioned: true, Created: at})
			},
			prev:    map[string]any{"actionable": true},
			summary: "Early fraud warning (made_with_stolen_card) no longer actionable", severity: SeverityInfo,
			check: func(t *testing.T, f *fixture, ch Change) { eq(t, "actionable", ch.FraudWarning.Actionable, false) }},
	}

	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		seen := map[string]bool{}
		for i, c := range cases {
			seen[c.typ] = true
			if c.before != nil {
				c.before(f)
			}
			// Each case is one second later than the last, so cases on one
			// object apply in order.
			created := at.Add(time.Duration(i) * time.Second)
			if c.typ == "customer.subscription.trial_will_end" {
				created = t0.AddDate(0, 0, 14).Add(-72 * time.Hour)
			}
			ev := f.event(c.typ, c.obj(f), created, stripetest.WithPreviousAttributes(c.prev), f.gen.APIRequest())
			ch := f.apply(ev)
			t.Run(c.name, func(t *testing.T) {
				eq(t, "event id", ch.EventID, ev.ID)
				eq(t, "event type", ch.EventType, c.typ)
				if ch.RequestID == "" || ch.IdempotencyKey == "" {
					t.Errorf("request id/idempotency key not read: %q %q", ch.RequestID, ch.IdempotencyKey)
				}
				if c.summary != "" {
					eq(t, "summary", ch.Summary, c.summary)
				}
				e := f.entry(ev.ID)
				eq(t, "timeline summary", e.Summary, ch.Summary)
				eq(t, "timeline customer", e.CustomerID, ch.CustomerID)
				eq(t, "timeline at", e.At, ev.Created.UTC())
				eq(t, "timeline object", e.Object, ch.Object)
				if c.severity != "" {
					eq(t, "severity", e.Severity, c.severity)
				}
				if ch.Stale {
					t.Errorf("unexpected stale change")
				}
				if c.check != nil {
					c.check(t, f, ch)
				}
				// The change's state is what a fresh read returns.
				if ch.ObjectID != "" {
					var fresh Change
					fresh.Object, fresh.ObjectID = ch.Object, ch.ObjectID
					if err := f.store.loadCurrent(context.Background(), envelope{}, &fresh); err != nil {
						t.Fatalf("reload: %v", err)
					}
					if got, want := currentOf(fresh), currentOf(ch); got != want {
						t.Errorf("reloaded state differs:\n got %s\nwant %s", got, want)
					}
				}
			})
		}
		for _, typ := range HandledTypes() {
			if !seen[typ] {
				t.Errorf("no case for handled type %s", typ)
			}
		}
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestApplyRejectsWhatCanNeverApply(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		noID := f.gen.Subscription(stripetest.SubscriptionParams{})
		delete(noID, "id")
		wrongType := f.gen.Charge(stripetest.ChargeParams{})
		cases := map[string]stripetest.Event{
			"missing object id": f.event("customer.subscription.updated", noID, t0),
			"wrong object type": f.event("invoice.paid", wrongType, t0),
		}
		for name, ev := range cases {
			_, err := f.tryApply(ev)
			if !errs.Is(err, errs.EINVALID) {
				t.Errorf("%s: error = %v, want EINVALID", name, err)
			}
		}
		bad := ProviderEvent{ID: "evt_bad", Type: "invoice.paid", Created: t0, Payload: []byte(`{"id": "evt_bad", "data": 7`)}
		if _, err := f.store.Apply(context.Background(), bad); !errs.Is(err, errs.EINVALID) {
			t.Errorf("malformed JSON: error = %v, want EINVALID", err)
		}
		other := f.event("product.created", map[string]any{"id": "prod_X", "object": "product"}, t0)
		_, err := f.tryApply(other)
		wantErrIs(t, err, ErrNotBillingEvent)
		var n int64
		d.Gorm.Model(&timelineRow{}).Count(&n)
		eq(t, "timeline rows after refused events", n, int64(0))
	})
}

// currentOf renders the object state a Change carries, for comparisons.
func currentOf(ch Change) string {
	switch {
	case ch.Customer != nil:
		return jsonString(ch.Customer)
	case ch.Subscription != nil:
		return jsonString(ch.Subscription)
	case ch.Invoice != nil:
		return jsonString(ch.Invoice)
	case ch.Charge != nil:
		return jsonString(ch.Charge)
	case ch.Refund != nil:
		return jsonString(ch.Refund)
	case ch.Dispute != nil:
		return jsonString(ch.Dispute)
	case ch.FraudWarning != nil:
		return jsonString(ch.FraudWarning)
	}
	return "<none>"
}
