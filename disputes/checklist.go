package disputes

import (
	"fmt"
	"slices"
	"strings"
)

// Need says how much an evidence item matters.
type Need string

// Needs.
const (
	// NeedRequired items are the case: without them the dispute is weak.
	NeedRequired Need = "required"
	// NeedRecommended items strengthen the case when we have them.
	NeedRecommended Need = "recommended"
)

// Basis says what a [Checklist] was chosen by.
type Basis string

// Bases, most specific first.
const (
	// BasisNetworkCode: the (brand, network code) pair is in the table and
	// the checklist follows the reason it maps to.
	BasisNetworkCode Basis = "network_code"
	// BasisReason: the network code is missing or not in the table; the
	// checklist follows Stripe's reason.
	BasisReason Basis = "reason"
	// BasisGeneric: no specific guidance for the reason (or none given); the
	// checklist holds what helps every dispute.
	BasisGeneric Basis = "generic"
)

// Item is one piece of evidence for a dispute: the Stripe evidence field it
// goes into, how much it matters and a one-line "what it proves" for the
// analyst (and for the exhibit list of the rebuttal letter).
type Item struct {
	// Field is the Stripe evidence field the item goes into.
	Field EvidenceField `json:"field"`
	// Need says whether the item is required or recommended.
	Need Need `json:"need"`
	// Proves is the one-line "what it proves".
	Proves string `json:"proves"`
}

// Checklist is the evidence that wins one kind of dispute. Items hold each
// field at most once, required items first; Notes hold what the analyst
// must know beyond the fields (no recourse, CE 3.0, inquiries, page limits).
type Checklist struct {
	// Brand and NetworkCode are the normalised inputs ("" when not given).
	Brand       string `json:"brand"`
	NetworkCode string `json:"network_code"`
	// StripeReason is the reason Stripe reported, normalised.
	StripeReason string `json:"stripe_reason"`
	// Reason is the reason the checklist follows: the one the network code
	// maps to when the code is known, else StripeReason.
	Reason string `json:"reason"`
	// Basis says whether the network code, Stripe's reason or neither
	// chose the checklist.
	Basis Basis `json:"basis"`
	// Contestable is false when evidence cannot win (Visa 10.5): accept the
	// dispute instead; Items is then empty.
	Contestable bool `json:"contestable"`
	// CE3 is true for Visa 10.4, where Visa Compelling Evidence 3.0 may
	// apply: check [CE3Eligible].
	CE3 bool `json:"ce3"`
	// RebuttalField is where the rebuttal letter goes: the reason's own
	// explanation field, else uncategorized_text ("" when not contestable).
	RebuttalField EvidenceField `json:"rebuttal_field,omitempty"`
	// Items is the evidence, each field at most once, required first.
	Items []Item `json:"items"`
	// Notes are sentences for the analyst, most specific first.
	Notes []string `json:"notes"`
}

// Item returns the checklist's item for field f, if it has one.
func (c Checklist) Item(f EvidenceField) (Item, bool) {
	for _, it := range c.Items {
		if it.Field == f {
			return it, true
		}
	}
	return Item{}, false
}

// Missing returns the required items whose field is absent or blank in ev
// (an evidence hash as [ValidateEvidence] takes it), in checklist order.
func (c Checklist) Missing(ev map[string]string) []Item {
	var out []Item
	for _, it := range c.Items {
		if it.Need == NeedRequired && strings.TrimSpace(ev[string(it.Field)]) == "" {
			out = append(out, it)
		}
	}
	return out
}

// guide is the evidence that wins disputes of one Stripe reason.
type guide struct {
	rebuttal EvidenceField
	items    []Item // reason-specific items; they override base items of the same field
	notes    []string
}

// req and rec build required and recommended items.
func req(f EvidenceField, proves string) Item {
	return Item{Field: f, Need: NeedRequired, Proves: proves}
}

func rec(f EvidenceField, proves string) Item {
	return Item{Field: f, Need: NeedRecommended, Proves: proves}
}

// baseItems help every dispute.
var baseItems = []Item{
	req(FieldCustomerName, "Identifies the customer: the name on the account matches the cardholder."),
	req(FieldCustomerEmailAddress, "Ties the payment to the customer's account and to the emails we sent them."),
	rec(FieldBillingAddress, "Matches the card's billing address (Stripe adds the AVS result)."),
	rec(FieldCustomerPurchaseIP, "Places the purchase on the customer's own network and location."),
	rec(FieldCustomerCommunication, "The customer's own messages about the purchase or the service, in their words."),
}

