package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/pan"
)

// Eraser erases customers' personal data.
type Eraser struct {
	db    *db.DB
	clock clock.Clock
	audit *audit.Log
	log   *slog.Logger
}

// NewEraser returns the eraser over d; every erasure is audited in a.
func NewEraser(d *db.DB, c clock.Clock, a *audit.Log, log *slog.Logger) *Eraser {
	if log == nil {
		log = slog.Default()
	}
	return &Eraser{db: d, clock: c, audit: a, log: log}
}

// Request is one erasure: the provider's customer id, why (kept in the
// audit log; card numbers masked), and whether to go ahead although the
// customer has an open dispute case (whose evidence erasure destroys).
type Request struct {
	CustomerID string `json:"-"`
	Reason     string `json:"reason"`
	Force      bool   `json:"force"`
}

// Report says what an erasure changed, table by table (rows).
type Report struct {
	CustomerID    string           `json:"customer_id"`
	ErasedAt      time.Time        `json:"erased_at"`
	AlreadyErased bool             `json:"already_erased"`
	Cases         int              `json:"cases"`
	Rows          map[string]int64 `json:"rows"`
}

const maxReason = 1000

// auditAction is an erasure's audit log entry.
const auditAction = "customer.erase"

// changed is how many rows the erasure changed.
func (r Report) changed() int64 {
	var n int64
	for _, v := range r.Rows {
		n += v
	}
	return n
}

// Erase removes the customer's personal data — email, name, phone,
// address, IPs, device ids, the free text of their cases, notes, actions
// and evidence — from every table, in one transaction, and marks the
// customer erased so that the provider's later events bring none back.
// Ids, amounts, currencies, states and times stay; so does every audit log
// entry (its who, what, when and which object: only its free text is
// erased). Erasing again is allowed and finds what arrived since.
//
// Errors: EINVALID without a customer id or a reason; ECONFLICT
// (open_dispute) when the customer has an open dispute case and Force is
// not set — its evidence would be lost while the dispute can still be won.
func (e *Eraser) Erase(ctx context.Context, req Request) (Report, error) {
	id := strings.TrimSpace(req.CustomerID)
	reason := pan.Mask(strings.TrimSpace(req.Reason))
	switch {
	case id == "" || len(id) > 255:
		return Report{}, errs.Coded(errs.EINVALID, "invalid_customer", "a customer id is required")
	case reason == "":
		return Report{}, errs.Coded(errs.EINVALID, "reason_required", "say why the customer is erased (e.g. the request's reference)")
	case len(reason) > maxReason:
		return Report{}, errs.Coded(errs.EINVALID, "reason_too_long", "the reason is longer than %d characters", maxReason)
	}
	now := e.clock.Now().UTC()
	rep, err := e.pass(ctx, id, reason, req.Force, now, "")
	if err != nil {
		return Report{}, err
	}
	if e.db.Dialect.OverlappingWriters() {
		// A transaction that was applying one of the customer's events while
		// this one ran read "not erased" and wrote what this one could not
		// see yet (a new charge, its payload). Once every transaction older
		// than the erasure has ended, a second pass finds and erases it; a
		// later one reads "erased" and keeps nothing. (SQLite has one writer
		// and serializable snapshots: nothing overlaps there.)
		if err := e.waitOlderTransactions(ctx); err != nil {
			e.log.Warn("customer erasure: the sweep after concurrent writes did not run", "customer", id, "err", err)
			return rep, nil
		}
		again, err := e.pass(ctx, id, reason, true, now, "sweep after writes that were in flight during the erasure: ")
		if err != nil {
			e.log.Warn("customer erasure: the sweep after concurrent writes failed", "customer", id, "err", err)
			return rep, nil
		}
		for t, n := range again.Rows {
			rep.Rows[t] += n
		}
	}
	e.log.Info("customer erased", "customer", id, "cases", rep.Cases, "rows", rep.Rows)
	return rep, nil
}

