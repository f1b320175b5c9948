package cases

import (
	"strconv"
	"strings"
	"time"

	"github.com/recourse-hq/recourse/internal/export"
)

func timeCell(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func strCell(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ExportColumns are a case list's CSV columns (GET /cases?format=csv,
// recourse export cases): what a spreadsheet or BI tool needs per case;
// JSON lines carry the whole case.
var ExportColumns = []export.Column[Case]{
	{Name: "id", Value: func(c Case) string { return c.ID }},
	{Name: "kind", Value: func(c Case) string { return string(c.Kind) }},
	{Name: "state", Value: func(c Case) string { return c.State }},
	{Name: "status", Value: func(c Case) string { return string(c.Status) }},
	{Name: "resolution", Value: func(c Case) string { return strCell(c.Resolution) }},
	{Name: "priority", Value: func(c Case) string { return string(c.Priority) }},
	{Name: "team", Value: func(c Case) string { return string(c.Team) }},
	{Name: "business_line", Value: func(c Case) string { return strCell(c.BusinessLine) }},
	{Name: "assignee", Value: func(c Case) string { return strCell(c.Assignee) }},
	{Name: "channel", Value: func(c Case) string { return string(c.Channel) }},
	{Name: "tags", Value: func(c Case) string { return strings.Join(c.Tags, " ") }},
	{Name: "title", Value: func(c Case) string { return c.Title }},
	{Name: "customer", Value: func(c Case) string { return strCell(c.Links.Customer) }},
	{Name: "subject", Value: func(c Case) string { return strCell(c.Subject) }},
	{Name: "amount", Value: func(c Case) string {
		if c.Amount == nil {
			return ""
		}
		return strconv.FormatInt(*c.Amount, 10)
	}},
	{Name: "currency", Value: func(c Case) string { return strCell(c.Currency) }},
	{Name: "first_response_due", Value: func(c Case) string { return timeCell(&c.SLA.FirstResponseDue) }},
	{Name: "resolution_due", Value: func(c Case) string { return timeCell(&c.SLA.ResolutionDue) }},
	{Name: "first_responded_at", Value: func(c Case) string { return timeCell(c.SLA.FirstRespondedAt) }},
	{Name: "breached", Value: func(c Case) string { return strconv.FormatBool(c.SLA.Breached) }},
	{Name: "created_at", Value: func(c Case) string { return timeCell(&c.CreatedAt) }},
	{Name: "updated_at", Value: func(c Case) string { return timeCell(&c.UpdatedAt) }},
	{Name: "closed_at", Value: func(c Case) string { return timeCell(c.ClosedAt) }},
}
