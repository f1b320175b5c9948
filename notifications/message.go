package notifications

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// facts is what a message shows, read from the event data
// (events.CaseFacts and the older events' maps share these names).
type facts struct {
	CaseID       string     `json:"case_id"`
	Kind         string     `json:"kind"`
	Team         string     `json:"team"`
	Priority     string     `json:"priority"`
	BusinessLine string     `json:"business_line"`
	Title        string     `json:"title"`
	Amount       *int64     `json:"amount"`
	Currency     string     `json:"currency"`
	DueAt        *time.Time `json:"due_at"`
	Detail       string     `json:"detail"`
	EventType    string     `json:"event_type"` // webhook.dead_lettered
	EventID      string     `json:"event_id"`
}

// headlines names each event type for people.
var headlines = map[string]string{
	"dispute.created":                   "New dispute",
	"dispute.deadline_reminder":         "Dispute evidence due soon",
	"dispute.deadline_missed":           "Dispute evidence deadline missed",
	"dispute.subscription_rule_applied": "Dispute subscription rule applied",
	"sla.due_soon":                      "SLA due soon",
	"sla.breached":                      "SLA breached",
	"approval.requested":                "Approval needed",
	"action.failed":                     "Action failed",
	"webhook.dead_lettered":             "Webhook event dead-lettered",
}

func headline(typ string) string {
	if h, ok := headlines[typ]; ok {
		return h
	}
	return typ
}

// formatAmount writes minor units with two decimals and the currency code
// (zero-decimal currencies are rare in disputes; the code disambiguates).
func formatAmount(amount int64, currency string) string {
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, strings.ToUpper(currency))
}

// slackMessage is an incoming-webhook payload: a header, a section with
// the title, fields for kind, priority, team, business line, amount and
// due time, and a button to the case in the console.
func slackMessage(typ string, data []byte, publicURL string) ([]byte, error) {
	var f facts
	_ = json.Unmarshal(data, &f)
	head := headline(typ)
	text := f.Title
	if text == "" && f.EventType != "" {
		text = fmt.Sprintf("Stripe event %s (%s) could not be applied; see the webhook events list.", f.EventID, f.EventType)
	}
	if f.Detail != "" {
		text += " — " + f.Detail
	}
	if text == "" {
		text = head
	}
	var fields []map[string]any
	add := func(label, v string) {
		if v != "" {
			fields = append(fields, map[string]any{"type": "mrkdwn", "text": "*" + label + "*\n" + v})
		}
	}
	add("Kind", f.Kind)
	add("Priority", f.Priority)
	add("Team", f.Team)
	add("Business line", f.BusinessLine)
	if f.Amount != nil && f.Currency != "" {
		add("Amount", formatAmount(*f.Amount, f.Currency))
	}
	if f.DueAt != nil {
		add("Due", f.DueAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": truncate(head, 150)}},
		{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": truncate(text, 3000)}},
	}
	if len(fields) > 0 {
		blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
	}
	if f.CaseID != "" {
		link := strings.TrimRight(publicURL, "/") + "/cases/" + f.CaseID
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []map[string]any{{
			"type": "button", "text": map[string]any{"type": "plain_text", "text": "Open case " + f.CaseID}, "url": link}}})
	}
	// text is the fallback shown in notifications and by clients without blocks.
	return json.Marshal(map[string]any{"text": head + ": " + truncate(text, 300), "blocks": blocks})
}

// webhookBody is the generic webhook payload: {type, id, at, data} with
// the event's own data.
func webhookBody(typ, deliveryID string, at time.Time, data []byte) ([]byte, error) {
	if !json.Valid(data) {
		data = []byte("{}")
	}
	return json.Marshal(map[string]any{"type": typ, "id": deliveryID, "at": at.UTC(), "data": json.RawMessage(data)})
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
