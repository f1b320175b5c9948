package disputes

import (
	"context"
	"encoding/json"
	"time"
)

// FactKind is what an evidence fact records.
type FactKind string

// Fact kinds: what only the merchant's product knows about a customer.
const (
	FactSignup        FactKind = "signup"        // account created: time, IP, device, account id, user agent
	FactLogin         FactKind = "login"         // a sign-in: time, IP, device, user agent
	FactUsage         FactKind = "usage"         // a usage session: time, IP, device, what was used (data)
	FactConsent       FactKind = "consent"       // a policy shown and accepted: policy key + version, IP, the flow (data)
	FactNotice        FactKind = "notice"        // a notice sent: trial ending, renewal, price change, receipt (channel, template)
	FactCommunication FactKind = "communication" // a message to or from the customer (channel, data: direction, subject, body)
	FactDelivery      FactKind = "delivery"      // the service delivered: access granted, download, shipment (data)
)

// FactKinds lists every fact kind.
func FactKinds() []FactKind {
	return []FactKind{FactSignup, FactLogin, FactUsage, FactConsent, FactNotice, FactCommunication, FactDelivery}
}

// PolicyRef points at a versioned policy document (terms, cancellation,
// refund) that a consent fact accepted.
type PolicyRef struct {
	Key     string `json:"key"`
	Version string `json:"version"`
}

// Fact is one evidence fact about a customer, as the merchant's product sent
// it. ID is the sender's id, unique per customer: a resend changes nothing.
// Fields a kind does not use are empty; Data holds anything else.
type Fact struct {
	ID                string          `json:"id"`
	CustomerID        string          `json:"customer"`
	Kind              FactKind        `json:"kind"`
	OccurredAt        time.Time       `json:"occurred_at"`
	IP                string          `json:"ip,omitempty"`
	DeviceID          string          `json:"device_id,omitempty"`
	DeviceFingerprint string          `json:"device_fingerprint,omitempty"`
	AccountID         string          `json:"account_id,omitempty"`
	UserAgent         string          `json:"user_agent,omitempty"`
	Policy            *PolicyRef      `json:"policy,omitempty"`
	Channel           string          `json:"channel,omitempty"`
	Template          string          `json:"template,omitempty"`
	Data              json.RawMessage `json:"data,omitempty"`
	ReceivedAt        time.Time       `json:"received_at"`
}

// FactQuery narrows a customer's facts. Zero values mean no bound.
type FactQuery struct {
	Kinds []FactKind
	From  *time.Time // occurred_at >= From
	To    *time.Time // occurred_at < To
	Limit int        // 0: no limit
}

// PolicyDocument is one version of a merchant policy (terms, cancellation,
// refund) as it was shown to customers from EffectiveAt.
type PolicyDocument struct {
	Key         string    `json:"key"`
	Version     string    `json:"version"`
	Title       string    `json:"title"`
	Body        string    `json:"body"`
	EffectiveAt time.Time `json:"effective_at"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
}

// FactReader is what the workbench reads of a customer's facts and the
// policy documents they cite (*FactStore).
type FactReader interface {
	// Facts returns the customer's facts in occurred_at order (then id).
	Facts(ctx context.Context, customerID string, q FactQuery) ([]Fact, error)
	// PolicyDocument returns one version of a policy; errs ENOTFOUND when unknown.
	PolicyDocument(ctx context.Context, key, version string) (PolicyDocument, error)
}
