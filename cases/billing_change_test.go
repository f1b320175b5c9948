package cases

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
)

func dispute(id, status string) billing.Dispute {
	due := t0.Add(10 * 24 * time.Hour)
	return billing.Dispute{ID: id, ChargeID: "ch_" + id, CustomerID: "cus_" + id, Amount: 4900, Currency: "usd",
		Status: status, Reason: "fraudulent", EvidenceDueBy: &due, Created: t0}
}

func TestDisputeLifecycleFromWebhooks(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		dp := dispute("dp_1", "needs_response")
		f.mustApply(change(evID(), "charge.dispute.created", t0, dp))
		c := f.only(KindDispute, "dp_1")
		wantState(t, c, "needs_response", StatusOpen)
		if c.Priority != PriorityHigh || c.Team != TeamDisputes || c.Channel != ChannelStripe || c.Inquiry {
			t.Fatalf("dispute case routing: %+v", c)
		}
		wantLink(t, "customer", c.Links.Customer, "cus_dp_1")
		wantLink(t, "charge", c.Links.Charge, "ch_dp_1")
		wantLink(t, "dispute", c.Links.Dispute, "dp_1")
		if want := dp.EvidenceDueBy.Add(-48 * time.Hour); !c.SLA.ResolutionDue.Equal(want) {
			t.Fatalf("resolution due %v, want due_by - 48h = %v", c.SLA.ResolutionDue, want)
		}
		if !slices.Contains(c.Tags, "reason:fraudulent") {
			t.Fatalf("tags %v", c.Tags)
		}

		dp.Status = "under_review"
		f.mustApply(change(evID(), "charge.dispute.updated", t0.Add(time.Hour), dp))
		wantState(t, f.only(KindDispute, "dp_1"), "under_review", StatusOpen)

		dp.FundsWithdrawn = true
		fw := evID()
		f.mustApply(change(fw, "charge.dispute.funds_withdrawn", t0.Add(2*time.Hour), dp))

		dp.Status = "won"
		f.mustApply(change(evID(), "charge.dispute.closed", t0.Add(3*time.Hour), dp))
		c = f.only(KindDispute, "dp_1")
		wantState(t, c, "won", StatusClosed)

		tl := f.timeline(c.ID)
		checkProviderTimeline(t, tl)
		types := []string{}
		for _, e := range tl {
			types = append(types, e.Type)
		}
		if !slices.Equal(types, []string{EntryOpened, EntryTransition, EntryFundsWithdrew, EntryTransition}) {
			t.Fatalf("timeline types %v", types)
		}
		if deref(tl[3].FromState) != "under_review" || deref(tl[3].ToState) != "won" || deref(tl[3].Transition) != "win" {
			t.Fatalf("closing entry %+v", tl[3])
		}
	})
}

func TestDisputeInquiry(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		dp := dispute("dp_inq", "warning_needs_response")
		f.mustApply(change(evID(), "charge.dispute.created", t0, dp))
		c := f.only(KindDispute, "dp_inq")
		wantState(t, c, "warning_needs_response", StatusOpen)
		if !c.Inquiry || !slices.Contains(c.Tags, "inquiry") || !strings.HasPrefix(c.Title, "Inquiry") {
			t.Fatalf("inquiry not marked: %+v", c)
		}
		// The inquiry escalates to a chargeback, then is lost: both steps
		// arrive as one change (the closed event) — the case walks the FSM.
		dp.Status = "lost"
		f.mustApply(change(evID(), "charge.dispute.closed", t0.Add(time.Hour), dp))
		c = f.only(KindDispute, "dp_inq")
		wantState(t, c, "lost", StatusClosed)
		if c.Inquiry {
			t.Fatal("a lost chargeback is no longer an inquiry")
		}
		tl := f.timeline(c.ID)
		if deref(tl[1].Transition) != "escalate_to_chargeback,lose" {
			t.Fatalf("transition %q", deref(tl[1].Transition))
		}

		inq := dispute("dp_inq2", "warning_under_review")
		f.mustApply(change(evID(), "charge.dispute.created", t0, inq))
		inq.Status = "warning_closed"
		f.mustApply(change(evID(), "charge.dispute.closed", t0, inq))
		wantState(t, f.only(KindDispute, "dp_inq2"), "warning_closed", StatusClosed)
	})
}

