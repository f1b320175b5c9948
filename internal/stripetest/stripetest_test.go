package stripetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

const testSecret = "whsec_test_c3RyaXBldGVzdA"

var testStart = time.Date(2024, time.March, 4, 9, 30, 0, 0, time.UTC)

// verify checks that e's payload passes stripe-go's signature and API
// version checks and that the envelope matches e.
func verify(t *testing.T, e Event) stripe.Event {
	t.Helper()
	header := SignedHeader(e.Payload, testSecret, time.Now())
	ev, err := webhook.ConstructEventWithOptions(e.Payload, header, testSecret, webhook.ConstructEventOptions{})
	if err != nil {
		t.Fatalf("%s %s: ConstructEventWithOptions: %v", e.Type, e.ID, err)
	}
	if ev.ID != e.ID || string(ev.Type) != e.Type || ev.Created != e.Created.Unix() || ev.APIVersion != stripe.APIVersion {
		t.Fatalf("envelope mismatch: got id=%s type=%s created=%d version=%s; want %s %s %d",
			ev.ID, ev.Type, ev.Created, ev.APIVersion, e.ID, e.Type, e.Created.Unix())
	}
	if ev.Object != "event" || ev.Livemode || ev.PendingWebhooks != 1 || ev.Request == nil {
		t.Fatalf("%s: bad envelope %+v", e.ID, ev)
	}
	if ev.Request.ID != e.RequestID || ev.Request.IdempotencyKey != e.IdempotencyKey {
		t.Fatalf("%s: request = %+v, want %q %q", e.ID, ev.Request, e.RequestID, e.IdempotencyKey)
	}
	if (e.PreviousAttributes != nil) != (ev.Data.PreviousAttributes != nil) {
		t.Fatalf("%s: previous_attributes presence mismatch", e.ID)
	}
	if ev.Data.Object["id"] != e.Object["id"] {
		t.Fatalf("%s: data.object.id = %v, want %v", e.ID, ev.Data.Object["id"], e.Object["id"])
	}
	return ev
}

// --- helpers reading decoded JSON ------------------------------------------------

