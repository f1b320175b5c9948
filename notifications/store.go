package notifications

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Status is where a delivery stands.
type Status string

// Delivery statuses.
const (
	StatusPending Status = "pending"
	StatusSent    Status = "sent"
	StatusFailed  Status = "failed"
)

// Delivery is one notification to one destination, as operators see it.
type Delivery struct {
	ID            string     `json:"id"`
	EventID       int64      `json:"event_id"`
	EventType     string     `json:"event_type"`
	Subject       string     `json:"subject"`
	Destination   string     `json:"destination"`
	Type          string     `json:"destination_type"`
	Status        Status     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"last_error"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	SentAt        *time.Time `json:"sent_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

type deliveryRow struct {
	ID            string `gorm:"primaryKey"`
	EventID       int64
	EventType     string
	Subject       string
	Destination   string
	DestType      string
	Status        string
	Attempts      int
	LastError     string
	NextAttemptAt time.Time
	LeaseUntil    *time.Time
	SentAt        *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (deliveryRow) TableName() string { return "notification_deliveries" }

func (r deliveryRow) delivery() Delivery {
	d := Delivery{ID: r.ID, EventID: r.EventID, EventType: r.EventType, Subject: r.Subject, Destination: r.Destination,
		Type: r.DestType, Status: Status(r.Status), Attempts: r.Attempts, LastError: r.LastError,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if d.Status == StatusPending {
		t := r.NextAttemptAt.UTC()
		d.NextAttemptAt = &t
	}
	if r.SentAt != nil {
		t := r.SentAt.UTC()
		d.SentAt = &t
	}
	return d
}

// deliveryID is stable per (event, destination): it is the Standard
// Webhooks webhook-id, the same on every retry, so receivers deduplicate.
// It sorts by event, which the list's keyset relies on.
func deliveryID(eventID int64, destination string) string {
	return fmt.Sprintf("ntf_%012d_%s", eventID, destination)
}

type cursorRow struct {
	ID          int `gorm:"primaryKey"`
	LastEventID int64
}

func (cursorRow) TableName() string { return "notification_cursor" }

// Store keeps deliveries and the dispatcher's cursor.
type Store struct {
	db    *db.DB
	audit *audit.Log
}

// NewStore returns the store over d; replays are recorded in l.
func NewStore(d *db.DB, l *audit.Log) *Store { return &Store{db: d, audit: l} }

func (s *Store) cursor(ctx context.Context) (int64, error) {
	var c cursorRow
	err := s.db.WithContext(ctx).Where("id = 1").Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read notification cursor: %w", err)
	}
	return c.LastEventID, nil
}

// enqueue writes rows (skipping those already there) and moves the cursor
// to last, in one transaction: a crash between them cannot lose a delivery.
func (s *Store) enqueue(ctx context.Context, rows []deliveryRow, last int64) error {
	return s.db.Transact(ctx, func(tx *gorm.DB) error {
		if len(rows) > 0 {
			if err := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
				return fmt.Errorf("enqueue notifications: %w", err)
			}
		}
		return tx.WithContext(ctx).Exec("UPDATE notification_cursor SET last_event_id = ? WHERE id = 1 AND last_event_id < ?", last, last).Error
	})
}

// claimed is a delivery leased for sending, with its event.
type claimed struct {
	row  deliveryRow
	data string // the event's JSON data
	at   time.Time
}

// claim leases up to n due deliveries until now+lease and counts the
// attempt. Rows another replica holds are skipped (PostgreSQL); an expired
// lease (a crash mid-send) makes a row due again.
func (s *Store) claim(ctx context.Context, now time.Time, lease time.Duration, n int) ([]claimed, error) {
	var out []claimed
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		out = nil
		q := tx.WithContext(ctx).Where("status = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)", now.UTC(), now.UTC()).
			Order("next_attempt_at, id").Limit(n)
		var rows []deliveryRow
		if err := s.db.Dialect.ForUpdateSkipLocked(q).Find(&rows).Error; err != nil {
			return fmt.Errorf("claim notifications: %w", err)
		}
		for _, r := range rows {
			until := now.Add(lease).UTC()
			if err := tx.WithContext(ctx).Model(&deliveryRow{}).Where("id = ?", r.ID).
				Updates(map[string]any{"lease_until": until, "attempts": r.Attempts + 1, "updated_at": now.UTC()}).Error; err != nil {
				return fmt.Errorf("lease notification %s: %w", r.ID, err)
			}
			r.Attempts++
			var ev struct {
				Data string
				At   time.Time
			}
			if err := tx.WithContext(ctx).Table("events").Select("data, at").Where("id = ?", r.EventID).Take(&ev).Error; err != nil {
				return fmt.Errorf("read event %d of notification %s: %w", r.EventID, r.ID, err)
			}
			out = append(out, claimed{row: r, data: ev.Data, at: ev.At.UTC()})
		}
		return nil
	})
	return out, err
}

// finish records the outcome of attempt r.Attempts: sent, retry at next,
// or failed for good. The attempt count guards against a stale sender
// whose lease expired and whose row was claimed again.
func (s *Store) finish(ctx context.Context, r deliveryRow, status Status, lastErr string, next, now time.Time) error {
	if len(lastErr) > 1000 {
		lastErr = lastErr[:1000]
	}
	upd := map[string]any{"status": string(status), "last_error": lastErr, "lease_until": nil, "updated_at": now.UTC(), "next_attempt_at": next.UTC()}
	if status == StatusSent {
		// The last error stays: it tells why a sent notification was late.
		upd["sent_at"] = now.UTC()
		delete(upd, "last_error")
	}
	return s.db.WithContext(ctx).Model(&deliveryRow{}).Where("id = ? AND attempts = ? AND status = 'pending'", r.ID, r.Attempts).Updates(upd).Error
}

// release gives back leased deliveries that were not attempted.
func (s *Store) release(ctx context.Context, cs []claimed) {
	for _, c := range cs {
		_ = s.db.WithContext(ctx).Model(&deliveryRow{}).Where("id = ? AND attempts = ? AND status = 'pending'", c.row.ID, c.row.Attempts).
			Updates(map[string]any{"lease_until": nil, "attempts": c.row.Attempts - 1}).Error
	}
}

// Filter narrows List.
type Filter struct {
	Status      Status
	Destination string
}

// List returns one page of deliveries, newest event first. EINVALID for
// an unknown status or a bad cursor.
func (s *Store) List(ctx context.Context, f Filter, page httpx.PageRequest) (httpx.List[Delivery], error) {
	var before string
	has, err := httpx.DecodeCursor(page.Cursor, &before)
	if err != nil {
		return httpx.List[Delivery]{}, err
	}
	switch f.Status {
	case "", StatusPending, StatusSent, StatusFailed:
	default:
		return httpx.List[Delivery]{}, errs.Coded(errs.EINVALID, "invalid_status", "status must be pending, sent or failed")
	}
	var rows []deliveryRow
	err = s.db.Read(ctx, func(g *gorm.DB) error {
		q := g.Model(&deliveryRow{})
		if f.Status != "" {
			q = q.Where("status = ?", string(f.Status))
		}
		if f.Destination != "" {
			q = q.Where("destination = ?", f.Destination)
		}
		if has {
			q = q.Where("id < ?", before)
		}
		rows = nil
		return q.Order("id DESC").Limit(page.Limit + 1).Find(&rows).Error
	})
	if err != nil {
		return httpx.List[Delivery]{}, fmt.Errorf("list notifications: %w", err)
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = r.delivery()
	}
	return httpx.NewList(out, page.Limit, func(d Delivery) any { return d.ID }), nil
}

// Replay puts failed delivery id back to pending with a fresh set of
// attempts, audited. ENOTFOUND for an unknown id, ECONFLICT unless it failed
// (a sent notification is never sent twice).
func (s *Store) Replay(ctx context.Context, id string, now time.Time) (Delivery, error) {
	var out deliveryRow
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		res := tx.WithContext(ctx).Model(&deliveryRow{}).Where("id = ? AND status = 'failed'", id).
			Updates(map[string]any{"status": string(StatusPending), "attempts": 0, "next_attempt_at": now.UTC(), "lease_until": nil, "updated_at": now.UTC()})
		if res.Error != nil {
			return fmt.Errorf("replay notification %s: %w", id, res.Error)
		}
		err := tx.WithContext(ctx).Where("id = ?", id).Take(&out).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errs.NotFound("no notification %q", id)
		}
		if err != nil {
			return fmt.Errorf("read notification %s: %w", id, err)
		}
		if res.RowsAffected == 0 {
			return errs.Coded(errs.ECONFLICT, "not_failed", "notification %s is %s: only failed notifications are replayed", id, out.Status)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "notification.replay", ObjectType: "notification", ObjectID: id,
			Before: audit.Marshal(map[string]string{"status": string(StatusFailed)}), After: audit.Marshal(map[string]string{"status": string(StatusPending)}),
			Detail: "failed notification to " + out.Destination + " put back to pending"})
	})
	if err != nil {
		return Delivery{}, err
	}
	return out.delivery(), nil
}
