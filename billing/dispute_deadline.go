package billing

import (
	"fmt"
	"strings"
	"time"
)

// Urgency buckets the time left to respond to a dispute.
type Urgency string

// Urgencies, from nothing to do to too late. The thresholds are inclusive:
// exactly 24 hours left is critical, exactly 72 hours high, exactly 7 days
// normal.
const (
	// UrgencyNone: nothing to respond to — no response is possible (no
	// due_by) or the status needs none (under review, closed).
	UrgencyNone Urgency = "none"
	// UrgencyLow: more than 7 days left.
	UrgencyLow Urgency = "low"
	// UrgencyNormal: more than 72 hours and at most 7 days left.
	UrgencyNormal Urgency = "normal"
	// UrgencyHigh: more than 24 hours and at most 72 hours left.
	UrgencyHigh Urgency = "high"
	// UrgencyCritical: at most 24 hours left.
	UrgencyCritical Urgency = "critical"
	// UrgencyPastDue: due_by has passed while a response was needed; the
	// dispute is lost by default.
	UrgencyPastDue Urgency = "past_due"
)

// Urgency thresholds.
const (
	criticalWithin = 24 * time.Hour
	highWithin     = 72 * time.Hour
	normalWithin   = 7 * 24 * time.Hour
)

// DeadlineInfo is where a dispute stands against its evidence deadline.
type DeadlineInfo struct {
	// DueBy is Stripe's evidence_details.due_by in UTC; zero when Stripe
	// set none.
	DueBy time.Time `json:"due_by"`
	// Left is DueBy − now: negative once due_by has passed, zero when DueBy
	// is zero.
	Left time.Duration `json:"left"`
	// NoResponsePossible is true when due_by is zero: Stripe accepts no
	// evidence for this dispute.
	NoResponsePossible bool `json:"no_response_possible"`
	// AwaitingResponse is true when the status asks for evidence
	// (needs_response, warning_needs_response) — or is one this package
	// does not know, so a new status never hides a deadline.
	AwaitingResponse bool `json:"awaiting_response"`
	// PastDue is true when a response was awaited and due_by is not after
	// now: evidence can no longer be submitted.
	PastDue bool `json:"past_due"`
	// Inquiry is true for warning_* statuses (not yet a chargeback).
	Inquiry bool `json:"inquiry"`
	// RefundPreventsChargeback is true for an open inquiry whose charge is
	// still refundable: refunding now stops it becoming a chargeback.
	RefundPreventsChargeback bool `json:"refund_prevents_chargeback"`
	// LateSubmission mirrors Stripe's evidence_details.past_due: the last
	// evidence was submitted after due_by and may not reach the bank.
	LateSubmission bool `json:"late_submission"`
	// Urgency buckets Left (none when no response is awaited or possible).
	Urgency Urgency `json:"urgency"`
	// Summary says all of this in one sentence for the analyst.
	Summary string `json:"summary"`
}

// statusNeedsNoResponse lists the statuses in which no evidence is asked
// for: under review, decided, prevented or refunded.
var statusNeedsNoResponse = map[string]bool{
	DisputeStatusWarningUnderReview: true,
	DisputeStatusWarningClosed:      true,
	DisputeStatusUnderReview:        true,
	DisputeStatusWon:                true,
	DisputeStatusLost:               true,
	DisputeStatusPrevented:          true,
	DisputeStatusChargeRefunded:     true,
}