func get(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func str(m map[string]any, path ...string) string {
	s, _ := get(m, path...).(string)
	return s
}

func num(m map[string]any, path ...string) int64 {
	switch x := get(m, path...).(type) {
	case float64:
		return int64(x)
	case int64:
		return x
	case int:
		return int64(x)
	}
	return 0
}

func boolean(m map[string]any, path ...string) bool {
	b, _ := get(m, path...).(bool)
	return b
}

type checker struct {
	t  *testing.T
	id string
}

func (c checker) eq(field string, got, want any) {
	c.t.Helper()
	if !reflect.DeepEqual(got, want) {
		c.t.Errorf("%s: %s = %#v, want %#v", c.id, field, got, want)
	}
}

func idOf[T interface {
	*stripe.Customer | *stripe.Subscription | *stripe.Invoice | *stripe.Charge | *stripe.PaymentIntent | *stripe.PaymentMethod | *stripe.Price | *stripe.Product
}](p T) string {
	if reflect.ValueOf(p).IsNil() {
		return ""
	}
	return reflect.ValueOf(p).Elem().FieldByName("ID").String()
}

// roundTrip unmarshals data.object into the matching stripe-go struct and
// compares key fields with the raw JSON.
func roundTrip(t *testing.T, ev stripe.Event) {
	t.Helper()
	m := ev.Data.Object
	raw := ev.Data.Raw
	c := checker{t, ev.ID + " " + string(ev.Type)}
	switch m["object"] {
	case "customer":
		var v stripe.Customer
		mustUnmarshal(t, raw, &v)
		c.eq("id", v.ID, str(m, "id"))
		c.eq("email", v.Email, str(m, "email"))
		c.eq("name", v.Name, str(m, "name"))
		c.eq("created", v.Created, num(m, "created"))
		c.eq("default_payment_method", idOf(v.InvoiceSettings.DefaultPaymentMethod), str(m, "invoice_settings", "default_payment_method"))
	case "subscription":
		var v stripe.Subscription
		mustUnmarshal(t, raw, &v)
		c.eq("id", v.ID, str(m, "id"))
		c.eq("status", string(v.Status), str(m, "status"))
		c.eq("customer", idOf(v.Customer), str(m, "customer"))
		c.eq("trial_start", v.TrialStart, num(m, "trial_start"))
		c.eq("trial_end", v.TrialEnd, num(m, "trial_end"))
		c.eq("current_period_start", v.CurrentPeriodStart, num(m, "current_period_start"))
		c.eq("current_period_end", v.CurrentPeriodEnd, num(m, "current_period_end"))
		c.eq("cancel_at_period_end", v.CancelAtPeriodEnd, boolean(m, "cancel_at_period_end"))
		c.eq("cancel_at", v.CancelAt, num(m, "cancel_at"))
		c.eq("canceled_at", v.CanceledAt, num(m, "canceled_at"))
		c.eq("ended_at", v.EndedAt, num(m, "ended_at"))
		c.eq("cancellation_details.reason", string(v.CancellationDetails.Reason), str(m, "cancellation_details", "reason"))
		c.eq("cancellation_details.feedback", string(v.CancellationDetails.Feedback), str(m, "cancellation_details", "feedback"))
		c.eq("default_payment_method", idOf(v.DefaultPaymentMethod), str(m, "default_payment_method"))
		c.eq("latest_invoice", idOf(v.LatestInvoice), str(m, "latest_invoice"))
		c.eq("pause_collection", v.PauseCollection != nil, get(m, "pause_collection") != nil)
		c.eq("currency", string(v.Currency), str(m, "currency"))
		if len(v.Items.Data) != 1 {
			t.Fatalf("%s: %d items", c.id, len(v.Items.Data))
		}
		item := v.Items.Data[0]
		rawItem := get(m, "items", "data").([]any)[0].(map[string]any)
		c.eq("item.id", item.ID, str(rawItem, "id"))
		c.eq("item.quantity", item.Quantity, num(rawItem, "quantity"))
		c.eq("item.price.id", item.Price.ID, str(rawItem, "price", "id"))
		c.eq("item.price.unit_amount", item.Price.UnitAmount, num(rawItem, "price", "unit_amount"))
		c.eq("item.price.unit_amount_decimal", int64(item.Price.UnitAmountDecimal), num(rawItem, "price", "unit_amount"))
		c.eq("item.price.recurring.interval", string(item.Price.Recurring.Interval), str(rawItem, "price", "recurring", "interval"))
		c.eq("item.price.product", idOf(item.Price.Product), str(rawItem, "price", "product"))
	case "invoice":
		var v stripe.Invoice
		mustUnmarshal(t, raw, &v)
		c.eq("id", v.ID, str(m, "id"))
		c.eq("status", string(v.Status), str(m, "status"))
		c.eq("billing_reason", string(v.BillingReason), str(m, "billing_reason"))
		c.eq("attempt_count", v.AttemptCount, num(m, "attempt_count"))
		c.eq("attempted", v.Attempted, boolean(m, "attempted"))
		c.eq("next_payment_attempt", v.NextPaymentAttempt, num(m, "next_payment_attempt"))
		c.eq("amount_due", v.AmountDue, num(m, "amount_due"))
		c.eq("amount_paid", v.AmountPaid, num(m, "amount_paid"))
		c.eq("amount_remaining", v.AmountRemaining, num(m, "amount_remaining"))
		c.eq("amount_remaining = due - paid", v.AmountRemaining, v.AmountDue-v.AmountPaid)
		c.eq("currency", string(v.Currency), str(m, "currency"))
		c.eq("customer", idOf(v.Customer), str(m, "customer"))
		c.eq("subscription", idOf(v.Subscription), str(m, "subscription"))
		c.eq("charge", idOf(v.Charge), str(m, "charge"))
		c.eq("payment_intent", idOf(v.PaymentIntent), str(m, "payment_intent"))
		c.eq("hosted_invoice_url", v.HostedInvoiceURL, str(m, "hosted_invoice_url"))
		c.eq("period_start", v.PeriodStart, num(m, "period_start"))
		c.eq("period_end", v.PeriodEnd, num(m, "period_end"))
		c.eq("paid", v.Paid, v.Status == stripe.InvoiceStatusPaid)
		c.eq("lines", len(v.Lines.Data), 1)
		if v.Status != stripe.InvoiceStatusDraft && !strings.HasPrefix(v.HostedInvoiceURL, "https://invoice.stripe.com/i/acct_") {
			t.Errorf("%s: hosted_invoice_url %q", c.id, v.HostedInvoiceURL)
		}
	case "charge":
		var v stripe.Charge
		mustUnmarshal(t, raw, &v)
		c.eq("id", v.ID, str(m, "id"))
		c.eq("amount", v.Amount, num(m, "amount"))
		c.eq("amount_captured", v.AmountCaptured, num(m, "amount_captured"))
		c.eq("amount_refunded", v.AmountRefunded, num(m, "amount_refunded"))
		c.eq("refunded", v.Refunded, boolean(m, "refunded"))
		c.eq("disputed", v.Disputed, boolean(m, "disputed"))
		c.eq("paid", v.Paid, v.Status == stripe.ChargeStatusSucceeded)
		c.eq("status", string(v.Status), str(m, "status"))
		c.eq("failure_code", v.FailureCode, str(m, "failure_code"))
		c.eq("failure_message", v.FailureMessage, str(m, "failure_message"))
		c.eq("outcome.type", v.Outcome.Type, str(m, "outcome", "type"))
		c.eq("customer", idOf(v.Customer), str(m, "customer"))
		c.eq("invoice", idOf(v.Invoice), str(m, "invoice"))
		c.eq("payment_intent", idOf(v.PaymentIntent), str(m, "payment_intent"))
		c.eq("pmd.type", string(v.PaymentMethodDetails.Type), "card")
		card := v.PaymentMethodDetails.Card
		c.eq("card.brand", string(card.Brand), str(m, "payment_method_details", "card", "brand"))
		c.eq("card.network", string(card.Network), str(m, "payment_method_details", "card", "network"))
		c.eq("card.last4", card.Last4, str(m, "payment_method_details", "card", "last4"))
		c.eq("card.exp_year", card.ExpYear, num(m, "payment_method_details", "card", "exp_year"))
		c.eq("card.fingerprint", card.Fingerprint, str(m, "payment_method_details", "card", "fingerprint"))
		if len(card.Last4) != 4 {
			t.Errorf("%s: last4 %q", c.id, card.Last4)
		}
		if v.Status == stripe.ChargeStatusFailed && (v.FailureCode == "" || v.FailureMessage == "") {
			t.Errorf("%s: failed charge without failure_code/message", c.id)
		}
	case "refund":
		var v stripe.Refund
		mustUnmarshal(t, raw, &v)
		c.eq("id", v.ID, str(m, "id"))
		c.eq("amount", v.Amount, num(m, "amount"))
		c.eq("status", string(v.Status), str(m, "status"))
		c.eq("reason", string(v.Reason), str(m, "reason"))
		c.eq("failure_reason", string(v.FailureReason), str(m, "failure_reason"))
		c.eq("charge", idOf(v.Charge), str(m, "charge"))
		c.eq("payment_intent", idOf(v.PaymentIntent), str(m, "payment_intent"))
		c.eq("currency", string(v.Currency), str(m, "currency"))
		if v.Status == stripe.RefundStatusFailed && v.FailureReason == "" {
			t.Errorf("%s: failed refund without failure_reason", c.id)
		}
	case "dispute":
		var v stripe.Dispute
		mustUnmarshal(t, raw, &v)
		c.eq("id", v.ID, str(m, "id"))
		c.eq("amount", v.Amount, num(m, "amount"))
		c.eq("status", string(v.Status), str(m, "status"))
		c.eq("reason", string(v.Reason), str(m, "reason"))
		c.eq("charge", idOf(v.Charge), str(m, "charge"))
		c.eq("payment_intent", idOf(v.PaymentIntent), str(m, "payment_intent"))
		c.eq("is_charge_refundable", v.IsChargeRefundable, boolean(m, "is_charge_refundable"))
		c.eq("due_by", v.EvidenceDetails.DueBy, num(m, "evidence_details", "due_by"))
		c.eq("has_evidence", v.EvidenceDetails.HasEvidence, boolean(m, "evidence_details", "has_evidence"))
		c.eq("submission_count", v.EvidenceDetails.SubmissionCount, num(m, "evidence_details", "submission_count"))
		c.eq("pmd.type", string(v.PaymentMethodDetails.Type), "card")
		c.eq("pmd.card.brand", v.PaymentMethodDetails.Card.Brand, str(m, "payment_method_details", "card", "brand"))
		c.eq("pmd.card.network_reason_code", v.PaymentMethodDetails.Card.NetworkReasonCode, str(m, "payment_method_details", "card", "network_reason_code"))
		c.eq("balance_transactions", len(v.BalanceTransactions), len(get(m, "balance_transactions").([]any)))
		c.eq("evidence fields", len(get(m, "evidence").(map[string]any)), 27)
		if v.PaymentMethodDetails.Card.NetworkReasonCode == "" {
			t.Errorf("%s: empty network reason code", c.id)
		}
		for _, bt := range v.BalanceTransactions {
			if bt.Source == nil || bt.Source.ID != v.ID {
				t.Errorf("%s: balance transaction source %+v", c.id, bt.Source)
			}
		}
	case "radar.early_fraud_warning":
		var v stripe.RadarEarlyFraudWarning
		mustUnmarshal(t, raw, &v)
		c.eq("id", v.ID, str(m, "id"))
		c.eq("actionable", v.Actionable, boolean(m, "actionable"))
		c.eq("fraud_type", string(v.FraudType), str(m, "fraud_type"))
		c.eq("charge", idOf(v.Charge), str(m, "charge"))
		c.eq("payment_intent", idOf(v.PaymentIntent), str(m, "payment_intent"))
		c.eq("created", v.Created, num(m, "created"))
	default:
		t.Fatalf("%s: unexpected object type %v", c.id, m["object"])
	}
}

func mustUnmarshal(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("unmarshal into %T: %v", v, err)
	}
}