func TestDisputeOrderAndDuplicates(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)

		// Duplicates: the same event twice changes nothing the second time.
		dp := dispute("dp_dup", "needs_response")
		ev := change(evID(), "charge.dispute.created", t0, dp)
		f.mustApply(ev, ev)
		c := f.only(KindDispute, "dp_dup")
		if n := len(f.timeline(c.ID)); n != 1 || c.Version != 1 {
			t.Fatalf("duplicate applied: %d entries, version %d", n, c.Version)
		}

		// Reverse order: closed (lost) arrives first; the created event comes
		// later and is stale (the mirror already holds "lost").
		lost := dispute("dp_rev", "lost")
		f.mustApply(change(evID(), "charge.dispute.closed", t0.Add(time.Hour), lost))
		c = f.only(KindDispute, "dp_rev")
		wantState(t, c, "lost", StatusClosed)
		created := change(evID(), "charge.dispute.created", t0, lost)
		created.Stale = true
		f.mustApply(created)
		c = f.only(KindDispute, "dp_rev")
		wantState(t, c, "lost", StatusClosed)
		if n := len(f.timeline(c.ID)); n != 2 {
			t.Fatalf("want the late created event on the timeline once, got %d entries", n)
		}

		// Update before create: under_review first.
		ur := dispute("dp_ubc", "under_review")
		f.mustApply(change(evID(), "charge.dispute.updated", t0.Add(time.Hour), ur))
		c = f.only(KindDispute, "dp_ubc")
		wantState(t, c, "under_review", StatusOpen)
		cr := change(evID(), "charge.dispute.created", t0, ur)
		cr.Stale = true
		f.mustApply(cr)
		wantState(t, f.only(KindDispute, "dp_ubc"), "under_review", StatusOpen)

		// An analyst's work state is consistent with needs_response: a later
		// needs_response update does not move the case back.
		nr := dispute("dp_work", "needs_response")
		f.mustApply(change(evID(), "charge.dispute.created", t0, nr))
		c = f.only(KindDispute, "dp_work")
		if err := f.fire(c.ID, "start_evidence", "ana"); err != nil {
			t.Fatal(err)
		}
		f.mustApply(change(evID(), "charge.dispute.updated", t0.Add(time.Hour), nr))
		wantState(t, f.only(KindDispute, "dp_work"), "preparing_evidence", StatusOpen)

		// A status Recourse does not know leaves the case where it is,
		// flagged for a person, and the timeline says so.
		nr.Status = "escalated_to_arbitration"
		f.mustApply(change(evID(), "charge.dispute.updated", t0.Add(2*time.Hour), nr))
		c = f.only(KindDispute, "dp_work")
		wantState(t, c, "preparing_evidence", StatusOpen)
		if !c.NeedsAttention {
			t.Fatal("unknown status did not flag the case")
		}
		tl := f.timeline(c.ID)
		if last := tl[len(tl)-1]; last.Type != EntryUnknownStatus ||
			!strings.Contains(last.Summary, "Stripe reported status escalated_to_arbitration, which Recourse does not know yet") {
			t.Fatalf("timeline: %+v", last)
		}
		// prevented (API 2025-08-27) and charge_refunded (older APIs) close
		// the case with their own resolution.
		for _, st := range []string{"prevented", "charge_refunded"} {
			d := dispute("dp_"+st, "needs_response")
			f.mustApply(change(evID(), "charge.dispute.created", t0, d))
			d.Status = st
			f.mustApply(change(evID(), "charge.dispute.closed", t0.Add(time.Hour), d))
			c := f.only(KindDispute, "dp_"+st)
			wantState(t, c, st, StatusClosed)
			if deref(c.Resolution) != st || c.NeedsAttention {
				t.Fatalf("%s: resolution %v, needs attention %v", st, deref(c.Resolution), c.NeedsAttention)
			}
		}

	})
}

func TestDisputePriorityAndDueBy(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		big := dispute("dp_big", "needs_response")
		big.Amount = 250_000
		f.mustApply(change(evID(), "charge.dispute.created", t0, big))
		if c := f.only(KindDispute, "dp_big"); c.Priority != PriorityUrgent {
			t.Fatalf("large dispute priority %s", c.Priority)
		}
		soon := dispute("dp_soon", "needs_response")
		due := t0.Add(36 * time.Hour)
		soon.EvidenceDueBy = &due
		f.mustApply(change(evID(), "charge.dispute.created", t0, soon))
		c := f.only(KindDispute, "dp_soon")
		if c.Priority != PriorityUrgent {
			t.Fatalf("near-deadline dispute priority %s", c.Priority)
		}
		if c.SLA.ResolutionDue.After(due) || !c.SLA.ResolutionDue.After(t0) {
			t.Fatalf("resolution due %v must lie between now and due_by %v", c.SLA.ResolutionDue, due)
		}
		// due_by moves: the resolution due time follows.
		later := dispute("dp_move", "needs_response")
		f.mustApply(change(evID(), "charge.dispute.created", t0, later))
		moved := t0.Add(20 * 24 * time.Hour)
		later.EvidenceDueBy = &moved
		f.mustApply(change(evID(), "charge.dispute.updated", t0.Add(time.Hour), later))
		c = f.only(KindDispute, "dp_move")
		if want := moved.Add(-48 * time.Hour); !c.SLA.ResolutionDue.Equal(want) || !c.EvidenceDueBy.Equal(moved) {
			t.Fatalf("resolution due %v (evidence %v), want %v", c.SLA.ResolutionDue, c.EvidenceDueBy, want)
		}
	})
}

