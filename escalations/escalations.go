// Package escalations takes tickets escalated from other desks — Zendesk,
// in-app escalation tools, IM chat, Slack, email — and opens or updates a
// case for each, deduplicated by the source's own ticket id.
//
// Each source is configured with a name, a type and a shared secret
// (RECOURSE_ESCALATION_SOURCES=name:type:secret,…) and posts to
// POST /webhooks/escalations/{name}:
//
//   - type generic: the documented JSON shape (Ticket), signed per the
//     Standard Webhooks specification (webhook-id, webhook-timestamp,
//     webhook-signature), like the notifications Recourse sends;
//   - type zendesk: the same JSON shape, built by a Zendesk webhook's JSON
//     body from ticket placeholders, verified with Zendesk's own signature
//     headers (X-Zendesk-Webhook-Signature, …-Timestamp).
//
// Both refuse timestamps more than five minutes from now.
package escalations

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/stdwebhooks"
)

// Type is how a source signs its deliveries.
type Type string

// Source types.
const (
	TypeGeneric Type = "generic"
	TypeZendesk Type = "zendesk"
)

// Source is one configured sender.
type Source struct {
	Name string
	Type Type
	// key is the HMAC key: the Standard Webhooks secret's bytes, or the
	// Zendesk signing secret as given.
	key []byte
}

// ParseSources reads "name:type:secret,…". Names are 1–64 of [a-z0-9_-];
// each name once.
func ParseSources(s string) ([]Source, error) {
	var out []Source
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.SplitN(item, ":", 3)
		if len(parts) != 3 || parts[2] == "" {
			return nil, fmt.Errorf("escalation source %q: want name:type:secret", redactSecret(item))
		}
		name, typ, secret := parts[0], Type(parts[1]), parts[2]
		if !validName(name) {
			return nil, fmt.Errorf("escalation source name %q: use 1–64 of a-z, 0-9, _ and -", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("escalation source %q is configured twice", name)
		}
		seen[name] = true
		src := Source{Name: name, Type: typ}
		switch typ {
		case TypeGeneric:
			k, err := stdwebhooks.Key(secret)
			if err != nil {
				return nil, fmt.Errorf("escalation source %q: %w", name, err)
			}
			src.key = k
		case TypeZendesk:
			src.key = []byte(secret)
		default:
			return nil, fmt.Errorf("escalation source %q: type must be generic or zendesk, not %q", name, typ)
		}
		out = append(out, src)
	}
	return out, nil
}

func redactSecret(item string) string {
	if i := strings.LastIndex(item, ":"); i >= 0 {
		return item[:i+1] + "…"
	}
	return item
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Ticket is the JSON a source posts. id and subject are required; the id
// may be a JSON string or number (Zendesk's {{ticket.id}} placeholder).
type Ticket struct {
	ID           TicketID `json:"id"`
	Subject      string   `json:"subject"`
	Description  string   `json:"description"`
	Customer     string   `json:"customer"` // provider customer id (cus_…)
	Email        string   `json:"email"`
	Kind         string   `json:"kind"`     // billing_inquiry (default), refund_request, cancellation
	Priority     string   `json:"priority"` // low, normal, high, urgent; default: the kind's
	Channel      string   `json:"channel"`  // chat, email, phone…; default chat (email for zendesk)
	BusinessLine string   `json:"business_line"`
	URL          string   `json:"url"`
}

// TicketID accepts a JSON string or number.
type TicketID string

// UnmarshalJSON implements json.Unmarshaler.
func (t *TicketID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = TicketID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("id must be a string or a number")
	}
	*t = TicketID(n.String())
	return nil
}

// Case limits a ticket's text is cut to (a desk does not know ours).
const (
	maxSubject     = 200
	maxDescription = 10_000
)

func cut(s string, n int) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// Outcome is what a delivery did.
type Outcome struct {
	CaseID  string `json:"case_id"`
	Created bool   `json:"created"`
	// Updated: the delivery changed a known ticket (false for a redelivery).
	Updated bool `json:"updated"`
}

// CustomerFinder finds the one mirrored customer with an email
// (*billing.Store).
type CustomerFinder interface {
	CustomerByEmail(ctx context.Context, email string) (string, bool, error)
}

// Receiver opens and updates cases from tickets.
type Receiver struct {
	cases     *cases.Service
	customers CustomerFinder
	now       func() time.Time
	by        map[string]Source
}

