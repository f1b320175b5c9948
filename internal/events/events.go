// Package events is Recourse's durable outbox: facts other parts (a
// notifier, an integration) subscribe to by reading
// GET /api/v1/events?after=<cursor>&type=<type>.
//
// An event is written inside the transaction that makes the change it
// reports, so it exists exactly when the change committed. Its Key makes it
// happen once: a second Append with the same key (a replay, another
// replica) writes nothing and reports false.
//
// Ids grow with every append, but two transactions may commit out of id
// order; the feed therefore serves only events older than a settle delay
// (default 5 s, far longer than any transaction that appends one), so a
// reader that resumes after the last id it saw misses nothing.
package events

import (
	"context"
	"encoding/json"

	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Event types written today (the feed is open to more).
const (
	TypeDisputeDeadlineReminder = "dispute.deadline_reminder"
	TypeDisputeDeadlineMissed   = "dispute.deadline_missed"
	TypeDisputeRuleApplied      = "dispute.subscription_rule_applied"
	TypeDisputeCreated          = "dispute.created"
	TypeSLADueSoon              = "sla.due_soon"
	TypeSLABreached             = "sla.breached"
	TypeApprovalRequested       = "approval.requested"
	TypeActionFailed            = "action.failed"
	TypeWebhookDeadLettered     = "webhook.dead_lettered"
)

// Types lists every event type Recourse writes, for validating what a
// subscriber (the notification rules) names.
func Types() []string {
	return []string{TypeDisputeCreated, TypeDisputeDeadlineReminder, TypeDisputeDeadlineMissed, TypeDisputeRuleApplied,
		TypeSLADueSoon, TypeSLABreached, TypeApprovalRequested, TypeActionFailed, TypeWebhookDeadLettered}
}

// CaseFacts is the data of an event about a case: what a subscriber routes
// on (kind, team, priority, business line) and what a message shows. It
// carries no card data and no names or emails: events leave Recourse.
type CaseFacts struct {
	CaseID       string     `json:"case_id"`
	Kind         string     `json:"kind"`
	Team         string     `json:"team"`
	Priority     string     `json:"priority"`
	BusinessLine string     `json:"business_line,omitempty"`
	Title        string     `json:"title"`
	Amount       *int64     `json:"amount,omitempty"`
	Currency     string     `json:"currency,omitempty"`
	DueAt        *time.Time `json:"due_at,omitempty"`
	// Detail says what happened in a few words (which SLA, which action).
	Detail string `json:"detail,omitempty"`
}

// Event is one fact in the outbox, and its JSON shape on the feed.
type Event struct {
	ID      int64           `json:"id"`
	Type    string          `json:"type"`
	Key     string          `json:"key"`
	Subject string          `json:"subject"` // what it is about, e.g. a case id
	At      time.Time       `json:"at"`
	Data    json.RawMessage `json:"data"`
}

type row struct {
	ID      int64 `gorm:"primaryKey;autoIncrement"`
	Type    string
	Key     string
	Subject string
	At      time.Time
	Data    string
}

func (row) TableName() string { return "events" }

// Append writes an event of typ with key inside tx unless one with key
// exists; it reports whether it wrote. data is marshalled to JSON.
// EINVALID for an empty type or key.
func Append(ctx context.Context, tx *gorm.DB, typ, key, subject string, at time.Time, data any) (bool, error) {
	if typ == "" || key == "" {
		return false, errs.Invalid("an event needs a type and a key")
	}
	b, err := json.Marshal(data)
	if err != nil {
		return false, fmt.Errorf("append event %s: %w", key, err)
	}
	r := row{Type: typ, Key: key, Subject: subject, At: at.UTC(), Data: string(b)}
	res := tx.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "key"}}, DoNothing: true}).Create(&r)
	if res.Error != nil {
		return false, fmt.Errorf("append event %s: %w", key, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Feed reads the outbox.
type Feed struct {
	db     *db.DB
	clock  clock.Clock
	settle time.Duration
}

// NewFeed returns a feed over d serving events older than settle (5 s when
// settle ≤ 0).
func NewFeed(d *db.DB, clk clock.Clock, settle time.Duration) *Feed {
	if settle <= 0 {
		settle = 5 * time.Second
	}
	return &Feed{db: d, clock: clk, settle: settle}
}

// List returns up to limit events with id > after, of type typ when set
// (a trailing ".*" matches a prefix, e.g. "dispute.*"), oldest first, and
// recorded at least the settle delay ago.
func (f *Feed) List(ctx context.Context, after int64, typ string, limit int) ([]Event, error) {
	q := f.db.WithContext(ctx).Where("id > ? AND at <= ?", after, f.clock.Now().Add(-f.settle).UTC())
	switch {
	case strings.HasSuffix(typ, ".*"):
		q = q.Where("type LIKE ?", strings.TrimSuffix(typ, "*")+"%")
	case typ != "":
		q = q.Where("type = ?", typ)
	}
	var rows []row
	if err := q.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = Event{ID: r.ID, Type: r.Type, Key: r.Key, Subject: r.Subject, At: r.At.UTC(), Data: json.RawMessage(r.Data)}
	}
	return out, nil
}

// Register mounts GET /events on g (permission events:read). Query: after
// (the last id seen, default 0), type, limit (1–200, default 50). The answer
// is {"data": [...], "next_cursor": "<last id>"|null}: next_cursor is the
// after= of the next call, null when the page was not full.
func (f *Feed) Register(g *echo.Group) {
	g.GET("/events", f.list, auth.Require(auth.PermEventsRead))
}

func (f *Feed) list(c echo.Context) error {
	page, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	var after int64
	if s := c.QueryParam("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return errs.Coded(errs.EINVALID, "invalid_after", "after must be an event id (a whole number)")
		}
	}
	rows, err := f.List(c.Request().Context(), after, c.QueryParam("type"), page.Limit)
	if err != nil {
		return err
	}
	out := httpx.List[Event]{Data: rows}
	if len(rows) == page.Limit {
		s := strconv.FormatInt(rows[len(rows)-1].ID, 10)
		out.NextCursor = &s
	}
	return c.JSON(http.StatusOK, out)
}