func TestFraudWarningCases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		efw := billing.FraudWarning{ID: "issfr_1", ChargeID: "ch_f1", CustomerID: "cus_f1", FraudType: "made_with_stolen_card", Actionable: true}
		f.mirror.put(billing.Charge{ID: "ch_f1", CustomerID: "cus_f1", Amount: 9900, Currency: "eur"})
		f.mustApply(change(evID(), "radar.early_fraud_warning.created", t0, efw))
		c := f.only(KindFraudWarning, "ch_f1")
		wantState(t, c, "needs_review", StatusOpen)
		if c.Priority != PriorityHigh || c.Team != TeamRisk || deref(c.Currency) != "eur" {
			t.Fatalf("fraud case %+v", c)
		}
		// A dispute on the charge resolves it, linking the dispute.
		dp := dispute("dp_f1", "needs_response")
		dp.ChargeID = "ch_f1"
		f.mirror.put(dp)
		f.mustApply(change(evID(), "charge.dispute.created", t0.Add(time.Hour), dp))
		c = f.only(KindFraudWarning, "ch_f1")
		wantState(t, c, "disputed", StatusClosed)
		wantLink(t, "dispute", c.Links.Dispute, "dp_f1")

		// A refund resolves another one: charge.refunded …
		efw2 := billing.FraudWarning{ID: "issfr_2", ChargeID: "ch_f2", CustomerID: "cus_f2"}
		f.mustApply(change(evID(), "radar.early_fraud_warning.created", t0, efw2))
		f.mustApply(change(evID(), "charge.refunded", t0.Add(time.Hour),
			billing.Charge{ID: "ch_f2", CustomerID: "cus_f2", Amount: 100, AmountRefunded: 100, Refunded: true}))
		wantState(t, f.only(KindFraudWarning, "ch_f2"), "refunded", StatusClosed)

		// … or refund.updated with status succeeded.
		efw3 := billing.FraudWarning{ID: "issfr_3", ChargeID: "ch_f3"}
		f.mustApply(change(evID(), "radar.early_fraud_warning.created", t0, efw3))
		f.mustApply(change(evID(), "refund.created", t0.Add(time.Hour), billing.Refund{ID: "re_f3", ChargeID: "ch_f3", Status: "pending"}))
		wantState(t, f.only(KindFraudWarning, "ch_f3"), "needs_review", StatusOpen)
		f.mustApply(change(evID(), "refund.updated", t0.Add(2*time.Hour), billing.Refund{ID: "re_f3", ChargeID: "ch_f3", Status: "succeeded"}))
		wantState(t, f.only(KindFraudWarning, "ch_f3"), "refunded", StatusClosed)

		// Reverse order: the dispute is mirrored before the warning arrives.
		dp4 := dispute("dp_f4", "needs_response")
		dp4.ChargeID = "ch_f4"
		f.mirror.put(dp4)
		f.mustApply(change(evID(), "charge.dispute.created", t0, dp4))
		f.mustApply(change(evID(), "radar.early_fraud_warning.created", t0.Add(-time.Hour),
			billing.FraudWarning{ID: "issfr_4", ChargeID: "ch_f4"}))
		c = f.only(KindFraudWarning, "ch_f4")
		wantState(t, c, "disputed", StatusClosed)
		wantLink(t, "dispute", c.Links.Dispute, "dp_f4")
	})
}

func subInvoice(id, sub, status string, attempt int) billing.Invoice {
	return billing.Invoice{ID: id, CustomerID: "cus_" + sub, SubscriptionID: sub, ChargeID: "ch_" + id, Status: status,
		BillingReason: "subscription_cycle", AttemptCount: attempt, AmountDue: 4900, Currency: "usd", LastFailureCode: "card_declined"}
}

