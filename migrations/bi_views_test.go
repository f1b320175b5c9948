package migrations_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// biSeed writes a few rows of everything the bi_* views and docs/sql.md
// read, as the application would (times through the driver, so SQLite
// holds them in its one text format), around now.
func biSeed(t *testing.T, d *db.DB, now time.Time) {
	t.Helper()
	h := time.Hour
	exec := func(q string, args ...any) {
		t.Helper()
		if err := d.Gorm.Exec(q, args...).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO users (email, display_name, role, active, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		"bob@example.com", "Bob", "agent", true, "$2a$10$secret-hash", now.Add(-100*h), now.Add(-100*h))
	exec(`INSERT INTO users (email, display_name, role, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		"sue@example.com", "Sue", "supervisor", true, now.Add(-100*h), now.Add(-100*h))
	// c_open: open, breached, assigned to Bob, answered an hour after opening.
	// c_closed: a payment failure recovered after 10 h, 2 h of it waiting.
	// c_dp: the dispute's case, past its deadline.
	cases := []struct {
		id, kind, state, status, assignee, dispute string
		opened                                     time.Time
		responded, closed, resBreached             *time.Time
		breached                                   bool
		pausedUS                                   int64
	}{
		{id: "c_open", kind: "refund_request", state: "open", status: "open", assignee: "Bob", opened: now.Add(-5 * h),
			responded: ptr(now.Add(-4 * h)), breached: true, resBreached: ptr(now.Add(-h))},
		{id: "c_closed", kind: "payment_failure", state: "recovered", status: "closed", opened: now.Add(-30 * h),
			closed: ptr(now.Add(-20 * h)), pausedUS: int64(2 * h / time.Microsecond)},
		{id: "c_dp", kind: "dispute", state: "needs_response", status: "open", assignee: "Nobody Known", dispute: "dp_1", opened: now.Add(-50 * h)},
	}
	for _, c := range cases {
		var assignee, dispute any
		if c.assignee != "" {
			assignee = c.assignee
		}
		if c.dispute != "" {
			dispute = c.dispute
		}
		exec(`INSERT INTO cases (id, kind, state, status, priority, priority_rank, team, business_line, channel, title, description,
			customer_id, dispute_id, subject_id, amount, currency, first_response_due, resolution_due, first_responded_at, resolution_breached_at,
			breached, sla_due, sla_paused_total_us, assignee, version, created_at, updated_at, closed_at)
			VALUES (?, ?, ?, ?, 'normal', 2, 'support', 'saas', 'stripe', 'Jane Doe wants her money', 'secret free text',
			'cus_1', ?, ?, 4900, 'usd', ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
			c.id, c.kind, c.state, c.status, dispute, "subj_"+c.id, c.opened.Add(2*h), c.opened.Add(24*h), c.responded, c.resBreached,
			c.breached, c.opened.Add(24*h), c.pausedUS, assignee, c.opened, c.opened, c.closed)
	}
	exec(`INSERT INTO case_timeline (case_id, at, actor, actor_type, type, summary) VALUES ('c_open', ?, 'Bob', 'user', 'escalated', 'to billing: wrong plan')`, now.Add(-3*h))
	exec(`INSERT INTO case_timeline (case_id, at, actor, actor_type, type, summary) VALUES ('c_closed', ?, 'Bob', 'user', 'reopened', 'customer wrote back')`, now.Add(-25*h))
	actions := []struct {
		id, status, approval string
		decided, executed    *time.Time
		errorCode            any
	}{
		{id: "act_ok", status: "succeeded", approval: `["over the agent limit"]`, decided: ptr(now.Add(-4*h + 30*time.Minute)), executed: ptr(now.Add(-4*h + 31*time.Minute))},
		{id: "act_fail", status: "failed", approval: "[]", executed: ptr(now.Add(-4*h + 10*time.Second)), errorCode: "charge_already_refunded"},
	}
	for _, a := range actions {
		var decidedBy any
		if a.decided != nil {
			decidedBy = "Sue"
		}
		exec(`INSERT INTO actions (id, case_id, type, params, reason, status, requested_by, requested_role, client_key, request_hash, provider_key,
			approval_reasons, decided_by, decided_at, decision_note, subject_id, amount, currency, result, error_code, error_message, attempts, created_at, updated_at, executed_at)
			VALUES (?, 'c_open', 'refund', '{"comment":"secret params"}', 'secret reason', ?, 'Bob', 'agent', ?, 'hash', ?,
			?, ?, ?, 'secret note', 'ch_1', 2000, 'usd', '{"raw":"secret result"}', ?, 'declined', 1, ?, ?, ?)`,
			a.id, a.status, "key-"+a.id, "recourse_"+a.id, a.approval, decidedBy, a.decided, a.errorCode, now.Add(-4*h), now.Add(-4*h), a.executed)
	}
	exec(`INSERT INTO billing_disputes (id, charge_id, customer_id, amount, currency, status, reason, created, event_id, event_created, created_at, updated_at)
		VALUES ('dp_1', 'ch_1', 'cus_1', 4900, 'usd', 'lost', 'fraudulent', ?, 'evt_d', ?, ?, ?)`, now.Add(-50*h), now.Add(-50*h), now.Add(-50*h), now.Add(-50*h))
	exec(`INSERT INTO billing_disputes (id, charge_id, customer_id, amount, currency, status, reason, created, event_id, event_created, created_at, updated_at)
		VALUES ('dp_2', 'ch_2', 'cus_1', 900, 'usd', 'warning_needs_response', 'fraudulent', ?, 'evt_d2', ?, ?, ?)`, now.Add(-h), now.Add(-h), now.Add(-h), now.Add(-h))
	exec(`INSERT INTO dispute_deadline_marks (case_id, mark, dispute_id, due_by, at) VALUES ('c_dp', 'missed', 'dp_1', ?, ?)`, now.Add(-10*h), now.Add(-10*h))
	exec(`INSERT INTO dispute_evidence_drafts (case_id, dispute_id, version, status, fields, edited_fields, packet, updated_at, updated_by, staged_at)
		VALUES ('c_dp', 'dp_1', 1, 'staged', '{"customer_name":"Jane Doe"}', '[]', ?, ?, 'Bob', ?)`, []byte("%PDF secret"), now.Add(-20*h), now.Add(-20*h))
	exec(`INSERT INTO billing_charges (id, customer_id, amount, currency, status, failure_code, created, event_id, event_created, created_at, updated_at)
		VALUES ('ch_3', 'cus_1', 900, 'usd', 'failed', 'card_declined', ?, 'evt_c', ?, ?, ?)`, now.Add(-h), now.Add(-h), now.Add(-h), now.Add(-h))
	exec(`INSERT INTO billing_refunds (id, charge_id, customer_id, amount, currency, status, reason, created, event_id, event_created, created_at, updated_at)
		VALUES ('re_1', 'ch_1', 'cus_1', 2000, 'usd', 'succeeded', 'duplicate', ?, 'evt_r', ?, ?, ?)`, now.Add(-h), now.Add(-h), now.Add(-h), now.Add(-h))
	exec(`INSERT INTO webhook_events (event_id, type, created, payload, status, attempts, next_attempt_at, received_at, processed_at)
		VALUES ('evt_1', 'charge.dispute.created', ?, ?, 'processed', 1, ?, ?, ?)`,
		now.Add(-2*h-5*time.Second), []byte(`{"secret":"payload"}`), now.Add(-2*h), now.Add(-2*h), now.Add(-2*h+250*time.Millisecond))
	exec(`INSERT INTO webhook_events (event_id, type, created, payload, status, attempts, next_attempt_at, received_at, last_error)
		VALUES ('evt_2', 'invoice.payment_failed', ?, ?, 'dead', 5, ?, ?, 'invoice in_9 carries no customer')`,
		now.Add(-h), []byte(`{"secret":"payload"}`), now.Add(-h), now.Add(-h))
}

func ptr[T any](v T) *T { return &v }

// biRows returns every row of a bi_* view, keyed by the column keyCol.
func biRows(t *testing.T, d *db.DB, view, keyCol string) map[string]map[string]any {
	t.Helper()
	var rows []map[string]any
	if err := d.Gorm.Raw("SELECT * FROM " + view).Scan(&rows).Error; err != nil {
		t.Fatalf("%s: %v", view, err)
	}
	out := map[string]map[string]any{}
	for _, r := range rows {
		out[fmt.Sprint(r[keyCol])] = r
	}
	return out
}

// truth reads a boolean the way either database returns it.
func truth(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case int64:
		return b != 0
	}
	return false
}

