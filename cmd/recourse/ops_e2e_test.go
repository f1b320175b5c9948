package main

import (
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// The dispute-operations routes are served, behind their permissions.
func TestDisputeOpsRoutesEndToEnd(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			sup, agent := in.token("supervisor"), in.token("agent")
			code, body := in.do("GET", "/api/v1/disputes/stats?from=2026-01-01&to=2026-04-01&group_by=brand", sup, nil, nil)
			if code != 200 || body["group_by"] != "brand" || body["groups"] == nil || body["monitoring"] == nil {
				t.Fatalf("stats: %d %v", code, body)
			}
			if code, body := in.do("GET", "/api/v1/disputes/stats?group_by=color", sup, nil, nil); code != 400 {
				t.Fatalf("bad group_by: %d %v", code, body)
			}
			if code, _ := in.do("GET", "/api/v1/disputes/stats", agent, nil, nil); code != 403 {
				t.Fatalf("agent stats: %d", code)
			}
			code, body = in.do("GET", "/api/v1/events?after=0&type=dispute.*", sup, nil, nil)
			if code != 200 || body["data"] == nil {
				t.Fatalf("events: %d %v", code, body)
			}
			if code, _ := in.do("GET", "/api/v1/events", agent, nil, nil); code != 403 {
				t.Fatalf("agent events: %d", code)
			}
		})
	}
}

// A chargeback delivered as signed webhooks, due in under a day and never
// answered, gets the 24 h reminder (only) from the running service: an
// event on the feed, the case urgent, the entry on its timeline.
func TestDeadlineReminderOverHTTP(t *testing.T) {
	env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "RECOURSE_SWEEP_INTERVAL": "1s"}
	in := boot(t, env)
	admin, sup := in.token("admin"), in.token("supervisor")
	now := time.Now().UTC()
	var story []stripetest.Event
	var due time.Time
	for off := time.Duration(0); off < 90*24*time.Hour && story == nil; off += time.Hour {
		evs := stripetest.New(7).Chargeback(now.Add(-off), stripetest.ChargebackOptions{Brand: "visa", NoResponse: true})
		for _, e := range evs {
			if e.Type != "charge.dispute.created" {
				continue
			}
			ed, _ := e.Object["evidence_details"].(map[string]any)
			var sec int64
			switch v := ed["due_by"].(type) {
			case int64:
				sec = v
			case float64:
				sec = int64(v)
			case int:
				sec = int64(v)
			}
			d := time.Unix(sec, 0).UTC()
			if left := d.Sub(now); left > 2*time.Minute && left < 24*time.Hour && !e.Created.After(now) {
				story, due = evs, d
			}
		}
	}
	if story == nil {
		t.Fatal("no chargeback due within a day")
	}
	for _, e := range story {
		if e.Created.After(now) || e.Type == "charge.dispute.closed" || e.Type == "charge.dispute.updated" {
			continue
		}
		in.post(e)
	}
	in.drained(admin)
	var ev map[string]any
	for deadline := time.Now().Add(20 * time.Second); ev == nil && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		code, body := in.do("GET", "/api/v1/events?type=dispute.deadline_reminder", sup, nil, nil)
		if code != 200 {
			t.Fatalf("events: %d %v", code, body)
		}
		if data := body["data"].([]any); len(data) > 0 {
			if len(data) != 1 {
				t.Fatalf("reminders = %v", data)
			}
			ev = data[0].(map[string]any)
		}
	}
	if ev == nil {
		t.Fatalf("no reminder on the feed (due %s)", due)
	}
	data := ev["data"].(map[string]any)
	if data["lead"] != "24h0m0s" || data["priority"] != "urgent" {
		t.Fatalf("reminder = %v", ev)
	}
	caseID := data["case_id"].(string)
	if code, c := in.do("GET", "/api/v1/cases/"+caseID, sup, nil, nil); code != 200 || c["priority"] != "urgent" {
		t.Fatalf("case: %d %v", code, c)
	}
	code, tl := in.do("GET", "/api/v1/cases/"+caseID+"/timeline", sup, nil, nil)
	found := 0
	if code == 200 {
		items, _ := tl["data"].([]any)
		for _, it := range items {
			if it.(map[string]any)["type"] == "deadline_reminder" {
				found++
			}
		}
	}
	if found != 1 {
		t.Fatalf("timeline: %d %v", code, tl)
	}
}