func TestPaymentFailureCases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		inv := subInvoice("in_1", "sub_1", "open", 1)
		f.mustApply(change(evID(), "invoice.payment_failed", t0, inv))
		c := f.only(KindPaymentFailure, "in_1")
		wantState(t, c, "failing", StatusOpen)
		if c.Team != TeamBillingSupport || c.Priority != PriorityNormal {
			t.Fatalf("routing %s %s", c.Team, c.Priority)
		}
		wantLink(t, "subscription", c.Links.Subscription, "sub_1")
		wantLink(t, "invoice", c.Links.Invoice, "in_1")
		wantLink(t, "customer", c.Links.Customer, "cus_sub_1")

		// A further failure updates the same case.
		inv.AttemptCount = 2
		f.mustApply(change(evID(), "invoice.payment_failed", t0.Add(24*time.Hour), inv))
		c = f.only(KindPaymentFailure, "in_1")
		tl := f.timeline(c.ID)
		if len(tl) != 2 || !strings.Contains(tl[1].Summary, "attempt 2") {
			t.Fatalf("second failure: %+v", tl)
		}
		// Noise (invoice.updated without change) is not recorded.
		f.mustApply(change(evID(), "invoice.updated", t0.Add(25*time.Hour), inv))
		if n := len(f.timeline(c.ID)); n != 2 {
			t.Fatalf("invoice.updated added an entry (%d)", n)
		}
		// Paid → recovered.
		inv.Status = "paid"
		f.mustApply(change(evID(), "invoice.paid", t0.Add(48*time.Hour), inv))
		wantState(t, f.only(KindPaymentFailure, "in_1"), "recovered", StatusClosed)

		// Not a subscription invoice: no case.
		oneOff := subInvoice("in_oneoff", "", "open", 1)
		f.mustApply(change(evID(), "invoice.payment_failed", t0, oneOff))
		if cs := f.casesFor(KindPaymentFailure, "in_oneoff"); len(cs) != 0 {
			t.Fatal("one-off invoice opened a case")
		}

		// Paid arrives before the failure: the late failure (stale) opens
		// the case already recovered, for the record.
		inv2 := subInvoice("in_2", "sub_2", "paid", 2)
		f.mustApply(change(evID(), "invoice.paid", t0.Add(time.Hour), inv2))
		if len(f.casesFor(KindPaymentFailure, "in_2")) != 0 {
			t.Fatal("invoice.paid without a failure opened a case")
		}
		late := change(evID(), "invoice.payment_failed", t0, inv2)
		late.Stale = true
		f.mustApply(late)
		wantState(t, f.only(KindPaymentFailure, "in_2"), "recovered", StatusClosed)

		// Voided → written off; uncollectible likewise.
		inv3 := subInvoice("in_3", "sub_3", "open", 1)
		f.mustApply(change(evID(), "invoice.payment_failed", t0, inv3))
		inv3.Status = "void"
		f.mustApply(change(evID(), "invoice.voided", t0.Add(time.Hour), inv3))
		wantState(t, f.only(KindPaymentFailure, "in_3"), "written_off", StatusClosed)
	})
}

