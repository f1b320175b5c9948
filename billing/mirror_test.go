package billing

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/pan"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{4900, "usd", "$49.00"},
		{4900, "USD", "$49.00"},
		{1250, "eur", "€12.50"},
		{1250, "sek", "12.50 SEK"},
		{1250, "gbp", "12.50 GBP"},
		{5, "usd", "$0.05"},
		{0, "usd", "$0.00"},
		{-500, "usd", "-$5.00"},
		{1200, "jpy", "1200 JPY"},
		{50000, "krw", "50000 KRW"},
		{12500, "kwd", "12.500 KWD"},
		{123456789, "usd", "$1234567.89"},
		{4900, "", "49.00"},
	} {
		eq(t, fmt.Sprintf("FormatMoney(%d, %q)", c.amount, c.currency), FormatMoney(c.amount, c.currency), c.want)
	}
}

func TestRedactPAN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                       "",
		"Call me at 555-0100":                    "Call me at 555-0100",
		"card 4242424242424242 please":           "card **** **** **** 4242 please",
		"4242 4242 4242 4242":                    "**** **** **** 4242",
		"4000-0566-5566-5556.":                   "**** **** **** 5556.",
		"order 123456789012 is twelve digits":    "order 123456789012 is twelve digits",
		"two: 5555555555554444, 378282246310005": "two: **** **** **** 4444, **** **** **** 0005",
	} {
		got := redactPAN(in)
		eq(t, fmt.Sprintf("redactPAN(%q)", in), got, want)
		if pan.Contains(got) {
			t.Errorf("redactPAN(%q) still holds a card number: %q", in, got)
		}
	}
}

var cardNumberRun = regexp.MustCompile(`[0-9]{13,19}`)

// TestNoCardNumberIsStored applies every story (plus payloads that carry
// card numbers in free text and in card fields) and scans every column of
// every billing table for a run of 13–19 digits.
func TestNoCardNumberIsStored(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.applyAll(f.gen.Mix(40, t0))
		for _, sc := range stripetest.Scenarios() {
			f.applyAll(sc.Run(f.gen, t0.Add(40*24*time.Hour)))
		}

		pan := "4242424242424242"
		cust := f.gen.Customer(stripetest.CustomerParams{ID: "cus_Pan", Name: "Pat " + pan, Email: pan + "@example.com"})
		f.apply(f.event("customer.created", cust, t0))
		sub := f.gen.Subscription(stripetest.SubscriptionParams{ID: "sub_Pan", Customer: "cus_Pan", Status: "canceled",
			CancellationReason: "cancellation_requested", CancellationComment: "please refund card 4242 4242 4242 4242"})
		ch := f.apply(f.event("customer.subscription.deleted", sub, t0))
		if strings.Contains(ch.Summary, "4242 4242 4242 4242") {
			t.Errorf("summary carries the card number: %q", ch.Summary)
		}
		charge := f.gen.Charge(stripetest.ChargeParams{ID: "ch_Pan", Customer: "cus_Pan", Status: "failed",
			FailureMessage: "Card " + pan + " was declined."})
		card := charge["payment_method_details"].(map[string]any)["card"].(map[string]any)
		card["last4"] = pan // a malformed payload
		card["number"] = pan
		card["cvc"] = "123"
		f.apply(f.event("charge.failed", charge, t0))

		got := must[Charge](t)(f.store.Charge(context.Background(), "ch_Pan"))
		eq(t, "last4 kept to four digits", got.CardLast4, "4242")

		tables := []string{"billing_customers", "billing_subscriptions", "billing_invoices", "billing_charges",
			"billing_refunds", "billing_disputes", "billing_fraud_warnings", "billing_timeline"}
		for _, table := range tables {
			rows, err := d.Gorm.Table(table).Rows()
			if err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			cols, _ := rows.Columns()
			n := 0
			for rows.Next() {
				n++
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatalf("scan %s: %v", table, err)
				}
				for i, v := range vals {
					var s string
					switch x := v.(type) {
					case time.Time:
						continue // a timestamp is not text anyone typed
					case []byte:
						s = string(x)
					default:
						s = fmt.Sprint(x)
					}
					if cardNumberRun.MatchString(s) {
						t.Errorf("%s.%s holds a 13–19 digit run: %q", table, cols[i], s)
					}
				}
			}
			_ = rows.Close()
			if n == 0 {
				t.Errorf("%s is empty: the scan proves nothing", table)
			}
		}
	})
}

