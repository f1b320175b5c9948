package billing

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// jsonObject is a decoded JSON object read tolerantly: a missing field, a
// null and a value of an unexpected type all read as the zero value, because
// provider payloads differ between API versions and we never want one odd
// field to make an event unusable.
type jsonObject map[string]any

// decodeObject decodes raw into a jsonObject, keeping numbers exact.
func decodeObject(raw []byte) (jsonObject, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return jsonObject(m), nil
}

// get walks path through nested objects. A numeric path element indexes a
// list, and a Stripe list object ({"object":"list","data":[...]}) can be
// indexed directly, so "items", "0" reaches items.data[0].
func (o jsonObject) get(path ...string) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		switch x := cur.(type) {
		case map[string]any:
			if v, ok := x[p]; ok {
				cur = v
				continue
			}
			if data, ok := x["data"].([]any); ok {
				if i, err := strconv.Atoi(p); err == nil {
					if i < 0 || i >= len(data) {
						return nil
					}
					cur = data[i]
					continue
				}
			}
			return nil
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			cur = x[i]
		default:
			return nil
		}
	}
	return cur
}

// has reports whether the last key of path is present (even if null).
func (o jsonObject) has(path ...string) bool {
	if len(path) == 0 {
		return true
	}
	parent, ok := o.get(path[:len(path)-1]...).(map[string]any)
	if !ok {
		return false
	}
	_, ok = parent[path[len(path)-1]]
	return ok
}

// str returns the string at path, or "".
func (o jsonObject) str(path ...string) string {
	s, _ := o.get(path...).(string)
	return s
}

// id returns the id at path for an expandable field: the string itself, or
// the "id" of an expanded object.
func (o jsonObject) id(path ...string) string {
	switch x := o.get(path...).(type) {
	case string:
		return x
	case map[string]any:
		s, _ := x["id"].(string)
		return s
	}
	return ""
}

// object returns the object at path (an expanded expandable field), or nil.
func (o jsonObject) object(path ...string) jsonObject {
	if m, ok := o.get(path...).(map[string]any); ok {
		return jsonObject(m)
	}
	return nil
}

// int returns the integer at path, or 0.
func (o jsonObject) int(path ...string) int64 {
	switch x := o.get(path...).(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return int64(f)
		}
	case float64:
		return int64(x)
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n
		}
	}
	return 0
}

// bool returns the boolean at path, or false.
func (o jsonObject) bool(path ...string) bool {
	b, _ := o.get(path...).(bool)
	return b
}

// notNull reports whether path holds anything but null/absent/"".
func (o jsonObject) notNull(path ...string) bool {
	switch x := o.get(path...).(type) {
	case nil:
		return false
	case string:
		return x != ""
	}
	return true
}

// time returns the Unix timestamp at path as a UTC time, or nil when it is
// absent, null or not positive (Stripe uses 0 for "none" in places).
func (o jsonObject) time(path ...string) *time.Time {
	n := o.int(path...)
	if n <= 0 {
		return nil
	}
	t := time.Unix(n, 0).UTC()
	return &t
}

// list returns the elements of the list at path: a JSON array or a Stripe
// list object's data.
func (o jsonObject) list(path ...string) []jsonObject {
	var items []any
	switch x := o.get(path...).(type) {
	case []any:
		items = x
	case map[string]any:
		items, _ = x["data"].([]any)
	}
	out := make([]jsonObject, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, jsonObject(m))
		}
	}
	return out
}

// firstStr returns the first non-empty string among the paths.
func (o jsonObject) firstStr(paths ...[]string) string {
	for _, p := range paths {
		if s := o.str(p...); s != "" {
			return s
		}
	}
	return ""
}

// firstID returns the first non-empty expandable id among the paths.
func (o jsonObject) firstID(paths ...[]string) string {
	for _, p := range paths {
		if s := o.id(p...); s != "" {
			return s
		}
	}
	return ""
}

// firstTime returns the first timestamp present among the paths.
func (o jsonObject) firstTime(paths ...[]string) *time.Time {
	for _, p := range paths {
		if t := o.time(p...); t != nil {
			return t
		}
	}
	return nil
}

