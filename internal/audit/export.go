package audit

import (
	"strconv"
	"time"

	"github.com/recourse-hq/recourse/internal/export"
)

// ExportColumns are the audit log's CSV columns (GET /audit?format=csv,
// recourse export audit). Before/after snapshots stay in JSON lines.
var ExportColumns = []export.Column[Entry]{
	{Name: "id", Value: func(e Entry) string { return strconv.FormatInt(e.ID, 10) }},
	{Name: "at", Value: func(e Entry) string { return e.At.UTC().Format(time.RFC3339Nano) }},
	{Name: "actor", Value: func(e Entry) string { return e.Actor }},
	{Name: "actor_kind", Value: func(e Entry) string { return string(e.ActorKind) }},
	{Name: "role", Value: func(e Entry) string { return e.Role }},
	{Name: "action", Value: func(e Entry) string { return e.Action }},
	{Name: "case_id", Value: func(e Entry) string { return e.CaseID }},
	{Name: "object_type", Value: func(e Entry) string { return e.ObjectType }},
	{Name: "object_id", Value: func(e Entry) string { return e.ObjectID }},
	{Name: "provider_request_id", Value: func(e Entry) string { return e.ProviderRequestID }},
	{Name: "request_id", Value: func(e Entry) string { return e.RequestID }},
	{Name: "detail", Value: func(e Entry) string { return e.Detail }},
}
