// Package audit keeps the append-only audit log: who did what, through
// which request, to which case or object, with the state before and after
// and the provider's request id. The table refuses updates and deletes.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Entry is one audited mutation or provider call.
type Entry struct {
	ID                int64           `json:"id"`
	At                time.Time       `json:"at"`
	Actor             string          `json:"actor"`
	ActorKind         auth.ActorKind  `json:"actor_kind"`              // user, system, cli or stripe
	ActorUserID       *int64          `json:"actor_user_id,omitempty"` // the person, for ActorKind user
	Role              string          `json:"role"`
	RequestID         string          `json:"request_id,omitempty"`
	Action            string          `json:"action"` // e.g. case.assign, case.transition, action.refund.provider_call
	CaseID            string          `json:"case_id,omitempty"`
	ObjectType        string          `json:"object_type,omitempty"`
	ObjectID          string          `json:"object_id,omitempty"`
	Before            json.RawMessage `json:"before,omitempty"`
	After             json.RawMessage `json:"after,omitempty"`
	ProviderRequestID string          `json:"provider_request_id,omitempty"`
	Detail            string          `json:"detail,omitempty"`
}

type row struct {
	ID                int64
	At                time.Time
	Actor             string
	ActorKind         string
	ActorUserID       *int64
	Role              string
	RequestID         *string
	Action            string
	CaseID            *string
	ObjectType        *string
	ObjectID          *string
	Before            *string
	After             *string
	ProviderRequestID *string
	Detail            *string
}

func (row) TableName() string { return "audit_log" }

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func raw(p *string) json.RawMessage {
	if p == nil {
		return nil
	}
	return json.RawMessage(*p)
}

// Log writes and reads the audit log.
type Log struct {
	db    *db.DB
	clock clock.Clock
}

// New returns the audit log over d.
func New(d *db.DB, c clock.Clock) *Log { return &Log{db: d, clock: c} }

// Marshal renders v for Before/After; nil stays nil.
func Marshal(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("%q", fmt.Sprint(v)))
	}
	return b
}

// FromContext fills Actor, ActorKind, ActorUserID, Role and RequestID
// where e leaves them empty: from the principal in ctx (a user over the API,
// or cli:<os user> at the command line), else the system. An entry whose
// Actor is "stripe" is the provider's.
func FromContext(ctx context.Context, e Entry) Entry {
	if p, ok := auth.FromContext(ctx); ok && e.Actor == "" {
		e.Actor = p.Actor()
		e.ActorKind = p.ActorKind()
		if p.ActorKind() == auth.ActorUser && p.UserID != 0 {
			id := p.UserID
			e.ActorUserID = &id
		}
		if e.Role == "" {
			e.Role = string(p.Role)
		}
	}
	if e.Actor == "" {
		e.Actor = string(auth.ActorSystem)
	}
	if e.ActorKind == "" {
		switch e.Actor {
		case string(auth.ActorSystem):
			e.ActorKind = auth.ActorSystem
		case string(auth.ActorStripe):
			e.ActorKind = auth.ActorStripe
		default:
			e.ActorKind = auth.ActorUser
		}
	}
	if e.Role == "" {
		e.Role = string(e.ActorKind)
	}
	if e.RequestID == "" {
		e.RequestID = httpx.RequestIDFrom(ctx)
	}
	return e
}

// ForAuth adapts the log to what internal/auth records user and token
// changes with, inside the transaction that makes them.
func (l *Log) ForAuth() auth.Auditor {
	return func(ctx context.Context, tx *gorm.DB, c auth.Change) error {
		var before, after json.RawMessage
		if c.Before != nil {
			before = Marshal(c.Before)
		}
		if c.After != nil {
			after = Marshal(c.After)
		}
		return l.Record(ctx, tx, Entry{Action: c.Action, ObjectType: c.ObjectType, ObjectID: c.ObjectID, Before: before, After: after, Detail: c.Detail})
	}
}

// Record appends e, taking actor, role and request id from ctx where e
// leaves them empty. Pass the surrounding transaction as tx so the entry
// commits with the change it describes; nil writes on its own.
func (l *Log) Record(ctx context.Context, tx *gorm.DB, e Entry) error {
	e = FromContext(ctx, e)
	if e.At.IsZero() {
		e.At = l.clock.Now()
	}
	r := row{At: e.At, Actor: e.Actor, ActorKind: string(e.ActorKind), ActorUserID: e.ActorUserID, Role: e.Role, RequestID: ptr(e.RequestID), Action: e.Action,
		CaseID: ptr(e.CaseID), ObjectType: ptr(e.ObjectType), ObjectID: ptr(e.ObjectID),
		Before: ptr(string(e.Before)), After: ptr(string(e.After)), ProviderRequestID: ptr(e.ProviderRequestID), Detail: ptr(e.Detail)}
	g := tx
	if g == nil {
		g = l.db.Gorm
	}
	if err := g.WithContext(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("record audit %s: %w", e.Action, err)
	}
	return nil
}

// Filter narrows List; zero fields match everything.
type Filter struct {
	CaseID string
	Actor  string
	// ActorKind narrows to one kind of actor (user, system, cli, stripe).
	ActorKind auth.ActorKind
	Action    string
	From      time.Time
	To        time.Time
}

// List returns entries newest first, a page at a time.
func (l *Log) List(ctx context.Context, f Filter, page httpx.PageRequest) (httpx.List[Entry], error) {
	var after int64
	hasCursor, err := httpx.DecodeCursor(page.Cursor, &after)
	if err != nil {
		return httpx.List[Entry]{}, err
	}
	var rows []row
	err = l.db.Read(ctx, func(g *gorm.DB) error {
		q := g.Model(&row{})
		if f.CaseID != "" {
			q = q.Where("case_id = ?", f.CaseID)
		}
		if f.Actor != "" {
			q = q.Where("actor = ?", f.Actor)
		}
		if f.ActorKind != "" {
			q = q.Where("actor_kind = ?", string(f.ActorKind))
		}
		if f.Action != "" {
			q = q.Where("action = ?", f.Action)
		}
		if !f.From.IsZero() {
			q = q.Where("at >= ?", f.From.UTC())
		}
		if !f.To.IsZero() {
			q = q.Where("at < ?", f.To.UTC())
		}
		if hasCursor {
			q = q.Where("id < ?", after)
		}
		rows = nil
		return q.Order("id DESC").Limit(page.Limit + 1).Find(&rows).Error
	})
	if err != nil {
		return httpx.List[Entry]{}, fmt.Errorf("list audit log: %w", err)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = Entry{ID: r.ID, At: r.At.UTC(), Actor: r.Actor, ActorKind: auth.ActorKind(r.ActorKind), ActorUserID: r.ActorUserID, Role: r.Role, RequestID: str(r.RequestID), Action: r.Action,
			CaseID: str(r.CaseID), ObjectType: str(r.ObjectType), ObjectID: str(r.ObjectID), Before: raw(r.Before),
			After: raw(r.After), ProviderRequestID: str(r.ProviderRequestID), Detail: str(r.Detail)}
	}
	return httpx.NewList(out, page.Limit, func(e Entry) any { return e.ID }), nil
}
