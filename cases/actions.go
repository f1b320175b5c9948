package cases

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Ref is what other packages (actions) need to know about a case: its
// identity, kind, where it stands and the provider objects it is about, as
// plain ids ("" when not linked). It is a read-only view of a Case.
type Ref struct {
	ID           string
	Kind         Kind
	State        string
	Status       Status
	Customer     string
	Subscription string
	Invoice      string
	Charge       string
	Dispute      string
}

// Ref returns the case's Ref.
func (c Case) Ref() Ref {
	return Ref{ID: c.ID, Kind: c.Kind, State: c.State, Status: c.Status,
		Customer: deref(c.Links.Customer), Subscription: deref(c.Links.Subscription), Invoice: deref(c.Links.Invoice),
		Charge: deref(c.Links.Charge), Dispute: deref(c.Links.Dispute)}
}

// IsOpen reports whether the case still needs work.
func (r Ref) IsOpen() bool { return r.Status == StatusOpen }

// Lookup returns case id's Ref inside tx, locking the row until tx ends
// (PostgreSQL). ENOTFOUND when there is none.
func (s *Service) Lookup(ctx context.Context, tx *gorm.DB, id string) (Ref, error) {
	c, err := s.st.get(ctx, tx, id, true)
	if err != nil {
		return Ref{}, err
	}
	return c.Ref(), nil
}

// OpenRefFor returns the open case of kind on subject (a provider id), if
// any, inside tx.
func (s *Service) OpenRefFor(ctx context.Context, tx *gorm.DB, kind Kind, subject string) (Ref, bool, error) {
	c, ok, err := s.OpenCaseFor(ctx, tx, kind, subject)
	if err != nil || !ok {
		return Ref{}, false, err
	}
	return c.Ref(), true, nil
}

// ActionEcho is the Recourse action a provider event echoes.
type ActionEcho struct {
	ActionID string
	CaseID   string
}

// EchoFinder recognises provider events caused by Recourse's own actions
// (actions.Echoes implements it). It is a pure lookup inside tx: it writes
// nothing. idempotencyKey is the event's request.idempotency_key; object
// and objectID name the event's object.
type EchoFinder interface {
	FindEcho(ctx context.Context, tx *gorm.DB, idempotencyKey string, object billing.ObjectKind, objectID string) (ActionEcho, bool, error)
}

// Move is a transition an action's outcome fires on its case: Event, when
// the case is of kind Kind and Event can fire from the case's state.
type Move struct {
	Kind  Kind
	Event string
}

// ApplyActionOutcome moves case caseID by the outcome of one of its actions,
// inside tx (the action's outcome transaction), through the same
// transition path as every other case change (FireInTx): each move in moves
// whose Kind is the case's kind fires, with actor the person who requested
// the action and reason on the timeline. A move whose event cannot fire in
// the case's state (a webhook moved it first, an agent closed it) changes
// nothing. ENOTFOUND for an unknown case.
func (s *Service) ApplyActionOutcome(ctx context.Context, tx *gorm.DB, caseID string, moves []Move, actor, reason string) error {
	c, err := s.st.get(ctx, tx, caseID, true)
	if err != nil {
		return err
	}
	lc := mustLifecycle(c.Kind)
	for _, m := range moves {
		if m.Kind != c.Kind {
			continue
		}
		if _, err := lc.Fire(ctx, c.State, m.Event, false); err != nil {
			if errs.Is(err, errs.ECONFLICT) {
				return nil // already moved on (a webhook, a person): nothing to do
			}
			return err
		}
		at := ActorPerson
		if actor == SystemActor || actor == "" {
			actor, at = SystemActor, ActorSystem
		}
		if _, err := s.fire(ctx, tx, c, m.Event, actor, at, Redact(reason), false); err != nil {
			return fmt.Errorf("move case %s by action outcome: %w", caseID, err)
		}
		return nil
	}
	return nil
}
