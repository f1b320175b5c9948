package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
)

// The shipped example is a valid policy file, and settings it names win.
func TestPolicyExampleLoads(t *testing.T) {
	p, err := loadPolicy(context.Background(), "../../policy.example.yaml", net.DefaultResolver)
	if err != nil {
		t.Fatal(err)
	}
	if p.Actions.Refund.AgentLimit != 10000 || p.Actions.Retry.MaxPerInvoice != 3 {
		t.Fatalf("actions: %+v", p.Actions)
	}
	if got := p.SLA.Kinds[cases.KindRefundFailure].OnBreach.Team; got != "payments" {
		t.Fatalf("sla escalation team = %q", got)
	}
	// Kinds the file leaves out keep their defaults.
	if p.SLA.Kinds[cases.KindCancellation].Targets["normal"].Resolution == 0 {
		t.Fatal("defaults not filled in")
	}
	// Billing inquiries count the default calendar's working time.
	if !p.SLA.Kinds[cases.KindBillingInquiry].BusinessHours || p.SLA.Calendars[cases.DefaultCalendar] == nil ||
		p.SLA.Calendars[cases.DefaultCalendar].TimeZone != "Europe/Dublin" {
		t.Fatalf("calendars: %+v", p.SLA.Calendars)
	}
}

func TestPolicyFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		path := filepath.Join(dir, "p.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for body, want := range map[string]string{
		"actions:\n  refund:\n    agent_limt: 5\n":                                                                   "agent_limt",
		"actions:\n  pause:\n    max_length: soon\n":                                                                 "duration",
		"actions:\n  credit:\n    min: 10\n    max: 5\n":                                                             "credit",
		"sla:\n  calendars:\n    default: {time_zone: Nowhere/City, hours: {mon: \"09:00-17:00\"}}\n":                "time zone",
		"sla:\n  kinds:\n    billing_inquiry: {business_hours: true}\n":                                              "no calendar",
		"sla:\n  calendars:\n    default: {time_zone: UTC, hours: {mon: \"09:00-17:00\"}, holidays: [\"Dec 25\"]}\n": "not a date",
	} {
		if _, err := loadPolicy(context.Background(), write(body), net.DefaultResolver); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want mention of %q", body, err, want)
		}
	}
	p, err := loadPolicy(context.Background(), write("actions:\n  refund:\n    agent_limit: 2500\n"), net.DefaultResolver)
	if err != nil || p.Actions.Refund.AgentLimit != 2500 || p.Actions.Refund.Window.D() != 180*24*time.Hour {
		t.Fatalf("partial file: %+v %v", p.Actions.Refund, err)
	}
	if _, err := loadPolicy(context.Background(), filepath.Join(dir, "missing.yaml"), net.DefaultResolver); err == nil {
		t.Fatal("missing file accepted")
	}
}