func TestPaymentFailureChurnAndReopen(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		a := subInvoice("in_a", "sub_c", "open", 1)
		b := subInvoice("in_b", "sub_c", "open", 1)
		f.mustApply(change(evID(), "invoice.payment_failed", t0, a), change(evID(), "invoice.payment_failed", t0, b))
		sub := billing.Subscription{ID: "sub_c", CustomerID: "cus_sub_c", Status: "canceled"}
		f.mustApply(change(evID(), "customer.subscription.deleted", t0.Add(time.Hour), sub))
		wantState(t, f.only(KindPaymentFailure, "in_a"), "churned", StatusClosed)
		wantState(t, f.only(KindPaymentFailure, "in_b"), "churned", StatusClosed)
		// The customer pays an invoice after all: recovered beats churned.
		a.Status = "paid"
		f.mustApply(change(evID(), "invoice.paid", t0.Add(2*time.Hour), a))
		wantState(t, f.only(KindPaymentFailure, "in_a"), "recovered", StatusClosed)

		// unpaid also churns.
		u := subInvoice("in_u", "sub_u", "open", 1)
		f.mustApply(change(evID(), "invoice.payment_failed", t0, u))
		f.mustApply(change(evID(), "customer.subscription.updated", t0.Add(time.Hour), billing.Subscription{ID: "sub_u", Status: "unpaid"}))
		wantState(t, f.only(KindPaymentFailure, "in_u"), "churned", StatusClosed)

		// Subscription already canceled in the mirror when the failure
		// arrives: opened churned.
		f.mirror.put(billing.Subscription{ID: "sub_gone", Status: "canceled"})
		f.mustApply(change(evID(), "invoice.payment_failed", t0, subInvoice("in_g", "sub_gone", "open", 3)))
		wantState(t, f.only(KindPaymentFailure, "in_g"), "churned", StatusClosed)

		// Reopen: an agent dismissed the case, then a new failure arrives.
		r := subInvoice("in_r", "sub_r", "open", 1)
		f.mustApply(change(evID(), "invoice.payment_failed", t0, r))
		c := f.only(KindPaymentFailure, "in_r")
		if err := f.fire(c.ID, "dismiss", "ana"); err != nil {
			t.Fatal(err)
		}
		// A stale failure does not reopen it …
		stale := change(evID(), "invoice.payment_failed", t0.Add(-time.Hour), r)
		stale.Stale = true
		f.mustApply(stale)
		wantState(t, f.only(KindPaymentFailure, "in_r"), "dismissed", StatusClosed)
		// … a new one does.
		r.AttemptCount = 2
		f.mustApply(change(evID(), "invoice.payment_failed", t0.Add(24*time.Hour), r))
		c = f.only(KindPaymentFailure, "in_r")
		wantState(t, c, "failing", StatusOpen)
		tl := f.timeline(c.ID)
		if last := tl[len(tl)-1]; last.Type != EntryReopened || last.ActorType != ActorStripe {
			t.Fatalf("last entry %+v", last)
		}
		if c.SLA.FirstRespondedAt != nil {
			t.Fatal("a reopened case starts fresh SLA clocks")
		}
	})
}

func TestTrialConversionCases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		end := t0.Add(72 * time.Hour)
		trial := billing.Subscription{ID: "sub_t1", CustomerID: "cus_t1", Status: "trialing", TrialEnd: &end, Amount: 1500, Currency: "usd"}
		f.mustApply(change(evID(), "customer.subscription.trial_will_end", t0, trial))
		c := f.only(KindTrialConversion, "sub_t1")
		wantState(t, c, "trial_ending", StatusOpen)
		if c.Team != TeamBillingSupport || !strings.Contains(c.Title, end.Format("2006-01-02")) {
			t.Fatalf("trial case %+v", c)
		}
		trial.Status = "active"
		f.mustApply(change(evID(), "customer.subscription.updated", end, trial))
		wantState(t, f.only(KindTrialConversion, "sub_t1"), "converted", StatusClosed)

		// With a payment method (on the subscription or the customer): no case.
		withPM := billing.Subscription{ID: "sub_t2", CustomerID: "cus_t2", Status: "trialing", HasDefaultPaymentMethod: true}
		f.mustApply(change(evID(), "customer.subscription.trial_will_end", t0, withPM))
		f.mirror.put(billing.Customer{ID: "cus_t3", HasDefaultPaymentMethod: true})
		f.mustApply(change(evID(), "customer.subscription.trial_will_end", t0, billing.Subscription{ID: "sub_t3", CustomerID: "cus_t3", Status: "trialing"}))
		if len(f.casesFor(KindTrialConversion, "sub_t2"))+len(f.casesFor(KindTrialConversion, "sub_t3")) != 0 {
			t.Fatal("a trial with a payment method opened a case")
		}

		// Lost on canceled, paused, incomplete_expired.
		for i, status := range []string{"canceled", "paused", "incomplete_expired"} {
			id := "sub_l" + string(rune('0'+i))
			s := billing.Subscription{ID: id, Status: "trialing"}
			f.mustApply(change(evID(), "customer.subscription.trial_will_end", t0, s))
			s.Status = status
			f.mustApply(change(evID(), "customer.subscription.updated", end, s))
			wantState(t, f.only(KindTrialConversion, id), "lost", StatusClosed)
		}

		// Late trial_will_end (stale) for a subscription already active and
		// still without a payment method: recorded, converted.
		late := change(evID(), "customer.subscription.trial_will_end", t0, billing.Subscription{ID: "sub_t4", Status: "active"})
		late.Stale = true
		f.mustApply(late)
		wantState(t, f.only(KindTrialConversion, "sub_t4"), "converted", StatusClosed)

		// Unrelated subscription events without a case open nothing.
		f.mustApply(change(evID(), "customer.subscription.updated", t0, billing.Subscription{ID: "sub_t5", Status: "trialing"}))
		if len(f.casesFor(KindTrialConversion, "sub_t5")) != 0 {
			t.Fatal("subscription.updated opened a trial case")
		}
	})
}

