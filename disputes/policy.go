package disputes

import (
	"fmt"
	"slices"
	"time"
)

// Duration is a time.Duration that reads and writes as a Go duration string
// ("72h") in the policy file and in JSON.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Policy is the `disputes:` section of the policy file.
type Policy struct {
	// Reminders are the lead times before a dispute's evidence due_by at
	// which the case gets a reminder (timeline entry, metric, priority
	// raised, event). Default 72h and 24h.
	Reminders []Duration `json:"reminders" yaml:"reminders"`
	// Fees are what a dispute costs, for the fight-or-accept recommendation.
	Fees Fees `json:"fees" yaml:"fees"`
	// PriorWinRate and PriorWeight are the win rate assumed while a
	// reason/brand has little history, and how many disputes that prior is
	// worth (a Beta prior): rate = (won + prior·weight) / (decided + weight).
	PriorWinRate float64 `json:"prior_win_rate" yaml:"prior_win_rate"`
	PriorWeight  float64 `json:"prior_weight" yaml:"prior_weight"`
	// SubscriptionRules say what happens to the customer's subscription when
	// a dispute opens, is lost or is won; the first rule that matches the
	// subscription's plan (price) or product applies.
	SubscriptionRules []SubscriptionRule `json:"subscription_rules" yaml:"subscription_rules"`
	// Monitoring holds the card networks' dispute-monitoring levels that
	// GET /disputes/stats compares dispute activity against.
	Monitoring Monitoring `json:"monitoring" yaml:"monitoring"`
}

// Fees are in minor units of the dispute's currency.
type Fees struct {
	// DisputeFee is charged on every dispute, won or lost (Stripe: $15).
	DisputeFee int64 `json:"dispute_fee" yaml:"dispute_fee"`
	// CounterFee is charged when evidence is submitted and refunded on a win.
	CounterFee int64 `json:"counter_fee" yaml:"counter_fee"`
}

// Subscription outcomes a rule can ask for.
const (
	SubLeave             = "leave"
	SubCancelNow         = "cancel_now"
	SubCancelAtPeriodEnd = "cancel_at_period_end"
	SubPauseCollection   = "pause_collection"
	SubResume            = "resume" // undo what on_open did: resume collection or reactivate
)

// SubscriptionOutcomes lists the values of on_open, on_lost and on_won.
func SubscriptionOutcomes() []string {
	return []string{SubLeave, SubCancelNow, SubCancelAtPeriodEnd, SubPauseCollection, SubResume}
}

// SubscriptionRule is what happens to a disputed customer's subscription.
// A rule with no plans and no products matches every subscription.
type SubscriptionRule struct {
	Name     string   `json:"name" yaml:"name"`
	Plans    []string `json:"plans,omitempty" yaml:"plans"`       // Stripe price ids
	Products []string `json:"products,omitempty" yaml:"products"` // Stripe product ids
	OnOpen   string   `json:"on_open" yaml:"on_open"`
	OnLost   string   `json:"on_lost" yaml:"on_lost"`
	OnWon    string   `json:"on_won" yaml:"on_won"`
}

// Matches reports whether the rule applies to a subscription on price/product.
func (r SubscriptionRule) Matches(price, product string) bool {
	if len(r.Plans) == 0 && len(r.Products) == 0 {
		return true
	}
	return (price != "" && slices.Contains(r.Plans, price)) || (product != "" && slices.Contains(r.Products, product))
}

// Monitoring holds per-network monitoring levels, least severe first.
type Monitoring struct {
	Visa       []MonitoringLevel `json:"visa" yaml:"visa"`
	Mastercard []MonitoringLevel `json:"mastercard" yaml:"mastercard"`
}

// MonitoringLevel is one program level: a month is in it when its ratio
// (disputes ÷ successful charges) is at least Ratio and its dispute count
// at least MinCount.
type MonitoringLevel struct {
	Name     string  `json:"name" yaml:"name"`
	Ratio    float64 `json:"ratio" yaml:"ratio"` // 0.015 is 1.5%
	MinCount int64   `json:"min_count" yaml:"min_count"`
}

// DefaultPolicy is the policy when the file says nothing (DISPUTES.md
// "Money and monitoring").
func DefaultPolicy() Policy {
	return Policy{
		Reminders:    []Duration{Duration(72 * time.Hour), Duration(24 * time.Hour)},
		Fees:         Fees{DisputeFee: 1500, CounterFee: 1500},
		PriorWinRate: 0.3, PriorWeight: 10,
		SubscriptionRules: []SubscriptionRule{},
		Monitoring: Monitoring{
			Visa:       []MonitoringLevel{{Name: "VAMP excessive", Ratio: 0.015, MinCount: 1500}},
			Mastercard: []MonitoringLevel{{Name: "ECM", Ratio: 0.015, MinCount: 100}, {Name: "HECM", Ratio: 0.03, MinCount: 300}},
		},
	}
}

// Normalize sorts reminders longest lead first and drops duplicates.
func (p *Policy) Normalize() {
	slices.SortFunc(p.Reminders, func(a, b Duration) int { return int((b - a) / Duration(time.Second)) })
	p.Reminders = slices.Compact(p.Reminders)
	if p.SubscriptionRules == nil {
		p.SubscriptionRules = []SubscriptionRule{}
	}
}

// Validate reports the first setting that cannot work.
func (p Policy) Validate() error {
	for _, r := range p.Reminders {
		if r <= 0 {
			return fmt.Errorf("reminders: %s is not a positive lead time", r.D())
		}
	}
	if p.Fees.DisputeFee < 0 || p.Fees.CounterFee < 0 {
		return fmt.Errorf("fees must not be negative")
	}
	if p.PriorWinRate < 0 || p.PriorWinRate > 1 {
		return fmt.Errorf("prior_win_rate %v must be between 0 and 1", p.PriorWinRate)
	}
	if p.PriorWeight < 0 {
		return fmt.Errorf("prior_weight %v must not be negative", p.PriorWeight)
	}
	for i, r := range p.SubscriptionRules {
		if r.Name == "" {
			return fmt.Errorf("subscription_rules[%d]: name is required", i)
		}
		for field, v := range map[string]string{"on_open": r.OnOpen, "on_lost": r.OnLost, "on_won": r.OnWon} {
			if v != "" && !slices.Contains(SubscriptionOutcomes(), v) {
				return fmt.Errorf("subscription_rules[%d] (%s): %s must be one of %v (got %q)", i, r.Name, field, SubscriptionOutcomes(), v)
			}
		}
	}
	for network, levels := range map[string][]MonitoringLevel{"visa": p.Monitoring.Visa, "mastercard": p.Monitoring.Mastercard} {
		for i, l := range levels {
			if l.Name == "" || l.Ratio <= 0 || l.Ratio >= 1 || l.MinCount < 0 {
				return fmt.Errorf("monitoring.%s[%d]: needs a name, a ratio between 0 and 1 and a non-negative min_count", network, i)
			}
		}
	}
	return nil
}
