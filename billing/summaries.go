package billing

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Summaries describe what one event says happened, from the event's own
// payload (not from the mirror's current state, which may be newer), in the
// words an agent reads on the customer's timeline.

func customerSummary(env envelope, c Customer) (string, string) {
	switch env.Type {
	case "customer.created":
		who := strings.TrimSpace(c.Name)
		if c.Email != "" {
			if who != "" {
				who += " (" + c.Email + ")"
			} else {
				who = c.Email
			}
		}
		if who == "" {
			return summary(fact{"Customer created", SeverityInfo})
		}
		return summary(fact{"Customer created: " + who, SeverityInfo})
	case "customer.deleted":
		return summary(fact{"Customer deleted", SeverityWarning})
	}
	var facts []fact
	prev := jsonObject(env.Previous)
	if prev.has("invoice_settings") || prev.has("default_source") {
		if c.HasDefaultPaymentMethod {
			facts = append(facts, fact{"Default payment method set", SeverityInfo})
		} else {
			facts = append(facts, fact{"Default payment method removed", SeverityWarning})
		}
	}
	if prev.has("email") {
		facts = append(facts, fact{"Email changed to " + orNone(c.Email), SeverityInfo})
	}
	if len(facts) == 0 {
		facts = append(facts, fact{"Customer details updated" + changedKeys(env.Previous), SeverityInfo})
	}
	return summary(facts...)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// planText is "$49.00/month", "$49.00" or "".
func planText(s Subscription) string {
	if s.Amount == 0 && s.Currency == "" {
		return ""
	}
	t := FormatMoney(s.Amount, s.Currency)
	if s.Interval != "" {
		t += "/" + s.Interval
	}
	return t
}

func withPlan(text string, s Subscription) string {
	if pl := planText(s); pl != "" {
		return text + " (" + pl + ")"
	}
	return text
}

// canceledFact describes a cancellation with its reason, feedback and comment.
func canceledFact(s Subscription, hasPM bool) fact {
	text := "Subscription canceled"
	var details []string
	if s.CancellationReason != "" {
		details = append(details, s.CancellationReason)
	}
	if s.CancellationFeedback != "" {
		details = append(details, "feedback "+s.CancellationFeedback)
	}
	if len(details) == 0 && s.TrialEnd != nil && s.EndedAt != nil && !s.EndedAt.Before(*s.TrialEnd) &&
		s.EndedAt.Sub(*s.TrialEnd) < time.Hour {
		text = "Subscription canceled at trial end"
		if !hasPM {
			text += " — no payment method"
		}
	}
	if len(details) > 0 {
		text += ": " + strings.Join(details, ", ")
	}
	if s.CancellationComment != "" {
		text += " — " + quote(s.CancellationComment)
	}
	return fact{text, SeverityWarning}
}

func statusFact(from string, s Subscription, hasPM bool) fact {
	switch s.Status {
	case "active":
		switch from {
		case "trialing":
			return fact{withPlan("Trial converted to paid", s), SeverityInfo}
		case "past_due", "unpaid":
			return fact{"Subscription active again: payment recovered", SeverityInfo}
		case "incomplete":
			return fact{withPlan("Subscription activated", s), SeverityInfo}
		case "paused":
			return fact{"Subscription resumed", SeverityInfo}
		}
		return fact{"Subscription active", SeverityInfo}
	case "past_due":
		return fact{"Subscription past due: renewal payment failed", SeverityWarning}
	case "unpaid":
		return fact{"Subscription unpaid: payment retries exhausted", SeverityCritical}
	case "paused":
		if from == "trialing" && !hasPM {
			return fact{"Subscription paused: trial ended without a payment method", SeverityWarning}
		}
		return fact{"Subscription paused", SeverityWarning}
	case "canceled":
		return canceledFact(s, hasPM)
	case "incomplete_expired":
		return fact{"Subscription expired: first payment was never completed", SeverityWarning}
	}
	return fact{fmt.Sprintf("Subscription status changed from %s to %s", orNone(from), orNone(s.Status)), SeverityInfo}
}

// trialEndsFact is "Trial ends in 3 days — no payment method", counting
// days from the event's created time to the trial end.
func trialEndsFact(at time.Time, s Subscription, hasPM bool) fact {
	text := "Trial ending soon"
	if s.TrialEnd != nil {
		days := int(math.Round(s.TrialEnd.Sub(at).Hours() / 24))
		switch {
		case days <= 0:
			text = "Trial ends today"
		case days == 1:
			text = "Trial ends in 1 day"
		default:
			text = fmt.Sprintf("Trial ends in %d days", days)
		}
	}
	if !hasPM {
		return fact{text + " — no payment method", SeverityWarning}
	}
	text += " — payment method on file"
	if pl := planText(s); pl != "" {
		text += ", renews at " + pl
	}
	return fact{text, SeverityInfo}
}

func subscriptionSummary(env envelope, s Subscription, hasPM bool) (string, string) {
	switch env.Type {
	case "customer.subscription.created":
		switch s.Status {
		case "trialing":
			text := "Trial started"
			if pl := planText(s); pl != "" {
				text += ": " + pl
			}
			if s.TrialEnd != nil {
				text += ", trial ends " + formatDay(*s.TrialEnd)
			}
			if !hasPM {
				text += ", no payment method yet"
			}
			return summary(fact{text, SeverityInfo})
		case "incomplete":
			return summary(fact{withPlan("Subscription created, awaiting first payment", s), SeverityInfo})
		case "active":
			return summary(fact{withPlan("Subscription started", s), SeverityInfo})
		}
		return summary(fact{withPlan("Subscription created ("+orNone(s.Status)+")", s), SeverityInfo})
	case "customer.subscription.deleted":
		return summary(canceledFact(s, hasPM))
	case "customer.subscription.trial_will_end":
		return summary(trialEndsFact(env.Created, s, hasPM))
	case "customer.subscription.paused":
		if !hasPM && s.TrialEnd != nil && !env.Created.Before(*s.TrialEnd) {
			return summary(fact{"Subscription paused: trial ended without a payment method", SeverityWarning})
		}
		return summary(fact{"Subscription paused", SeverityWarning})
	case "customer.subscription.resumed":
		return summary(fact{withPlan("Subscription resumed", s), SeverityInfo})
	case "customer.subscription.pending_update_applied":
		return summary(fact{withPlan("Pending subscription change applied", s), SeverityInfo})
	case "customer.subscription.pending_update_expired":
		return summary(fact{"Pending subscription change expired: its payment was not completed", SeverityWarning})
	}
	return summary(subscriptionUpdateFacts(env, s, hasPM)...)
}

// subscriptionUpdateFacts reads previous_attributes to say what changed.
func subscriptionUpdateFacts(env envelope, s Subscription, hasPM bool) []fact {
	prev := jsonObject(env.Previous)
	var facts []fact
	statusChanged := prev.has("status") && prev.str("status") != s.Status
	if statusChanged {
		facts = append(facts, statusFact(prev.str("status"), s, hasPM))
	}
	if s.Status != "canceled" {
		switch {
		case prev.has("cancel_at_period_end") || prev.has("cancel_at"):
			if s.CancelAtPeriodEnd || s.CancelAt != nil {
				text := "Cancellation scheduled"
				switch {
				case s.CancelAt != nil:
					text += " for " + formatDay(*s.CancelAt)
				case s.CurrentPeriodEnd != nil:
					text += " for " + formatDay(*s.CurrentPeriodEnd)
				}
				if s.CancelAtPeriodEnd {
					text += " (end of period)"
				}
				var details []string
				if s.CancellationReason != "" {
					details = append(details, s.CancellationReason)
				}
				if s.CancellationFeedback != "" {
					details = append(details, "feedback "+s.CancellationFeedback)
				}
				if len(details) > 0 {
					text += ": " + strings.Join(details, ", ")
				}
				if s.CancellationComment != "" {
					text += " — " + quote(s.CancellationComment)
				}
				facts = append(facts, fact{text, SeverityWarning})
			} else {
				facts = append(facts, fact{"Scheduled cancellation withdrawn", SeverityInfo})
			}
		}
	}
	if prev.has("pause_collection") {
		if s.PauseCollection != "" {
			text := "Payment collection paused (" + s.PauseCollection + ")"
			if s.PauseResumesAt != nil {
				text += " until " + formatDay(*s.PauseResumesAt)
			}
			facts = append(facts, fact{text, SeverityWarning})
		} else {
			facts = append(facts, fact{"Payment collection resumed", SeverityInfo})
		}
	}
	if prev.has("trial_end") && !statusChanged && s.TrialEnd != nil && s.Status == "trialing" {
		facts = append(facts, fact{"Trial end moved to " + formatDay(*s.TrialEnd), SeverityInfo})
	}
	rolled := prev.has("current_period_start") || prev.has("current_period_end")
	if (prev.has("items") || prev.has("plan") || prev.has("quantity")) && !rolled {
		facts = append(facts, fact{"Plan changed to " + orNone(planText(s)), SeverityInfo})
	}
	if rolled && !(statusChanged && prev.str("status") == "trialing") && s.CurrentPeriodStart != nil && s.CurrentPeriodEnd != nil {
		facts = append(facts, fact{"New billing period " + formatDay(*s.CurrentPeriodStart) + " to " + formatDay(*s.CurrentPeriodEnd), SeverityInfo})
	}
	if prev.has("default_payment_method") || prev.has("default_source") {
		if hasPM {
			facts = append(facts, fact{"Payment method set on subscription", SeverityInfo})
		} else {
			facts = append(facts, fact{"Payment method removed from subscription", SeverityWarning})
		}
	}
	if len(facts) == 0 {
		facts = append(facts, fact{"Subscription updated" + changedKeys(env.Previous), SeverityInfo})
	}
	return facts
}

// invoiceNoun names what an invoice pays for an agent: a renewal, a first
// payment, or just an invoice.
func invoiceNoun(inv Invoice) string {
	switch inv.BillingReason {
	case "subscription_cycle":
		return "Renewal"
	case "subscription_create":
		return "First payment"
	}
	return "Invoice"
}

func invoiceSummary(env envelope, o jsonObject, inv Invoice, maxAttempts int) (string, string) {
	noun := invoiceNoun(inv)
	due := FormatMoney(inv.AmountDue, inv.Currency)
	switch env.Type {
	case "invoice.created":
		return summary(fact{invoiceWord(noun) + " created: " + due, SeverityInfo})
	case "invoice.finalized":
		return summary(fact{invoiceWord(noun) + " finalized: " + due + " due", SeverityInfo})
	case "invoice.finalization_failed":
		text := invoiceWord(noun) + " could not be finalized"
		if code := o.firstStr(keyPath("last_finalization_error", "code"), keyPath("last_finalization_error", "type")); code != "" {
			text += ": " + code
		}
		return summary(fact{text, SeverityWarning})
	case "invoice.paid":
		paid := inv.AmountPaid
		if paid == 0 {
			paid = inv.AmountDue
		}
		return summary(fact{noun + " paid " + FormatMoney(paid, inv.Currency), SeverityInfo})
	case "invoice.payment_succeeded":
		paid := inv.AmountPaid
		if paid == 0 {
			paid = inv.AmountDue
		}
		return summary(fact{paymentWord(noun) + " succeeded " + FormatMoney(paid, inv.Currency), SeverityInfo})
	case "invoice.payment_failed":
		return summary(paymentFailedFact(noun, inv, maxAttempts))
	case "invoice.payment_action_required":
		return summary(fact{paymentWord(noun) + " needs the customer to authenticate: " + due, SeverityWarning})
	case "invoice.marked_uncollectible":
		left := inv.AmountRemaining
		if left == 0 {
			left = inv.AmountDue
		}
		return summary(fact{invoiceWord(noun) + " marked uncollectible: " + FormatMoney(left, inv.Currency) + " written off", SeverityCritical})
	case "invoice.voided":
		return summary(fact{invoiceWord(noun) + " voided: " + due, SeverityInfo})
	case "invoice.upcoming":
		text := "Upcoming " + strings.ToLower(invoiceWord(noun)) + ": " + due
		if t := o.firstTime(keyPath("next_payment_attempt"), keyPath("period_end")); t != nil {
			text += " on " + formatDay(*t)
		}
		return summary(fact{text, SeverityInfo})
	}
	return summary(fact{invoiceWord(noun) + " updated" + changedKeys(env.Previous), SeverityInfo})
}

func invoiceWord(noun string) string {
	switch noun {
	case "Renewal":
		return "Renewal invoice"
	case "First payment":
		return "First invoice"
	}
	return "Invoice"
}

func paymentWord(noun string) string {
	if noun == "Invoice" {
		return "Invoice payment"
	}
	if noun == "Renewal" {
		return "Renewal payment"
	}
	return noun
}

// paymentFailedFact is "Renewal failed (attempt 2 of 4, card_declined),
// next retry 2026-11-25". The provider's retry schedule is not in the
// payload, so "of N" is the store's configured maximum (at least the attempt
// number itself).
func paymentFailedFact(noun string, inv Invoice, maxAttempts int) fact {
	of := max(maxAttempts, inv.AttemptCount)
	var inner []string
	if inv.AttemptCount > 0 {
		inner = append(inner, fmt.Sprintf("attempt %d of %d", inv.AttemptCount, of))
	}
	if inv.LastFailureCode != "" {
		inner = append(inner, inv.LastFailureCode)
	}
	text := noun + " failed"
	if noun == "Invoice" {
		text = "Invoice payment failed"
	}
	if len(inner) > 0 {
		text += " (" + strings.Join(inner, ", ") + ")"
	}
	if inv.NextPaymentAttempt != nil {
		return fact{text + ", next retry " + formatDay(*inv.NextPaymentAttempt), SeverityWarning}
	}
	return fact{text + ", no retry scheduled", SeverityCritical}
}

func cardText(c Charge) string {
	switch {
	case c.CardBrand != "" && c.CardLast4 != "":
		return " (" + c.CardBrand + " ending " + c.CardLast4 + ")"
	case c.CardLast4 != "":
		return " (card ending " + c.CardLast4 + ")"
	}
	return ""
}

func chargeSummary(env envelope, o jsonObject, c Charge) (string, string) {
	amount := FormatMoney(c.Amount, c.Currency)
	switch env.Type {
	case "charge.succeeded":
		return summary(fact{"Payment succeeded " + amount + cardText(c), SeverityInfo})
	case "charge.captured":
		return summary(fact{"Payment captured " + amount + cardText(c), SeverityInfo})
	case "charge.failed":
		text := "Payment failed " + amount + cardText(c)
		code := c.FailureCode
		if decline := o.firstStr(keyPath("outcome", "reason"), keyPath("decline_code")); decline != "" && decline != code {
			if code != "" {
				code += " / " + decline
			} else {
				code = decline
			}
		}
		if code != "" {
			text += ": " + code
		}
		return summary(fact{text, SeverityWarning})
	case "charge.refunded":
		if c.Refunded || (c.Amount > 0 && c.AmountRefunded >= c.Amount) {
			return summary(fact{"Payment fully refunded: " + FormatMoney(c.AmountRefunded, c.Currency), SeverityInfo})
		}
		return summary(fact{"Payment partially refunded: " + FormatMoney(c.AmountRefunded, c.Currency) + " of " + amount, SeverityInfo})
	}
	return summary(fact{"Payment " + amount + " updated" + changedKeys(env.Previous), SeverityInfo})
}

func refundSummary(env envelope, r Refund) (string, string) {
	amount := FormatMoney(r.Amount, r.Currency)
	why := ""
	if r.Reason != "" {
		why = " (" + r.Reason + ")"
	}
	switch r.Status {
	case "succeeded":
		return summary(fact{"Refund succeeded: " + amount + why, SeverityInfo})
	case "failed":
		text := "Refund failed: " + amount
		if r.FailureReason != "" {
			text += " (" + r.FailureReason + ")"
		}
		return summary(fact{text + " — the customer did not get the money back", SeverityCritical})
	case "canceled":
		return summary(fact{"Refund canceled: " + amount, SeverityWarning})
	case "requires_action":
		return summary(fact{"Refund needs action: " + amount + why, SeverityWarning})
	}
	if env.Type == "refund.created" {
		return summary(fact{"Refund requested: " + amount + why, SeverityInfo})
	}
	return summary(fact{"Refund " + orNone(r.Status) + ": " + amount + why, SeverityInfo})
}

func disputeSummary(env envelope, d Dispute) (string, string) {
	amount := FormatMoney(d.Amount, d.Currency)
	reason := orNone(d.Reason)
	switch env.Type {
	case "charge.dispute.created":
		if d.IsInquiry() {
			text := "Inquiry opened on " + amount + ": " + reason
			if d.EvidenceDueBy != nil {
				text += ", response due " + formatDay(*d.EvidenceDueBy)
			}
			return summary(fact{text, SeverityWarning})
		}
		text := "Disputed " + amount + ": " + reason
		if d.EvidenceDueBy != nil {
			text += ", evidence due " + formatDay(*d.EvidenceDueBy)
		} else {
			text += ", no response possible"
		}
		return summary(fact{text, SeverityCritical})
	case "charge.dispute.funds_withdrawn":
		return summary(fact{"Dispute funds withdrawn: " + amount, SeverityWarning})
	case "charge.dispute.funds_reinstated":
		return summary(fact{"Dispute funds reinstated: " + amount, SeverityInfo})
	case "charge.dispute.closed":
		switch d.Status {
		case "won":
			return summary(fact{"Dispute won: " + amount + " (" + reason + ")", SeverityInfo})
		case "lost":
			text := "Dispute lost: " + amount + " (" + reason + ")"
			// evidence_details.past_due means the last evidence went in late,
			// not that the deadline passed; no submission at all is the tell.
			switch {
			case d.SubmissionCount == 0 && !d.HasEvidence:
				text += ", no evidence submitted"
			case d.PastDue:
				text += ", evidence submitted late"
			}
			return summary(fact{text, SeverityCritical})
		case "warning_closed":
			return summary(fact{"Inquiry closed: " + amount + " (" + reason + ")", SeverityInfo})
		}
		return summary(fact{"Dispute closed (" + orNone(d.Status) + "): " + amount, SeverityInfo})
	}
	prev := jsonObject(env.Previous)
	if prev.has("evidence_details", "submission_count") || prev.has("evidence_details", "has_evidence") ||
		(prev.has("status") && (d.Status == "under_review" || d.Status == "warning_under_review")) {
		noun := "Dispute evidence submitted"
		if d.IsInquiry() {
			noun = "Inquiry response submitted"
		}
		return summary(fact{noun + ": " + amount + ", now " + d.Status, SeverityInfo})
	}
	if prev.has("status") {
		return summary(fact{"Dispute status now " + orNone(d.Status) + " (was " + orNone(prev.str("status")) + ")", SeverityInfo})
	}
	return summary(fact{"Dispute updated" + changedKeys(env.Previous), SeverityInfo})
}

func fraudWarningSummary(env envelope, w FraudWarning, charge *Charge) (string, string) {
	kind := orNone(w.FraudType)
	on := ""
	if charge != nil {
		on = " on " + FormatMoney(charge.Amount, charge.Currency) + " payment"
	}
	switch {
	case env.Type == "radar.early_fraud_warning.created" && w.Actionable:
		return summary(fact{"Early fraud warning (" + kind + ")" + on + " — a refund now can prevent a dispute", SeverityCritical})
	case env.Type == "radar.early_fraud_warning.created":
		return summary(fact{"Early fraud warning (" + kind + ")" + on + ", not actionable", SeverityWarning})
	case !w.Actionable:
		return summary(fact{"Early fraud warning (" + kind + ") no longer actionable", SeverityInfo})
	}
	return summary(fact{"Early fraud warning (" + kind + ")" + on + " updated, still actionable", SeverityWarning})
}