var cardNumberLike = regexp.MustCompile(`\d{13,19}`)

func checkNoPAN(t *testing.T, e Event) {
	t.Helper()
	if loc := cardNumberLike.FindIndex(e.Payload); loc != nil {
		t.Fatalf("%s %s: payload contains a %d-digit run %q", e.Type, e.ID, loc[1]-loc[0], e.Payload[loc[0]:loc[1]])
	}
}

// --- tests ---------------------------------------------------------------------

func TestAPIVersionMatchesStripeGo(t *testing.T) {
	if APIVersion != stripe.APIVersion {
		t.Fatalf("APIVersion = %q, stripe-go v76 speaks %q", APIVersion, stripe.APIVersion)
	}
}

func TestEveryStoryEventVerifiesAndRoundTrips(t *testing.T) {
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			for seed := uint64(0); seed < 8; seed++ {
				g := New(seed)
				evs := sc.Run(g, testStart)
				if len(evs) == 0 {
					t.Fatal("no events")
				}
				for _, e := range evs {
					if e.Story != sc.Name {
						t.Errorf("%s: Story = %q", e.ID, e.Story)
					}
					ev := verify(t, e)
					roundTrip(t, ev)
					checkNoPAN(t, e)
				}
			}
		})
	}
}

func TestMixVerifiesAndRoundTrips(t *testing.T) {
	g := New(42, WithCurrency("eur"))
	evs := g.Mix(150, testStart)
	seen := map[string]bool{}
	types := map[string]int{}
	for _, e := range evs {
		if seen[e.ID] {
			t.Fatalf("duplicate event id %s", e.ID)
		}
		seen[e.ID] = true
		types[e.Type]++
		roundTrip(t, verify(t, e))
		checkNoPAN(t, e)
		if c := str(e.Object, "currency"); c != "" && c != "eur" {
			t.Fatalf("%s: currency %q", e.ID, c)
		}
	}
	for _, typ := range []string{
		"customer.subscription.created", "customer.subscription.updated",
		"customer.subscription.deleted", "customer.subscription.trial_will_end",
		"invoice.paid", "invoice.payment_failed", "charge.refunded",
		"refund.created", "refund.updated", "radar.early_fraud_warning.created",
		"charge.dispute.created", "charge.dispute.funds_withdrawn",
		"charge.dispute.updated", "charge.dispute.closed",
	} {
		if types[typ] == 0 {
			t.Errorf("Mix(150) produced no %s events", typ)
		}
	}
}