func TestCancellationCases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		sub := billing.Subscription{ID: "sub_x", CustomerID: "cus_x", Status: "active", CancelAtPeriodEnd: true, CancellationFeedback: "too_expensive"}
		on := change(evID(), "customer.subscription.updated", t0, sub)
		on.Previous = billing.Previous{CancelAtPeriodEnd: ptrBool(false)}
		f.mustApply(on)
		c := f.only(KindCancellation, "sub_x")
		wantState(t, c, "requested", StatusOpen)
		if !slices.Contains(c.Tags, "feedback:too_expensive") {
			t.Fatalf("tags %v", c.Tags)
		}
		// Set back to false → retained.
		sub.CancelAtPeriodEnd = false
		off := change(evID(), "customer.subscription.updated", t0.Add(time.Hour), sub)
		off.Previous = billing.Previous{CancelAtPeriodEnd: ptrBool(true)}
		f.mustApply(off)
		wantState(t, f.only(KindCancellation, "sub_x"), "retained", StatusClosed)
		// Turned on again → the same case reopens.
		sub.CancelAtPeriodEnd = true
		again := change(evID(), "customer.subscription.updated", t0.Add(2*time.Hour), sub)
		again.Previous = billing.Previous{CancelAtPeriodEnd: ptrBool(false)}
		f.mustApply(again)
		wantState(t, f.only(KindCancellation, "sub_x"), "requested", StatusOpen)
		// Deleted → canceled.
		sub.Status = "canceled"
		f.mustApply(change(evID(), "customer.subscription.deleted", t0.Add(3*time.Hour), sub))
		wantState(t, f.only(KindCancellation, "sub_x"), "canceled", StatusClosed)

		// Deleted arrives before the turned-on event, which is then stale:
		// the case is opened and closed canceled.
		gone := billing.Subscription{ID: "sub_y", Status: "canceled", CancelAtPeriodEnd: true}
		f.mustApply(change(evID(), "customer.subscription.deleted", t0.Add(time.Hour), gone))
		if len(f.casesFor(KindCancellation, "sub_y")) != 0 {
			t.Fatal("deletion alone opened a cancellation case")
		}
		lateOn := change(evID(), "customer.subscription.updated", t0, gone)
		lateOn.Previous = billing.Previous{CancelAtPeriodEnd: ptrBool(false)}
		lateOn.Stale = true
		f.mustApply(lateOn)
		wantState(t, f.only(KindCancellation, "sub_y"), "canceled", StatusClosed)

		// An agent's cancellation case is not "retained" by an update that
		// never had cancel_at_period_end set.
		ag, err := f.svc.OpenManual(context.Background(), principalOf("ana", "agent"), ManualCase{Kind: KindCancellation,
			Channel: ChannelChat, Title: "wants to cancel", Links: Links{Subscription: strp("sub_z")}})
		if err != nil {
			t.Fatal(err)
		}
		f.mustApply(change(evID(), "customer.subscription.updated", t0, billing.Subscription{ID: "sub_z", Status: "active"}))
		got, _ := f.svc.Get(context.Background(), ag.ID)
		wantState(t, got, "requested", StatusOpen)
		// The agent sets cancel_at_period_end (through an action): still the
		// one case.
		z := billing.Subscription{ID: "sub_z", Status: "active", CancelAtPeriodEnd: true}
		zOn := change(evID(), "customer.subscription.updated", t0.Add(time.Hour), z)
		zOn.Previous = billing.Previous{CancelAtPeriodEnd: ptrBool(false)}
		f.mustApply(zOn)
		if cs := f.casesFor(KindCancellation, "sub_z"); len(cs) != 1 || len(f.timeline(cs[0].ID)) != 2 {
			t.Fatalf("agent case: %d cases", len(cs))
		}
	})
}