// TestSummaryExamples checks the three examples word for word, with
// events from the generator's stories.
func TestSummaryExamples(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)

		// "Trial ends in 3 days — no payment method"
		lapse := f.gen.TrialLapsesCanceled(t0)
		f.applyAll(lapse)
		eq(t, "trial will end", f.entry(firstOf(t, lapse, "customer.subscription.trial_will_end").ID).Summary,
			"Trial ends in 3 days — no payment method")
		eq(t, "trial will end severity", f.entry(firstOf(t, lapse, "customer.subscription.trial_will_end").ID).Severity, SeverityWarning)
		eq(t, "canceled at trial end", f.entry(firstOf(t, lapse, "customer.subscription.deleted").ID).Summary,
			"Subscription canceled at trial end — no payment method")
		converts := f.gen.TrialConverts(t0)
		f.applyAll(converts)
		eq(t, "trial will end with a card", f.entry(firstOf(t, converts, "customer.subscription.trial_will_end").ID).Summary[:len("Trial ends in 3 days — payment method on file")],
			"Trial ends in 3 days — payment method on file")

		// "Renewal failed (attempt 2 of 4, card_declined), next retry 2026-11-25"
		cust, inv := "cus_Ex", "in_Ex"
		f.apply(f.event("charge.failed", f.gen.Charge(stripetest.ChargeParams{ID: "ch_Ex2", Customer: cust, Invoice: inv, Amount: 4900,
			Currency: "usd", Status: "failed", FailureCode: "card_declined", DeclineCode: "insufficient_funds"}), day("2026-11-20")))
		failed := f.event("invoice.payment_failed", f.gen.Invoice(stripetest.InvoiceParams{ID: inv, Customer: cust, Subscription: "sub_Ex",
			Plan: proPlan, Status: "open", BillingReason: "subscription_cycle", AttemptCount: 2, Charge: "ch_Ex2",
			NextPaymentAttempt: day("2026-11-25").Add(9 * time.Hour)}), day("2026-11-20"))
		eq(t, "renewal failed", f.apply(failed).Summary, "Renewal failed (attempt 2 of 4, card_declined), next retry 2026-11-25")

		// The "of N" comes from the store option.
		five := NewStore(d, f.clock, WithMaxPaymentAttempts(5))
		failed2 := f.event("invoice.payment_failed", f.gen.Invoice(stripetest.InvoiceParams{ID: "in_Ex5", Customer: cust, Subscription: "sub_Ex",
			Plan: proPlan, Status: "open", AttemptCount: 5, Charge: "ch_Ex2"}), day("2026-11-21"))
		ch, err := five.Apply(context.Background(), providerEvent(failed2))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "last attempt", ch.Summary, "Renewal failed (attempt 5 of 5, card_declined), no retry scheduled")
		eq(t, "last attempt severity", f.entry(failed2.ID).Severity, SeverityCritical)

		// "Disputed $49.00: subscription_canceled, evidence due 2026-12-10"
		disputed := f.event("charge.dispute.created", f.gen.Dispute(stripetest.DisputeParams{ID: "dp_Ex", Charge: "ch_Ex", Amount: 4900, Currency: "usd",
			Reason: "subscription_canceled", Status: "needs_response", EvidenceDueBy: time.Date(2026, 12, 10, 23, 59, 59, 0, time.UTC)}),
			day("2026-11-22"))
		eq(t, "disputed", f.apply(disputed).Summary, "Disputed $49.00: subscription_canceled, evidence due 2026-12-10")

		// Other currencies read the same way.
		eur := f.event("charge.dispute.created", f.gen.Dispute(stripetest.DisputeParams{ID: "dp_Eur", Charge: "ch_Eur", Amount: 1250, Currency: "eur",
			Reason: "fraudulent", Status: "needs_response", EvidenceDueBy: time.Date(2026, 12, 10, 23, 59, 59, 0, time.UTC)}), day("2026-11-22"))
		eq(t, "disputed eur", f.apply(eur).Summary, "Disputed €12.50: fraudulent, evidence due 2026-12-10")
		jpy := f.event("invoice.paid", f.gen.Invoice(stripetest.InvoiceParams{ID: "in_Jpy", Customer: cust, Subscription: "sub_Jpy",
			Plan: stripetest.Plan{PriceID: "price_jpy", UnitAmount: 1200, Currency: "jpy", Interval: "month"}, Status: "paid", BillingReason: "subscription_cycle"}), day("2026-11-22"))
		eq(t, "renewal paid jpy", f.apply(jpy).Summary, "Renewal paid 1200 JPY")
	})
}

