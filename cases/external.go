package cases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

// ExternalTicket is the ticket in another system (Zendesk, an in-app
// escalation tool, a chat or email desk) a case was opened from or linked
// to. A ticket belongs to at most one case: (System, TicketID) is unique.
type ExternalTicket struct {
	System   string    `json:"system"`
	TicketID string    `json:"ticket_id"`
	URL      string    `json:"url,omitempty"`
	CaseID   string    `json:"case_id"`
	LinkedAt time.Time `json:"linked_at"`
}

type externalRow struct {
	System    string `gorm:"primaryKey"`
	TicketID  string `gorm:"primaryKey"`
	CaseID    string
	URL       string `gorm:"column:url"`
	CreatedAt time.Time
	UpdatedAt time.Time
	LastHash  string
}

func (externalRow) TableName() string { return "case_external_tickets" }

func (r externalRow) ticket() ExternalTicket {
	return ExternalTicket{System: r.System, TicketID: r.TicketID, URL: r.URL, CaseID: r.CaseID, LinkedAt: r.CreatedAt}
}

// Limits of an external ticket reference.
const (
	maxSystem      = 64
	maxTicketID    = 128
	maxExternalURL = 2048
)

// cleanExternal validates a ticket reference: a system name and ticket id
// of printable characters without spaces, and an optional http(s) URL.
func cleanExternal(t ExternalTicket) (ExternalTicket, error) {
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"external_system", &t.System, maxSystem}, {"external_id", &t.TicketID, maxTicketID}} {
		*f.v = strings.TrimSpace(*f.v)
		if *f.v == "" || utf8.RuneCountInString(*f.v) > f.max || !utf8.ValidString(*f.v) ||
			strings.IndexFunc(*f.v, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
			return t, errs.Coded(errs.EINVALID, "invalid_"+f.name, "%s must be 1–%d printable characters without spaces", f.name, f.max)
		}
	}
	t.URL = strings.TrimSpace(t.URL)
	if t.URL != "" {
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(t.URL) > maxExternalURL {
			return t, errs.Coded(errs.EINVALID, "invalid_external_url", "external_url must be an http(s) URL of at most %d characters", maxExternalURL)
		}
	}
	return t, nil
}

// ContentHash is what ExternalUpdate compares to tell a new update from a
// redelivered one.
func ContentHash(subject, body string) string {
	h := sha256.Sum256([]byte(subject + "\x00" + body))
	return hex.EncodeToString(h[:])
}

// linkExternal records t for case id in tx. A ticket already linked
// (another delivery won) is ECONFLICT external_ticket_exists with
// details.case_id, so the caller's transaction rolls back whatever it made.
func (s *Service) linkExternal(ctx context.Context, tx *gorm.DB, caseID string, t ExternalTicket, hash string) error {
	now := s.clock.Now()
	r := externalRow{System: t.System, TicketID: t.TicketID, CaseID: caseID, URL: t.URL, CreatedAt: now, UpdatedAt: now, LastHash: hash}
	res := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r)
	if res.Error != nil {
		return fmt.Errorf("link %s ticket %s: %w", t.System, t.TicketID, res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	var cur externalRow
	if err := tx.WithContext(ctx).Where("system = ? AND ticket_id = ?", t.System, t.TicketID).Take(&cur).Error; err != nil {
		return fmt.Errorf("read %s ticket %s: %w", t.System, t.TicketID, err)
	}
	return errs.Coded(errs.ECONFLICT, "external_ticket_exists", "%s ticket %s is already linked to case %s", t.System, t.TicketID, cur.CaseID).
		WithDetails(map[string]any{"case_id": cur.CaseID})
}

// FindExternal returns the link of ticket (system, id), if any.
func (s *Service) FindExternal(ctx context.Context, system, ticketID string) (ExternalTicket, bool, error) {
	var r externalRow
	err := caseInScope(ctx, s.db.WithContext(ctx), "case_id").Where("system = ? AND ticket_id = ?", system, ticketID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ExternalTicket{}, false, nil
	}
	if err != nil {
		return ExternalTicket{}, false, fmt.Errorf("find %s ticket %s: %w", system, ticketID, err)
	}
	return r.ticket(), true, nil
}

// TicketsByID finds the links of ticket id ticketID in any system (a
// Zendesk number and a chat id may collide), at most 20, by system.
func (s *Service) TicketsByID(ctx context.Context, ticketID string) ([]ExternalTicket, error) {
	ticketID = strings.TrimSpace(ticketID)
	if ticketID == "" || len(ticketID) > maxTicketID {
		return nil, nil
	}
	var rows []externalRow
	if err := caseInScope(ctx, s.db.WithContext(ctx), "case_id").Where("ticket_id = ?", ticketID).Order("system").Limit(20).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find ticket %s: %w", ticketID, err)
	}
	out := make([]ExternalTicket, len(rows))
	for i, r := range rows {
		out[i] = r.ticket()
	}
	return out, nil
}