// seconds reads a duration column (float, or NULL as -1).
func seconds(v any) float64 {
	switch f := v.(type) {
	case float64:
		return f
	case float32:
		return float64(f)
	case int64:
		return float64(f)
	}
	return -1
}

func near(got, want float64) bool { return got > want-0.01 && got < want+0.01 }

// The bi_* views give one row per case, action, dispute and webhook event,
// with the derived columns docs/sql.md describes, on both databases — and
// nothing secret or free-text from the tables they read.
func TestBIViews(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		now := time.Now().UTC().Truncate(time.Second)
		biSeed(t, d, now)

		cs := biRows(t, d, "bi_cases", "case_id")
		if len(cs) != 3 {
			t.Fatalf("bi_cases: %d rows, want 3", len(cs))
		}
		open, closed, dp := cs["c_open"], cs["c_closed"], cs["c_dp"]
		if open["assignee_email"] != "bob@example.com" || dp["assignee_email"] != nil {
			t.Errorf("assignee_email: %v, %v", open["assignee_email"], dp["assignee_email"])
		}
		if got := seconds(open["first_response_seconds"]); !near(got, 3600) {
			t.Errorf("first_response_seconds = %v, want 3600", got)
		}
		if seconds(open["resolution_seconds"]) != -1 || truth(open["is_closed"]) || !truth(open["breached"]) ||
			!truth(open["resolution_breached"]) || truth(open["first_response_breached"]) {
			t.Errorf("open case: %v", open)
		}
		if got := seconds(closed["resolution_seconds"]); !near(got, 36000) || !truth(closed["is_closed"]) {
			t.Errorf("closed case: resolution_seconds %v, is_closed %v", got, closed["is_closed"])
		}
		if got := seconds(closed["sla_paused_seconds"]); !near(got, 7200) {
			t.Errorf("sla_paused_seconds = %v, want 7200", got)
		}

		as := biRows(t, d, "bi_actions", "action_id")
		ok, failed := as["act_ok"], as["act_fail"]
		if len(as) != 2 || ok["case_kind"] != "refund_request" || ok["team"] != "support" || !truth(ok["needed_approval"]) || truth(failed["needed_approval"]) {
			t.Errorf("bi_actions: %v", as)
		}
		if got := seconds(ok["decision_seconds"]); !near(got, 1800) {
			t.Errorf("decision_seconds = %v, want 1800", got)
		}
		if got := seconds(failed["completion_seconds"]); !near(got, 10) || failed["error_code"] != "charge_already_refunded" {
			t.Errorf("failed action: completion %v, error %v", got, failed["error_code"])
		}

		ds := biRows(t, d, "bi_disputes", "dispute_id")
		lost, inquiry := ds["dp_1"], ds["dp_2"]
		if len(ds) != 2 || lost["case_id"] != "c_dp" || !truth(lost["lost"]) || truth(lost["won"]) || !truth(lost["is_final"]) ||
			!truth(lost["deadline_missed"]) || lost["evidence_status"] != "staged" || truth(lost["is_inquiry"]) {
			t.Errorf("lost dispute: %v", lost)
		}
		if inquiry["case_id"] != nil || !truth(inquiry["is_inquiry"]) || truth(inquiry["is_final"]) || truth(inquiry["deadline_missed"]) {
			t.Errorf("inquiry without a case: %v", inquiry)
		}

		ws := biRows(t, d, "bi_webhook_events", "event_id")
		if got := seconds(ws["evt_1"]["processing_seconds"]); !near(got, 0.25) {
			t.Errorf("processing_seconds = %v, want 0.25", got)
		}
		if got := seconds(ws["evt_1"]["delivery_delay_seconds"]); !near(got, 5) {
			t.Errorf("delivery_delay_seconds = %v, want 5", got)
		}
		if ws["evt_2"]["status"] != "dead" || seconds(ws["evt_2"]["processing_seconds"]) != -1 {
			t.Errorf("dead event: %v", ws["evt_2"])
		}

		// Nothing secret or free-text leaves through a view: no such
		// column, and no seeded secret in any value.
		forbidden := []string{"payload", "params", "result", "reason_text", "decision_note", "client_key", "request_hash", "provider_key",
			"token_hash", "password_hash", "title", "description", "fields", "packet", "error_message", "lease_owner", "csrf"}
		for _, view := range []string{"bi_cases", "bi_actions", "bi_disputes", "bi_webhook_events"} {
			var rows []map[string]any
			if err := d.Gorm.Raw("SELECT * FROM " + view).Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				for col, v := range r {
					if slices.Contains(forbidden, col) {
						t.Errorf("%s exposes %s", view, col)
					}
					if s := fmt.Sprint(v); strings.Contains(s, "secret") || strings.Contains(s, "Jane") {
						t.Errorf("%s.%s shows %q", view, col, s)
					}
				}
			}
		}
	})
}

// sqlBlock is a ```sql fenced block of a Markdown file.
var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// Every query in docs/sql.md runs on a migrated PostgreSQL database (the
// document's dialect), over rows of every kind it reads.
func TestSQLDocQueries(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/sql.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 10 {
		t.Fatalf("docs/sql.md has %d sql blocks; the extraction is broken", len(blocks))
	}
	d := dbtest.Open(t, db.Postgres)
	biSeed(t, d, time.Now().UTC().Truncate(time.Second))
	empty := 0
	for i, b := range blocks {
		q := strings.TrimSpace(b[1])
		var rows []map[string]any
		if err := d.Gorm.Raw(strings.TrimSuffix(q, ";")).Scan(&rows).Error; err != nil {
			t.Errorf("docs/sql.md query %d fails: %v\n%s", i+1, err, q)
			continue
		}
		if len(rows) == 0 {
			empty++
			t.Logf("docs/sql.md query %d returns no rows over the seed", i+1)
		}
	}
	if empty > 0 {
		t.Errorf("%d queries return nothing over the seed: seed what they read so they are really exercised", empty)
	}
}
