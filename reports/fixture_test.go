package reports_test

import (
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/db"
)

// The seeded history runs from February to mid-March 2026; the reports are
// asked about [from, to) = [Mon 2 March, Mon 16 March), two ISO weeks, with
// the previous equal-length period [16 Feb, 2 Mar) for root causes. The
// support team works 09:00–17:00 UTC Monday to Friday and Tuesday 10 March
// is its holiday; other teams have no calendar.
var (
	from = day(2, 0, 0)
	to   = day(16, 0, 0)
)

// day is 2026-03-d h:m UTC (d ≤ 0 reaches back into February).
func day(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC) }
func feb(d, h, m int) time.Time { return time.Date(2026, 2, d, h, m, 0, 0, time.UTC) }

func slaPolicy(t testing.TB) cases.SLAPolicy {
	t.Helper()
	p := cases.DefaultSLAPolicy()
	p.Calendars = map[string]*cases.Calendar{"support": {TimeZone: "UTC",
		Hours:    map[string]string{"mon": "09:00-17:00", "tue": "09:00-17:00", "wed": "09:00-17:00", "thu": "09:00-17:00", "fri": "09:00-17:00"},
		Holidays: []string{"2026-03-10"}}}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

type seedCase struct {
	id, kind, state, team, channel, bl, assignee string
	created                                      time.Time
	responded, closed                            time.Time // zero: none
	frDue, resDue                                time.Time
	frBreached, resBreached                      time.Time // zero: none
	amount                                       int64
	currency, tags                               string
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func exec(t testing.TB, d *db.DB, q string, args ...any) {
	t.Helper()
	if err := d.Gorm.Exec(q, args...).Error; err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func insertCase(t testing.TB, d *db.DB, c seedCase) {
	t.Helper()
	status := "open"
	if !c.closed.IsZero() {
		status = "closed"
	}
	if c.tags == "" {
		c.tags = "[]"
	}
	if c.frDue.IsZero() {
		c.frDue = c.created.Add(24 * time.Hour)
	}
	if c.resDue.IsZero() {
		c.resDue = c.created.Add(7 * 24 * time.Hour)
	}
	var amount any
	if c.amount != 0 {
		amount = c.amount
	}
	exec(t, d, `INSERT INTO cases (id, kind, state, status, priority, priority_rank, assignee, team, business_line, channel, tags, title,
  amount, currency, first_response_due, resolution_due, first_responded_at, first_response_breached_at, resolution_breached_at, breached,
  version, created_at, updated_at, closed_at) VALUES (?, ?, ?, ?, 'normal', 2, ?, ?, ?, ?, ?, 'seeded', ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
		c.id, c.kind, c.state, status, nullStr(c.assignee), c.team, nullStr(c.bl), c.channel, c.tags, amount, nullStr(c.currency),
		c.frDue.UTC(), c.resDue.UTC(), nullTime(c.responded), nullTime(c.frBreached), nullTime(c.resBreached),
		!c.frBreached.IsZero() || !c.resBreached.IsZero(), c.created.UTC(), c.created.UTC(), nullTime(c.closed))
}

func insertEntry(t testing.TB, d *db.DB, caseID string, at time.Time, typ, summary, toState string) {
	t.Helper()
	exec(t, d, `INSERT INTO case_timeline (case_id, at, actor, actor_type, type, summary, to_state) VALUES (?, ?, 'system', 'system', ?, ?, ?)`,
		caseID, at.UTC(), typ, summary, nullStr(toState))
}

type seedAction struct {
	id, caseID, by, status, approval, decidedBy string
	created, decided                            time.Time
}

func insertAction(t testing.TB, d *db.DB, a seedAction) {
	t.Helper()
	exec(t, d, `INSERT INTO actions (id, case_id, type, params, status, requested_by, requested_role, client_key, request_hash, provider_key,
  approval_reasons, decided_by, decided_at, created_at, updated_at) VALUES (?, ?, 'refund', '{}', ?, ?, 'agent', ?, 'h', ?, ?, ?, ?, ?, ?)`,
		a.id, a.caseID, a.status, a.by, "key_"+a.id, "recourse_"+a.id, nullStr(a.approval), nullStr(a.decidedBy), nullTime(a.decided),
		a.created.UTC(), a.created.UTC())
}

func insertCharge(t testing.TB, d *db.DB, id, status, code string, created time.Time) {
	t.Helper()
	exec(t, d, `INSERT INTO billing_charges (id, amount, currency, status, failure_code, created, event_id, event_created, created_at, updated_at)
  VALUES (?, 1000, 'usd', ?, ?, ?, ?, ?, ?, ?)`, id, status, code, created.UTC(), "evt_"+id, created.UTC(), created.UTC(), created.UTC())
}

func insertRefund(t testing.TB, d *db.DB, id, reason, status, currency string, amount int64, created time.Time) {
	t.Helper()
	exec(t, d, `INSERT INTO billing_refunds (id, charge_id, amount, currency, status, reason, created, event_id, event_created, created_at, updated_at)
  VALUES (?, 'ch_x', ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, amount, currency, status, reason, created.UTC(), "evt_"+id, created.UTC(), created.UTC(), created.UTC())
}

func insertDispute(t testing.TB, d *db.DB, id, reason, status string, created time.Time) {
	t.Helper()
	exec(t, d, `INSERT INTO billing_disputes (id, charge_id, amount, currency, status, reason, card_brand, created, event_id, event_created, created_at, updated_at)
  VALUES (?, ?, 2500, 'usd', ?, ?, 'visa', ?, ?, ?, ?, ?)`, id, "ch_"+id, status, reason, created.UTC(), "evt_"+id, created.UTC(), created.UTC(), created.UTC())
}

// seed writes the history the tests assert on. Each case's comment gives
// the figures it contributes.
func seed(t testing.TB, d *db.DB) {
	t.Helper()
	for _, c := range []seedCase{
		// Before the range: A is still open, B closes inside it (both in
		// the backlog at from); Z and C11 closed before it.
		{id: "A", kind: "billing_inquiry", state: "in_progress", team: "support", channel: "email", bl: "ecommerce", assignee: "alice",
			created: feb(20, 10, 0), responded: feb(20, 11, 0), tags: `["vip"]`},
		{id: "B", kind: "refund_request", state: "refunded", team: "support", channel: "chat", bl: "live", assignee: "bob",
			created: feb(25, 10, 0), responded: feb(25, 11, 0), closed: day(3, 10, 0), resDue: feb(28, 10, 0)},
		{id: "Z", kind: "billing_inquiry", state: "resolved", team: "support", channel: "chat", created: feb(10, 9, 0), closed: feb(15, 9, 0)},
		{id: "C11", kind: "billing_inquiry", state: "resolved", team: "payments", channel: "email", created: feb(20, 12, 0),
			closed: feb(21, 12, 0), tags: `["vip"]`},
		// In the range.
		// C1: Fri 16:00 → first response Mon 10:00 (66 h; 2 business
		// hours) → resolved Wed 10:00 over the Tuesday holiday (114 h; 10
		// business hours).
		{id: "C1", kind: "billing_inquiry", state: "resolved", team: "support", channel: "chat", bl: "ecommerce", assignee: "alice",
			created: day(6, 16, 0), responded: day(9, 10, 0), frDue: day(9, 12, 0), closed: day(11, 10, 0), resDue: day(11, 17, 0),
			tags: `["double_charge"]`},
		// C2: opened exactly at from; first response breached Mon 09:00,
		// closed Tue 09:00, reopened Wed 12:00 (fresh clocks), answered
		// Wed 13:00 (61 h; 20 business hours), closed again Thu 12:00
		// (84 h; 27 business hours).
		{id: "C2", kind: "refund_request", state: "refunded", team: "support", channel: "email", bl: "live", assignee: "bob",
			created: from, responded: day(4, 13, 0), frDue: day(4, 16, 0), closed: day(5, 12, 0), resDue: day(6, 12, 0)},
		// C3: a failed renewal recovered after both clocks breached (6 days).
		{id: "C3", kind: "payment_failure", state: "recovered", team: "billing_support", channel: "stripe",
			created: day(3, 8, 0), closed: day(9, 8, 0), frDue: day(4, 8, 0), resDue: day(6, 8, 0),
			frBreached: day(6, 8, 0), resBreached: day(6, 8, 0), amount: 4900, currency: "usd"},
		// C4: churned in 48 h; C5 opened the last second of the range.
		{id: "C4", kind: "payment_failure", state: "churned", team: "billing_support", channel: "stripe",
			created: day(10, 10, 0), closed: day(12, 10, 0), amount: 1500, currency: "eur"},
		{id: "C5", kind: "payment_failure", state: "failing", team: "billing_support", channel: "stripe",
			created: day(15, 23, 59).Add(59 * time.Second), amount: 900, currency: "usd"},
		// C6: a trial converted in 96 h.
		{id: "C6", kind: "trial_conversion", state: "converted", team: "billing_support", channel: "stripe",
			created: day(4, 0, 0), closed: day(8, 0, 0)},
		// C7: a cancellation retained after a retention offer (1 h to
		// answer, 48 h to resolve).
		{id: "C7", kind: "cancellation", state: "retained", team: "billing_support", channel: "in_app", assignee: "carol",
			created: day(5, 10, 0), responded: day(5, 11, 0), frDue: day(5, 22, 0), closed: day(7, 10, 0)},
		// C8: answered and canceled exactly at to: neither is in the range,
		// and it is in the backlog at to.
		{id: "C8", kind: "cancellation", state: "canceled", team: "billing_support", channel: "in_app",
			created: day(6, 10, 0), responded: to, closed: to},
		// C9: first response breached Thu 17:00, made Fri 09:30 (24.5 h;
		// 8.5 business hours); still open.
		{id: "C9", kind: "billing_inquiry", state: "in_progress", team: "support", channel: "phone", bl: "ecommerce", assignee: "alice",
			created: day(12, 9, 0), responded: day(13, 9, 30), frDue: day(12, 17, 0), frBreached: day(12, 17, 0),
			tags: `["double_charge","vip"]`},
		// C10: escalated to payments 30 minutes after opening (the
		// escalation is its first response).
		{id: "C10", kind: "billing_inquiry", state: "new", team: "payments", channel: "chat",
			created: day(13, 12, 0), responded: day(13, 12, 30), frDue: day(14, 12, 0)},
	} {
		insertCase(t, d, c)
	}
	insertEntry(t, d, "B", feb(28, 10, 0), cases.EntrySLABreached, "SLA breached: resolution was due 2026-02-28T10:00:00Z", "")
	insertEntry(t, d, "C2", day(2, 9, 0), cases.EntrySLABreached, "SLA breached: first response was due 2026-03-02T09:00:00Z", "")
	insertEntry(t, d, "C2", day(3, 9, 0), cases.EntryTransition, "refund: in_progress → refunded", "refunded")
	insertEntry(t, d, "C2", day(4, 12, 0), cases.EntryReopened, "reopen: refunded → in_progress", "in_progress")
	insertEntry(t, d, "C3", day(6, 8, 0), cases.EntrySLABreached,
		"SLA breached: first response was due 2026-03-04T08:00:00Z; resolution was due 2026-03-06T08:00:00Z — escalated: priority normal → high", "")
	insertEntry(t, d, "C7", day(5, 11, 0), cases.EntryTransition, "offer_retention: requested → retention_offered", "retention_offered")
	insertEntry(t, d, "C9", day(12, 17, 0), cases.EntrySLABreached, "SLA breached: first response was due 2026-03-12T17:00:00Z", "")
	insertEntry(t, d, "C10", day(13, 12, 30), cases.EntryEscalated, "Escalated from support to payments: Card network outage", "")
	insertEntry(t, d, "C11", feb(20, 13, 0), cases.EntryEscalated, "Escalated from support to payments: card network outage", "")
	insertEntry(t, d, "C11", feb(20, 14, 0), cases.EntryEscalated, "Escalated from payments to finance: Refund over limit", "")

	for _, a := range []seedAction{
		{id: "act1", caseID: "C2", by: "bob", status: "succeeded", approval: `["over_agent_limit"]`, decidedBy: "dave",
			created: day(3, 8, 0), decided: day(3, 8, 30)},
		{id: "act2", caseID: "C1", by: "alice", status: "failed", created: day(10, 12, 0)},
		{id: "act3", caseID: "C3", by: "alice", status: "rejected", approval: `["over_agent_limit"]`, decidedBy: "dave",
			created: day(9, 7, 0), decided: day(9, 7, 30)},
		{id: "act4", caseID: "C9", by: "alice", status: "pending_approval", approval: `["x"]`, created: to},
		{id: "act5", caseID: "B", by: "bob", status: "succeeded", approval: `[]`, decidedBy: "erin",
			created: from.Add(-time.Second), decided: from},
	} {
		insertAction(t, d, a)
	}

	insertCharge(t, d, "ch1", "failed", "card_declined", day(3, 1, 0))
	insertCharge(t, d, "ch2", "failed", "card_declined", day(4, 1, 0))
	insertCharge(t, d, "ch3", "failed", "insufficient_funds", day(5, 1, 0))
	insertCharge(t, d, "ch4", "failed", "insufficient_funds", feb(20, 1, 0))
	insertCharge(t, d, "ch5", "failed", "expired_card", feb(25, 1, 0))
	insertCharge(t, d, "ch6", "succeeded", "", day(3, 1, 0))
	insertCharge(t, d, "ch7", "failed", "", day(15, 1, 0))
	insertCharge(t, d, "ch8", "failed", "card_declined", feb(10, 1, 0))

	insertRefund(t, d, "re1", "requested_by_customer", "succeeded", "usd", 1000, day(3, 2, 0))
	insertRefund(t, d, "re2", "requested_by_customer", "succeeded", "usd", 500, day(4, 2, 0))
	insertRefund(t, d, "re3", "duplicate", "succeeded", "eur", 700, day(5, 2, 0))
	insertRefund(t, d, "re4", "fraudulent", "failed", "usd", 999, day(5, 3, 0))
	insertRefund(t, d, "re5", "duplicate", "succeeded", "usd", 100, feb(20, 2, 0))
	insertRefund(t, d, "re6", "", "succeeded", "usd", 300, to)

	insertDispute(t, d, "dp1", "fraudulent", "won", day(3, 5, 0))
	insertDispute(t, d, "dp2", "fraudulent", "lost", day(10, 5, 0))
	insertDispute(t, d, "dp3", "product_not_received", "lost", feb(20, 5, 0))
}