// TestStoryTimelines applies whole stories and checks what an agent reads.
func TestStoryTimelines(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()

		churn := f.gen.RenewalChurnsCanceled(t0)
		f.applyAll(churn)
		cust := churn[0].Object["id"].(string)
		tl := f.timeline(cust)
		eq(t, "one fact per event", len(tl), len(churn))
		var failures []string
		for _, e := range tl {
			if e.EventType == "invoice.payment_failed" {
				failures = append(failures, e.Summary)
			}
		}
		if len(failures) != 4 || !strings.HasPrefix(failures[0], "Renewal failed (attempt 4 of 4, ") || !strings.HasSuffix(failures[0], "no retry scheduled") ||
			!strings.HasPrefix(failures[3], "Renewal failed (attempt 1 of 4, ") {
			t.Errorf("renewal failures (newest first) = %q", failures)
		}
		subID := firstOf(t, churn, "customer.subscription.deleted").Object["id"].(string)
		sub := must[Subscription](t)(f.store.Subscription(ctx, subID))
		eq(t, "subscription", sub.Status, "canceled")
		eq(t, "reason", sub.CancellationReason, "payment_failed")
		eq(t, "deleted summary", f.entry(firstOf(t, churn, "customer.subscription.deleted").ID).Summary, "Subscription canceled: payment_failed")
		invs := must[[]Invoice](t)(f.store.InvoicesBySubscription(ctx, subID))
		if len(invs) != 2 || invs[1].Status != "void" || invs[1].AttemptCount != 4 || invs[1].LastFailureCode == "" {
			t.Errorf("invoices = %+v", invs)
		}

		won := f.gen.Chargeback(t0, stripetest.ChargebackOptions{Brand: "visa", Reason: "subscription_canceled", Won: true})
		f.applyAll(won)
		dp := firstOf(t, won, "charge.dispute.created").Object
		d1 := must[Dispute](t)(f.store.Dispute(ctx, dp["id"].(string)))
		eq(t, "dispute status", d1.Status, "won")
		eq(t, "withdrawn", d1.FundsWithdrawn, true)
		eq(t, "reinstated", d1.FundsReinstated, true)
		eq(t, "dispute customer", d1.CustomerID, won[0].Object["id"].(string))
		byCharge := must[[]Dispute](t)(f.store.DisputesByCharge(ctx, dp["charge"].(string)))
		eq(t, "disputes by charge", len(byCharge), 1)

		refunded := f.gen.FraudWarningRefunded(t0)
		f.applyAll(refunded)
		efw := firstOf(t, refunded, "radar.early_fraud_warning.created").Object
		warnings := must[[]FraudWarning](t)(f.store.FraudWarningsByCharge(ctx, efw["charge"].(string)))
		if len(warnings) != 1 || warnings[0].Actionable {
			t.Errorf("fraud warnings = %+v", warnings)
		}
		refunds := must[[]Refund](t)(f.store.RefundsByCharge(ctx, efw["charge"].(string)))
		if len(refunds) != 1 || refunds[0].Status != "succeeded" || refunds[0].Reason != "fraudulent" {
			t.Errorf("refunds = %+v", refunds)
		}

		failedRefund := f.gen.RefundFailed(t0)
		f.applyAll(failedRefund)
		rf := lastOf(t, failedRefund, "refund.updated")
		if s := f.entry(rf.ID).Summary; !strings.HasPrefix(s, "Refund failed: ") {
			t.Errorf("failed refund summary = %q", s)
		}
		eq(t, "failed refund severity", f.entry(rf.ID).Severity, SeverityCritical)

		retained := f.gen.CancelRetained(t0)
		f.applyAll(retained)
		ups := eventsOf(retained, "customer.subscription.updated")
		var on, off bool
		for _, e := range ups {
			s := f.entry(e.ID).Summary
			on = on || strings.HasPrefix(s, "Cancellation scheduled for ")
			off = off || s == "Scheduled cancellation withdrawn"
		}
		if !on || !off {
			t.Errorf("cancel at period end on=%v off=%v", on, off)
		}
	})
}