// guides holds the reasons with specific guidance (DISPUTES.md "Evidence
// that wins for a subscription business", DOMAIN.md "Evidence that wins, by
// reason").
var guides = map[string]guide{
	ReasonFraudulent:   fraudGuide(),
	ReasonUnrecognized: unrecognizedGuide(),
	ReasonSubscriptionCanceled: {
		rebuttal: FieldCancellationRebuttal,
		items: []Item{
			req(FieldCancellationPolicy, "The cancellation terms exactly as the customer saw them when subscribing."),
			req(FieldCancellationPolicyDisclosure, "How and when the terms were shown and accepted before purchase (checkout screen, consent, date)."),
			req(FieldCancellationRebuttal, "Why the charge stands: no cancellation request on record before the charge, or the one we got came after it."),
			rec(FieldCustomerCommunication, "The renewal notice sent before the charge, and the customer's own messages."),
			rec(FieldAccessActivityLog, "The customer kept using the service after the claimed cancellation (timestamps and IPs)."),
		},
		notes: []string{
			"If a cancellation request from before the charge is on record, the claim is valid: accept the dispute (a chargeback cannot be refunded).",
		},
	},
	ReasonCreditNotProcessed: {
		rebuttal: FieldRefundRefusalExplanation,
		items: []Item{
			req(FieldRefundPolicy, "The refund terms exactly as the customer saw them."),
			req(FieldRefundPolicyDisclosure, "How and when the refund terms were shown before purchase."),
			req(FieldRefundRefusalExplanation, "Why no refund is owed, or the refund already issued (refund id, date, amount)."),
			rec(FieldUncategorizedFile, "Proof of a refund already issued (the refund receipt), when there is one."),
			rec(FieldAccessActivityLog, "Partial use: the customer used the service during the period charged."),
			rec(FieldCustomerCommunication, "The customer's refund request and our answer."),
		},
		notes: []string{
			"If the refund was already issued, say so with the refund id; never refund again: a refund plus a lost dispute loses the money twice.",
		},
	},
	ReasonDuplicate: {
		rebuttal: FieldDuplicateChargeExplanation,
		items: []Item{
			req(FieldDuplicateChargeID, "The other charge the customer believes this one duplicates."),
			req(FieldDuplicateChargeExplanation, "Why both charges are owed: different billing periods, invoices or products."),
			rec(FieldDuplicateChargeDocumentation, "Both invoices or receipts side by side, showing what each one paid for."),
		},
		notes: []string{
			"If it really is a duplicate, accept the dispute: a charge in chargeback cannot be refunded.",
		},
	},
	ReasonProductNotReceived: {
		rebuttal: FieldUncategorizedText,
		items: []Item{
			req(FieldAccessActivityLog, "The customer received the service: logins and use after payment (timestamps and IPs)."),
			req(FieldServiceDate, "When the service was provided: the period the charge paid for."),
			req(FieldUncategorizedText, "The rebuttal letter: the service was delivered, each point citing an exhibit."),
			rec(FieldServiceDocumentation, "Proof of delivery: the account provisioned, access and welcome emails."),
			rec(FieldProductDescription, "What was sold: a digital service, so nothing was shipped."),
		},
		notes: []string{
			"Digital service: leave the shipping_* fields empty unless something physical was shipped.",
		},
	},
	ReasonProductUnacceptable: {
		rebuttal: FieldRefundRefusalExplanation,
		items: []Item{
			req(FieldProductDescription, "What was promised, matching what was delivered."),
			req(FieldRefundPolicy, "The refund terms for a customer who is not satisfied."),
			req(FieldRefundRefusalExplanation, "Why no refund is owed: the service was as described, or the refund terms were not followed."),
			req(FieldCustomerCommunication, "The customer's complaint and our answer or offer."),
			rec(FieldRefundPolicyDisclosure, "How and when the refund terms were shown before purchase."),
			rec(FieldAccessActivityLog, "Continued use: the service worked as described."),
		},
	},
	ReasonGeneral: {
		rebuttal: FieldUncategorizedText,
		items: []Item{
			req(FieldUncategorizedText, "The rebuttal letter: our position and the claim answered point by point, citing exhibits."),
			rec(FieldReceipt, "What was charged, when and for what: the invoice or receipt."),
			rec(FieldProductDescription, "What the customer bought."),
		},
	},
}

// genericGuide is what helps every dispute, for reasons without guidance.
var genericGuide = guide{
	rebuttal: FieldUncategorizedText,
	items: []Item{
		req(FieldUncategorizedText, "The rebuttal letter: our position and the claim answered point by point, citing exhibits."),
		rec(FieldReceipt, "What was charged, when and for what: the invoice or receipt."),
	},
}

func fraudGuide() guide {
	return guide{
		rebuttal: FieldUncategorizedText,
		items: []Item{
			req(FieldAccessActivityLog, "The cardholder used the service after paying: logins and activity with timestamps, IPs and devices."),
			req(FieldCustomerPurchaseIP, "The purchase came from an IP the customer also used before and after it."),
			req(FieldUncategorizedText, "The rebuttal letter: the account history, the device id and prior undisputed payments on the same card, each citing an exhibit."),
			rec(FieldReceipt, "What was bought, when, and by which account."),
		},
	}
}

func unrecognizedGuide() guide {
	g := fraudGuide()
	g.notes = []string{
		"Unrecognised charges are often a statement descriptor the cardholder did not recognise: the receipt should show the descriptor and the account it belongs to.",
	}
	return g
}