func TestRefundFailureCases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		re := billing.Refund{ID: "re_1", ChargeID: "ch_r1", CustomerID: "cus_r1", Amount: 2500, Currency: "usd", Status: "pending"}
		f.mustApply(change(evID(), "refund.created", t0, re))
		if len(f.casesFor(KindRefundFailure, "re_1")) != 0 {
			t.Fatal("pending refund opened a case")
		}
		re.Status, re.FailureReason = "failed", "expired_or_canceled_card"
		ev := change(evID(), "refund.failed", t0.Add(time.Hour), re)
		f.mustApply(ev, ev, change(evID(), "charge.refund.updated", t0.Add(time.Hour), re))
		c := f.only(KindRefundFailure, "re_1")
		wantState(t, c, "failed", StatusOpen)
		if c.Team != TeamPayments || !strings.Contains(c.Title, "expired_or_canceled_card") {
			t.Fatalf("refund failure case %+v", c)
		}
		wantLink(t, "refund", c.Links.Refund, "re_1")
		if n := len(f.timeline(c.ID)); n != 2 {
			t.Fatalf("timeline has %d entries, want 2 (duplicate skipped)", n)
		}
		if err := f.fire(c.ID, "resolve", "pat"); err != nil {
			t.Fatal(err)
		}
		// A late event does not reopen an agent's resolution.
		f.mustApply(change(evID(), "refund.updated", t0.Add(2*time.Hour), re))
		wantState(t, f.only(KindRefundFailure, "re_1"), "resolved", StatusClosed)
	})
}