// TestAPIVersionTolerance reads fields where newer API versions put them and
// expandable fields in both shapes.
func TestAPIVersionTolerance(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()

		// 2025-03-31+: invoice.subscription → parent.subscription_details.subscription,
		// charge/payment_intent → payments.
		inv := f.gen.Invoice(stripetest.InvoiceParams{ID: "in_New", Customer: "cus_V", Subscription: "sub_V", Plan: proPlan, Status: "paid"})
		chargeID := inv["charge"]
		delete(inv, "subscription")
		delete(inv, "charge")
		delete(inv, "payment_intent")
		inv["lines"].(map[string]any)["data"].([]any)[0].(map[string]any)["subscription"] = nil
		inv["parent"] = map[string]any{"type": "subscription_details", "subscription_details": map[string]any{"subscription": "sub_V"}}
		inv["payments"] = map[string]any{"object": "list", "data": []any{map[string]any{"payment": map[string]any{"charge": chargeID, "payment_intent": "pi_V", "type": "charge"}}}}
		ch := f.apply(f.event("invoice.paid", inv, t0))
		eq(t, "subscription from parent", ch.Invoice.SubscriptionID, "sub_V")
		eq(t, "charge from payments", ch.Invoice.ChargeID, chargeID.(string))
		eq(t, "payment intent from payments", ch.Invoice.PaymentIntentID, "pi_V")

		// An older-shaped event for the same invoice later does not lose them.
		old := f.gen.Invoice(stripetest.InvoiceParams{ID: "in_New", Customer: "cus_V", Plan: proPlan, Status: "paid"})
		delete(old, "charge")
		delete(old, "payment_intent")
		ch = f.apply(f.event("invoice.updated", old, t0.Add(time.Minute)))
		eq(t, "subscription kept", ch.Invoice.SubscriptionID, "sub_V")
		eq(t, "charge kept", ch.Invoice.ChargeID, chargeID.(string))

		// 2025-03-31+: current_period_* on the items; customer expanded.
		sub := f.gen.Subscription(stripetest.SubscriptionParams{ID: "sub_V", Customer: "cus_V", Plan: proPlan, Status: "active",
			CurrentPeriodStart: day("2026-11-05"), CurrentPeriodEnd: day("2026-12-05")})
		item := sub["items"].(map[string]any)["data"].([]any)[0].(map[string]any)
		item["current_period_start"], item["current_period_end"] = sub["current_period_start"], sub["current_period_end"]
		delete(sub, "current_period_start")
		delete(sub, "current_period_end")
		delete(sub, "plan")
		sub["customer"] = f.gen.Customer(stripetest.CustomerParams{ID: "cus_V"})
		ch = f.apply(f.event("customer.subscription.updated", sub, t0))
		eq(t, "period start from item", ptrDay(ch.Subscription.CurrentPeriodStart), "2026-11-05")
		eq(t, "period end from item", ptrDay(ch.Subscription.CurrentPeriodEnd), "2026-12-05")
		eq(t, "expanded customer", ch.Subscription.CustomerID, "cus_V")
		eq(t, "amount", ch.Subscription.Amount, int64(4900))

		// A dispute whose charge is expanded, and one whose charge is an id.
		charge := f.gen.Charge(stripetest.ChargeParams{ID: "ch_V", Customer: "cus_V", Amount: 4900, Currency: "usd"})
		dp := f.gen.Dispute(stripetest.DisputeParams{ID: "dp_V", Charge: "ch_V", Amount: 4900, Currency: "usd"})
		dp["charge"] = charge
		ch = f.apply(f.event("charge.dispute.created", dp, t0))
		eq(t, "charge from expanded object", ch.Dispute.ChargeID, "ch_V")
		eq(t, "customer from expanded charge", ch.Dispute.CustomerID, "cus_V")
		eq(t, "timeline customer", f.entry(ch.EventID).CustomerID, "cus_V")

		// A refund object with a customer field but an unmirrored charge.
		rf := f.gen.Refund(stripetest.RefundParams{ID: "re_V", Charge: "ch_Unknown", Amount: 100, Currency: "usd"})
		rf["customer"] = "cus_V"
		ch = f.apply(f.event("refund.created", rf, t0))
		eq(t, "customer from payload", ch.CustomerID, "cus_V")

		// Unknown fields and statuses do not break anything.
		odd := f.gen.Dispute(stripetest.DisputeParams{ID: "dp_Odd", Charge: "ch_V", Amount: 4900, Currency: "usd"})
		odd["status"] = "prevented"
		odd["enhanced_eligibility_types"] = []any{"visa_compelling_evidence_3"}
		odd["evidence_details"] = map[string]any{"due_by": nil, "enhanced_eligibility": map[string]any{}}
		ch = f.apply(f.event("charge.dispute.closed", odd, t0))
		eq(t, "new status kept", ch.Dispute.Status, "prevented")
		if ch.Dispute.EvidenceDueBy != nil {
			t.Errorf("due_by null read as %v", ch.Dispute.EvidenceDueBy)
		}
		eq(t, "summary", ch.Summary, "Dispute closed (prevented): $49.00")

		// A deleted customer delivered as a bare stub keeps what we knew.
		f.apply(f.event("customer.created", f.gen.Customer(stripetest.CustomerParams{ID: "cus_Stub", Name: "Sam Stub", Email: "sam@example.com"}), t0))
		f.apply(f.event("customer.deleted", map[string]any{"id": "cus_Stub", "object": "customer", "deleted": true}, t0.Add(time.Minute)))
		c := must[Customer](t)(f.store.Customer(ctx, "cus_Stub"))
		if !c.Deleted || c.Email != "sam@example.com" || c.Name != "Sam Stub" {
			t.Errorf("deleted customer = %+v", c)
		}
	})
}