// NewReceiver serves sources over the case service; customers (may be nil)
// links a ticket that gives only an email to that customer.
func NewReceiver(cs *cases.Service, customers CustomerFinder, now func() time.Time, sources []Source) *Receiver {
	by := make(map[string]Source, len(sources))
	for _, s := range sources {
		by[s.Name] = s
	}
	return &Receiver{cases: cs, customers: customers, now: now, by: by}
}

// principal is the source as an actor: system kind, named escalation:<name>.
func principal(src Source) auth.Principal {
	return auth.Principal{Kind: auth.ActorSystem, Name: "escalation:" + src.Name}
}

// Receive opens a case for a new ticket, or records an update of a known
// one on its case's timeline, once. A ticket about a subject that already
// has an open case of its kind is linked to that case. EINVALID for a
// ticket that cannot make a case.
func (r *Receiver) Receive(ctx context.Context, src Source, t Ticket) (Outcome, error) {
	id := strings.TrimSpace(string(t.ID))
	subject := cut(t.Subject, maxSubject)
	if id == "" {
		return Outcome{}, errs.Coded(errs.EINVALID, "invalid_ticket", "id is required")
	}
	if subject == "" {
		return Outcome{}, errs.Coded(errs.EINVALID, "invalid_ticket", "subject is required")
	}
	desc := strings.TrimSpace(t.Description)
	if e := strings.TrimSpace(t.Email); e != "" {
		desc = strings.TrimSpace("From: " + e + "\n\n" + desc)
	}
	desc = cut(desc, maxDescription)
	p := principal(src)
	ctx = auth.WithPrincipal(ctx, p)
	if link, ok, err := r.cases.FindExternal(ctx, src.Name, id); err != nil {
		return Outcome{}, err
	} else if ok {
		_, changed, err := r.cases.ExternalUpdate(ctx, p, src.Name, id, subject, desc)
		return Outcome{CaseID: link.CaseID, Updated: changed}, err
	}
	kind := cases.KindBillingInquiry
	if t.Kind != "" {
		kind = cases.Kind(t.Kind)
	}
	channel := cases.ChannelChat
	if src.Type == TypeZendesk {
		channel = cases.ChannelEmail
	}
	if t.Channel != "" {
		channel = cases.Channel(t.Channel)
	}
	mc := cases.ManualCase{Kind: kind, Channel: channel, Priority: cases.Priority(t.Priority), Title: subject, Description: desc,
		BusinessLine: strings.TrimSpace(t.BusinessLine),
		External:     &cases.ExternalTicket{System: src.Name, TicketID: id, URL: t.URL}}
	if c := strings.TrimSpace(t.Customer); c != "" {
		mc.Links.Customer = &c
	} else if e := strings.TrimSpace(t.Email); e != "" && r.customers != nil {
		id, ok, err := r.customers.CustomerByEmail(ctx, e)
		if err != nil {
			return Outcome{}, err
		}
		if ok {
			mc.Links.Customer = &id
		}
	}
	cs, err := r.cases.OpenManual(ctx, p, mc)
	if err == nil {
		return Outcome{CaseID: cs.ID, Created: true, Updated: true}, nil
	}
	e, ok := errs.As(err)
	if !ok || e.Kind != errs.ECONFLICT {
		return Outcome{}, err
	}
	if e.Code == "external_ticket_exists" {
		// Another delivery of this ticket opened the case meanwhile.
		existing, _ := e.Details["case_id"].(string)
		_, changed, err := r.cases.ExternalUpdate(ctx, p, src.Name, id, subject, desc)
		return Outcome{CaseID: existing, Updated: changed}, err
	}
	return Outcome{}, err
}

// Zendesk's signature headers: base64(HMAC-SHA256(secret, timestamp+body)).
const (
	zendeskSignature = "X-Zendesk-Webhook-Signature"
	zendeskTimestamp = "X-Zendesk-Webhook-Signature-Timestamp"
)

// ZendeskSign is the X-Zendesk-Webhook-Signature value for ts and body.
func ZendeskSign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// parseZendeskTime reads Zendesk's timestamp header: RFC 3339 (what it
// sends), or Unix seconds.
func parseZendeskTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	var sec int64
	if _, err := fmt.Sscanf(s, "%d", &sec); err == nil && fmt.Sprint(sec) == s {
		return time.Unix(sec, 0), true
	}
	return time.Time{}, false
}

func hmacEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