func TestDeterministicForSeed(t *testing.T) {
	clock := func() time.Time { return testStart }
	a := New(7, WithClock(clock)).Mix(40, testStart)
	b := New(7, WithClock(clock)).Mix(40, testStart)
	if len(a) != len(b) {
		t.Fatalf("lengths differ: %d vs %d", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Payload, b[i].Payload) {
			t.Fatalf("event %d differs:\n%s\nvs\n%s", i, a[i].Payload, b[i].Payload)
		}
	}
	c := New(8, WithClock(clock)).Mix(40, testStart)
	if len(c) == len(a) && bytes.Equal(c[0].Payload, a[0].Payload) {
		t.Fatal("different seeds produced the same output")
	}

	d1 := New(7, WithClock(clock)).DistinctEvents(20)
	d2 := New(7, WithClock(clock)).DistinctEvents(20)
	for i := range d1 {
		if !bytes.Equal(d1[i].Payload, d2[i].Payload) {
			t.Fatalf("DistinctEvents not deterministic at %d", i)
		}
	}
}

func TestEventsAreTimeOrdered(t *testing.T) {
	g := New(3)
	for _, sc := range Scenarios() {
		evs := sc.Run(g, testStart)
		for i := 1; i < len(evs); i++ {
			if evs[i].Created.Before(evs[i-1].Created) {
				t.Errorf("%s: event %d (%s) at %v before event %d (%s) at %v", sc.Name,
					i, evs[i].Type, evs[i].Created, i-1, evs[i-1].Type, evs[i-1].Created)
			}
		}
		if evs[0].Created.Before(testStart) {
			t.Errorf("%s starts before start", sc.Name)
		}
	}
	mix := g.Mix(100, testStart)
	for i := 1; i < len(mix); i++ {
		if mix[i].Created.Before(mix[i-1].Created) {
			t.Fatalf("Mix not ordered at %d", i)
		}
	}
}

