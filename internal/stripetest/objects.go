package stripetest

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
)

// Builders in this file return fresh maps on every call, so a caller may
// mutate the result freely. Zero-valued parameters mean "use a sensible
// default"; nullable timestamps and ids stay null when left zero unless the
// object's status implies a value. To force a value the parameters cannot
// express (say, an explicit zero), set the map key after building.

// priceCreated is when catalog prices are reported as created.
var priceCreated = time.Date(2023, time.January, 9, 17, 4, 11, 0, time.UTC)

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func metadata(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fillID sets *id to a new id with the given prefix when it is empty.
func (g *Generator) fillID(id *string, prefix string) {
	if *id == "" {
		*id = g.NewID(prefix)
	}
}

func orTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t.Truncate(time.Second)
}

// derived returns n characters deterministically derived from seed, with
// bounded digit runs. It is used for values that must stay stable for one
// object across events (URLs, balance transaction ids).
func derived(seed string, n int) string {
	var b strings.Builder
	run := 0
	for block := 0; b.Len() < n; block++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", seed, block)))
		for _, x := range sum {
			if b.Len() == n {
				break
			}
			c := alnum[int(x)%len(alnum)]
			if c >= '0' && c <= '9' {
				if run >= maxDigitRun {
					c = letters[int(x)%len(letters)]
					run = 0
				} else {
					run++
				}
			} else {
				run = 0
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

func derivedID(prefix, seed string) string { return prefix + "1" + derived(prefix+seed, 23) }

func (g *Generator) pickPlan() Plan { return g.plans[g.intn(len(g.plans))] }

// PlanByPrice returns the catalog plan with the given price id.
func (g *Generator) PlanByPrice(priceID string) (Plan, bool) {
	for _, p := range g.plans {
		if p.PriceID == priceID {
			return p, true
		}
	}
	return Plan{}, false
}

func (g *Generator) planOr(p Plan) Plan {
	if p.PriceID == "" {
		return g.pickPlan()
	}
	if p.Currency == "" {
		p.Currency = g.currency
	}
	if p.Interval == "" {
		p.Interval = "month"
	}
	if p.ProductID == "" {
		p.ProductID = derivedID("prod_", p.PriceID)
	}
	return p
}

// FormatAmount renders an amount in minor units the way Stripe writes it in
// descriptions, e.g. FormatAmount(4900, "usd") is "$49.00".
func FormatAmount(amount int64, currency string) string {
	switch strings.ToLower(currency) {
	case "jpy", "krw", "vnd", "clp", "isk", "ugx", "xof", "xaf":
		return fmt.Sprintf("%s%d", strings.ToUpper(currency)+" ", amount)
	}
	sym, ok := map[string]string{"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}[strings.ToLower(currency)]
	if !ok {
		sym = strings.ToUpper(currency) + " "
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%s%d.%02d", sign, sym, amount/100, amount%100)
}

func recurringObject(p Plan) map[string]any {
	return map[string]any{
		"aggregate_usage":   nil,
		"interval":          p.Interval,
		"interval_count":    1,
		"trial_period_days": nil,
		"usage_type":        "licensed",
	}
}

// Price returns a recurring price object for a catalog plan (a zero Plan
// picks one at random).
func (g *Generator) Price(p Plan) map[string]any {
	p = g.planOr(p)
	return map[string]any{
		"id":                  p.PriceID,
		"object":              "price",
		"active":              true,
		"billing_scheme":      "per_unit",
		"created":             priceCreated.Unix(),
		"currency":            p.Currency,
		"custom_unit_amount":  nil,
		"livemode":            false,
		"lookup_key":          nil,
		"metadata":            map[string]any{},
		"nickname":            nil,
		"product":             p.ProductID,
		"recurring":           recurringObject(p),
		"tax_behavior":        "unspecified",
		"tiers_mode":          nil,
		"transform_quantity":  nil,
		"type":                "recurring",
		"unit_amount":         p.UnitAmount,
		"unit_amount_decimal": fmt.Sprint(p.UnitAmount),
	}
}

// legacyPlan returns the "plan" object Stripe still embeds next to "price".
func legacyPlan(p Plan) map[string]any {
	return map[string]any{
		"id":                p.PriceID,
		"object":            "plan",
		"active":            true,
		"aggregate_usage":   nil,
		"amount":            p.UnitAmount,
		"amount_decimal":    fmt.Sprint(p.UnitAmount),
		"billing_scheme":    "per_unit",
		"created":           priceCreated.Unix(),
		"currency":          p.Currency,
		"interval":          p.Interval,
		"interval_count":    1,
		"livemode":          false,
		"metadata":          map[string]any{},
		"nickname":          nil,
		"product":           p.ProductID,
		"tiers_mode":        nil,
		"transform_usage":   nil,
		"trial_period_days": nil,
		"usage_type":        "licensed",
	}
}

// --- Customer ---------------------------------------------------------------

// CustomerParams sets the fields of a customer object.
type CustomerParams struct {
	ID                   string    // default: new cus_ id
	Email                string    // default: generated @example.com address
	Name                 string    // default: generated name
	Created              time.Time // default: the Generator's clock
	DefaultPaymentMethod string    // invoice_settings.default_payment_method; null when ""
	Currency             string    // null when ""
	Delinquent           bool
	InvoicePrefix        string // default: 8 random characters
	Metadata             map[string]string
}

// Customer returns a customer object.
func (g *Generator) Customer(p CustomerParams) map[string]any {
	if p.Name == "" || p.Email == "" {
		name, email := g.person()
		p.Name = orStr(p.Name, name)
		p.Email = orStr(p.Email, email)
	}
	g.fillID(&p.ID, "cus_")
	if p.InvoicePrefix == "" {
		p.InvoicePrefix = g.randString(8, "ABCDEF0123456789")
	}
	return map[string]any{
		"id":             p.ID,
		"object":         "customer",
		"address":        nil,
		"balance":        0,
		"created":        orTime(p.Created, g.now()).Unix(),
		"currency":       nullable(p.Currency),
		"default_source": nil,
		"delinquent":     p.Delinquent,
		"description":    nil,
		"discount":       nil,
		"email":          p.Email,
		"invoice_prefix": p.InvoicePrefix,
		"invoice_settings": map[string]any{
			"custom_fields":          nil,
			"default_payment_method": nullable(p.DefaultPaymentMethod),
			"footer":                 nil,
			"rendering_options":      nil,
		},
		"livemode":              false,
		"metadata":              metadata(p.Metadata),
		"name":                  p.Name,
		"next_invoice_sequence": 1,
		"phone":                 nil,
		"preferred_locales":     []any{"en"},
		"shipping":              nil,
		"tax_exempt":            "none",
		"test_clock":            nil,
	}
}

// --- Subscription -------------------------------------------------------------

// SubscriptionParams sets the fields of a subscription object.
type SubscriptionParams struct {
	ID       string    // default: new sub_ id
	Customer string    // default: new cus_ id
	Status   string    // trialing, active (default), past_due, unpaid, canceled, paused, incomplete, incomplete_expired
	Created  time.Time // default: the Generator's clock
	// StartDate defaults to Created.
	StartDate time.Time
	// Plan is the single subscribed price; a zero Plan picks one from the
	// catalog.
	Plan     Plan
	Quantity int64  // default 1
	ItemID   string // si_ id; default: new id

	// TrialStart and TrialEnd default to Created and Created+Plan.TrialDays
	// when Status is trialing; otherwise they are null unless set.
	TrialStart, TrialEnd time.Time
	// CurrentPeriodStart defaults to TrialStart while trialing, else
	// StartDate; CurrentPeriodEnd to TrialEnd while trialing, else one plan
	// interval after CurrentPeriodStart.
	CurrentPeriodStart, CurrentPeriodEnd time.Time

	CancelAtPeriodEnd bool
	// CancelAt defaults to CurrentPeriodEnd when CancelAtPeriodEnd is set.
	CancelAt time.Time
	// CanceledAt is when cancellation was requested. It defaults to EndedAt
	// for canceled subscriptions and to the clock when CancelAtPeriodEnd is
	// set.
	CanceledAt time.Time
	// EndedAt defaults to CanceledAt (or the clock) for canceled
	// subscriptions.
	EndedAt time.Time

	// cancellation_details: reason is cancellation_requested,
	// payment_disputed or payment_failed; feedback one of Stripe's values
	// (too_expensive, unused, switched_service, missing_features, ...).
	CancellationReason, CancellationFeedback, CancellationComment string

	// PauseBehavior ("keep_as_draft", "mark_uncollectible" or "void") makes
	// pause_collection non-null; PauseResumesAt is its resumes_at.
	PauseBehavior  string
	PauseResumesAt time.Time

	// TrialMissingPaymentMethod is
	// trial_settings.end_behavior.missing_payment_method: "create_invoice"
	// (default), "cancel" or "pause".
	TrialMissingPaymentMethod string

	DefaultPaymentMethod string // pm_ id; null when ""
	LatestInvoice        string // in_ id; null when ""
	Metadata             map[string]string
}

func (g *Generator) normalizeSubscription(p *SubscriptionParams) {
	g.fillID(&p.ID, "sub_")
	g.fillID(&p.Customer, "cus_")
	p.Status = orStr(p.Status, "active")
	p.Created = orTime(p.Created, g.now())
	p.StartDate = orTime(p.StartDate, p.Created)
	p.Plan = g.planOr(p.Plan)
	if p.Quantity == 0 {
		p.Quantity = 1
	}
	g.fillID(&p.ItemID, "si_")
	if p.Status == "trialing" {
		p.TrialStart = orTime(p.TrialStart, p.Created)
		p.TrialEnd = orTime(p.TrialEnd, p.TrialStart.AddDate(0, 0, p.Plan.TrialDays))
	}
	if p.CurrentPeriodStart.IsZero() {
		if p.Status == "trialing" {
			p.CurrentPeriodStart = p.TrialStart
		} else {
			p.CurrentPeriodStart = p.StartDate
		}
	}
	if p.CurrentPeriodEnd.IsZero() {
		if p.Status == "trialing" {
			p.CurrentPeriodEnd = p.TrialEnd
		} else {
			p.CurrentPeriodEnd = p.Plan.Next(p.CurrentPeriodStart)
		}
	}
	if p.CancelAtPeriodEnd {
		p.CancelAt = orTime(p.CancelAt, p.CurrentPeriodEnd)
		p.CanceledAt = orTime(p.CanceledAt, g.now())
	}
	if p.Status == "canceled" || p.Status == "incomplete_expired" {
		p.EndedAt = orTime(p.EndedAt, orTime(p.CanceledAt, g.now()))
		p.CanceledAt = orTime(p.CanceledAt, p.EndedAt)
	}
	p.TrialMissingPaymentMethod = orStr(p.TrialMissingPaymentMethod, "create_invoice")
}

// Subscription returns a subscription object with a single item.
func (g *Generator) Subscription(p SubscriptionParams) map[string]any {
	g.normalizeSubscription(&p)
	var pause any
	if p.PauseBehavior != "" {
		pause = map[string]any{"behavior": p.PauseBehavior, "resumes_at": ts(p.PauseResumesAt)}
	}
	anchor := p.StartDate
	if !p.TrialEnd.IsZero() {
		anchor = p.TrialEnd
	}
	item := map[string]any{
		"id":                 p.ItemID,
		"object":             "subscription_item",
		"billing_thresholds": nil,
		"created":            p.Created.Unix(),
		"discounts":          []any{},
		"metadata":           map[string]any{},
		"plan":               legacyPlan(p.Plan),
		"price":              g.Price(p.Plan),
		"quantity":           p.Quantity,
		"subscription":       p.ID,
		"tax_rates":          []any{},
	}
	return map[string]any{
		"id":                          p.ID,
		"object":                      "subscription",
		"application":                 nil,
		"application_fee_percent":     nil,
		"automatic_tax":               map[string]any{"enabled": false, "liability": nil},
		"billing_cycle_anchor":        anchor.Unix(),
		"billing_cycle_anchor_config": nil,
		"billing_thresholds":          nil,
		"cancel_at":                   ts(p.CancelAt),
		"cancel_at_period_end":        p.CancelAtPeriodEnd,
		"canceled_at":                 ts(p.CanceledAt),
		"cancellation_details": map[string]any{
			"comment":  nullable(p.CancellationComment),
			"feedback": nullable(p.CancellationFeedback),
			"reason":   nullable(p.CancellationReason),
		},
		"collection_method":      "charge_automatically",
		"created":                p.Created.Unix(),
		"currency":               p.Plan.Currency,
		"current_period_end":     p.CurrentPeriodEnd.Unix(),
		"current_period_start":   p.CurrentPeriodStart.Unix(),
		"customer":               p.Customer,
		"days_until_due":         nil,
		"default_payment_method": nullable(p.DefaultPaymentMethod),
		"default_source":         nil,
		"default_tax_rates":      []any{},
		"description":            nil,
		"discount":               nil,
		"discounts":              []any{},
		"ended_at":               ts(p.EndedAt),
		"items": map[string]any{
			"object":      "list",
			"data":        []any{item},
			"has_more":    false,
			"total_count": 1,
			"url":         "/v1/subscription_items?subscription=" + p.ID,
		},
		"latest_invoice":                    nullable(p.LatestInvoice),
		"livemode":                          false,
		"metadata":                          metadata(p.Metadata),
		"next_pending_invoice_item_invoice": nil,
		"on_behalf_of":                      nil,
		"pause_collection":                  pause,
		"payment_settings": map[string]any{
			"payment_method_options":      nil,
			"payment_method_types":        nil,
			"save_default_payment_method": "off",
		},
		"pending_invoice_item_interval": nil,
		"pending_setup_intent":          nil,
		"pending_update":                nil,
		"plan":                          legacyPlan(p.Plan),
		"quantity":                      p.Quantity,
		"schedule":                      nil,
		"start_date":                    p.StartDate.Unix(),
		"status":                        p.Status,
		"test_clock":                    nil,
		"transfer_data":                 nil,
		"trial_end":                     ts(p.TrialEnd),
		"trial_settings": map[string]any{
			"end_behavior": map[string]any{"missing_payment_method": p.TrialMissingPaymentMethod},
		},
		"trial_start": ts(p.TrialStart),
	}
}

// --- Invoice ------------------------------------------------------------------

// InvoiceParams sets the fields of an invoice object.
type InvoiceParams struct {
	ID                          string // default: new in_ id
	Customer                    string // default: new cus_ id
	CustomerEmail, CustomerName string
	Subscription                string // sub_ id; null when ""
	SubscriptionItem            string // si_ id of the line item
	// Plan is the price billed on the single line item; a zero Plan picks
	// one from the catalog.
	Plan     Plan
	Quantity int64 // default 1
	// Trial marks a free trial invoice: amount_due is 0 and the line item
	// reads "Trial period for …".
	Trial bool

	Status        string // draft, open, paid (default), uncollectible, void
	BillingReason string // default subscription_cycle with a Subscription, else manual
	// AttemptCount is the number of payment attempts so far; attempted is
	// true when it is positive or the invoice is paid.
	AttemptCount       int64
	NextPaymentAttempt time.Time // null when zero

	AmountDue  int64 // default Plan.UnitAmount × Quantity (0 when Trial)
	AmountPaid int64 // ignored for paid invoices, which paid AmountDue
	Currency   string

	// Charge and PaymentIntent default to new ids for paid invoices with a
	// non-zero amount and for attempted invoices; otherwise null.
	Charge, PaymentIntent string
	Number                string // default derived from ID; null for drafts

	// PeriodStart and PeriodEnd default to Created, as Stripe reports for
	// subscription_create invoices. For subscription_cycle invoices Stripe
	// reports the previous period here.
	PeriodStart, PeriodEnd time.Time
	// ServicePeriodStart/End are the line item's period. They default to
	// one plan interval (or Plan.TrialDays for Trial) starting at PeriodEnd
	// for subscription_cycle invoices and at PeriodStart otherwise.
	ServicePeriodStart, ServicePeriodEnd time.Time

	Created                                              time.Time // default: the Generator's clock
	FinalizedAt, PaidAt, MarkedUncollectibleAt, VoidedAt time.Time // status_transitions; default Created when the status implies them
	Metadata                                             map[string]string
}

// Invoice returns an invoice object with a single subscription line item.
func (g *Generator) Invoice(p InvoiceParams) map[string]any {
	g.fillID(&p.ID, "in_")
	g.fillID(&p.Customer, "cus_")
	p.Plan = g.planOr(p.Plan)
	p.Status = orStr(p.Status, "paid")
	p.Currency = orStr(p.Currency, p.Plan.Currency)
	if p.Quantity == 0 {
		p.Quantity = 1
	}
	if p.BillingReason == "" {
		p.BillingReason = "manual"
		if p.Subscription != "" {
			p.BillingReason = "subscription_cycle"
		}
	}
	p.Created = orTime(p.Created, g.now())
	p.PeriodStart = orTime(p.PeriodStart, p.Created)
	p.PeriodEnd = orTime(p.PeriodEnd, p.Created)
	if p.AmountDue == 0 && !p.Trial {
		p.AmountDue = p.Plan.UnitAmount * p.Quantity
	}
	draft := p.Status == "draft"
	if p.Status == "paid" {
		p.AmountPaid = p.AmountDue
	}
	attempted := p.AttemptCount > 0 || (p.Status == "paid" && p.AmountDue > 0)
	if attempted && p.Status != "draft" {
		g.fillID(&p.Charge, "ch_")
		g.fillID(&p.PaymentIntent, "pi_")
	}
	if !draft {
		p.FinalizedAt = orTime(p.FinalizedAt, p.Created)
		p.Number = orStr(p.Number, strings.ToUpper(derived(p.ID, 8))+"-0001")
	}
	switch p.Status {
	case "paid":
		p.PaidAt = orTime(p.PaidAt, p.FinalizedAt)
	case "uncollectible":
		p.MarkedUncollectibleAt = orTime(p.MarkedUncollectibleAt, p.FinalizedAt)
	case "void":
		p.VoidedAt = orTime(p.VoidedAt, p.FinalizedAt)
	}

	lineStart := p.PeriodStart
	if p.BillingReason == "subscription_cycle" {
		lineStart = p.PeriodEnd
	}
	p.ServicePeriodStart = orTime(p.ServicePeriodStart, lineStart)
	if p.ServicePeriodEnd.IsZero() {
		if p.Trial {
			p.ServicePeriodEnd = p.ServicePeriodStart.AddDate(0, 0, p.Plan.TrialDays)
		} else {
			p.ServicePeriodEnd = p.Plan.Next(p.ServicePeriodStart)
		}
	}
	desc := fmt.Sprintf("%d × %s (at %s / %s)", p.Quantity, p.Plan.Name, FormatAmount(p.Plan.UnitAmount, p.Currency), p.Plan.Interval)
	if p.Trial {
		desc = "Trial period for " + p.Plan.Name
	}
	line := map[string]any{
		"id":                        derivedID("il_", p.ID),
		"object":                    "line_item",
		"amount":                    p.AmountDue,
		"amount_excluding_tax":      p.AmountDue,
		"currency":                  p.Currency,
		"description":               desc,
		"discount_amounts":          []any{},
		"discountable":              true,
		"discounts":                 []any{},
		"invoice":                   p.ID,
		"invoice_item":              nil,
		"livemode":                  false,
		"metadata":                  map[string]any{},
		"period":                    map[string]any{"end": p.ServicePeriodEnd.Unix(), "start": p.ServicePeriodStart.Unix()},
		"plan":                      legacyPlan(p.Plan),
		"price":                     g.Price(p.Plan),
		"proration":                 false,
		"proration_details":         map[string]any{"credited_items": nil},
		"quantity":                  p.Quantity,
		"subscription":              nullable(p.Subscription),
		"subscription_item":         nullable(p.SubscriptionItem),
		"tax_amounts":               []any{},
		"tax_rates":                 []any{},
		"type":                      "subscription",
		"unit_amount_excluding_tax": fmt.Sprint(p.Plan.UnitAmount),
	}
	if p.Subscription == "" {
		line["type"] = "invoiceitem"
	}

	var hosted, pdf, endingBalance any
	if !draft {
		token := "test_" + derived("invoice"+p.ID, 96)
		hosted = "https://invoice.stripe.com/i/" + g.platform + "/" + token + "?s=ap"
		pdf = "https://pay.stripe.com/invoice/" + g.platform + "/" + token + "/pdf?s=ap"
		endingBalance = 0
	}
	autoAdvance := p.Status == "draft" || p.Status == "open"
	return map[string]any{
		"id":                      p.ID,
		"object":                  "invoice",
		"account_country":         "US",
		"account_name":            g.business,
		"account_tax_ids":         nil,
		"amount_due":              p.AmountDue,
		"amount_paid":             p.AmountPaid,
		"amount_remaining":        p.AmountDue - p.AmountPaid,
		"amount_shipping":         0,
		"application":             nil,
		"application_fee_amount":  nil,
		"attempt_count":           p.AttemptCount,
		"attempted":               attempted,
		"auto_advance":            autoAdvance,
		"automatic_tax":           map[string]any{"enabled": false, "liability": nil, "status": nil},
		"billing_reason":          p.BillingReason,
		"charge":                  nullable(p.Charge),
		"collection_method":       "charge_automatically",
		"created":                 p.Created.Unix(),
		"currency":                p.Currency,
		"custom_fields":           nil,
		"customer":                p.Customer,
		"customer_address":        nil,
		"customer_email":          nullable(p.CustomerEmail),
		"customer_name":           nullable(p.CustomerName),
		"customer_phone":          nil,
		"customer_shipping":       nil,
		"customer_tax_exempt":     "none",
		"customer_tax_ids":        []any{},
		"default_payment_method":  nil,
		"default_source":          nil,
		"default_tax_rates":       []any{},
		"description":             nil,
		"discount":                nil,
		"discounts":               []any{},
		"due_date":                nil,
		"effective_at":            ts(p.FinalizedAt),
		"ending_balance":          endingBalance,
		"footer":                  nil,
		"from_invoice":            nil,
		"hosted_invoice_url":      hosted,
		"invoice_pdf":             pdf,
		"issuer":                  map[string]any{"type": "self"},
		"last_finalization_error": nil,
		"latest_revision":         nil,
		"lines": map[string]any{
			"object":      "list",
			"data":        []any{line},
			"has_more":    false,
			"total_count": 1,
			"url":         "/v1/invoices/" + p.ID + "/lines",
		},
		"livemode":             false,
		"metadata":             metadata(p.Metadata),
		"next_payment_attempt": ts(p.NextPaymentAttempt),
		"number":               nullable(p.Number),
		"on_behalf_of":         nil,
		"paid":                 p.Status == "paid",
		"paid_out_of_band":     false,
		"payment_intent":       nullable(p.PaymentIntent),
		"payment_settings": map[string]any{
			"default_mandate":        nil,
			"payment_method_options": nil,
			"payment_method_types":   nil,
		},
		"period_end":                       p.PeriodEnd.Unix(),
		"period_start":                     p.PeriodStart.Unix(),
		"post_payment_credit_notes_amount": 0,
		"pre_payment_credit_notes_amount":  0,
		"quote":                            nil,
		"receipt_number":                   nil,
		"rendering":                        nil,
		"rendering_options":                nil,
		"shipping_cost":                    nil,
		"shipping_details":                 nil,
		"starting_balance":                 0,
		"statement_descriptor":             nil,
		"status":                           p.Status,
		"status_transitions": map[string]any{
			"finalized_at":            ts(p.FinalizedAt),
			"marked_uncollectible_at": ts(p.MarkedUncollectibleAt),
			"paid_at":                 ts(p.PaidAt),
			"voided_at":               ts(p.VoidedAt),
		},
		"subscription":           nullable(p.Subscription),
		"subscription_details":   map[string]any{"metadata": map[string]any{}},
		"subtotal":               p.AmountDue,
		"subtotal_excluding_tax": p.AmountDue,
		"tax":                    nil,
		"test_clock":             nil,
		"total":                  p.AmountDue,
		"total_discount_amounts": []any{},
		"total_excluding_tax":    p.AmountDue,
		"total_tax_amounts":      []any{},
		"transfer_data":          nil,
		"webhooks_delivered_at":  p.Created.Unix(),
	}
}

// --- Charge -------------------------------------------------------------------

// ChargeParams sets the fields of a charge object.
type ChargeParams struct {
	ID            string // default: new ch_ id
	Amount        int64  // default: a catalog plan's price
	Currency      string
	Customer      string // cus_ id; null when ""
	Invoice       string // in_ id; null when ""
	PaymentIntent string // default: new pi_ id
	PaymentMethod string // default: new pm_ id
	Status        string // succeeded (default), failed, pending

	// FailureCode (default "card_declined" for failed charges), DeclineCode
	// (default "insufficient_funds" for card_declined) and FailureMessage
	// (default derived from the codes) describe a failed charge.
	FailureCode, DeclineCode, FailureMessage string

	AmountRefunded int64 // refunded is true when it reaches Amount
	Disputed       bool
	Card           Card // zero: a random card
	BillingName    string
	BillingEmail   string
	Description    string // e.g. "Subscription update"; null when ""
	RiskLevel      string // default "normal"
	RiskScore      int    // default random 5–64
	Created        time.Time
	Metadata       map[string]string
}

var failureMessages = map[string]string{
	"insufficient_funds":      "Your card has insufficient funds.",
	"generic_decline":         "Your card was declined.",
	"do_not_honor":            "Your card was declined.",
	"lost_card":               "Your card was declined.",
	"stolen_card":             "Your card was declined.",
	"expired_card":            "Your card has expired.",
	"incorrect_cvc":           "Your card's security code is incorrect.",
	"processing_error":        "An error occurred while processing your card. Try again in a little bit.",
	"authentication_required": "Your card was declined. This transaction requires authentication.",
}

// Charge returns a card charge object. It carries only the card's last four
// digits, never a full number.
func (g *Generator) Charge(p ChargeParams) map[string]any {
	g.fillID(&p.ID, "ch_")
	if p.Amount == 0 {
		p.Amount = g.pickPlan().UnitAmount
	}
	p.Currency = orStr(p.Currency, g.currency)
	g.fillID(&p.PaymentIntent, "pi_")
	g.fillID(&p.PaymentMethod, "pm_")
	p.Status = orStr(p.Status, "succeeded")
	p.Created = orTime(p.Created, g.now())
	if p.Card.Brand == "" {
		p.Card = g.card("", p.Created)
	}
	p.RiskLevel = orStr(p.RiskLevel, "normal")
	if p.RiskScore == 0 {
		p.RiskScore = g.rangeInt(5, 64)
	}

	succeeded := p.Status == "succeeded"
	var failureCode, failureMessage any
	outcome := map[string]any{
		"network_status": "approved_by_network",
		"reason":         nil,
		"risk_level":     p.RiskLevel,
		"risk_score":     p.RiskScore,
		"seller_message": "Payment complete.",
		"type":           "authorized",
	}
	if p.Status == "failed" {
		p.FailureCode = orStr(p.FailureCode, "card_declined")
		if p.FailureCode == "card_declined" {
			p.DeclineCode = orStr(p.DeclineCode, "insufficient_funds")
		}
		reason := orStr(p.DeclineCode, p.FailureCode)
		msg, ok := failureMessages[reason]
		if !ok {
			msg = "Your card was declined."
		}
		p.FailureMessage = orStr(p.FailureMessage, msg)
		failureCode, failureMessage = p.FailureCode, p.FailureMessage
		outcome["network_status"] = "declined_by_network"
		outcome["reason"] = reason
		outcome["seller_message"] = "The bank returned the decline code `" + reason + "`."
		outcome["type"] = "issuer_declined"
	} else if p.Status == "pending" {
		outcome["seller_message"] = "Payment pending."
	}

	var balanceTxn, receiptURL any
	amountCaptured := int64(0)
	if succeeded {
		balanceTxn = derivedID("txn_", p.ID)
		receiptURL = "https://pay.stripe.com/receipts/invoices/" + derived("receipt"+p.ID, 64) + "?s=ap"
		amountCaptured = p.Amount
	}
	card := map[string]any{
		"amount_authorized": nil,
		"brand":             p.Card.Brand,
		"checks": map[string]any{
			"address_line1_check":       nil,
			"address_postal_code_check": "pass",
			"cvc_check":                 nil,
		},
		"country":                   p.Card.Country,
		"exp_month":                 p.Card.ExpMonth,
		"exp_year":                  p.Card.ExpYear,
		"extended_authorization":    map[string]any{"status": "disabled"},
		"fingerprint":               p.Card.Fingerprint,
		"funding":                   p.Card.Funding,
		"incremental_authorization": map[string]any{"status": "unavailable"},
		"installments":              nil,
		"last4":                     p.Card.Last4,
		"mandate":                   nil,
		"multicapture":              map[string]any{"status": "unavailable"},
		"network":                   p.Card.Brand,
		"network_token":             map[string]any{"used": false},
		"overcapture":               map[string]any{"maximum_amount_capturable": p.Amount, "status": "unavailable"},
		"three_d_secure":            nil,
		"wallet":                    nil,
	}
	if succeeded {
		card["amount_authorized"] = p.Amount
	}
	return map[string]any{
		"id":                     p.ID,
		"object":                 "charge",
		"amount":                 p.Amount,
		"amount_captured":        amountCaptured,
		"amount_refunded":        p.AmountRefunded,
		"application":            nil,
		"application_fee":        nil,
		"application_fee_amount": nil,
		"balance_transaction":    balanceTxn,
		"billing_details": map[string]any{
			"address": map[string]any{
				"city": nil, "country": p.Card.Country, "line1": nil,
				"line2": nil, "postal_code": nil, "state": nil,
			},
			"email": nullable(p.BillingEmail),
			"name":  nullable(p.BillingName),
			"phone": nil,
		},
		"calculated_statement_descriptor": statementDescriptor(g.business),
		"captured":                        succeeded,
		"created":                         p.Created.Unix(),
		"currency":                        p.Currency,
		"customer":                        nullable(p.Customer),
		"description":                     nullable(p.Description),
		"disputed":                        p.Disputed,
		"failure_balance_transaction":     nil,
		"failure_code":                    failureCode,
		"failure_message":                 failureMessage,
		"fraud_details":                   map[string]any{},
		"invoice":                         nullable(p.Invoice),
		"livemode":                        false,
		"metadata":                        metadata(p.Metadata),
		"on_behalf_of":                    nil,
		"outcome":                         outcome,
		"paid":                            succeeded,
		"payment_intent":                  p.PaymentIntent,
		"payment_method":                  p.PaymentMethod,
		"payment_method_details":          map[string]any{"card": card, "type": "card"},
		"radar_options":                   map[string]any{},
		"receipt_email":                   nullable(p.BillingEmail),
		"receipt_number":                  nil,
		"receipt_url":                     receiptURL,
		"refunded":                        p.Amount > 0 && p.AmountRefunded >= p.Amount,
		"review":                          nil,
		"shipping":                        nil,
		"source":                          nil,
		"source_transfer":                 nil,
		"statement_descriptor":            nil,
		"statement_descriptor_suffix":     nil,
		"status":                          p.Status,
		"transfer_data":                   nil,
		"transfer_group":                  nil,
	}
}

func statementDescriptor(business string) string {
	s := strings.ToUpper(business)
	if len(s) > 22 {
		s = strings.TrimSpace(s[:22])
	}
	return s
}

// --- Refund -------------------------------------------------------------------

// RefundParams sets the fields of a refund object.
type RefundParams struct {
	ID            string // default: new re_ id
	Amount        int64  // default: a catalog plan's price
	Charge        string // default: new ch_ id
	PaymentIntent string // default: new pi_ id
	Currency      string
	Status        string // pending, succeeded (default), failed, canceled, requires_action
	// Reason is duplicate, fraudulent or requested_by_customer (default).
	Reason string
	// FailureReason is reported for failed refunds: expired_or_canceled_card
	// (default), lost_or_stolen_card or unknown.
	FailureReason string
	Created       time.Time
	Metadata      map[string]string
}

// Refund returns a refund object.
func (g *Generator) Refund(p RefundParams) map[string]any {
	g.fillID(&p.ID, "re_")
	if p.Amount == 0 {
		p.Amount = g.pickPlan().UnitAmount
	}
	g.fillID(&p.Charge, "ch_")
	g.fillID(&p.PaymentIntent, "pi_")
	p.Currency = orStr(p.Currency, g.currency)
	p.Status = orStr(p.Status, "succeeded")
	p.Reason = orStr(p.Reason, "requested_by_customer")
	p.Created = orTime(p.Created, g.now())
	m := map[string]any{
		"id":                       p.ID,
		"object":                   "refund",
		"amount":                   p.Amount,
		"balance_transaction":      derivedID("txn_", p.ID),
		"charge":                   p.Charge,
		"created":                  p.Created.Unix(),
		"currency":                 p.Currency,
		"destination_details":      map[string]any{"card": map[string]any{"reference": nil, "reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"}, "type": "card"},
		"metadata":                 metadata(p.Metadata),
		"payment_intent":           p.PaymentIntent,
		"reason":                   p.Reason,
		"receipt_number":           nil,
		"source_transfer_reversal": nil,
		"status":                   p.Status,
		"transfer_reversal":        nil,
	}
	switch p.Status {
	case "failed":
		m["failure_reason"] = orStr(p.FailureReason, "expired_or_canceled_card")
		m["failure_balance_transaction"] = derivedID("txn_", "failure"+p.ID)
	case "succeeded":
		m["destination_details"].(map[string]any)["card"].(map[string]any)["reference_status"] = "available"
		m["destination_details"].(map[string]any)["card"].(map[string]any)["reference"] = derived("arn"+p.ID, 12)
	}
	return m
}

// --- Dispute ------------------------------------------------------------------

// DisputeEvidenceFields lists the 27 fields of a dispute's evidence hash.
var DisputeEvidenceFields = []string{
	"access_activity_log", "billing_address", "cancellation_policy",
	"cancellation_policy_disclosure", "cancellation_rebuttal",
	"customer_communication", "customer_email_address", "customer_name",
	"customer_purchase_ip", "customer_signature",
	"duplicate_charge_documentation", "duplicate_charge_explanation",
	"duplicate_charge_id", "product_description", "receipt", "refund_policy",
	"refund_policy_disclosure", "refund_refusal_explanation", "service_date",
	"service_documentation", "shipping_address", "shipping_carrier",
	"shipping_date", "shipping_documentation", "shipping_tracking_number",
	"uncategorized_file", "uncategorized_text",
}

// DisputeParams sets the fields of a dispute object.
type DisputeParams struct {
	ID            string // default: new dp_ id
	Amount        int64  // default: a catalog plan's price
	Currency      string
	Charge        string // default: new ch_ id
	PaymentIntent string // default: new pi_ id
	// Reason is a Stripe dispute reason: fraudulent (default),
	// subscription_canceled, product_not_received, credit_not_processed,
	// duplicate, unrecognized, product_unacceptable, general, ...
	Reason string
	// Status is warning_needs_response, warning_under_review,
	// warning_closed, needs_response (default), under_review, won or lost.
	Status string
	Brand  string // card brand, default "visa"
	// NetworkReasonCode defaults to NetworkReasonCode(Brand, Reason,
	// inquiry) where inquiry means a warning_* status.
	NetworkReasonCode string
	// ChargeRefundable sets is_charge_refundable; it is always true for
	// inquiries (warning_* statuses).
	ChargeRefundable bool
	// EvidenceDueBy defaults to 23:59:59 UTC nine days (inquiries) or
	// eighteen days (chargebacks) after Created.
	EvidenceDueBy   time.Time
	HasEvidence     bool
	PastDue         bool
	SubmissionCount int64
	// Evidence overrides individual evidence fields; all others are null.
	Evidence map[string]any
	// BalanceTransactions is rendered as balance_transactions (default
	// empty). See DisputeFundsTransaction.
	BalanceTransactions []map[string]any
	Created             time.Time
	Metadata            map[string]string
}

func endOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 23, 59, 59, 0, time.UTC)
}

// Dispute returns a dispute object. All evidence fields are null unless set
// in Evidence.
func (g *Generator) Dispute(p DisputeParams) map[string]any {
	g.fillID(&p.ID, "dp_")
	if p.Amount == 0 {
		p.Amount = g.pickPlan().UnitAmount
	}
	p.Currency = orStr(p.Currency, g.currency)
	g.fillID(&p.Charge, "ch_")
	g.fillID(&p.PaymentIntent, "pi_")
	p.Reason = orStr(p.Reason, "fraudulent")
	p.Status = orStr(p.Status, "needs_response")
	p.Brand = orStr(p.Brand, "visa")
	p.Created = orTime(p.Created, g.now())
	inquiry := strings.HasPrefix(p.Status, "warning_")
	p.NetworkReasonCode = orStr(p.NetworkReasonCode, NetworkReasonCode(p.Brand, p.Reason, inquiry))
	if p.EvidenceDueBy.IsZero() {
		days := 18
		if inquiry {
			days = 9
		}
		p.EvidenceDueBy = endOfDay(p.Created.AddDate(0, 0, days))
	}
	evidence := make(map[string]any, len(DisputeEvidenceFields))
	for _, f := range DisputeEvidenceFields {
		evidence[f] = nil
	}
	for k, v := range p.Evidence {
		evidence[k] = v
	}
	txns := make([]any, 0, len(p.BalanceTransactions))
	for _, t := range p.BalanceTransactions {
		txns = append(txns, t)
	}
	return map[string]any{
		"id":                   p.ID,
		"object":               "dispute",
		"amount":               p.Amount,
		"balance_transactions": txns,
		"charge":               p.Charge,
		"created":              p.Created.Unix(),
		"currency":             p.Currency,
		"evidence":             evidence,
		"evidence_details": map[string]any{
			"due_by":           p.EvidenceDueBy.Unix(),
			"has_evidence":     p.HasEvidence,
			"past_due":         p.PastDue,
			"submission_count": p.SubmissionCount,
		},
		"is_charge_refundable": p.ChargeRefundable || inquiry,
		"livemode":             false,
		"metadata":             metadata(p.Metadata),
		"network_reason_code":  nullable(p.NetworkReasonCode),
		"payment_intent":       p.PaymentIntent,
		"payment_method_details": map[string]any{
			"card": map[string]any{
				"brand":               p.Brand,
				"network_reason_code": nullable(p.NetworkReasonCode),
			},
			"type": "card",
		},
		"reason": p.Reason,
		"status": p.Status,
	}
}

// DisputeFundsTransaction returns the balance transaction Stripe attaches to
// a dispute when funds are withdrawn (reinstated false: -amount plus a 1500
// dispute fee) or reinstated (reinstated true: +amount).
func (g *Generator) DisputeFundsTransaction(disputeID, chargeID, currency string, amount int64, reinstated bool, created time.Time) map[string]any {
	kind, desc, cat := "withdrawal", "Chargeback withdrawal for "+chargeID, "dispute"
	amt, fee := -amount, int64(1500)
	var feeDetails []any
	if reinstated {
		kind, desc, cat = "reversal", "Chargeback reversal for "+chargeID, "dispute_reversal"
		amt, fee = amount, 0
	} else {
		feeDetails = []any{map[string]any{
			"amount": fee, "application": nil, "currency": currency,
			"description": "Dispute fee", "type": "stripe_fee",
		}}
	}
	if feeDetails == nil {
		feeDetails = []any{}
	}
	created = created.Truncate(time.Second)
	return map[string]any{
		"id":                 derivedID("txn_", kind+disputeID),
		"object":             "balance_transaction",
		"amount":             amt,
		"available_on":       created.Unix(),
		"created":            created.Unix(),
		"currency":           currency,
		"description":        desc,
		"exchange_rate":      nil,
		"fee":                fee,
		"fee_details":        feeDetails,
		"net":                amt - fee,
		"reporting_category": cat,
		"source":             disputeID,
		"status":             "available",
		"type":               "adjustment",
	}
}

// --- Early fraud warning --------------------------------------------------------

// EarlyFraudWarningParams sets the fields of a radar.early_fraud_warning.
type EarlyFraudWarningParams struct {
	ID            string // default: new issfr_ id
	Charge        string // default: new ch_ id
	PaymentIntent string // default: new pi_ id
	// FraudType: card_never_received, fraudulent_card_application,
	// made_with_counterfeit_card, made_with_lost_card,
	// made_with_stolen_card, misc or unauthorized_use_of_card (default).
	FraudType string
	// Actioned renders actionable=false, as Stripe reports once the charge
	// has been fully refunded or disputed.
	Actioned bool
	Created  time.Time
}

// EarlyFraudWarning returns a radar.early_fraud_warning object.
func (g *Generator) EarlyFraudWarning(p EarlyFraudWarningParams) map[string]any {
	g.fillID(&p.ID, "issfr_")
	g.fillID(&p.Charge, "ch_")
	g.fillID(&p.PaymentIntent, "pi_")
	return map[string]any{
		"id":             p.ID,
		"object":         "radar.early_fraud_warning",
		"actionable":     !p.Actioned,
		"charge":         p.Charge,
		"created":        orTime(p.Created, g.now()).Unix(),
		"fraud_type":     orStr(p.FraudType, "unauthorized_use_of_card"),
		"livemode":       false,
		"payment_intent": p.PaymentIntent,
	}
}