// ExternalTickets lists the tickets linked to case id, oldest first.
func (s *Service) ExternalTickets(ctx context.Context, caseID string) ([]ExternalTicket, error) {
	var rows []externalRow
	if err := s.db.WithContext(ctx).Where("case_id = ?", caseID).Order("created_at, system, ticket_id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list external tickets of %s: %w", caseID, err)
	}
	out := make([]ExternalTicket, len(rows))
	for i, r := range rows {
		out[i] = r.ticket()
	}
	return out, nil
}

// LinkExternal links ticket t to the existing case caseID on behalf of p:
// audited (case.link_external) and on the timeline. ENOTFOUND, EINVALID,
// ECONFLICT external_ticket_exists when the ticket is linked already.
func (s *Service) LinkExternal(ctx context.Context, p auth.Principal, caseID string, t ExternalTicket, subject, body string) (ExternalTicket, error) {
	t, err := cleanExternal(t)
	if err != nil {
		return t, err
	}
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		c, err := s.st.get(ctx, tx, caseID, true)
		if err != nil {
			return err
		}
		if err := s.linkExternal(ctx, tx, c.ID, t, ContentHash(subject, body)); err != nil {
			return err
		}
		t.CaseID, t.LinkedAt = c.ID, s.clock.Now()
		sum := fmt.Sprintf("Linked to %s ticket %s", t.System, t.TicketID)
		e := TimelineEntry{CaseID: c.ID, At: t.LinkedAt, Actor: principalActor(p), ActorType: actorTypeOf(p), Type: EntryUpdated, Summary: sum}
		if b := externalBody(subject, body); b != "" {
			e.Body = &b
		}
		if _, err := s.st.appendEntry(ctx, tx, e); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "case.link_external", CaseID: c.ID, ObjectType: "case", ObjectID: c.ID,
			After: audit.Marshal(t)})
	})
	return t, err
}

// ExternalUpdate records an update of a linked ticket on its case's
// timeline (as p, the source), once: a redelivery with the same subject
// and body changes nothing and returns false. ENOTFOUND when the ticket is
// not linked.
func (s *Service) ExternalUpdate(ctx context.Context, p auth.Principal, system, ticketID, subject, body string) (ExternalTicket, bool, error) {
	var (
		out     ExternalTicket
		changed bool
	)
	hash := ContentHash(subject, body)
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		var r externalRow
		err := s.db.Dialect.ForUpdate(tx.WithContext(ctx)).Where("system = ? AND ticket_id = ?", system, ticketID).Take(&r).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errNoExternal(system, ticketID)
		}
		if err != nil {
			return fmt.Errorf("read %s ticket %s: %w", system, ticketID, err)
		}
		out = r.ticket()
		if r.LastHash == hash {
			return nil
		}
		now := s.clock.Now()
		res := tx.WithContext(ctx).Model(&externalRow{}).Where("system = ? AND ticket_id = ? AND last_hash = ?", system, ticketID, r.LastHash).
			Updates(map[string]any{"last_hash": hash, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("update %s ticket %s: %w", system, ticketID, res.Error)
		}
		if res.RowsAffected == 0 {
			// A concurrent delivery of another update won; it is on the
			// timeline and this one is retried by its sender.
			return errs.Coded(errs.ECONFLICT, "version_conflict", "%s ticket %s changed meanwhile; retry", system, ticketID)
		}
		e := TimelineEntry{CaseID: r.CaseID, At: now, Actor: principalActor(p), ActorType: actorTypeOf(p), Type: EntryUpdated,
			Summary: fmt.Sprintf("Update from %s ticket %s", system, ticketID)}
		if b := externalBody(subject, body); b != "" {
			e.Body = &b
		}
		if _, err := s.st.appendEntry(ctx, tx, e); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return out, changed, err
}

// externalBody is a ticket's subject and description as one redacted,
// bounded timeline body.
func externalBody(subject, body string) string {
	b := strings.TrimSpace(strings.TrimSpace(subject) + "\n\n" + strings.TrimSpace(body))
	if utf8.RuneCountInString(b) > maxNote {
		b = string([]rune(b)[:maxNote])
	}
	return Redact(b)
}

func actorTypeOf(p auth.Principal) ActorType {
	if p.Kind == auth.ActorUser {
		return ActorPerson
	}
	return ActorSystem
}

func errNoExternal(system, ticket string) error {
	return errs.Coded(errs.ENOTFOUND, "external_ticket_not_found", "%s ticket %s is not linked to a case", system, ticket)
}
