package cases

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/events"
)

// Facts is c as an outbox event carries it (events.CaseFacts): routing
// fields and what a notification shows, nothing personal.
func (c Case) Facts(detail string, due *time.Time) events.CaseFacts {
	f := events.CaseFacts{CaseID: c.ID, Kind: string(c.Kind), Team: string(c.Team), Priority: string(c.Priority),
		BusinessLine: deref(c.BusinessLine), Title: c.Title, Amount: c.Amount, Currency: deref(c.Currency), Detail: detail}
	if due != nil {
		t := due.UTC()
		f.DueAt = &t
	}
	return f
}

// announceOpened appends dispute.created for a new dispute case, inside the
// transaction that stores it (other kinds announce nothing yet).
func (s *Service) announceOpened(ctx context.Context, tx *gorm.DB, c Case) error {
	if c.Kind != KindDispute {
		return nil
	}
	_, err := events.Append(ctx, tx, events.TypeDisputeCreated, "case-opened/"+c.ID, c.ID, c.CreatedAt, c.Facts("", c.EvidenceDueBy))
	return err
}

// announceSLA appends sla.breached (or sla.due_soon) for c's SLA named sla,
// due at due, inside tx. The key holds the due time, so a clock that moves
// (a reopened case) announces again, and a repeat sweep does not.
func announceSLA(ctx context.Context, tx *gorm.DB, typ string, c Case, sla string, due, now time.Time) error {
	_, err := events.Append(ctx, tx, typ, typ+"/"+c.ID+"/"+sla+"/"+due.UTC().Format(time.RFC3339), c.ID, now, c.Facts(sla, &due))
	return err
}

// Announce appends an event of typ with key about case caseID inside tx
// (another package's change to the case: an action waiting for approval, an
// action that failed). detail says what happened; amount and currency, when
// set, replace the case's (the action's own amount). ENOTFOUND for an
// unknown case.
func (s *Service) Announce(ctx context.Context, tx *gorm.DB, typ, key, caseID, detail string, amount *int64, currency *string) error {
	c, err := s.st.get(ctx, tx, caseID, true)
	if err != nil {
		return err
	}
	f := c.Facts(detail, nil)
	if amount != nil && currency != nil {
		f.Amount, f.Currency = amount, *currency
	}
	_, err = events.Append(ctx, tx, typ, key, c.ID, s.clock.Now(), f)
	return err
}