// pass is one erasure transaction. sweep, when not empty, marks a second
// pass in the audit log (recorded only when it changed something).
func (e *Eraser) pass(ctx context.Context, id, reason string, force bool, now time.Time, sweep string) (Report, error) {
	rep := Report{CustomerID: id, ErasedAt: now, Rows: map[string]int64{}}
	err := e.db.Transact(ctx, func(tx *gorm.DB) error {
		tx = tx.WithContext(ctx)
		grant := randomID()
		if err := tx.Exec(`INSERT INTO erasure_grants (id) VALUES (?)`, grant).Error; err != nil {
			return fmt.Errorf("open erasure of %s: %w", id, err)
		}
		var n int64
		if err := tx.Table("erased_customers").Where("customer_id = ?", id).Count(&n).Error; err != nil {
			return err
		}
		rep.AlreadyErased = n > 0
		w := &eraseRun{tx: tx, customer: id, rep: &rep}
		if err := w.gather(); err != nil {
			return err
		}
		if !force && w.openDisputes > 0 {
			return errs.Coded(errs.ECONFLICT, "open_dispute",
				"customer %s has %d open dispute case(s): erasing now destroys the evidence; close them first, or force the erasure (GDPR art. 17(3)(e) allows keeping data needed for legal claims)", id, w.openDisputes)
		}
		rep.Cases = len(w.cases)
		if err := w.erase(); err != nil {
			return err
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Table("erased_customers").
			Create(map[string]any{"customer_id": id, "erased_at": now}).Error; err != nil {
			return fmt.Errorf("mark %s erased: %w", id, err)
		}
		if err := tx.Exec(`DELETE FROM erasure_grants WHERE id = ?`, grant).Error; err != nil {
			return fmt.Errorf("close erasure of %s: %w", id, err)
		}
		if sweep != "" && rep.changed() == 0 {
			return nil
		}
		return e.audit.Record(ctx, tx, audit.Entry{Action: auditAction, ObjectType: "customer", ObjectID: id,
			After: audit.Marshal(rep), Detail: sweep + w.scrub.text(reason)})
	})
	if err != nil {
		return Report{}, err
	}
	return rep, nil
}

// sweepWait bounds how long an erasure waits for the transactions that
// were running when it committed.
const sweepWait = 30 * time.Second

// waitOlderTransactions returns once no transaction of this database
// that began before now is still running (ours excluded), or errs after
// sweepWait.
func (e *Eraser) waitOlderTransactions(ctx context.Context) error {
	var since time.Time
	if err := e.db.Gorm.WithContext(ctx).Raw(`SELECT clock_timestamp()`).Scan(&since).Error; err != nil {
		return err
	}
	deadline := time.Now().Add(sweepWait)
	for {
		var n int64
		if err := e.db.Gorm.WithContext(ctx).Raw(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start < ?`, since).Scan(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d transaction(s) older than the erasure still running after %s", n, sweepWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// eraseRun is one erasure inside its transaction.
type eraseRun struct {
	tx       *gorm.DB
	customer string
	rep      *Report

	objects      []string // the customer's mirrored objects (subscriptions, invoices, charges, …)
	events       []string // provider events on the customer's billing timeline
	cases        []string
	actions      []string
	openDisputes int
	scrub        scrubber
}

// mirrorTables hold the customer's objects by customer_id.
var mirrorTables = []string{"billing_subscriptions", "billing_invoices", "billing_charges", "billing_refunds", "billing_disputes", "billing_fraud_warnings"}

// channelStripe is cases' channel of cases opened from provider events
// (cases.ChannelStripe; privacy imports no domain package).
const channelStripe = "stripe"

// chunk bounds IN lists (both databases take far more bind parameters).
const chunk = 500

func chunks(ids []string) [][]string {
	if len(ids) == 0 {
		return nil
	}
	var out [][]string
	for len(ids) > chunk {
		out = append(out, ids[:chunk])
		ids = ids[chunk:]
	}
	return append(out, ids)
}

// gather finds the customer's objects, events, cases and actions, and
// every identifier to erase from free text.
func (w *eraseRun) gather() error {
	tx := w.tx
	for _, t := range mirrorTables {
		var got []string
		if err := tx.Table(t).Where("customer_id = ?", w.customer).Pluck("id", &got).Error; err != nil {
			return fmt.Errorf("erase: list %s: %w", t, err)
		}
		w.objects = append(w.objects, got...)
	}
	if err := tx.Table("billing_timeline").Where("customer_id = ?", w.customer).Distinct("event_id").Pluck("event_id", &w.events).Error; err != nil {
		return fmt.Errorf("erase: list the customer's events: %w", err)
	}
	seen := map[string]bool{}
	addCases := func(where string, args ...any) error {
		var ids []string
		if err := tx.Table("cases").Where(where, args...).Pluck("id", &ids).Error; err != nil {
			return fmt.Errorf("erase: list cases: %w", err)
		}
		for _, c := range ids {
			if !seen[c] {
				seen[c] = true
				w.cases = append(w.cases, c)
			}
		}
		return nil
	}
	if err := addCases("customer_id = ?", w.customer); err != nil {
		return err
	}
	for _, part := range chunks(append([]string{w.customer}, w.objects...)) {
		if err := addCases("subject_id IN ?", part); err != nil {
			return err
		}
	}
	sort.Strings(w.cases)

	var identifiers []string
	var cust []struct{ Email, Name string }
	if err := tx.Table("billing_customers").Select("email, name").Where("id = ?", w.customer).Scan(&cust).Error; err != nil {
		return fmt.Errorf("erase: read customer: %w", err)
	}
	for _, c := range cust {
		identifiers = append(identifiers, c.Email, c.Name)
	}
	// The provider's payloads name the person in more places than the
	// mirror keeps (phone, addresses, billing details).
	if err := w.eachEventPayload(func(p []byte) { identifiers = collect(identifiers, p) }); err != nil {
		return err
	}
	var facts []struct{ IP, DeviceID, DeviceFingerprint, AccountID, UserAgent, Data string }
	if err := tx.Table("dispute_facts").Select("ip, device_id, device_fingerprint, account_id, user_agent, data").
		Where("customer_id = ?", w.customer).Scan(&facts).Error; err != nil {
		return fmt.Errorf("erase: read facts: %w", err)
	}
	for _, f := range facts {
		identifiers = append(identifiers, f.IP, f.DeviceID, f.DeviceFingerprint, f.AccountID, f.UserAgent)
		identifiers = collect(identifiers, []byte(f.Data))
	}
	for _, part := range chunks(w.cases) {
		var texts []struct{ Title, Description, Channel string }
		if err := tx.Table("cases").Select("title, description, channel").Where("id IN ? AND channel <> ?", part, channelStripe).Scan(&texts).Error; err != nil {
			return fmt.Errorf("erase: read cases: %w", err)
		}
		for _, t := range texts { // a person wrote these; they are quoted on timelines
			identifiers = append(identifiers, t.Title, t.Description)
		}
		var n int64
		if err := tx.Table("cases").Where("id IN ? AND dispute_id IS NOT NULL AND dispute_id <> '' AND status = 'open'", part).Count(&n).Error; err != nil {
			return fmt.Errorf("erase: count open disputes: %w", err)
		}
		w.openDisputes += int(n)
		var acts []string
		if err := tx.Table("actions").Where("case_id IN ?", part).Pluck("id", &acts).Error; err != nil {
			return fmt.Errorf("erase: list actions: %w", err)
		}
		w.actions = append(w.actions, acts...)
	}
	w.scrub = newScrubber(identifiers)
	return nil
}

// eventFilter selects the inbox rows about the customer: the events on
// their billing timeline and any event whose object is theirs.
func (w *eraseRun) eachEventPayload(fn func([]byte)) error {
	for _, set := range [][]string{w.events, append([]string{w.customer}, w.objects...)} {
		col := "event_id"
		if len(set) > 0 && set[0] == w.customer {
			col = "object_id"
		}
		for _, part := range chunks(set) {
			var ps [][]byte
			if err := w.tx.Table("webhook_events").Where(col+" IN ?", part).Pluck("payload", &ps).Error; err != nil {
				return fmt.Errorf("erase: read payloads: %w", err)
			}
			for _, p := range ps {
				fn(p)
			}
		}
	}
	return nil
}

func (w *eraseRun) count(table string, n int64) { w.rep.Rows[table] += n }

func (w *eraseRun) exec(table, sql string, args ...any) error {
	res := w.tx.Exec(sql, args...)
	if res.Error != nil {
		return fmt.Errorf("erase %s: %w", table, res.Error)
	}
	w.count(table, res.RowsAffected)
	return nil
}

// rewrite rereads each row's text columns by key and writes back those
// fn changes.
func (w *eraseRun) rewrite(table, key string, cols []string, where string, args []any, fn func(col, val string) string) error {
	var rows []map[string]any
	if err := w.tx.Table(table).Select(append([]string{key}, cols...)).Where(where, args...).Find(&rows).Error; err != nil {
		return fmt.Errorf("erase: read %s: %w", table, err)
	}
	for _, r := range rows {
		upd := map[string]any{}
		for _, c := range cols {
			s, ok := asString(r[c])
			if !ok {
				continue
			}
			if v := fn(c, s); v != s {
				upd[c] = v
			}
		}
		if len(upd) == 0 {
			continue
		}
		res := w.tx.Table(table).Where(key+" = ?", r[key]).Updates(upd)
		if res.Error != nil {
			return fmt.Errorf("erase %s: %w", table, res.Error)
		}
		w.count(table, res.RowsAffected)
	}
	return nil
}

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	case *string:
		if x != nil {
			return *x, true
		}
	}
	return "", false
}

func (w *eraseRun) erase() error {
	c := w.customer
	scrubText := func(_, v string) string { return w.scrub.text(v) }
	scrubJSON := func(_, v string) string { return w.scrub.json(v) }

	// The mirror: the person's details go, the money and states stay.
	steps := []struct{ table, sql string }{
		{"billing_customers", `UPDATE billing_customers SET email = '', name = '' WHERE id = ? AND (email <> '' OR name <> '')`},
		{"billing_subscriptions", `UPDATE billing_subscriptions SET cancellation_comment = '' WHERE customer_id = ? AND cancellation_comment <> ''`},
		{"billing_invoices", `UPDATE billing_invoices SET hosted_invoice_url = '' WHERE customer_id = ? AND hosted_invoice_url <> ''`},
		{"billing_charges", `UPDATE billing_charges SET failure_message = '', card_fingerprint = '' WHERE customer_id = ? AND (failure_message <> '' OR card_fingerprint <> '')`},
		// Evidence facts are nothing but personal data about the customer.
		{"dispute_facts", `DELETE FROM dispute_facts WHERE customer_id = ?`},
	}
	for _, s := range steps {
		if err := w.exec(s.table, s.sql, c); err != nil {
			return err
		}
	}
	if err := w.rewrite("billing_timeline", "id", []string{"summary"}, "customer_id = ?", []any{c}, scrubText); err != nil {
		return err
	}
	// The inbox: raw payloads of the customer's applied events. A pending
	// one is emptied when the worker applies it (the mirror sees the
	// customer is erased).
	for _, set := range []struct {
		col string
		ids []string
	}{{"event_id", w.events}, {"object_id", append([]string{c}, w.objects...)}} {
		for _, part := range chunks(set.ids) {
			if err := w.exec("webhook_events", `UPDATE webhook_events SET payload = ? WHERE `+set.col+` IN ? AND status <> 'pending' AND length(payload) > 0`, []byte{}, part); err != nil {
				return err
			}
		}
	}
	for _, part := range chunks(w.cases) {
		if err := w.erasePerCase(part, scrubText, scrubJSON); err != nil {
			return err
		}
	}
	// The audit log: every entry stays, with its actor, action, time, case
	// and object; its free text is erased (an erasure's own entries are
	// written without it, and stay as written).
	subjects := append(append(append([]string{c}, w.cases...), w.objects...), w.actions...)
	for _, part := range chunks(subjects) {
		if err := w.rewrite("audit_log", "id", []string{"before", "after", "detail"}, "object_id IN ? AND action <> ?", []any{part, auditAction}, scrubJSON); err != nil {
			return err
		}
	}
	for _, part := range chunks(w.cases) {
		if err := w.rewrite("audit_log", "id", []string{"before", "after", "detail"}, "case_id IN ? AND action <> ?", []any{part, auditAction}, scrubJSON); err != nil {
			return err
		}
	}
	return nil
}

func (w *eraseRun) erasePerCase(part []string, scrubText, scrubJSON func(string, string) string) error {
	whole := func(_, v string) string {
		if v == "" {
			return v
		}
		return Erased
	}
	// A person wrote a manual case's title; Recourse wrote a provider
	// case's ("Renewal failed: 49.00 USD"), which names no one and stays.
	if err := w.rewrite("cases", "id", []string{"title", "description"}, "id IN ? AND channel <> ?", []any{part, channelStripe}, whole); err != nil {
		return err
	}
	if err := w.rewrite("cases", "id", []string{"title", "description"}, "id IN ? AND channel = ?", []any{part, channelStripe}, func(col, v string) string {
		if col == "description" {
			return whole(col, v)
		}
		return scrubText(col, v)
	}); err != nil {
		return err
	}
	if err := w.rewrite("case_timeline", "id", []string{"summary", "body"}, "case_id IN ?", []any{part}, func(col, v string) string {
		if col == "body" {
			return whole(col, v)
		}
		return scrubText(col, v)
	}); err != nil {
		return err
	}
	if err := w.rewrite("actions", "id", []string{"params", "reason", "decision_note", "result", "error_message"}, "case_id IN ?", []any{part}, func(col, v string) string {
		switch col {
		case "reason", "decision_note":
			return whole(col, v)
		case "params", "result":
			return scrubJSON(col, v)
		}
		return scrubText(col, v)
	}); err != nil {
		return err
	}
	if err := w.rewrite("dispute_evidence_drafts", "case_id", []string{"fields"}, "case_id IN ?", []any{part}, func(_, v string) string {
		return eraseValues(v)
	}); err != nil {
		return err
	}
	if err := w.exec("dispute_evidence_drafts", `UPDATE dispute_evidence_drafts SET packet = NULL WHERE case_id IN ? AND packet IS NOT NULL`, part); err != nil {
		return err
	}
	if err := w.rewrite("events", "id", []string{"data"}, "subject IN ?", []any{part}, scrubJSON); err != nil {
		return err
	}
	return w.rewrite("notification_deliveries", "id", []string{"last_error"}, "subject IN ?", []any{part}, scrubText)
}
