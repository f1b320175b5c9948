package main

import (
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/browsertest"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// A supervisor opens Reports from the nav and reads the volume report's
// chart and table, then the resolution report by team by week; the pages
// pass axe, break no CSP rule (no inline script or style) and are saved
// as screenshots. An agent has no Reports link. The report queries
// themselves are tested on both databases in package reports; this reads
// the page on SQLite.
func TestConsoleReportsBrowser(t *testing.T) {
	b := browsertest.Start(t)
	in := boot(t, map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)})
	const password = "correct horse battery"
	withStdin(password+"\n", func() {
		in.mustCLI("user", "create", "--email", "sue@example.com", "--name", "Sue Supervisor", "--role", "supervisor", "--password-stdin")
	})
	withStdin(password+"\n", func() {
		in.mustCLI("user", "create", "--email", "ada@example.com", "--name", "Ada Agent", "--role", "agent", "--password-stdin")
	})
	agent := in.token("agent")
	for i, ch := range []string{"email", "chat", "chat", "phone"} {
		code, c := in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "billing_inquiry", "channel": ch,
			"title": "Why was I charged?", "links": map[string]any{"customer": "cus_x"}}), nil)
		if code != 201 {
			t.Fatalf("create: %d %v", code, c)
		}
		if i > 1 {
			continue
		}
		for _, ev := range []string{"start", "resolve"} { // answered and resolved
			if code, m := in.do("POST", "/api/v1/cases/"+c["id"].(string)+"/transitions", agent, jsonBody(map[string]any{"event": ev}), nil); code != 200 {
				t.Fatalf("%s: %d %v", ev, code, m)
			}
		}
	}

	s := b.NewSession(t)
	signIn(s, in.url, "sue@example.com", password)
	s.Click("#nav-reports")
	s.WaitVisible("#report-table")
	if got := s.Text("h1"); got != "Reports" {
		t.Errorf("h1 %q", got)
	}
	s.WaitVisible("figure.chart svg")
	if cap := s.Text("#chart-caption"); !strings.Contains(cap, "opened (bars) and backlog (line) per day") {
		t.Errorf("caption %q", cap)
	}
	s.Axe()
	s.Screenshot("reports-volume")

	s.Navigate(in.url + "/reports?report=volume&interval=week&group_by=channel")
	s.WaitText("#report-table", "chat")
	s.Screenshot("reports-volume-by-channel")
	s.Navigate(in.url + "/reports?report=resolution&interval=week&group_by=team")
	s.WaitText("#report-table", "support")
	s.Axe()
	s.Screenshot("reports-resolution")
	s.NoConsoleErrors()

	a := b.NewSession(t)
	signIn(a, in.url, "ada@example.com", password)
	if strings.Contains(a.Text("header"), "Reports") {
		t.Errorf("an agent sees the Reports link")
	}
}
