package stripetest

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// DefaultSecret is a webhook signing secret that tests can share when they
// do not care about the value.
const DefaultSecret = "whsec_stripetest_local_signing_secret"

// Event is one webhook delivery: the envelope fields, the object it carries
// and the encoded body.
type Event struct {
	ID                 string         // evt_…
	Type               string         // e.g. "invoice.paid"
	Created            time.Time      // event creation time (second precision)
	Object             map[string]any // data.object
	PreviousAttributes map[string]any // data.previous_attributes; omitted when nil
	Account            string         // Connect account id; omitted when ""
	Livemode           bool
	PendingWebhooks    int
	RequestID          string // request.id; null when ""
	IdempotencyKey     string // request.idempotency_key; null when ""

	// Story names the scenario that produced the event ("" for events built
	// directly with NewEvent). It is not part of the payload.
	Story string

	// Payload is the encoded body as built by NewEvent or a story. It is not
	// updated automatically: after changing fields, call Marshal (and assign
	// the result) to re-encode.
	Payload []byte
}

// EventOption customises an event built by NewEvent.
type EventOption func(*Event)

// WithEventID sets the event id (default: a generated evt_ id).
func WithEventID(id string) EventOption { return func(e *Event) { e.ID = id } }

// WithCreated sets the event's created time (default: the Generator's clock).
func WithCreated(t time.Time) EventOption {
	return func(e *Event) { e.Created = t.Truncate(time.Second) }
}

// WithPreviousAttributes sets data.previous_attributes, which Stripe
// includes on *.updated events with the prior values of changed fields.
func WithPreviousAttributes(prev map[string]any) EventOption {
	return func(e *Event) { e.PreviousAttributes = prev }
}

// WithEventAccount sets the Connect account the event originates from
// (overriding the Generator's WithAccount).
func WithEventAccount(account string) EventOption {
	return func(e *Event) { e.Account = account }
}

// WithRequest sets request.id and request.idempotency_key. Empty strings
// render as null, which is what Stripe sends for events it triggered itself
// (renewals, retries, disputes).
func WithRequest(id, idempotencyKey string) EventOption {
	return func(e *Event) { e.RequestID, e.IdempotencyKey = id, idempotencyKey }
}

// WithLivemode sets the event's livemode flag (default false).
func WithLivemode(live bool) EventOption { return func(e *Event) { e.Livemode = live } }

// WithPendingWebhooks sets pending_webhooks (default 1).
func WithPendingWebhooks(n int) EventOption { return func(e *Event) { e.PendingWebhooks = n } }

// WithStory sets Event.Story.
func WithStory(name string) EventOption { return func(e *Event) { e.Story = name } }

// APIRequest returns an option that marks the event as caused by an API
// request: request.id is a fresh req_ id and request.idempotency_key a fresh
// UUID.
func (g *Generator) APIRequest() EventOption {
	id, key := g.NewID("req_"), g.uuid()
	return WithRequest(id, key)
}

// NewEvent wraps object in a Stripe event envelope of type typ and encodes it
// into Event.Payload. It panics if object holds a value that cannot be
// encoded as JSON (such as a channel or NaN).
func (g *Generator) NewEvent(typ string, object map[string]any, opts ...EventOption) Event {
	e := Event{
		Type:            typ,
		Object:          object,
		Account:         g.account,
		PendingWebhooks: 1,
	}
	for _, o := range opts {
		o(&e)
	}
	if e.ID == "" {
		e.ID = g.NewID("evt_")
	}
	if e.Created.IsZero() {
		e.Created = g.now()
	}
	p, err := e.Marshal()
	if err != nil {
		panic(fmt.Sprintf("stripetest: encoding %s event: %v", typ, err))
	}
	e.Payload = p
	return e
}

var (
	defaultOnce sync.Once
	defaultGen  *Generator
)

// Default returns the package-level Generator used by NewEvent. It is seeded
// from crypto/rand, so its output differs between runs.
func Default() *Generator {
	defaultOnce.Do(func() { defaultGen = New(RandomSeed()) })
	return defaultGen
}

// NewEvent is Default().NewEvent: it wraps object in an event envelope using
// the package-level Generator.
func NewEvent(typ string, object map[string]any, opts ...EventOption) Event {
	return Default().NewEvent(typ, object, opts...)
}

// Envelope returns the event as the map Stripe would send, before encoding.
func (e *Event) Envelope() map[string]any {
	data := map[string]any{"object": e.Object}
	if e.PreviousAttributes != nil {
		data["previous_attributes"] = e.PreviousAttributes
	}
	env := map[string]any{
		"id":               e.ID,
		"object":           "event",
		"api_version":      APIVersion,
		"created":          e.Created.Unix(),
		"data":             data,
		"livemode":         e.Livemode,
		"pending_webhooks": e.PendingWebhooks,
		"request": map[string]any{
			"id":              nullable(e.RequestID),
			"idempotency_key": nullable(e.IdempotencyKey),
		},
		"type": e.Type,
	}
	if e.Account != "" {
		env["account"] = e.Account
	}
	return env
}

// Marshal encodes the event envelope from the current field values, in
// Stripe's layout (see MarshalStripeJSON). It does not modify e.Payload.
func (e *Event) Marshal() ([]byte, error) {
	return MarshalStripeJSON(e.Envelope())
}

// SignedHeader returns the Stripe-Signature header for e.Payload signed with
// secret at time t.
func (e *Event) SignedHeader(secret string, t time.Time) string {
	return SignedHeader(e.Payload, secret, t)
}

// NewRequest builds a signed POST of e.Payload to url (see
// NewWebhookRequest).
func (e *Event) NewRequest(ctx context.Context, url, secret string, t time.Time) (*http.Request, error) {
	return NewWebhookRequest(ctx, url, e.Payload, secret, t)
}

// SignedHeader returns a valid Stripe-Signature header ("t=<unix>,v1=<hex>")
// for payload signed with secret at time t, computed with stripe-go's
// webhook.ComputeSignature. A zero t means time.Now(). Note that
// webhook.ConstructEvent rejects signatures older than five minutes, so
// sign with a current time unless the test is about tolerance.
func SignedHeader(payload []byte, secret string, t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	sig := webhook.ComputeSignature(t, payload, secret)
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(sig))
}

// NewWebhookRequest returns a POST request to url carrying payload with the
// headers Stripe sends: Content-Type application/json, a Stripe-Signature
// computed with secret at time t (zero means now), and Stripe's User-Agent.
func NewWebhookRequest(ctx context.Context, url string, payload []byte, secret string, t time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", SignedHeader(payload, secret, t))
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Accept", "*/*; q=0.5, application/xml")
	return req, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