// TestCustomerResolvedWhenChargeArrivesLater: a dispute, refund and fraud
// warning applied before their charge get the customer once it is mirrored,
// and so do their timeline facts.
func TestCustomerResolvedWhenChargeArrivesLater(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		dp := f.apply(f.event("charge.dispute.created", f.gen.Dispute(stripetest.DisputeParams{ID: "dp_L", Charge: "ch_L"}), t0))
		rf := f.apply(f.event("refund.created", f.gen.Refund(stripetest.RefundParams{ID: "re_L", Charge: "ch_L"}), t0))
		w := f.apply(f.event("radar.early_fraud_warning.created", f.gen.EarlyFraudWarning(stripetest.EarlyFraudWarningParams{ID: "issfr_L", Charge: "ch_L"}), t0))
		eq(t, "dispute customer before charge", dp.CustomerID, "")
		eq(t, "refund customer before charge", rf.CustomerID, "")
		eq(t, "warning customer before charge", w.CustomerID, "")
		if len(f.timeline("cus_L")) != 0 {
			t.Fatal("facts attached to a customer nobody named")
		}

		f.apply(f.event("charge.succeeded", f.gen.Charge(stripetest.ChargeParams{ID: "ch_L", Customer: "cus_L"}), t0.Add(-time.Hour)))
		eq(t, "dispute customer", must[Dispute](t)(f.store.Dispute(ctx, "dp_L")).CustomerID, "cus_L")
		eq(t, "refund customer", must[Refund](t)(f.store.Refund(ctx, "re_L")).CustomerID, "cus_L")
		eq(t, "warning customer", must[FraudWarning](t)(f.store.FraudWarning(ctx, "issfr_L")).CustomerID, "cus_L")
		var stored string
		d.Gorm.Table("billing_disputes").Where("id = ?", "dp_L").Pluck("customer_id", &stored)
		eq(t, "dispute row attached", stored, "cus_L")
		eq(t, "timeline", len(f.timeline("cus_L")), 4)
	})
}

func TestTimelinePagination(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		const n = 23
		for i := 0; i < n; i++ {
			// Pairs of events share a created second, to exercise the id tiebreak.
			at := t0.Add(time.Duration(i/2) * time.Minute)
			f.apply(f.event("customer.updated", f.gen.Customer(stripetest.CustomerParams{ID: "cus_P"}), at))
		}
		f.apply(f.event("customer.updated", f.gen.Customer(stripetest.CustomerParams{ID: "cus_Other"}), t0))

		var all []TimelineEntry
		page := httpx.PageRequest{Limit: 5}
		pages := 0
		for {
			l := must[httpx.List[TimelineEntry]](t)(f.store.Timeline(ctx, "cus_P", page))
			pages++
			all = append(all, l.Data...)
			if l.NextCursor == nil {
				break
			}
			page.Cursor = *l.NextCursor
		}
		eq(t, "pages", pages, 5)
		eq(t, "entries", len(all), n)
		seen := map[int64]bool{}
		for i, e := range all {
			if seen[e.ID] {
				t.Fatalf("entry %d repeated", e.ID)
			}
			seen[e.ID] = true
			if e.CustomerID != "cus_P" {
				t.Fatalf("entry of another customer: %+v", e)
			}
			if i > 0 {
				prev := all[i-1]
				if e.At.After(prev.At) || (e.At.Equal(prev.At) && e.ID > prev.ID) {
					t.Fatalf("not newest first at %d: %+v after %+v", i, e, prev)
				}
			}
		}
		if _, err := f.store.Timeline(ctx, "cus_P", httpx.PageRequest{Limit: 5, Cursor: "garbage!"}); err == nil {
			t.Error("a bad cursor was accepted")
		}
		empty := must[httpx.List[TimelineEntry]](t)(f.store.Timeline(ctx, "cus_Nobody", httpx.PageRequest{}))
		if len(empty.Data) != 0 || empty.NextCursor != nil || empty.Data == nil {
			t.Errorf("empty timeline = %+v", empty)
		}
	})
}
