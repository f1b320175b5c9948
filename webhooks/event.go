// Package webhooks receives Stripe webhooks: it verifies each delivery's
// signature over the raw bytes, stores the event in an inbox before
// acknowledging it, and runs a worker that hands each stored event to the
// handlers registered for its type, exactly once, with retries and a dead
// letter for events that keep failing.
package webhooks

import (
	"encoding/json"
	"errors"
	"hash/fnv"
	"strings"
	"time"

	"github.com/recourse-hq/recourse/internal/errs"
)

// Status is where an inbox event is in its life.
type Status string

// Inbox statuses.
const (
	StatusPending   Status = "pending"
	StatusProcessed Status = "processed"
	StatusIgnored   Status = "ignored"
	StatusDead      Status = "dead"
)

// ParseStatus returns the status named s, or EINVALID.
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case StatusPending, StatusProcessed, StatusIgnored, StatusDead:
		return Status(s), nil
	}
	return "", errs.Coded(errs.EINVALID, "invalid_status", "status must be pending, processed, ignored or dead (got %q)", s)
}

// Event is a stored provider event as handlers see it.
type Event struct {
	ID         string    // provider event id, e.g. evt_…
	Type       string    // e.g. invoice.payment_failed
	Created    time.Time // when the provider created the event
	Livemode   bool
	Account    string // Connect account, if any
	APIVersion string
	ObjectType string // data.object.object, e.g. "invoice"
	ObjectID   string // data.object.id
	// Shard is the event's ordering key (ShardOf): the worker loop that
	// applies it, so that one customer's events are applied by one loop.
	Shard    int64
	Payload  []byte // the raw body as delivered
	Attempts int    // attempts so far, including the current one
}

// envelope is the part of a Stripe event the intake reads: enough to index
// it. The handlers read the rest from Payload.
type envelope struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	Account    string `json:"account"`
	APIVersion string `json:"api_version"`
	// Data is decoded in the same pass (no RawMessage copy and re-parse):
	// the intake only needs the object's id and type.
	Data *envelopeData `json:"data"`
}

type envelopeData struct {
	Object *envelopeObject `json:"object"`
}

type envelopeObject struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	// Customer and Charge are ids or, when expanded, objects.
	Customer json.RawMessage `json:"customer"`
	Charge   json.RawMessage `json:"charge"`
}

// orderingKey is what an event's shard is hashed from: the customer the
// object belongs to, else the charge it is about (disputes, refunds and
// early fraud warnings often name no customer), else the object itself.
func (o *envelopeObject) orderingKey() string {
	if o.Object == "customer" {
		return o.ID
	}
	if c := refID(o.Customer); c != "" {
		return c
	}
	if c := refID(o.Charge); c != "" {
		return c
	}
	return o.ID
}

// refID reads a reference that is an id or an expanded object; "" for
// null, absent or anything else.
func refID(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '{':
		var o struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &o) == nil {
			return o.ID
		}
	}
	return ""
}

// ShardOf hashes an ordering key into a non-negative shard (FNV-1a, 31
// bits). A worker loop i of n applies the events whose shard % n == i.
func ShardOf(key string) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int64(h.Sum32() & 0x7fffffff)
}

// maxIDLen bounds the identifiers we index; Stripe's are far shorter.
const maxIDLen = 255

// parseEnvelope reads a verified payload. It returns EINVALID with code
// malformed_json or malformed_event when the body is not a Stripe event.
func parseEnvelope(payload []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || !json.Valid(payload) {
			return Event{}, errs.Coded(errs.EINVALID, "malformed_json", "body is not valid JSON: %v", err)
		}
		return Event{}, errs.Coded(errs.EINVALID, "malformed_event", "body is not a Stripe event: %v", err)
	}
	switch {
	case env.ID == "" || len(env.ID) > maxIDLen:
		return Event{}, errs.Coded(errs.EINVALID, "malformed_event", "event has no usable id")
	case env.Object != "" && env.Object != "event":
		return Event{}, errs.Coded(errs.EINVALID, "malformed_event", "body is a %q, not an event", env.Object)
	case env.Type == "" || len(env.Type) > maxIDLen || strings.ContainsAny(env.Type, " \t\n"):
		return Event{}, errs.Coded(errs.EINVALID, "malformed_event", "event has no usable type")
	case env.Created <= 0:
		return Event{}, errs.Coded(errs.EINVALID, "malformed_event", "event has no created time")
	case env.Data == nil || env.Data.Object == nil:
		return Event{}, errs.Coded(errs.EINVALID, "malformed_event", "event has no data.object")
	}
	obj := env.Data.Object
	ev := Event{
		ID:         env.ID,
		Type:       env.Type,
		Created:    time.Unix(env.Created, 0).UTC(),
		Livemode:   env.Livemode,
		Account:    env.Account,
		APIVersion: env.APIVersion,
		ObjectType: truncate(obj.Object),
		ObjectID:   truncate(obj.ID),
		Shard:      ShardOf(obj.orderingKey()),
		Payload:    payload,
	}
	return ev, nil
}

func truncate(s string) string {
	if len(s) > maxIDLen {
		return s[:maxIDLen]
	}
	return s
}