func TestCoreEventsOnly(t *testing.T) {
	ancillary := map[string]bool{
		"customer.created": true, "invoice.created": true, "invoice.finalized": true,
		"invoice.payment_succeeded": true, "charge.succeeded": true, "charge.failed": true,
		"charge.refund.updated": true,
	}
	full := New(5).Mix(30, testStart)
	core := New(5, WithCoreEventsOnly()).Mix(30, testStart)
	var want []string
	for _, e := range full {
		trialInvoicePaid := e.Type == "invoice.paid" && num(e.Object, "amount_due") == 0
		if !ancillary[e.Type] && !trialInvoicePaid {
			want = append(want, e.ID)
		}
	}
	var got []string
	for _, e := range core {
		if ancillary[e.Type] {
			t.Fatalf("core-only mix contains %s", e.Type)
		}
		got = append(got, e.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("core-only mix differs from the full mix minus ancillary events")
	}
}

func coreTypes(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func TestStoryShapes(t *testing.T) {
	g := New(11, WithCoreEventsOnly())

	t.Run("trial converts", func(t *testing.T) {
		evs := g.TrialConverts(testStart)
		want := []string{"customer.subscription.created", "customer.subscription.trial_will_end", "invoice.paid", "customer.subscription.updated"}
		if got := coreTypes(evs); !reflect.DeepEqual(got, want) {
			t.Fatalf("types = %v, want %v", got, want)
		}
		if str(evs[0].Object, "status") != "trialing" || str(evs[3].Object, "status") != "active" {
			t.Fatal("status should go trialing → active")
		}
		if evs[3].PreviousAttributes["status"] != "trialing" {
			t.Fatalf("previous_attributes = %v", evs[3].PreviousAttributes)
		}
		if got, want := evs[1].Created.Unix(), num(evs[1].Object, "trial_end")-3*86400; got != want {
			t.Fatalf("trial_will_end at %d, want %d", got, want)
		}
		if num(evs[2].Object, "amount_paid") == 0 || evs[2].RequestID != "" {
			t.Fatal("renewal invoice should be paid automatically")
		}
	})

	t.Run("trial lapses", func(t *testing.T) {
		evs := g.TrialLapsesCanceled(testStart)
		last := evs[len(evs)-1]
		if last.Type != "customer.subscription.deleted" || str(last.Object, "status") != "canceled" || get(last.Object, "default_payment_method") != nil {
			t.Fatalf("last = %s %s", last.Type, str(last.Object, "status"))
		}
		evs = g.TrialLapsesPaused(testStart)
		if got := coreTypes(evs)[len(evs)-2:]; !reflect.DeepEqual(got, []string{"customer.subscription.updated", "customer.subscription.paused"}) {
			t.Fatalf("types = %v", got)
		}
		if str(evs[len(evs)-1].Object, "status") != "paused" {
			t.Fatal("want paused")
		}
	})

	t.Run("renewal recovers", func(t *testing.T) {
		evs := g.RenewalRecovers(testStart, 3)
		var attempts []int64
		for _, e := range evs {
			if e.Type == "invoice.payment_failed" {
				attempts = append(attempts, num(e.Object, "attempt_count"))
				if get(e.Object, "next_payment_attempt") == nil {
					t.Fatal("retryable failure without next_payment_attempt")
				}
			}
		}
		if !reflect.DeepEqual(attempts, []int64{1, 2, 3}) {
			t.Fatalf("attempts = %v", attempts)
		}
		paid := evs[len(evs)-2]
		if paid.Type != "invoice.paid" || num(paid.Object, "attempt_count") != 4 || get(paid.Object, "next_payment_attempt") != nil {
			t.Fatalf("recovery = %s attempt %d", paid.Type, num(paid.Object, "attempt_count"))
		}
		last := evs[len(evs)-1]
		if str(last.Object, "status") != "active" || last.PreviousAttributes["status"] != "past_due" {
			t.Fatal("subscription should return to active from past_due")
		}
	})

	t.Run("renewal churns", func(t *testing.T) {
		evs := g.RenewalChurnsUnpaid(testStart)
		n := len(evs)
		if evs[n-1].Type != "invoice.marked_uncollectible" || str(evs[n-2].Object, "status") != "unpaid" {
			t.Fatalf("tail = %v", coreTypes(evs[n-2:]))
		}
		fails := 0
		for _, e := range evs {
			if e.Type == "invoice.payment_failed" {
				fails++
				if fails == 4 && get(e.Object, "next_payment_attempt") != nil {
					t.Fatal("final failure should have no next_payment_attempt")
				}
			}
		}
		if fails != 4 {
			t.Fatalf("%d failures", fails)
		}
		evs = g.RenewalChurnsCanceled(testStart)
		n = len(evs)
		if evs[n-2].Type != "customer.subscription.deleted" || str(evs[n-2].Object, "cancellation_details", "reason") != "payment_failed" || evs[n-1].Type != "invoice.voided" {
			t.Fatalf("tail = %v", coreTypes(evs[n-2:]))
		}
	})

	t.Run("cancel retained and churned", func(t *testing.T) {
		evs := g.CancelRetained(testStart)
		var flips []bool
		for _, e := range evs {
			if _, ok := e.PreviousAttributes["cancel_at_period_end"]; ok {
				flips = append(flips, boolean(e.Object, "cancel_at_period_end"))
				if e.RequestID == "" {
					t.Fatal("cancellation change should come from an API request")
				}
			}
		}
		if !reflect.DeepEqual(flips, []bool{true, false}) {
			t.Fatalf("cancel_at_period_end flips = %v", flips)
		}
		evs = g.CancelChurns(testStart)
		last := evs[len(evs)-1]
		if last.Type != "customer.subscription.deleted" || num(last.Object, "ended_at") != num(last.Object, "current_period_end") {
			t.Fatal("subscription should end at period end")
		}
	})

	t.Run("refunds", func(t *testing.T) {
		evs := g.RefundFailed(testStart)
		last := evs[len(evs)-1]
		if last.Type != "refund.updated" || str(last.Object, "status") != "failed" || str(last.Object, "failure_reason") == "" {
			t.Fatalf("last = %s %v", last.Type, last.Object["status"])
		}
		types := coreTypes(g.RefundIssued(testStart))
		for _, want := range []string{"refund.created", "charge.refunded", "refund.updated"} {
			if !contains(types, want) {
				t.Fatalf("RefundIssued missing %s: %v", want, types)
			}
		}
	})

	t.Run("early fraud warning", func(t *testing.T) {
		evs := g.FraudWarningRefunded(testStart)
		if !contains(coreTypes(evs), "radar.early_fraud_warning.created") {
			t.Fatal("no early fraud warning")
		}
	})

	t.Run("inquiry", func(t *testing.T) {
		evs := g.InquiryClosed(testStart)
		var statuses []string
		for _, e := range evs {
			if strings.HasPrefix(e.Type, "charge.dispute.") {
				statuses = append(statuses, str(e.Object, "status"))
				if !boolean(e.Object, "is_charge_refundable") {
					t.Fatal("inquiries are refundable")
				}
			}
		}
		if statuses[0] != "warning_needs_response" || statuses[len(statuses)-1] != "warning_closed" {
			t.Fatalf("statuses = %v", statuses)
		}
	})

	t.Run("chargebacks", func(t *testing.T) {
		evs := g.Chargeback(testStart, ChargebackOptions{Brand: "visa", Reason: "subscription_canceled", Won: true})
		var disputeTypes []string
		for _, e := range evs {
			if strings.HasPrefix(e.Type, "charge.dispute.") {
				disputeTypes = append(disputeTypes, e.Type+":"+str(e.Object, "status"))
				if code := str(e.Object, "payment_method_details", "card", "network_reason_code"); code != "13.2" {
					t.Fatalf("network reason code %q", code)
				}
			}
		}
		want := []string{
			"charge.dispute.created:needs_response", "charge.dispute.funds_withdrawn:needs_response",
			"charge.dispute.updated:under_review", "charge.dispute.closed:won", "charge.dispute.funds_reinstated:won",
		}
		if !reflect.DeepEqual(disputeTypes, want) {
			t.Fatalf("got %v", disputeTypes)
		}
		evs = g.Chargeback(testStart, ChargebackOptions{Brand: "mastercard", Reason: "fraudulent"})
		last := evs[len(evs)-1]
		if last.Type != "charge.dispute.closed" || str(last.Object, "status") != "lost" || str(last.Object, "payment_method_details", "card", "network_reason_code") != "4837" {
			t.Fatalf("last = %s %s", last.Type, str(last.Object, "status"))
		}
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestBuildersRoundTrip(t *testing.T) {
	g := New(9)
	created := testStart
	objects := map[string]map[string]any{
		"customer":     g.Customer(CustomerParams{DefaultPaymentMethod: "pm_1Abc", Created: created}),
		"subscription": g.Subscription(SubscriptionParams{Status: "past_due", PauseBehavior: "void", PauseResumesAt: created.AddDate(0, 1, 0), LatestInvoice: "in_1Abc", DefaultPaymentMethod: "pm_1Abc"}),
		"trialing":     g.Subscription(SubscriptionParams{Status: "trialing", Created: created}),
		"canceled":     g.Subscription(SubscriptionParams{Status: "canceled", CancellationReason: "cancellation_requested", CancellationFeedback: "too_expensive", CanceledAt: created}),
		"invoice":      g.Invoice(InvoiceParams{Status: "open", AttemptCount: 2, NextPaymentAttempt: created.Add(72 * time.Hour), Subscription: "sub_1Abc"}),
		"draft":        g.Invoice(InvoiceParams{Status: "draft", BillingReason: "manual"}),
		"charge":       g.Charge(ChargeParams{Status: "failed", DeclineCode: "do_not_honor", Card: g.NewCard("amex")}),
		"refund":       g.Refund(RefundParams{Status: "failed"}),
		"dispute":      g.Dispute(DisputeParams{Brand: "mastercard", Reason: "subscription_canceled"}),
		"inquiry":      g.Dispute(DisputeParams{Status: "warning_needs_response", Reason: "fraudulent"}),
		"efw":          g.EarlyFraudWarning(EarlyFraudWarningParams{}),
	}
	for name, obj := range objects {
		e := g.NewEvent("test.event", obj)
		ev, err := webhook.ConstructEventWithOptions(e.Payload, SignedHeader(e.Payload, testSecret, time.Time{}), testSecret, webhook.ConstructEventOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		roundTrip(t, ev)
		checkNoPAN(t, e)
	}

	sub := objects["trialing"]
	if num(sub, "trial_end")-num(sub, "trial_start") != 14*86400 || num(sub, "current_period_end") != num(sub, "trial_end") {
		t.Errorf("trial window wrong: %v..%v", sub["trial_start"], sub["trial_end"])
	}
	if get(objects["subscription"], "pause_collection", "behavior") != "void" {
		t.Error("pause_collection not set")
	}
	if get(objects["subscription"], "trial_end") != nil || get(objects["canceled"], "ended_at") == nil {
		t.Error("nullable timestamps wrong")
	}
	if d := objects["dispute"]; str(d, "payment_method_details", "card", "network_reason_code") != "4841" || boolean(d, "is_charge_refundable") {
		t.Errorf("dispute = %v", d["payment_method_details"])
	}
	if str(objects["inquiry"], "payment_method_details", "card", "network_reason_code") != "33" {
		t.Error("visa fraud inquiry should use code 33")
	}
	if str(objects["refund"], "failure_reason") != "expired_or_canceled_card" {
		t.Error("failed refund needs failure_reason")
	}
	if str(objects["charge"], "outcome", "reason") != "do_not_honor" || str(objects["charge"], "payment_method_details", "card", "brand") != "amex" {
		t.Error("charge decline details wrong")
	}
	if get(objects["draft"], "hosted_invoice_url") != nil || get(objects["draft"], "number") != nil {
		t.Error("drafts have no number or URL")
	}
	if str(objects["efw"], "object") != "radar.early_fraud_warning" || !strings.HasPrefix(str(objects["efw"], "id"), "issfr_") {
		t.Error("early fraud warning shape")
	}
}

func TestDisputeEvidenceFieldsMatchStripeGo(t *testing.T) {
	typ := reflect.TypeOf(stripe.DisputeEvidence{})
	var tags []string
	for i := 0; i < typ.NumField(); i++ {
		tags = append(tags, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	if !reflect.DeepEqual(tags, DisputeEvidenceFields) {
		t.Fatalf("stripe-go evidence fields %v\n!= %v", tags, DisputeEvidenceFields)
	}
	d := New(1).Dispute(DisputeParams{})
	for _, f := range DisputeEvidenceFields {
		if v, ok := d["evidence"].(map[string]any)[f]; !ok || v != nil {
			t.Fatalf("evidence.%s = %v, %v", f, v, ok)
		}
	}
}

func TestIDPrefixesAndUniqueness(t *testing.T) {
	g := New(1)
	prefixes := []string{"cus_", "sub_", "in_", "ch_", "pi_", "re_", "dp_", "issfr_", "price_", "prod_", "pm_", "si_", "evt_", "req_"}
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		p := prefixes[i%len(prefixes)]
		id := g.NewID(p)
		if !strings.HasPrefix(id, p) || seen[id] || cardNumberLike.MatchString(id) {
			t.Fatalf("bad id %q", id)
		}
		seen[id] = true
	}
	if n := len(g.NewID("cus_")); n != len("cus_")+14 {
		t.Errorf("cus_ id length %d", n)
	}
	if n := len(g.NewID("sub_")); n != len("sub_")+24 {
		t.Errorf("sub_ id length %d", n)
	}
	ids := map[string]bool{}
	for _, p := range g.Plans() {
		if !strings.HasPrefix(p.PriceID, "price_") || !strings.HasPrefix(p.ProductID, "prod_") || ids[p.PriceID] {
			t.Fatalf("plan %+v", p)
		}
		ids[p.PriceID] = true
	}
	if seqSuffix(1) == seqSuffix(2) || len(seqSuffix(52*52*52*52*52)) != 6 {
		t.Fatal("seqSuffix not injective")
	}
}

func TestEnvelopeShape(t *testing.T) {
	g := New(2, WithAccount("acct_1Connected00AB"))
	cust := g.Customer(CustomerParams{})
	e := g.NewEvent("customer.updated", cust,
		WithCreated(testStart),
		WithPreviousAttributes(map[string]any{"email": "old@example.com"}),
		WithRequest("req_abc", "8b6d3c4e-idem"))
	if !bytes.HasPrefix(e.Payload, []byte("{\n  \"id\": \"evt_")) || !bytes.Contains(e.Payload, []byte("\n  \"object\": \"event\",\n  \"account\": \"acct_1Connected00AB\",\n  \"api_version\": \"2023-10-16\",")) {
		t.Fatalf("unexpected layout:\n%s", e.Payload)
	}
	var env map[string]any
	if err := json.Unmarshal(e.Payload, &env); err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	for k := range env {
		keys = append(keys, k)
	}
	want := []string{"account", "api_version", "created", "data", "id", "livemode", "object", "pending_webhooks", "request", "type"}
	if len(keys) != len(want) {
		t.Fatalf("keys = %v", keys)
	}
	for _, k := range want {
		if _, ok := env[k]; !ok {
			t.Fatalf("missing %s", k)
		}
	}
	if get(env, "request", "id") != "req_abc" || get(env, "request", "idempotency_key") != "8b6d3c4e-idem" {
		t.Fatalf("request = %v", env["request"])
	}
	if get(env, "data", "previous_attributes", "email") != "old@example.com" || num(env, "created") != testStart.Unix() {
		t.Fatal("data/created wrong")
	}

	plain := New(2).NewEvent("invoice.paid", New(2).Invoice(InvoiceParams{}))
	var env2 map[string]any
	_ = json.Unmarshal(plain.Payload, &env2)
	if _, ok := env2["account"]; ok {
		t.Fatal("account must be omitted without Connect")
	}
	if _, ok := get(env2, "data").(map[string]any)["previous_attributes"]; ok {
		t.Fatal("previous_attributes must be omitted when not given")
	}
	if r := env2["request"].(map[string]any); r["id"] != nil || r["idempotency_key"] != nil {
		t.Fatalf("request = %v, want nulls", r)
	}

	// Marshal reflects later edits; Payload does not change by itself.
	before := string(plain.Payload)
	plain.Object["status"] = "void"
	p2, err := plain.Marshal()
	if err != nil || string(plain.Payload) != before || !bytes.Contains(p2, []byte(`"status": "void"`)) {
		t.Fatal("Marshal should re-encode the current object")
	}
}

func TestPackageNewEvent(t *testing.T) {
	obj := New(1).Charge(ChargeParams{})
	e := NewEvent("charge.succeeded", obj)
	if !strings.HasPrefix(e.ID, "evt_") || time.Since(e.Created) > time.Minute {
		t.Fatalf("event %s at %v", e.ID, e.Created)
	}
	verify(t, e)
}

func TestSignedHeaderMatchesStripeGo(t *testing.T) {
	payload := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1700000000, 0)
	want := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: testSecret, Timestamp: now}).Header
	if got := SignedHeader(payload, testSecret, now); got != want {
		t.Fatalf("SignedHeader = %q, want %q", got, want)
	}
	if err := webhook.ValidatePayloadIgnoringTolerance(payload, want, "whsec_other"); err == nil {
		t.Fatal("wrong secret must not verify")
	}
}

func TestNewWebhookRequest(t *testing.T) {
	g := New(4)
	evs := g.ChargebackLost(testStart)
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request shape", http.StatusBadRequest)
			return
		}
		ev, err := webhook.ConstructEvent(body, r.Header.Get("Stripe-Signature"), testSecret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, string(ev.Type))
	}))
	defer srv.Close()
	for _, e := range evs {
		req, err := e.NewRequest(context.Background(), srv.URL+"/webhooks/stripe", testSecret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", e.Type, resp.StatusCode, msg)
		}
	}
	if len(got) != len(evs) {
		t.Fatalf("server saw %d of %d events", len(got), len(evs))
	}

	// A stale signature is rejected by the default tolerance.
	req, _ := NewWebhookRequest(context.Background(), srv.URL, evs[0].Payload, testSecret, time.Now().Add(-time.Hour))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("stale signature accepted: %d", resp.StatusCode)
	}
}

