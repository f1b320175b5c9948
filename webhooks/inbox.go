package webhooks

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Inbox is the durable store of received events.
type Inbox struct {
	db    *db.DB
	audit *audit.Log
}

// NewInbox returns the inbox over d.
func NewInbox(d *db.DB) *Inbox { return &Inbox{db: d} }

// WithAudit makes every replay recorded in l, in the replay's transaction,
// with the actor in the caller's context (an admin, or cli:<os user>), and
// returns in.
func (in *Inbox) WithAudit(l *audit.Log) *Inbox {
	in.audit = l
	return in
}

func (in *Inbox) recordReplay(ctx context.Context, tx *gorm.DB, eventID, detail string) error {
	if in.audit == nil {
		return nil
	}
	return in.audit.Record(ctx, tx, audit.Entry{Action: "webhook_event.replay", ObjectType: "webhook_event", ObjectID: eventID,
		Before: audit.Marshal(map[string]string{"status": string(StatusDead)}), After: audit.Marshal(map[string]string{"status": string(StatusPending)}),
		Detail: detail})
}

// Record is an inbox row as operators see it.
type Record struct {
	Seq           int64      `json:"-"`
	EventID       string     `json:"id"`
	Type          string     `json:"type"`
	Created       time.Time  `json:"created"`
	Livemode      bool       `json:"livemode"`
	Account       *string    `json:"account"`
	APIVersion    *string    `json:"api_version"`
	ObjectType    *string    `json:"object_type"`
	ObjectID      *string    `json:"object_id"`
	Status        Status     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastError     *string    `json:"last_error"`
	ReceivedAt    time.Time  `json:"received_at"`
	ProcessedAt   *time.Time `json:"processed_at"`
	Payload       []byte     `json:"-"`
}

type inboxRow struct {
	ID            int64
	EventID       string
	Type          string
	Created       time.Time
	Livemode      bool
	Account       *string
	APIVersion    *string
	ObjectType    *string
	ObjectID      *string
	Payload       []byte
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastError     *string
	LeaseOwner    *string
	LeaseUntil    *time.Time
	ReceivedAt    time.Time
	ProcessedAt   *time.Time
}

func (inboxRow) TableName() string { return "webhook_events" }

