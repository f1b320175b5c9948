package webhooks

import (
	"strconv"
	"time"

	"github.com/recourse-hq/recourse/internal/export"
)

// ExportColumns are the webhook-event list's CSV columns
// (GET /webhook-events?format=csv, recourse export webhook-events). Payloads
// are never exported: they hold personal data and are read one at a time.
var ExportColumns = []export.Column[Record]{
	{Name: "id", Value: func(r Record) string { return r.EventID }},
	{Name: "type", Value: func(r Record) string { return r.Type }},
	{Name: "created", Value: func(r Record) string { return r.Created.UTC().Format(time.RFC3339) }},
	{Name: "livemode", Value: func(r Record) string { return strconv.FormatBool(r.Livemode) }},
	{Name: "account", Value: func(r Record) string { return deref(r.Account) }},
	{Name: "object_type", Value: func(r Record) string { return deref(r.ObjectType) }},
	{Name: "object_id", Value: func(r Record) string { return deref(r.ObjectID) }},
	{Name: "status", Value: func(r Record) string { return string(r.Status) }},
	{Name: "attempts", Value: func(r Record) string { return strconv.Itoa(r.Attempts) }},
	{Name: "last_error", Value: func(r Record) string { return deref(r.LastError) }},
	{Name: "received_at", Value: func(r Record) string { return r.ReceivedAt.UTC().Format(time.RFC3339Nano) }},
	{Name: "processed_at", Value: func(r Record) string {
		if r.ProcessedAt == nil {
			return ""
		}
		return r.ProcessedAt.UTC().Format(time.RFC3339Nano)
	}},
}