// keyPath spells a path for the first* helpers.
func keyPath(path ...string) []string { return path }

// createdOr returns the object's created time (before 2019 an invoice's
// "date" played that role), or fallback when absent.
func (o jsonObject) createdOr(fallback time.Time) time.Time {
	if t := o.firstTime(keyPath("created"), keyPath("date")); t != nil {
		return *t
	}
	return fallback.UTC()
}

// invoiceStatus is the invoice's status, derived for payloads older than
// API 2018-11-08, which had none: forgiven → uncollectible, paid → paid,
// anything else (closed or not) → open, since money is still owed.
func invoiceStatus(o jsonObject) string {
	if st := o.str("status"); st != "" {
		return st
	}
	switch {
	case o.bool("forgiven"):
		return "uncollectible"
	case o.bool("paid"):
		return "paid"
	case o.has("paid") || o.has("closed"):
		return "open"
	}
	return ""
}

// --- envelope -------------------------------------------------------------

// envelope is the part of an event Apply needs beyond ProviderEvent.
type envelope struct {
	ID             string
	Type           string
	Created        time.Time
	Object         jsonObject
	Previous       map[string]any
	RequestID      string
	IdempotencyKey string
}

// previous types the previous_attributes case handling reads.
func (e envelope) previous() Previous {
	prev := jsonObject(e.Previous)
	p := Previous{Status: prev.str("status")}
	if v, ok := e.Previous["cancel_at_period_end"].(bool); ok {
		p.CancelAtPeriodEnd = &v
	}
	return p
}

func parseEnvelope(ev ProviderEvent) (envelope, error) {
	root, err := decodeObject(ev.Payload)
	if err != nil {
		return envelope{}, invalidPayload("event %s: payload is not a JSON object: %v", ev.ID, err)
	}
	env := envelope{ID: ev.ID, Type: ev.Type, Created: ev.Created.UTC()}
	if env.ID == "" {
		env.ID = root.str("id")
	}
	if env.Type == "" {
		env.Type = root.str("type")
	}
	if env.Created.IsZero() {
		if t := root.time("created"); t != nil {
			env.Created = *t
		}
	}
	if env.ID == "" {
		return envelope{}, invalidPayload("event has no id")
	}
	if env.Created.IsZero() {
		return envelope{}, invalidPayload("event %s has no created time", env.ID)
	}
	env.Object = root.object("data", "object")
	if env.Object == nil {
		return envelope{}, invalidPayload("event %s has no data.object", env.ID)
	}
	if prev := root.object("data", "previous_attributes"); prev != nil {
		env.Previous = map[string]any(prev)
	}
	// request is an object since API 2017-05-25 and a bare id before.
	if s := root.str("request"); s != "" {
		env.RequestID = s
	} else {
		env.RequestID = root.str("request", "id")
		env.IdempotencyKey = root.str("request", "idempotency_key")
	}
	return env, nil
}

// --- objects --------------------------------------------------------------

func parseCustomer(o jsonObject, env envelope) Customer {
	return Customer{
		ID:       o.str("id"),
		Email:    redactPAN(o.str("email")),
		Name:     redactPAN(o.str("name")),
		Livemode: o.bool("livemode"),
		HasDefaultPaymentMethod: o.notNull("invoice_settings", "default_payment_method") ||
			o.notNull("default_source"),
		Deleted: o.bool("deleted") || env.Type == "customer.deleted",
		Created: o.createdOr(env.Created),
	}
}