func (r inboxRow) record() Record {
	rec := Record{Seq: r.ID, EventID: r.EventID, Type: r.Type, Created: r.Created.UTC(), Livemode: r.Livemode,
		Account: r.Account, APIVersion: r.APIVersion, ObjectType: r.ObjectType, ObjectID: r.ObjectID,
		Status: Status(r.Status), Attempts: r.Attempts, LastError: r.LastError, ReceivedAt: r.ReceivedAt.UTC(),
		ProcessedAt: r.ProcessedAt, Payload: r.Payload}
	if rec.Status == StatusPending {
		t := r.NextAttemptAt.UTC()
		rec.NextAttemptAt = &t
	}
	return rec
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// insertColumns are the columns InsertBatch writes, in order.
var insertColumns = []string{"event_id", "type", "created", "livemode", "account", "api_version", "object_type", "object_id",
	"payload", "status", "attempts", "next_attempt_at", "received_at", "shard"}

// InsertBatch stores events in one statement and one commit, and reports
// which event ids were new. Duplicates (already stored, or repeated within the
// batch) are left alone. Rows are sorted by event id so concurrent batches
// lock unique-index entries in the same order and cannot deadlock.
func (in *Inbox) InsertBatch(ctx context.Context, events []Event, now time.Time) (map[string]bool, error) {
	sort.Slice(events, func(i, j int) bool { return events[i].ID < events[j].ID })
	values := make([][]any, 0, len(events))
	for i, ev := range events {
		if i > 0 && events[i-1].ID == ev.ID {
			continue
		}
		values = append(values, []any{ev.ID, ev.Type, ev.Created.UTC(), ev.Livemode, nullable(ev.Account), nullable(ev.APIVersion),
			nullable(ev.ObjectType), nullable(ev.ObjectID), ev.Payload, string(StatusPending), 0, now, now, ev.Shard})
	}
	n := len(values)
	if n == 0 {
		return map[string]bool{}, nil
	}
	// No conflict target: the unique key is (event_id, created) on
	// PostgreSQL, whose inbox is partitioned by created (migration 0029),
	// and event_id on SQLite; either refuses a stored event again.
	rows, err := in.db.InsertReturning(ctx, "webhook_events", insertColumns, values, "ON CONFLICT DO NOTHING RETURNING event_id")
	if err != nil {
		return nil, fmt.Errorf("insert %d inbox events: %w", n, err)
	}
	defer rows.Close()
	inserted := make(map[string]bool, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("insert inbox events: %w", err)
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert inbox events: %w", err)
	}
	return inserted, nil
}

const claimReturning = "id, event_id, type, created, livemode, account, api_version, object_type, object_id, payload, attempts"

// Claim leases up to n due events to owner until now+lease and counts an
// attempt on each. On PostgreSQL, SKIP LOCKED lets many processes claim at
// once without taking the same row; SQLite has one writer, so the claim is
// serialised anyway.
func (in *Inbox) Claim(ctx context.Context, owner string, n int, now time.Time, lease time.Duration) ([]Event, error) {
	return in.ClaimShard(ctx, owner, n, now, lease, 0, 1)
}

// ClaimShard is Claim limited to the events of one shard of `of`: those
// whose shard % of == shard (of ≤ 1: every event). Worker loop i of n
// claims shard i, so one customer's events are applied by one loop, in
// order, and the loops' batches do not wait on each other's rows.
func (in *Inbox) ClaimShard(ctx context.Context, owner string, n int, now time.Time, lease time.Duration, shard, of int) ([]Event, error) {
	q, args := in.claimSQL(owner, n, now, lease, shard, of)
	var rows []inboxRow
	err := in.db.Transact(ctx, func(tx *gorm.DB) error {
		// The first due rows in (next_attempt_at, id) order, walking the
		// partial index (migration 0032) and stopping at n: left to its
		// estimates, the planner read and sorted the whole backlog.
		if err := in.db.Dialect.IndexOrder(ctx, tx); err != nil {
			return err
		}
		return tx.WithContext(ctx).Raw(q, args...).Scan(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("claim inbox events: %w", err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = Event{ID: r.EventID, Type: r.Type, Created: r.Created.UTC(), Livemode: r.Livemode,
			Account: deref(r.Account), APIVersion: deref(r.APIVersion), ObjectType: deref(r.ObjectType),
			ObjectID: deref(r.ObjectID), Payload: r.Payload, Attempts: r.Attempts}
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// errLeaseLost means another worker took the event over after our lease ran out.
var errLeaseLost = errors.New("lease on inbox event lost")

// claimSQL is ClaimShard's statement and its arguments.
func (in *Inbox) claimSQL(owner string, n int, now time.Time, lease time.Duration, shard, of int) (string, []any) {
	args := []any{owner, now.Add(lease), now, now}
	filter := ""
	if of > 1 {
		filter = " AND shard % ? = ?"
		args = append(args, of, shard)
	}
	args = append(args, n)
	q := `UPDATE webhook_events SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
WHERE id IN (SELECT id FROM webhook_events
  WHERE status = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)` + filter + `
  ORDER BY next_attempt_at, id LIMIT ?` + in.db.Dialect.SkipLockedSQL() + `)
RETURNING ` + claimReturning
	return q, args
}

// finishIn marks the event done with status inside tx, provided owner still
// holds it. It is the first statement of the event's transaction, so the row
// lock it takes keeps any other worker out until the effects commit.
func finishIn(ctx context.Context, tx *gorm.DB, ev Event, owner string, status Status, now time.Time, partitioned bool) error {
	return finishAllIn(ctx, tx, []Event{ev}, []Status{status}, owner, now, partitioned)
}

// finishAllIn is finishIn for a batch: events[i] gets statuses[i], in one
// UPDATE per status. The partition key (created) narrows each update to the
// events' months; without it every month is searched. Unless owner still holds every one of them it returns
// errLeaseLost (and the caller rolls the batch back).
func finishAllIn(ctx context.Context, tx *gorm.DB, events []Event, statuses []Status, owner string, now time.Time, partitioned bool) error {
	byStatus := map[Status][]Event{}
	for i, ev := range events {
		byStatus[statuses[i]] = append(byStatus[statuses[i]], ev)
	}
	var marked int64
	for status, evs := range byStatus {
		ids, created := make([]string, len(evs)), make([]time.Time, len(evs))
		for i, ev := range evs {
			ids[i], created[i] = ev.ID, ev.Created
		}
		q := `UPDATE webhook_events SET status = ?, processed_at = ?, lease_owner = NULL, lease_until = NULL, last_error = NULL
WHERE event_id IN ? AND lease_owner = ? AND status = 'pending'`
		args := []any{string(status), now, ids, owner}
		if partitioned {
			q += " AND created IN ?"
			args = append(args, created)
		}
		res := tx.WithContext(ctx).Exec(q, args...)
		if res.Error != nil {
			return fmt.Errorf("mark %d events %s: %w", len(evs), status, res.Error)
		}
		marked += res.RowsAffected
	}
	if marked != int64(len(events)) {
		return errLeaseLost
	}
	return nil
}

// Fail records a failed attempt: the event goes back to pending until
// nextAt, or to dead when dead is true — then, in the same transaction, the
// outbox gets webhook.dead_lettered (recorded at now). Only the lease holder
// may do this.
func (in *Inbox) Fail(ctx context.Context, ev Event, owner, reason string, now, nextAt time.Time, dead bool) error {
	status := StatusPending
	if dead {
		status = StatusDead
	}
	if len(reason) > 4000 {
		reason = reason[:4000]
	}
	err := in.db.Transact(ctx, func(tx *gorm.DB) error {
		res := tx.WithContext(ctx).Exec(`UPDATE webhook_events SET status = ?, last_error = ?, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL
WHERE event_id = ? AND lease_owner = ?`, string(status), reason, nextAt, ev.ID, owner)
		if res.Error != nil || !dead || res.RowsAffected == 0 {
			return res.Error
		}
		// Only the event's type and id leave: its payload holds customer data.
		_, err := events.Append(ctx, tx, events.TypeWebhookDeadLettered, fmt.Sprintf("webhook-dead/%s/%s/%d", ev.ID, owner, ev.Attempts), ev.ID, now,
			map[string]any{"event_id": ev.ID, "event_type": ev.Type, "attempts": ev.Attempts, "title": "Webhook event " + ev.Type + " dead-lettered"})
		return err
	})
	if err != nil {
		return fmt.Errorf("record failure of event %s: %w", ev.ID, err)
	}
	return nil
}

// Release gives back events owner claimed but did not start, so they need
// not wait out the lease (used on graceful shutdown).
func (in *Inbox) Release(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return in.db.WithContext(ctx).Exec(`UPDATE webhook_events SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1
WHERE lease_owner = ? AND status = 'pending' AND event_id IN ?`, owner, ids).Error
}

// Filter narrows List.
type Filter struct {
	Status Status
	Type   string
}

// List returns events newest first, a page at a time.
func (in *Inbox) List(ctx context.Context, f Filter, page httpx.PageRequest) (httpx.List[Record], error) {
	var after int64
	hasCursor, err := httpx.DecodeCursor(page.Cursor, &after)
	if err != nil {
		return httpx.List[Record]{}, err
	}
	var rows []inboxRow
	err = in.db.Read(ctx, func(g *gorm.DB) error {
		q := g.Model(&inboxRow{}).
			Select("id, event_id, type, created, livemode, account, api_version, object_type, object_id, status, attempts, next_attempt_at, last_error, received_at, processed_at")
		if f.Status != "" {
			q = q.Where("status = ?", string(f.Status))
		}
		if f.Type != "" {
			q = q.Where("type = ?", f.Type)
		}
		if hasCursor {
			q = q.Where("id < ?", after)
		}
		rows = nil
		return q.Order("id DESC").Limit(page.Limit + 1).Find(&rows).Error
	})
	if err != nil {
		return httpx.List[Record]{}, fmt.Errorf("list inbox events: %w", err)
	}
	recs := make([]Record, len(rows))
	for i, r := range rows {
		recs[i] = r.record()
	}
	return httpx.NewList(recs, page.Limit, func(r Record) any { return r.Seq }), nil
}

// Get returns one event with its payload. ENOTFOUND if unknown.
func (in *Inbox) Get(ctx context.Context, eventID string) (Record, error) {
	var row inboxRow
	err := in.db.Read(ctx, func(g *gorm.DB) error { return g.Where("event_id = ?", eventID).Take(&row).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Record{}, errs.NotFound("no webhook event %q", eventID)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get inbox event %s: %w", eventID, err)
	}
	return row.record(), nil
}

// Replay puts a dead-lettered event back to pending with a fresh set of
// attempts, audited (WithAudit) in the same transaction. ENOTFOUND if
// unknown; ECONFLICT if it is not dead (an event that was applied is never
// applied twice).
func (in *Inbox) Replay(ctx context.Context, eventID string, now time.Time) (Record, error) {
	var moved int64
	err := in.db.Transact(ctx, func(tx *gorm.DB) error {
		res := tx.WithContext(ctx).Exec(`UPDATE webhook_events SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL
WHERE event_id = ? AND status = 'dead'`, now, eventID)
		if res.Error != nil {
			return fmt.Errorf("replay event %s: %w", eventID, res.Error)
		}
		moved = res.RowsAffected
		if moved == 0 {
			return nil
		}
		return in.recordReplay(ctx, tx, eventID, "dead-lettered event put back to pending")
	})
	if err != nil {
		return Record{}, err
	}
	rec, err := in.Get(ctx, eventID)
	if err != nil {
		return Record{}, err
	}
	if moved == 0 {
		return rec, errs.Coded(errs.ECONFLICT, "not_dead", "event %s is %s, not dead: only dead-lettered events are replayed, and an applied event is never applied twice", eventID, rec.Status).
			WithDetails(map[string]any{"status": rec.Status})
	}
	return rec, nil
}

// ReplayDead puts every dead-lettered event back to pending and returns how
// many it moved; each is audited (WithAudit) in the same transaction.
func (in *Inbox) ReplayDead(ctx context.Context, now time.Time) (int64, error) {
	var moved int64
	err := in.db.Transact(ctx, func(tx *gorm.DB) error {
		var ids []string
		if err := tx.WithContext(ctx).Raw("SELECT event_id FROM webhook_events WHERE status = 'dead' ORDER BY id").Scan(&ids).Error; err != nil {
			return fmt.Errorf("find dead events: %w", err)
		}
		for start := 0; start < len(ids); start += 500 {
			batch := ids[start:min(start+500, len(ids))]
			res := tx.WithContext(ctx).Exec(`UPDATE webhook_events SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL
WHERE status = 'dead' AND event_id IN ?`, now, batch)
			if res.Error != nil {
				return fmt.Errorf("replay dead events: %w", res.Error)
			}
			moved += res.RowsAffected
		}
		for _, id := range ids {
			if err := in.recordReplay(ctx, tx, id, "replay of every dead-lettered event"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return moved, nil
}

// Backlog returns the number of pending events and the age of the oldest.
func (in *Inbox) Backlog(ctx context.Context, now time.Time) (int64, time.Duration, error) {
	var n int64
	if err := in.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM webhook_events WHERE status = 'pending'").Scan(&n).Error; err != nil {
		return 0, 0, fmt.Errorf("count inbox backlog: %w", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	// MIN over a DATETIME column comes back as text on SQLite; read the
	// oldest row instead so both dialects hand back a time.
	var oldest inboxRow
	if err := in.db.WithContext(ctx).Select("received_at").Where("status = 'pending'").Order("received_at").Limit(1).Take(&oldest).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, 0, fmt.Errorf("read oldest inbox event: %w", err)
	}
	age := now.Sub(oldest.ReceivedAt)
	if age < 0 {
		age = 0
	}
	return n, age, nil
}