// Deadline returns how long is left to respond to d at now and how urgent
// that is. A nil or zero EvidenceDueBy means no response is possible
// (urgency none). A response is awaited in needs_response and
// warning_needs_response, and in any status not listed here
// (statuses are open strings; a missed deadline loses the dispute, a false
// alarm costs a glance). At exactly due_by the dispute is past due.
func (d Dispute) Deadline(now time.Time) DeadlineInfo {
	status := normalizeDisputeStatus(d.Status)
	info := DeadlineInfo{
		Inquiry:          Dispute{Status: status}.IsInquiry(),
		AwaitingResponse: !statusNeedsNoResponse[status],
		LateSubmission:   d.PastDue,
	}
	info.RefundPreventsChargeback = info.Inquiry && d.IsChargeRefundable && status != DisputeStatusWarningClosed
	if d.EvidenceDueBy == nil || d.EvidenceDueBy.IsZero() {
		info.NoResponsePossible = true
		info.Urgency = UrgencyNone
		info.Summary = "No response possible: Stripe set no evidence due date."
		return withRefundHint(info)
	}
	info.DueBy = d.EvidenceDueBy.UTC()
	info.Left = info.DueBy.Sub(now)
	due := info.DueBy.Format("2006-01-02 15:04 MST")

	switch {
	case !info.AwaitingResponse:
		info.Urgency = UrgencyNone
		info.Summary = fmt.Sprintf("Status %s: no response needed (evidence was due %s).", status, due)
	case info.Left <= 0:
		info.PastDue = true
		info.Urgency = UrgencyPastDue
		info.Summary = fmt.Sprintf("Past due since %s (%s ago): evidence can no longer be submitted.", due, humanDuration(-info.Left))
	default:
		info.Urgency = urgencyFor(info.Left)
		info.Summary = fmt.Sprintf("Evidence due %s: %s left.", due, humanDuration(info.Left))
	}
	return withRefundHint(info)
}

// withRefundHint appends the inquiry refund hint to the summary.
func withRefundHint(info DeadlineInfo) DeadlineInfo {
	if info.RefundPreventsChargeback {
		info.Summary += " Inquiry: refunding the charge now prevents a chargeback."
	}
	return info
}

// urgencyFor buckets a positive time left.
func urgencyFor(left time.Duration) Urgency {
	switch {
	case left <= criticalWithin:
		return UrgencyCritical
	case left <= highWithin:
		return UrgencyHigh
	case left <= normalWithin:
		return UrgencyNormal
	default:
		return UrgencyLow
	}
}

// humanDuration writes d (≥ 0) in its two largest units: "2 days 4 hours",
// "5 hours 30 minutes", "45 minutes", "less than a minute".
func humanDuration(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	days := int64(d / (24 * time.Hour))
	hours := int64(d % (24 * time.Hour) / time.Hour)
	minutes := int64(d % time.Hour / time.Minute)
	switch {
	case days > 0 && hours > 0:
		return plural(days, "day") + " " + plural(hours, "hour")
	case days > 0:
		return plural(days, "day")
	case hours > 0 && minutes > 0:
		return plural(hours, "hour") + " " + plural(minutes, "minute")
	case hours > 0:
		return plural(hours, "hour")
	default:
		return plural(minutes, "minute")
	}
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// Stripe dispute statuses (dispute.status). The warning_* statuses are
// inquiries (retrievals), not yet chargebacks. Statuses are open strings:
// newer API versions add prevented, older ones had charge_refunded.
const (
	DisputeStatusWarningNeedsResponse = "warning_needs_response"
	DisputeStatusWarningUnderReview   = "warning_under_review"
	DisputeStatusWarningClosed        = "warning_closed"
	DisputeStatusNeedsResponse        = "needs_response"
	DisputeStatusUnderReview          = "under_review"
	DisputeStatusWon                  = "won"
	DisputeStatusLost                 = "lost"
	DisputeStatusPrevented            = "prevented"
	DisputeStatusChargeRefunded       = "charge_refunded"
)

// normalizeDisputeStatus returns a Stripe status trimmed and lower-cased.
func normalizeDisputeStatus(status string) string {
	return strings.ToLower(strings.TrimSpace(status))
}

// KnownDisputeStatus reports whether status is a dispute status Recourse
// knows. Statuses are open strings: callers must handle the others (keep
// them, and have a person look).
func KnownDisputeStatus(status string) bool {
	return KnownStatus(KindDispute, normalizeDisputeStatus(status))
}

// IsFinalDisputeStatus reports whether status is one a dispute ends in: won,
// lost, warning_closed, prevented (API 2025-08-27: stopped before becoming a
// chargeback) or charge_refunded (older APIs: the charge was refunded).
func IsFinalDisputeStatus(status string) bool {
	switch normalizeDisputeStatus(status) {
	case DisputeStatusWon, DisputeStatusLost, DisputeStatusWarningClosed, DisputeStatusPrevented, DisputeStatusChargeRefunded:
		return true
	}
	return false
}
