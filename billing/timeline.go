package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// timelineRow is one row of billing_timeline. charge_id ties facts about a
// charge's refunds, disputes and fraud warnings to the charge, so they can
// be attached to the customer once the charge is mirrored.
type timelineRow struct {
	ID         int64 `gorm:"primaryKey"`
	CustomerID string
	At         time.Time
	EventID    string
	EventType  string
	Object     string
	ObjectID   string
	ChargeID   string
	Summary    string
	Severity   string
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
}

func (timelineRow) TableName() string { return "billing_timeline" }

func (r timelineRow) entry() TimelineEntry {
	return TimelineEntry{ID: r.ID, CustomerID: r.CustomerID, At: r.At.UTC(), EventID: r.EventID, EventType: r.EventType,
		Object: ObjectKind(r.Object), ObjectID: r.ObjectID, Summary: r.Summary, Severity: r.Severity}
}

// recordTimeline adds the event's fact, once per event id.
func (s *Store) recordTimeline(ctx context.Context, env envelope, ch *Change, rec timelineRecord) error {
	sev := rec.severity
	if sev == "" {
		sev = SeverityInfo
	}
	row := timelineRow{
		CustomerID: ch.CustomerID,
		At:         env.Created.UTC(),
		EventID:    env.ID,
		EventType:  env.Type,
		Object:     string(ch.Object),
		ObjectID:   ch.ObjectID,
		ChargeID:   rec.chargeID,
		Summary:    rec.summary,
		Severity:   sev,
		CreatedAt:  s.clock.Now().UTC(),
	}
	res := s.conn(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "event_id"}}, DoNothing: true}).Create(&row)
	if res.Error != nil {
		return fmt.Errorf("record timeline fact of event %s: %w", env.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		ch.Duplicate = true
	}
	return nil
}

// timelineEntryByEvent returns the fact an event left, if it was applied.
func (s *Store) timelineEntryByEvent(ctx context.Context, eventID string) (TimelineEntry, bool, error) {
	var row timelineRow
	err := s.conn(ctx).Where("event_id = ?", eventID).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return TimelineEntry{}, false, nil
	}
	if err != nil {
		return TimelineEntry{}, false, fmt.Errorf("look up timeline fact of event %s: %w", eventID, err)
	}
	return row.entry(), true, nil
}

// timelineCursor is the sort key of the last entry on a page.
type timelineCursor struct {
	At time.Time `json:"at"`
	ID int64     `json:"id"`
}

// Timeline returns a page of the customer's billing timeline, newest first
// (by when it happened at the provider, then by id). An unknown customer
// has an empty timeline. EINVALID for a cursor this API did not issue.
func (s *Store) Timeline(ctx context.Context, customerID string, page httpx.PageRequest) (httpx.List[TimelineEntry], error) {
	limit := page.Limit
	if limit <= 0 {
		limit = httpx.DefaultLimit
	}
	if limit > httpx.MaxLimit {
		limit = httpx.MaxLimit
	}
	var cur timelineCursor
	after, err := httpx.DecodeCursor(page.Cursor, &cur)
	if err != nil {
		return httpx.List[TimelineEntry]{}, err
	}
	if err := s.CustomerInScope(ctx, customerID); err != nil {
		return httpx.List[TimelineEntry]{}, err
	}
	q := s.conn(ctx).Where("customer_id = ?", customerID)
	if after {
		at := cur.At.UTC()
		q = q.Where("(at < ? OR (at = ? AND id < ?))", at, at, cur.ID)
	}
	var rows []timelineRow
	if err := q.Order("at DESC, id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return httpx.List[TimelineEntry]{}, fmt.Errorf("list timeline of customer %s: %w", customerID, err)
	}
	entries := make([]TimelineEntry, len(rows))
	for i, r := range rows {
		entries[i] = r.entry()
	}
	return httpx.NewList(entries, limit, func(e TimelineEntry) any { return timelineCursor{At: e.At, ID: e.ID} }), nil
}

// CustomerOverview is a customer as an agent first sees it: the mirrored
// customer (Mirrored false when only other objects have named it so far,
// in which case only the id is known) and its subscriptions.
type CustomerOverview struct {
	Customer
	Mirrored      bool           `json:"mirrored"`
	Subscriptions []Subscription `json:"subscriptions"`
	// ErasedAt is when the customer's personal data was erased (privacy;
	// `recourse customer erase`), nil when it was not: an empty email
	// and name then mean erased, not unknown.
	ErasedAt *time.Time `json:"erased_at"`
}

// CustomerOverview returns the customer with its subscriptions. A customer
// whose own events have not arrived yet but whom subscriptions or timeline
// facts already name is returned with Mirrored false. ENOTFOUND when
// nothing at all is known about id.
func (s *Store) CustomerOverview(ctx context.Context, id string) (CustomerOverview, error) {
	if id == "" {
		return CustomerOverview{}, errs.NotFound("no customer with an empty id")
	}
	if err := s.CustomerInScope(ctx, id); err != nil {
		return CustomerOverview{}, err
	}
	out := CustomerOverview{Customer: Customer{ID: id}, Mirrored: true}
	c, err := s.Customer(ctx, id)
	switch {
	case err == nil:
		out.Customer = c
	case errs.Is(err, errs.ENOTFOUND):
		out.Mirrored = false
	default:
		return CustomerOverview{}, err
	}
	if out.Subscriptions, err = s.SubscriptionsByCustomer(ctx, id); err != nil {
		return CustomerOverview{}, err
	}
	if out.ErasedAt, err = s.ErasedAt(ctx, id); err != nil {
		return CustomerOverview{}, err
	}
	if !out.Mirrored && len(out.Subscriptions) == 0 && out.ErasedAt == nil {
		known, err := s.hasTimeline(ctx, id)
		if err != nil {
			return CustomerOverview{}, err
		}
		if !known {
			return CustomerOverview{}, errs.NotFound("no customer %q in the billing mirror", id)
		}
	}
	return out, nil
}

// CustomerKnown reports whether anything in the mirror names the customer:
// its own row, a subscription or a timeline fact.
func (s *Store) CustomerKnown(ctx context.Context, id string) (bool, error) {
	_, err := s.CustomerOverview(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errs.Is(err, errs.ENOTFOUND):
		return false, nil
	}
	return false, err
}

func (s *Store) hasTimeline(ctx context.Context, customerID string) (bool, error) {
	var ids []int64
	if err := s.conn(ctx).Model(&timelineRow{}).Where("customer_id = ?", customerID).Limit(1).Pluck("id", &ids).Error; err != nil {
		return false, fmt.Errorf("look up timeline of customer %s: %w", customerID, err)
	}
	return len(ids) > 0, nil
}
