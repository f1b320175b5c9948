// Package notifications tells people and tools outside Recourse what
// happened: a new dispute, an SLA due soon or breached, an approval waiting,
// an action that failed, a webhook event dead-lettered. It posts to Slack
// (incoming webhooks, Block Kit) and to generic webhooks signed per
// Standard Webhooks.
//
// The events outbox (internal/events) is the source of truth: a cause only
// appends its event, in its own transaction, and never waits for a
// notification. A Dispatcher tails the feed (past its settle delay, so it
// misses nothing) and writes one delivery per (event, destination) the
// policy's rules route it to — the (event, destination) key makes that
// happen once, however many replicas dispatch. A Sender leases due
// deliveries (SKIP LOCKED on PostgreSQL), posts them with a timeout, and
// retries failures with capped exponential backoff until the last attempt,
// which leaves the delivery failed for an operator to replay.
package notifications

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"

	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/stdwebhooks"
)

// DestinationType is how a destination is posted to.
type DestinationType string

// Destination types.
const (
	TypeSlack   DestinationType = "slack"
	TypeWebhook DestinationType = "webhook"
)

// Destination is one place notifications go. URL and Secret are
// credentials (a Slack incoming-webhook URL is one): they are never shown
// or logged, only fingerprinted (see MarshalJSON).
type Destination struct {
	Name string          `yaml:"name"`
	Type DestinationType `yaml:"type"`
	URL  string          `yaml:"url"`
	// Secret signs webhook deliveries ("whsec_…" or any string).
	Secret string `yaml:"secret"`
	// AllowPrivate lets the URL be http and resolve to a private, loopback
	// or link-local address: an admin's explicit choice for an internal
	// receiver. Off, such a URL is refused (SSRF).
	AllowPrivate bool `yaml:"allow_private"`
}

// MarshalJSON shows d without its credentials: the URL's scheme and host,
// and a short fingerprint of URL and secret, so GET /policy and the audit
// log show that a credential changed without showing it.
func (d Destination) MarshalJSON() ([]byte, error) {
	host := ""
	if u, err := url.Parse(d.URL); err == nil {
		host = u.Scheme + "://" + u.Host + "/…"
	}
	out := map[string]any{"name": d.Name, "type": d.Type, "url": host, "url_fingerprint": fingerprint(d.URL), "allow_private": d.AllowPrivate}
	if d.Secret != "" {
		out["secret"] = "set (" + fingerprint(d.Secret) + ")"
	}
	return json.Marshal(out)
}

func fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// Rule routes events to destinations. An event matches when its type is in
// On and, for each filter that is set, its value is in the filter (an event
// without the value — a webhook event has no kind — matches no set filter).
type Rule struct {
	On            []string `yaml:"on" json:"on"`
	Kinds         []string `yaml:"kinds" json:"kinds,omitempty"`
	Teams         []string `yaml:"teams" json:"teams,omitempty"`
	Priorities    []string `yaml:"priorities" json:"priorities,omitempty"`
	BusinessLines []string `yaml:"business_lines" json:"business_lines,omitempty"`
	To            []string `yaml:"to" json:"to"`
}

// Policy is the notifications section of the policy file.
type Policy struct {
	Destinations []Destination `yaml:"destinations" json:"destinations"`
	Rules        []Rule        `yaml:"rules" json:"rules"`
}

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate reports the first mistake: a bad or duplicate destination name,
// an unknown type, a webhook without a secret, a URL refused by CheckURL
// (resolved with r), a rule on an unknown event type or naming an unknown
// destination.
func (p Policy) Validate(ctx context.Context, r Resolver) error {
	byName := map[string]bool{}
	for i, d := range p.Destinations {
		switch {
		case !nameRE.MatchString(d.Name):
			return fmt.Errorf("destinations[%d]: name %q must be 1–64 of a-z, 0-9, _ and -, starting with a letter or digit", i, d.Name)
		case byName[d.Name]:
			return fmt.Errorf("destinations[%d]: name %q is used twice", i, d.Name)
		case d.Type != TypeSlack && d.Type != TypeWebhook:
			return fmt.Errorf("destination %s: type %q is unknown (slack or webhook)", d.Name, d.Type)
		}
		if d.Type == TypeWebhook {
			if _, err := stdwebhooks.Key(d.Secret); err != nil {
				return fmt.Errorf("destination %s: a webhook destination needs a signing secret: %w", d.Name, err)
			}
		}
		if err := CheckURL(ctx, r, d.URL, d.AllowPrivate); err != nil {
			return fmt.Errorf("destination %s: %w", d.Name, err)
		}
		byName[d.Name] = true
	}
	known := events.Types()
	for i, rule := range p.Rules {
		if len(rule.On) == 0 || len(rule.To) == 0 {
			return fmt.Errorf("rules[%d]: a rule needs on (event types) and to (destinations)", i)
		}
		for _, t := range rule.On {
			if !slices.Contains(known, t) {
				return fmt.Errorf("rules[%d]: event type %q is unknown (one of %v)", i, t, known)
			}
		}
		for _, to := range rule.To {
			if !byName[to] {
				return fmt.Errorf("rules[%d]: destination %q is not defined under notifications.destinations", i, to)
			}
		}
	}
	return nil
}

// destination returns the destination named name.
func (p Policy) destination(name string) (Destination, bool) {
	for _, d := range p.Destinations {
		if d.Name == name {
			return d, true
		}
	}
	return Destination{}, false
}

// routing is what a rule reads from an event's data (events.CaseFacts and
// the older events' maps name these the same).
type routing struct {
	Kind         string `json:"kind"`
	Team         string `json:"team"`
	Priority     string `json:"priority"`
	BusinessLine string `json:"business_line"`
}

// Route returns the destinations ev goes to under p, each once, in the
// order rules name them.
func (p Policy) Route(ev events.Event) []string {
	var r routing
	_ = json.Unmarshal(ev.Data, &r) // an event whose data lacks a field matches no filter on it
	var out []string
	for _, rule := range p.Rules {
		if !rule.matches(ev.Type, r) {
			continue
		}
		for _, to := range rule.To {
			if !slices.Contains(out, to) {
				out = append(out, to)
			}
		}
	}
	return out
}

func (rule Rule) matches(typ string, r routing) bool {
	in := func(filter []string, v string) bool {
		return len(filter) == 0 || (v != "" && slices.Contains(filter, v))
	}
	return slices.Contains(rule.On, typ) && in(rule.Kinds, r.Kind) && in(rule.Teams, r.Team) &&
		in(rule.Priorities, r.Priority) && in(rule.BusinessLines, r.BusinessLine)
}
