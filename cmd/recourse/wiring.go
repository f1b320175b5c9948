package main

import (
	"bytes"
	"context"
	"fmt"

	"gopkg.in/yaml.v3"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/notifications"
)

// policyInForce is the whole policy file as loaded (defaults filled in), as
// GET /api/v1/policy shows it.
type policyInForce struct {
	Actions  actions.Policy  `json:"actions"`
	SLA      cases.SLAPolicy `json:"sla"`
	Disputes disputes.Policy `json:"disputes"`
	// Notifications shows destinations without their URLs' paths or
	// secrets (notifications.Destination.MarshalJSON).
	Notifications notifications.Policy `json:"notifications"`
}

// loadPolicy reads the policy file (or the defaults). Notification
// destinations are checked against SSRF with r (their hosts resolved now).
func loadPolicy(ctx context.Context, path string, r notifications.Resolver) (policyInForce, error) {
	doc, err := actions.LoadPolicyFile(path)
	if err != nil {
		return policyInForce{}, err
	}
	p := policyInForce{Actions: doc.Actions, SLA: cases.DefaultSLAPolicy(), Disputes: disputes.DefaultPolicy()}
	if doc.Disputes.Kind != 0 {
		// Decoded over the defaults; an unknown key is an error here too.
		if err := decodeStrict(&doc.Disputes, &p.Disputes); err != nil {
			return p, fmt.Errorf("policy file %s: disputes: %w", path, err)
		}
	}
	p.Disputes.Normalize()
	if err := p.Disputes.Validate(); err != nil {
		return p, fmt.Errorf("policy file %s: disputes: %w", path, err)
	}
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
	if doc.Notifications.Kind != 0 {
		if err := decodeStrict(&doc.Notifications, &p.Notifications); err != nil {
			return p, fmt.Errorf("policy file %s: notifications: %w", path, err)
		}
	}
	if err := p.Notifications.Validate(ctx, r); err != nil {
		return p, fmt.Errorf("policy file %s: notifications: %w", path, err)
	}
	return p, nil
}

// mirrorFor binds the billing store for actions and cases.
func mirrorFor(store *billing.Store) (func(*gorm.DB) actions.Mirror, cases.BillingBinder) {
	return func(tx *gorm.DB) actions.Mirror { return store.In(tx) },
		func(tx *gorm.DB) cases.BillingReader { return store.In(tx) }
}

// decodeStrict decodes a policy-file section into v, refusing unknown keys
// (yaml.Node.Decode alone would ignore them, and a typo would silently
// fall back to a default).
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}