// parseSubscription reads a subscription. Since API 2025-03-31 the billing
// period lives on each item rather than on the subscription.
func parseSubscription(o jsonObject, env envelope) Subscription {
	s := Subscription{
		ID:                   o.str("id"),
		CustomerID:           o.id("customer"),
		Status:               o.str("status"),
		TrialStart:           o.time("trial_start"),
		TrialEnd:             o.time("trial_end"),
		CurrentPeriodStart:   o.firstTime(keyPath("current_period_start"), keyPath("items", "0", "current_period_start")),
		CurrentPeriodEnd:     o.firstTime(keyPath("current_period_end"), keyPath("items", "0", "current_period_end")),
		CancelAtPeriodEnd:    o.bool("cancel_at_period_end"),
		CancelAt:             o.time("cancel_at"),
		CanceledAt:           o.time("canceled_at"),
		EndedAt:              o.time("ended_at"),
		CancellationReason:   o.str("cancellation_details", "reason"),
		CancellationFeedback: o.str("cancellation_details", "feedback"),
		CancellationComment:  redactPAN(o.str("cancellation_details", "comment")),
		PauseCollection:      o.str("pause_collection", "behavior"),
		PauseResumesAt:       o.time("pause_collection", "resumes_at"),
		HasDefaultPaymentMethod: o.notNull("default_payment_method") ||
			o.notNull("default_source"),
		LatestInvoiceID: o.id("latest_invoice"),
		Currency:        strings.ToLower(o.str("currency")),
		Created:         o.createdOr(env.Created),
	}
	items := o.list("items")
	for i, it := range items {
		qty := it.int("quantity")
		if qty == 0 && !it.has("quantity") {
			qty = 1
		}
		unit := it.int("price", "unit_amount")
		if !it.notNull("price", "unit_amount") {
			unit = it.int("plan", "amount")
		}
		s.Amount += unit * qty
		if i == 0 {
			s.PriceID = it.firstID(keyPath("price"), keyPath("plan"))
			s.ProductID = it.firstID(keyPath("price", "product"), keyPath("plan", "product"))
			s.Interval = it.firstStr(keyPath("price", "recurring", "interval"), keyPath("plan", "interval"))
			if s.Currency == "" {
				s.Currency = strings.ToLower(it.firstStr(keyPath("price", "currency"), keyPath("plan", "currency")))
			}
		}
	}
	if len(items) == 0 && o.object("plan") != nil {
		qty := o.int("quantity")
		if qty == 0 {
			qty = 1
		}
		s.Amount = o.int("plan", "amount") * qty
		s.PriceID = o.id("plan")
		s.ProductID = o.id("plan", "product")
		s.Interval = o.str("plan", "interval")
		if s.Currency == "" {
			s.Currency = strings.ToLower(o.str("plan", "currency"))
		}
	}
	return s
}

// parseInvoice reads an invoice. Since API 2025-03-31 the subscription is
// under parent.subscription_details and charges/payment intents under
// payments; we read either shape.
func parseInvoice(o jsonObject, env envelope) Invoice {
	return Invoice{
		ID:         o.str("id"),
		CustomerID: o.id("customer"),
		SubscriptionID: o.firstID(
			keyPath("subscription"),
			keyPath("parent", "subscription_details", "subscription"),
			keyPath("subscription_details", "subscription"),
			keyPath("lines", "0", "subscription"),
			keyPath("lines", "0", "parent", "subscription_item_details", "subscription"),
		),
		ChargeID: o.firstID(
			keyPath("charge"),
			keyPath("payments", "0", "payment", "charge"),
		),
		PaymentIntentID: o.firstID(
			keyPath("payment_intent"),
			keyPath("payments", "0", "payment", "payment_intent"),
		),
		Status:             invoiceStatus(o),
		BillingReason:      o.str("billing_reason"),
		AttemptCount:       int(o.int("attempt_count")),
		NextPaymentAttempt: o.time("next_payment_attempt"),
		AmountDue:          o.int("amount_due"),
		AmountPaid:         o.int("amount_paid"),
		AmountRemaining:    o.int("amount_remaining"),
		Currency:           strings.ToLower(o.str("currency")),
		HostedInvoiceURL:   o.str("hosted_invoice_url"),
		Created:            o.createdOr(env.Created),
	}
}