func TestDistinctEvents(t *testing.T) {
	evs := New(6).DistinctEvents(500)
	ids, bodies := map[string]bool{}, map[string]bool{}
	for _, e := range evs {
		if e.Type != "customer.updated" || ids[e.ID] || bodies[string(e.Payload)] {
			t.Fatalf("duplicate or wrong event %s %s", e.Type, e.ID)
		}
		ids[e.ID], bodies[string(e.Payload)] = true, true
		checkNoPAN(t, e)
	}
	roundTrip(t, verify(t, evs[0]))
}

func TestNetworkReasonCodes(t *testing.T) {
	cases := []struct {
		brand, reason string
		inquiry       bool
		want          string
	}{
		{"visa", "subscription_canceled", false, "13.2"},
		{"visa", "fraudulent", false, "10.4"},
		{"visa", "fraudulent", true, "33"},
		{"mastercard", "subscription_canceled", false, "4841"},
		{"mastercard", "fraudulent", false, "4837"},
		{"mastercard", "unrecognized", true, "6321"},
		{"amex", "product_not_received", false, "C08"},
		{"amex", "unrecognized", false, ""},
	}
	for _, c := range cases {
		if got := NetworkReasonCode(c.brand, c.reason, c.inquiry); got != c.want {
			t.Errorf("NetworkReasonCode(%s, %s, %v) = %q, want %q", c.brand, c.reason, c.inquiry, got, c.want)
		}
	}
	for brand, codes := range chargebackCodes {
		for _, rc := range codes {
			if _, ok := map[string]bool{"fraudulent": true, "subscription_canceled": true, "product_not_received": true,
				"credit_not_processed": true, "duplicate": true, "unrecognized": true, "product_unacceptable": true, "general": true}[rc.Reason]; !ok {
				t.Errorf("%s %s: unknown reason %q", brand, rc.Code, rc.Reason)
			}
		}
	}
}

