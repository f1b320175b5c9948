package main

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
)

// caseRefs adapts the case service to what actions need.
type caseRefs struct{ svc *cases.Service }

func ref(c cases.Case) actions.CaseRef {
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return actions.CaseRef{ID: c.ID, Kind: string(c.Kind), State: c.State, Status: string(c.Status),
		Customer: s(c.Links.Customer), Subscription: s(c.Links.Subscription), Invoice: s(c.Links.Invoice),
		Charge: s(c.Links.Charge), Dispute: s(c.Links.Dispute)}
}

func (a caseRefs) Lookup(ctx context.Context, tx *gorm.DB, id string) (actions.CaseRef, error) {
	c, err := a.svc.GetInTx(ctx, tx, id)
	if err != nil {
		return actions.CaseRef{}, err
	}
	return ref(c), nil
}

func (a caseRefs) Record(ctx context.Context, tx *gorm.DB, caseID, actor, entryType, summary, eventID string) error {
	return a.svc.Record(ctx, tx, caseID, actor, entryType, summary, eventID)
}

func (a caseRefs) OpenCaseFor(ctx context.Context, tx *gorm.DB, kind, subject string) (actions.CaseRef, bool, error) {
	c, ok, err := a.svc.OpenCaseFor(ctx, tx, cases.Kind(kind), subject)
	if err != nil || !ok {
		return actions.CaseRef{}, ok, err
	}
	return ref(c), true, nil
}

// policyInForce is the whole policy file as loaded (defaults filled in), as
// GET /api/v1/policy shows it.
type policyInForce struct {
	Actions actions.Policy  `json:"actions"`
	SLA     cases.SLAPolicy `json:"sla"`
}

// loadPolicy reads the policy file (or the defaults).
func loadPolicy(path string) (policyInForce, error) {
	doc, err := actions.LoadPolicyFile(path)
	if err != nil {
		return policyInForce{}, err
	}
	p := policyInForce{Actions: doc.Actions, SLA: cases.DefaultSLAPolicy()}
	if doc.SLA.Kind != 0 {
		// Decoded over the defaults: what the file leaves out keeps its default.
		if err := doc.SLA.Decode(&p.SLA); err != nil {
			return p, fmt.Errorf("policy file %s: sla: %w", path, err)
		}
	}
	p.SLA.Normalize()
	if err := p.SLA.Validate(); err != nil {
		return p, fmt.Errorf("policy file %s: sla: %w", path, err)
	}
	return p, nil
}

// mirrorFor binds the billing store for actions and cases.
func mirrorFor(store *billing.Store) (func(*gorm.DB) actions.Mirror, cases.BillingBinder) {
	return func(tx *gorm.DB) actions.Mirror { return store.In(tx) },
		func(tx *gorm.DB) cases.BillingReader { return store.In(tx) }
}
