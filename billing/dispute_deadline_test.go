package billing

import (
	"strings"
	"testing"
	"time"
)

func TestDeadline(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	const day = 24 * time.Hour
	tests := []struct {
		name       string
		d          Dispute
		urgency    Urgency
		left       time.Duration
		noResponse bool
		awaiting   bool
		pastDue    bool
		inquiry    bool
		refundStop bool
		summary    []string
	}{
		{name: "no due_by", d: Dispute{Status: DisputeStatusNeedsResponse},
			urgency: UrgencyNone, noResponse: true, awaiting: true, summary: []string{"No response possible"}},
		{name: "zero due_by", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: &time.Time{}},
			urgency: UrgencyNone, noResponse: true, awaiting: true},
		{name: "more than 7 days", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(7*day + time.Second)},
			urgency: UrgencyLow, left: 7*day + time.Second, awaiting: true, summary: []string{"Evidence due 2026-03-17 12:00 UTC: 7 days left."}},
		{name: "exactly 7 days", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(7 * day)},
			urgency: UrgencyNormal, left: 7 * day, awaiting: true},
		{name: "just over 72 hours", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(72*time.Hour + time.Second)},
			urgency: UrgencyNormal, left: 72*time.Hour + time.Second, awaiting: true},
		{name: "exactly 72 hours", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(72 * time.Hour)},
			urgency: UrgencyHigh, left: 72 * time.Hour, awaiting: true, summary: []string{"3 days left"}},
		{name: "just over 24 hours", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(24*time.Hour + time.Second)},
			urgency: UrgencyHigh, left: 24*time.Hour + time.Second, awaiting: true},
		{name: "exactly 24 hours", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(24 * time.Hour)},
			urgency: UrgencyCritical, left: 24 * time.Hour, awaiting: true},
		{name: "one second", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(time.Second)},
			urgency: UrgencyCritical, left: time.Second, awaiting: true, summary: []string{"less than a minute left"}},
		{name: "exactly due", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(0)},
			urgency: UrgencyPastDue, awaiting: true, pastDue: true, summary: []string{"Past due since 2026-03-10 12:00 UTC"}},
		{name: "past due", d: Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: at(-26 * time.Hour)},
			urgency: UrgencyPastDue, left: -26 * time.Hour, awaiting: true, pastDue: true, summary: []string{"(1 day 2 hours ago)", "can no longer be submitted"}},
		{name: "status normalised", d: Dispute{Status: " NEEDS_RESPONSE ", EvidenceDueBy: at(48 * time.Hour)},
			urgency: UrgencyHigh, left: 48 * time.Hour, awaiting: true},

		{name: "under review", d: Dispute{Status: DisputeStatusUnderReview, EvidenceDueBy: at(2 * day)},
			urgency: UrgencyNone, left: 2 * day, summary: []string{"Status under_review: no response needed"}},
		{name: "under review after due_by is not past due", d: Dispute{Status: DisputeStatusUnderReview, EvidenceDueBy: at(-day)},
			urgency: UrgencyNone, left: -day},
		{name: "won", d: Dispute{Status: DisputeStatusWon, EvidenceDueBy: at(-day)}, urgency: UrgencyNone, left: -day},
		{name: "lost", d: Dispute{Status: DisputeStatusLost, EvidenceDueBy: at(day)}, urgency: UrgencyNone, left: day},
		{name: "prevented", d: Dispute{Status: DisputeStatusPrevented, EvidenceDueBy: at(day)}, urgency: UrgencyNone, left: day},
		{name: "charge refunded", d: Dispute{Status: DisputeStatusChargeRefunded, EvidenceDueBy: at(day)}, urgency: UrgencyNone, left: day},
		{name: "unknown status keeps the deadline", d: Dispute{Status: "needs_more_evidence", EvidenceDueBy: at(10 * time.Hour)},
			urgency: UrgencyCritical, left: 10 * time.Hour, awaiting: true, summary: []string{"10 hours left"}},
		{name: "empty status keeps the deadline", d: Dispute{EvidenceDueBy: at(5 * day)},
			urgency: UrgencyNormal, left: 5 * day, awaiting: true},

		{name: "inquiry, refundable", d: Dispute{Status: DisputeStatusWarningNeedsResponse, IsChargeRefundable: true, EvidenceDueBy: at(3*day + 4*time.Hour)},
			urgency: UrgencyNormal, left: 3*day + 4*time.Hour, awaiting: true, inquiry: true, refundStop: true,
			summary: []string{"3 days 4 hours left", "refunding the charge now prevents a chargeback"}},
		{name: "inquiry, not refundable", d: Dispute{Status: DisputeStatusWarningNeedsResponse, EvidenceDueBy: at(day)},
			urgency: UrgencyCritical, left: day, awaiting: true, inquiry: true},
		{name: "inquiry under review, refundable", d: Dispute{Status: DisputeStatusWarningUnderReview, IsChargeRefundable: true, EvidenceDueBy: at(day)},
			urgency: UrgencyNone, left: day, inquiry: true, refundStop: true},
		{name: "inquiry closed", d: Dispute{Status: DisputeStatusWarningClosed, IsChargeRefundable: true, EvidenceDueBy: at(day)},
			urgency: UrgencyNone, left: day, inquiry: true},
		{name: "inquiry without due_by, refundable", d: Dispute{Status: DisputeStatusWarningNeedsResponse, IsChargeRefundable: true},
			urgency: UrgencyNone, noResponse: true, awaiting: true, inquiry: true, refundStop: true,
			summary: []string{"No response possible", "prevents a chargeback"}},
		{name: "chargeback is never refund-to-prevent", d: Dispute{Status: DisputeStatusNeedsResponse, IsChargeRefundable: true, EvidenceDueBy: at(day)},
			urgency: UrgencyCritical, left: day, awaiting: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.d.Deadline(now)
			if got.Urgency != tc.urgency || got.Left != tc.left || got.NoResponsePossible != tc.noResponse ||
				got.AwaitingResponse != tc.awaiting || got.PastDue != tc.pastDue || got.Inquiry != tc.inquiry ||
				got.RefundPreventsChargeback != tc.refundStop {
				t.Fatalf("Deadline = %+v", got)
			}
			if tc.noResponse != got.DueBy.IsZero() {
				t.Errorf("DueBy %v with NoResponsePossible %v", got.DueBy, tc.noResponse)
			}
			for _, s := range tc.summary {
				if !strings.Contains(got.Summary, s) {
					t.Errorf("summary %q lacks %q", got.Summary, s)
				}
			}
		})
	}
}

