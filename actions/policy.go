package actions

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that reads and writes as "72h", "30m".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a Go duration string ("36h", "15m").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 36h, 15m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// Policy is the compliance policy for case actions: limits, thresholds and
// windows an operations lead sets in the policy file without a release.
// Amounts are in minor units of the charge's currency.
type Policy struct {
	Refund struct {
		// AgentLimit is the largest refund an agent executes without a
		// supervisor's approval; above it the refund waits for approval.
		AgentLimit int64 `yaml:"agent_limit" json:"agent_limit"`
		// ApprovalOver: any refund above this needs approval, whoever asks.
		ApprovalOver int64 `yaml:"approval_over" json:"approval_over"`
		// Window: refunds of charges older than this need approval.
		Window Duration `yaml:"window" json:"window"`
	} `yaml:"refund" json:"refund"`
	Cancel struct {
		// RequireReason: a cancellation must record the customer's reason.
		RequireReason bool `yaml:"require_reason" json:"require_reason"`
	} `yaml:"cancel" json:"cancel"`
	Trial struct {
		// MaxExtension is the most a trial may be extended in total, across
		// all extensions of one subscription.
		MaxExtension Duration `yaml:"max_extension" json:"max_extension"`
	} `yaml:"trial" json:"trial"`
	Pause struct {
		// MaxLength bounds how long collection may be paused.
		MaxLength Duration `yaml:"max_length" json:"max_length"`
	} `yaml:"pause" json:"pause"`
	Retry struct {
		// MinInterval between two payment retries of one invoice.
		MinInterval Duration `yaml:"min_interval" json:"min_interval"`
		// MaxPerInvoice bounds agent-triggered retries of one invoice.
		MaxPerInvoice int `yaml:"max_per_invoice" json:"max_per_invoice"`
	} `yaml:"retry" json:"retry"`
	Credit struct {
		Min          int64 `yaml:"min" json:"min"`
		Max          int64 `yaml:"max" json:"max"`
		ApprovalOver int64 `yaml:"approval_over" json:"approval_over"`
	} `yaml:"credit" json:"credit"`
	Evidence struct {
		// SubmitRequiresApproval: a final evidence submission waits for a
		// supervisor's approval (staging never does).
		SubmitRequiresApproval bool `yaml:"submit_requires_approval" json:"submit_requires_approval"`
	} `yaml:"evidence" json:"evidence"`
	// StuckAfter: an action still executing after this (a crash between
	// recording it and hearing back from the provider) is retried with the
	// same idempotency key.
	StuckAfter Duration `yaml:"stuck_after" json:"stuck_after"`
}

// DefaultPolicy is the policy in force without a policy file.
func DefaultPolicy() Policy {
	var p Policy
	p.Refund.AgentLimit = 10_000   // $100.00
	p.Refund.ApprovalOver = 50_000 // $500.00
	p.Refund.Window = Duration(180 * 24 * time.Hour)
	p.Cancel.RequireReason = true
	p.Trial.MaxExtension = Duration(30 * 24 * time.Hour)
	p.Pause.MaxLength = Duration(90 * 24 * time.Hour)
	p.Retry.MinInterval = Duration(24 * time.Hour)
	p.Retry.MaxPerInvoice = 3
	p.Credit.Min = 1
	p.Credit.Max = 100_000
	p.Credit.ApprovalOver = 5_000
	p.StuckAfter = Duration(time.Minute)
	return p
}

// Validate reports the first nonsensical setting.
func (p Policy) Validate() error {
	switch {
	case p.Refund.AgentLimit < 0 || p.Refund.ApprovalOver < 0:
		return fmt.Errorf("refund limits must not be negative")
	case p.Refund.Window <= 0:
		return fmt.Errorf("refund.window must be positive")
	case p.Trial.MaxExtension < 0:
		return fmt.Errorf("trial.max_extension must not be negative")
	case p.Pause.MaxLength <= 0:
		return fmt.Errorf("pause.max_length must be positive")
	case p.Retry.MinInterval < 0 || p.Retry.MaxPerInvoice < 1:
		return fmt.Errorf("retry.min_interval must not be negative and retry.max_per_invoice at least 1")
	case p.Credit.Min < 1 || p.Credit.Max < p.Credit.Min || p.Credit.ApprovalOver < 0:
		return fmt.Errorf("credit bounds must satisfy 1 <= min <= max and approval_over >= 0")
	case p.StuckAfter < Duration(time.Second):
		return fmt.Errorf("stuck_after must be at least 1s")
	}
	return nil
}

// Document is the whole policy file: action policy and, under `sla`, the
// case SLA policy (decoded by the caller into its own type).
type Document struct {
	Actions Policy    `yaml:"actions" json:"actions"`
	SLA     yaml.Node `yaml:"sla" json:"-"`
	// Disputes is the dispute policy (reminders, fees, subscription rules,
	// monitoring levels), decoded by the caller into disputes.Policy.
	Disputes yaml.Node `yaml:"disputes" json:"-"`
	// Notifications are the outbound destinations and routing rules,
	// decoded by the caller into notifications.Policy.
	Notifications yaml.Node `yaml:"notifications" json:"-"`
}

// LoadPolicyFile reads the policy file at path over the defaults: settings
// it leaves out keep their default; unknown keys are an error (a typo must
// not silently fall back to a default).
func LoadPolicyFile(path string) (Document, error) {
	doc := Document{Actions: DefaultPolicy()}
	if path == "" {
		return doc, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return doc, fmt.Errorf("read policy file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !strings.Contains(err.Error(), "EOF") {
		return doc, fmt.Errorf("policy file %s: %w", path, err)
	}
	if err := doc.Actions.Validate(); err != nil {
		return doc, fmt.Errorf("policy file %s: %w", path, err)
	}
	return doc, nil
}