// parseCharge reads a charge. Only the card's brand, last four and
// fingerprint are kept; never the expiry, and nothing else from
// payment_method_details.
func parseCharge(o jsonObject, env envelope) Charge {
	c := Charge{
		ID:              o.str("id"),
		CustomerID:      o.id("customer"),
		InvoiceID:       o.id("invoice"),
		PaymentIntentID: o.id("payment_intent"),
		Amount:          o.int("amount"),
		AmountRefunded:  o.int("amount_refunded"),
		Currency:        strings.ToLower(o.str("currency")),
		Status:          o.str("status"),
		Paid:            o.bool("paid"),
		Disputed:        o.bool("disputed"),
		Refunded:        o.bool("refunded"),
		FailureCode:     o.str("failure_code"),
		FailureMessage:  redactPAN(o.str("failure_message")),
		CardBrand:       o.firstStr(keyPath("payment_method_details", "card", "brand"), keyPath("source", "brand")),
		CardLast4:       o.firstStr(keyPath("payment_method_details", "card", "last4"), keyPath("source", "last4")),
		CardFingerprint: o.firstStr(keyPath("payment_method_details", "card", "fingerprint"), keyPath("source", "fingerprint")),
		Created:         o.createdOr(env.Created),
	}
	c.CardLast4 = onlyLast4(c.CardLast4)
	return c
}

func parseRefund(o jsonObject, env envelope) Refund {
	return Refund{
		ID:              o.str("id"),
		ChargeID:        o.id("charge"),
		PaymentIntentID: o.id("payment_intent"),
		CustomerID:      o.firstID(keyPath("charge", "customer"), keyPath("customer")),
		Amount:          o.int("amount"),
		Currency:        strings.ToLower(o.str("currency")),
		Status:          o.str("status"),
		Reason:          o.str("reason"),
		FailureReason:   o.str("failure_reason"),
		Created:         o.createdOr(env.Created),
	}
}

// parseDispute reads a dispute. Funds movements are read from the event
// type and from the dispute's balance transactions, so a later event that
// carries the same transactions also knows about them.
func parseDispute(o jsonObject, env envelope) Dispute {
	d := Dispute{
		ID:                 o.str("id"),
		ChargeID:           o.id("charge"),
		PaymentIntentID:    o.firstID(keyPath("payment_intent"), keyPath("charge", "payment_intent")),
		CustomerID:         o.firstID(keyPath("charge", "customer"), keyPath("customer")),
		Amount:             o.int("amount"),
		Currency:           strings.ToLower(o.str("currency")),
		Status:             o.str("status"),
		Reason:             o.str("reason"),
		NetworkReasonCode:  o.firstStr(keyPath("network_reason_code"), keyPath("payment_method_details", "card", "network_reason_code")),
		CardBrand:          o.firstStr(keyPath("payment_method_details", "card", "brand"), keyPath("charge", "payment_method_details", "card", "brand")),
		EvidenceDueBy:      o.time("evidence_details", "due_by"),
		HasEvidence:        o.bool("evidence_details", "has_evidence"),
		PastDue:            o.bool("evidence_details", "past_due"),
		SubmissionCount:    int(o.int("evidence_details", "submission_count")),
		IsChargeRefundable: o.bool("is_charge_refundable"),
		FundsWithdrawn:     env.Type == "charge.dispute.funds_withdrawn",
		FundsReinstated:    env.Type == "charge.dispute.funds_reinstated",
		Created:            o.createdOr(env.Created),
	}
	for _, bt := range o.list("balance_transactions") {
		switch cat := bt.str("reporting_category"); {
		case cat == "dispute_reversal":
			d.FundsReinstated = true
		case cat == "dispute" || bt.int("amount") < 0:
			d.FundsWithdrawn = true
		}
	}
	return d
}

func parseFraudWarning(o jsonObject, env envelope) FraudWarning {
	return FraudWarning{
		ID:              o.str("id"),
		ChargeID:        o.id("charge"),
		PaymentIntentID: o.firstID(keyPath("payment_intent"), keyPath("charge", "payment_intent")),
		CustomerID:      o.firstID(keyPath("charge", "customer"), keyPath("customer")),
		FraudType:       o.str("fraud_type"),
		Actionable:      o.bool("actionable"),
		Created:         o.createdOr(env.Created),
	}
}

// onlyLast4 keeps at most the last four characters of what claims to be a
// card's last four digits, so a malformed payload cannot smuggle a number in.
func onlyLast4(s string) string {
	if len(s) > 4 {
		return s[len(s)-4:]
	}
	return s
}