func TestDeadlineUTCAndLateSubmission(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CET", 3600)
	due := time.Date(2026, 3, 12, 0, 59, 0, 0, berlin)
	now := time.Date(2026, 3, 10, 23, 59, 0, 0, time.UTC)
	got := Dispute{Status: DisputeStatusNeedsResponse, EvidenceDueBy: &due, PastDue: true}.Deadline(now)
	if got.DueBy.Location() != time.UTC || !got.DueBy.Equal(due) {
		t.Errorf("DueBy = %v", got.DueBy)
	}
	if got.Left != 24*time.Hour || got.Urgency != UrgencyCritical || !got.LateSubmission {
		t.Errorf("got %+v", got)
	}
	if !strings.Contains(got.Summary, "2026-03-11 23:59 UTC") {
		t.Errorf("summary %q", got.Summary)
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	tests := map[time.Duration]string{
		0:                                "less than a minute",
		59 * time.Second:                 "less than a minute",
		time.Minute:                      "1 minute",
		45 * time.Minute:                 "45 minutes",
		time.Hour:                        "1 hour",
		5*time.Hour + 30*time.Minute:     "5 hours 30 minutes",
		24 * time.Hour:                   "1 day",
		49 * time.Hour:                   "2 days 1 hour",
		21*24*time.Hour + 59*time.Minute: "21 days",
	}
	for d, want := range tests {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q; want %q", d, got, want)
		}
	}
}