func TestMarshalStripeJSON(t *testing.T) {
	got, err := MarshalStripeJSON(map[string]any{
		"zeta": []any{}, "object": "thing", "id": "x_1", "alpha": map[string]any{},
		"url": "https://example.com/?a=1&b=<2>", "when": time.Unix(1700000000, 0), "list": []string{"a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "id": "x_1",
  "object": "thing",
  "alpha": {},
  "list": [
    "a"
  ],
  "url": "https://example.com/?a=1&b=<2>",
  "when": 1700000000,
  "zeta": []
}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := MarshalStripeJSON(map[string]any{"c": make(chan int)}); err == nil {
		t.Fatal("want error for unsupported value")
	}
}

func ExampleGenerator_TrialConverts() {
	g := New(1, WithCoreEventsOnly())
	for _, e := range g.TrialConverts(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		fmt.Println(e.Created.Format("2006-01-02"), e.Type, e.Object["status"])
	}
	// Output:
	// 2024-01-01 customer.subscription.created trialing
	// 2024-01-12 customer.subscription.trial_will_end trialing
	// 2024-01-15 invoice.paid paid
	// 2024-01-15 customer.subscription.updated active
}

func BenchmarkMix(b *testing.B) {
	for i := 0; i < b.N; i++ {
		New(uint64(i)).Mix(10, testStart)
	}
}

func BenchmarkDistinctEvents(b *testing.B) {
	g := New(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.DistinctEvents(1)
	}
}
