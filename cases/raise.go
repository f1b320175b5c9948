package cases

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
)

// RaiseAndRecord appends entry (a system entry: the dispute deadline sweep
// uses it) to case caseID's timeline inside tx, and raises the case's
// priority to at least atLeast — never lowering it — auditing the change as
// case.priority_raised. It returns the case as it now is. The case row is
// locked until tx ends (PostgreSQL). ENOTFOUND for an unknown case, EINVALID
// for an incomplete entry.
func (s *Service) RaiseAndRecord(ctx context.Context, tx *gorm.DB, caseID string, atLeast Priority, entry TimelineEntry) (Case, error) {
	if entry.At.IsZero() {
		entry.At = s.clock.Now()
	}
	entry.CaseID = caseID
	entry.Summary = Redact(entry.Summary)
	if err := entry.Validate(); err != nil {
		return Case{}, err
	}
	c, err := s.st.get(ctx, tx, caseID, true)
	if err != nil {
		return Case{}, err
	}
	if _, err := s.st.appendEntry(ctx, tx, entry); err != nil {
		return Case{}, err
	}
	if atLeast == "" || atLeast.Rank() <= c.Priority.Rank() {
		return c, nil
	}
	next := c
	next.Priority = atLeast
	if err := s.save(ctx, tx, c, &next); err != nil {
		return Case{}, err
	}
	detail := fmt.Sprintf("priority %s → %s: %s", c.Priority, next.Priority, entry.Summary)
	if err := s.audit.Record(ctx, tx, audit.Entry{Actor: SystemActor, Role: SystemActor, Action: "case.priority_raised", CaseID: c.ID,
		ObjectType: "case", ObjectID: c.ID, Before: audit.Marshal(c), After: audit.Marshal(next), Detail: detail}); err != nil {
		return Case{}, err
	}
	return next, nil
}