func TestOnBillingChangeInvalid(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		for name, ch := range map[string]billing.Change{
			"no event id":   {EventType: "charge.dispute.created", Object: billing.KindDispute, Dispute: &billing.Dispute{ID: "dp"}},
			"no object":     {EventID: "evt_x", EventType: "charge.dispute.created", Object: billing.KindDispute},
			"no object id":  {EventID: "evt_y", EventType: "invoice.paid", Object: billing.KindInvoice, Invoice: &billing.Invoice{}},
			"wrong pointer": {EventID: "evt_z", EventType: "refund.updated", Object: billing.KindRefund, Charge: &billing.Charge{ID: "ch"}},
		} {
			if err := f.apply(ch); !errs.Is(err, errs.EINVALID) {
				t.Errorf("%s: got %v, want EINVALID", name, err)
			}
		}
		// Customers open nothing, and that is not an error.
		if err := f.apply(change(evID(), "customer.updated", t0, billing.Customer{ID: "cus_1"})); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOneOpenCaseConstraint checks the database refuses a second open case of
// a kind and subject, whatever the application does.
func TestOneOpenCaseConstraint(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		mk := func(kind Kind) Case {
			c := Case{ID: NewID(t0), Kind: kind, State: mustLifecycle(kind).Initial, Status: StatusOpen, Priority: PriorityNormal,
				Team: TeamSupport, Channel: ChannelChat, Subject: strp("sub_same"), Version: 1, CreatedAt: t0, UpdatedAt: t0,
				SLA: SLA{FirstResponseDue: t0, ResolutionDue: t0}}
			return c
		}
		insert := func(c Case) bool {
			var ok bool
			if err := d.Transact(ctx, func(tx *gorm.DB) error {
				var err error
				ok, err = f.svc.st.insert(ctx, tx, c)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !insert(mk(KindCancellation)) {
			t.Fatal("first insert refused")
		}
		if insert(mk(KindCancellation)) {
			t.Fatal("second open cancellation case on the same subscription accepted")
		}
		// A raw INSERT without ON CONFLICT fails outright.
		r := toRow(mk(KindCancellation))
		if err := d.Gorm.Create(&r).Error; err == nil {
			t.Fatal("database accepted a duplicate open case")
		}
		// Once-per-object kinds refuse a second case even when closed.
		closed := mk(KindTrialConversion)
		closed.Status, closed.State = StatusClosed, "converted"
		if !insert(closed) || insert(mk(KindTrialConversion)) {
			t.Fatal("trial_conversion: want one case per subscription")
		}
	})
}

// TestConcurrentOpen races workers on events of one new object on
// PostgreSQL: exactly one case results, with every event on its timeline.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.Postgres)
	f := newFixture(t, d)
	const workers = 12
	for round, kind := range []string{"dispute", "invoice", "subscription"} {
		start := make(chan struct{})
		errc := make(chan error, workers)
		for i := 0; i < workers; i++ {
			var ch billing.Change
			switch kind {
			case "dispute":
				ch = change(evID(), "charge.dispute.updated", t0, dispute("dp_race", "needs_response"))
			case "invoice":
				ch = change(evID(), "invoice.payment_failed", t0, subInvoice("in_race", "sub_race", "open", i+1))
			case "subscription":
				ch = change(evID(), "customer.subscription.updated", t0, billing.Subscription{ID: "sub_race2", Status: "active", CancelAtPeriodEnd: true})
			}
			go func() {
				<-start
				errc <- f.apply(ch)
			}()
		}
		close(start)
		for i := 0; i < workers; i++ {
			if err := <-errc; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	// Dispute events and failures are all recorded; repeated subscription
	// updates that change nothing are not (only the one that opened it).
	for kind, want := range map[Kind]struct {
		subject string
		entries int
	}{KindDispute: {"dp_race", workers}, KindPaymentFailure: {"in_race", workers}, KindCancellation: {"sub_race2", 1}} {
		c := f.only(kind, want.subject)
		if n := len(f.timeline(c.ID)); n != want.entries {
			t.Errorf("%s: %d timeline entries, want %d", kind, n, want.entries)
		}
	}
}

// TestActionEchoes: the provider's echo of a Recourse action opens no case,
// lands on the action's case, and still moves the cases of the object.
func TestActionEchoes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		agent := principalOf("alice", "agent")
		rr, err := f.svc.OpenManual(ctx, agent, ManualCase{Kind: KindRefundRequest, Channel: ChannelChat,
			Title: "refund", Links: Links{Charge: strp("ch_e1"), Customer: strp("cus_e1")}})
		if err != nil {
			t.Fatal(err)
		}
		// A refund the agent issued fails: no refund_failure case, the fact
		// is on the refund request.
		failed := change(evID(), "refund.updated", t0, billing.Refund{ID: "re_e1", ChargeID: "ch_e1", Status: "failed"})
		failed.IdempotencyKey = "recourse_act_1"
		f.echoes.add(failed.IdempotencyKey, ActionEcho{ActionID: "act_1", CaseID: rr.ID})
		f.mustApply(failed)
		if cs := f.casesFor(KindRefundFailure, "re_e1"); len(cs) != 0 {
			t.Fatal("the echo of an action opened a case")
		}
		tl := f.timeline(rr.ID)
		if last := tl[len(tl)-1]; deref(last.EventID) != failed.EventID || last.ActorType != ActorStripe ||
			last.Type != EntryProviderConfirmation || !strings.HasPrefix(last.Summary, "Stripe confirmed act_1: ") {
			t.Fatalf("echo not on the action's case: %+v", last)
		}
		// Applied again (a replayed delivery the mirror did not catch): one entry.
		f.mustApply(failed)
		if n := len(f.timeline(rr.ID)); n != len(tl) {
			t.Fatalf("echo recorded twice: %d entries, want %d", n, len(tl))
		}

		// A refund from a fraud-warning case: the case is resolved and the
		// provider's confirmation is on it, both written here.
		f.mustApply(change(evID(), "radar.early_fraud_warning.created", t0, billing.FraudWarning{ID: "issfr_e2", ChargeID: "ch_e2"}))
		fw := f.only(KindFraudWarning, "ch_e2")
		refunded := change(evID(), "charge.refunded", t0.Add(time.Hour), billing.Charge{ID: "ch_e2", AmountRefunded: 500, Refunded: true})
		refunded.IdempotencyKey = "recourse_act_2"
		f.echoes.add(refunded.IdempotencyKey, ActionEcho{ActionID: "act_2", CaseID: fw.ID})
		f.mustApply(refunded)
		fw = f.only(KindFraudWarning, "ch_e2")
		wantState(t, fw, "refunded", StatusClosed)
		types := []string{}
		for _, e := range f.timeline(fw.ID) {
			types = append(types, e.Type)
		}
		if !slices.Equal(types, []string{EntryOpened, EntryTransition, EntryProviderConfirmation}) {
			t.Fatalf("timeline %v", types)
		}

		// Changes the mirror reports as duplicates change nothing.
		dup := change(evID(), "invoice.payment_failed", t0, subInvoice("in_e3", "sub_e3", "open", 1))
		dup.Duplicate = true
		f.mustApply(dup)
		if len(f.casesFor(KindPaymentFailure, "in_e3")) != 0 {
			t.Fatal("a duplicate opened a case")
		}
	})
}

// TestCustomerBackfill: a case opened before the mirror knew its customer
// gets the customer link from a later event of the same object.
func TestCustomerBackfill(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		dp := dispute("dp_bf", "needs_response")
		dp.CustomerID = ""
		f.mustApply(change(evID(), "charge.dispute.created", t0, dp))
		c := f.only(KindDispute, "dp_bf")
		if c.Links.Customer != nil {
			t.Fatal("customer linked too early")
		}
		f.mustApply(change(evID(), "charge.succeeded", t0, billing.Charge{ID: "ch_dp_bf", CustomerID: "cus_late"}))
		c = f.only(KindDispute, "dp_bf")
		wantLink(t, "customer", c.Links.Customer, "cus_late")
		if n := len(f.timeline(c.ID)); n != 1 {
			t.Fatalf("backfill wrote %d timeline entries", n-1)
		}
	})
}

func ptrBool(b bool) *bool { return &b }