// Requirements returns the evidence checklist for a dispute. It is keyed on
// (brand, network code) — see [ReasonForCode] — and falls back to Stripe's
// reason when the code is missing or not in the table, then to a generic
// checklist for reasons without specific guidance (reasons are open strings:
// an unknown one is not an error). Network-specific guidance is added on
// top: Visa 10.4 (CE 3.0), Visa 10.5 (no recourse: accept), Visa 13.2
// (trial rules), Visa 12.6.2, Mastercard 4853's sub-types and Mastercard's
// page limit. Every contestable checklist notes that an inquiry
// (warning_*) can still be refunded to prevent a chargeback.
func Requirements(brand, code, reason string) Checklist {
	cl := Checklist{
		Brand:        NormalizeBrand(brand),
		NetworkCode:  NormalizeCode(code),
		StripeReason: normalizeReason(reason),
		Contestable:  true,
	}
	var notes []string
	if mapped, ok := ReasonForCode(cl.Brand, cl.NetworkCode); ok {
		cl.Reason, cl.Basis = mapped, BasisNetworkCode
		if cl.StripeReason != "" && cl.StripeReason != mapped {
			notes = append(notes, fmt.Sprintf("Stripe reports reason %s but %s code %s is %s: the checklist follows the network code.",
				cl.StripeReason, brandName(cl.Brand), cl.NetworkCode, mapped))
		}
	} else {
		cl.Reason, cl.Basis = cl.StripeReason, BasisReason
		if cl.NetworkCode != "" {
			notes = append(notes, fmt.Sprintf("Network code %s (%s) is not in our table: the checklist follows Stripe's reason.",
				cl.NetworkCode, brandName(cl.Brand)))
		}
	}

	if cl.Brand == BrandVisa && cl.NetworkCode == "10.5" {
		cl.Contestable = false
		cl.Notes = append(notes, "Visa 10.5 (Visa Fraud Monitoring Program): no recourse — accept the dispute; evidence cannot win it.")
		return cl
	}

	g, ok := guides[cl.Reason]
	if !ok {
		g = genericGuide
		cl.Basis = BasisGeneric
		if cl.Reason == "" {
			notes = append(notes, "No reason given: generic checklist.")
		} else {
			notes = append(notes, fmt.Sprintf("No specific guidance for reason %s: generic checklist.", cl.Reason))
		}
	}
	cl.RebuttalField = g.rebuttal
	items := slices.Clone(g.items)
	notes = append(notes, g.notes...)

	switch cl.Brand + " " + cl.NetworkCode {
	case "visa 10.4":
		cl.CE3 = true
		notes = append(notes, "Visa 10.4 (card-absent fraud): check Visa CE 3.0 eligibility — two prior undisputed payments on the same card, 120–365 days before, sharing IP or device plus one more identifier, shift liability to the issuer. stripe-go v76 cannot send CE 3.0 data (API 2024-10-28, stripe-go v81): describe the prior payments in the rebuttal letter until then.")
	case "visa 13.2":
		notes = append(notes, "Visa trial rules [secondary]: express consent at enrolment, a reminder with an online cancel link at least 7 days before a trial converts, receipts with the terms — include them when the charge followed a trial.")
	case "visa 12.6.2":
		notes = append(notes, "Visa 12.6.2 (paid by other means): show that the other payment paid for something else, or was refunded.")
	case "mastercard 4853":
		items = append(items,
			rec(FieldServiceDate, "Sub-type not provided: when the service was provided, the period the charge paid for."),
			rec(FieldCancellationPolicy, "Sub-type recurring: the cancellation terms as the customer saw them."),
			rec(FieldCancellationPolicyDisclosure, "Sub-type recurring: how and when the cancellation terms were shown before purchase."),
		)
		notes = append(notes, "Mastercard 4853 covers several claims (not as described, not provided, credit not processed, recurring): answer the one the issuer states.")
	}

	cl.Items = mergeItems(items, baseItems)
	notes = append(notes,
		fmt.Sprintf("Rebuttal letter (about one page) in %s: dispute id, reason and network code, amount and date; our position in one or two sentences; the transaction details; the claim answered point by point, each point citing an exhibit; the exhibit list; a request to reverse the chargeback.", cl.RebuttalField),
		"Inquiry (status warning_*): while the charge is refundable, a refund now prevents a chargeback. Once it is a chargeback, never refund: the network already took the money back.",
	)
	if cl.Brand == BrandMastercard {
		notes = append(notes, "Mastercard: keep all evidence together under 19 pages (under 50 for other networks).")
	}
	cl.Notes = notes
	return cl
}

// mergeItems returns specific followed by the base items whose field it does
// not already hold, required items first (otherwise in order).
func mergeItems(specific, base []Item) []Item {
	out := make([]Item, 0, len(specific)+len(base))
	seen := map[EvidenceField]bool{}
	for _, list := range [][]Item{specific, base} {
		for _, it := range list {
			if !seen[it.Field] {
				seen[it.Field] = true
				out = append(out, it)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Item) int { return needRank(a.Need) - needRank(b.Need) })
	return out
}

func needRank(n Need) int {
	if n == NeedRequired {
		return 0
	}
	return 1
}

// brandName is brand for messages ("unknown brand" when empty).
func brandName(brand string) string {
	if brand == "" {
		return "unknown brand"
	}
	return brand
}
