package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/dbtest"
)

// POST /cases/{id}/notes answers the note's real id; GET
// /cases/{unknown}/actions is a 404; usage names every command.
func TestNotesActionsAndUsageEndToEnd(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			agent := in.token("agent")
			code, c := in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "billing_inquiry", "channel": "email", "title": "Why two charges?"}), nil)
			if code != 201 {
				t.Fatalf("open case: %d %v", code, c)
			}
			caseID := c["id"].(string)
			var ids []float64
			for _, body := range []string{"called the customer", "sent the invoice"} {
				code, n := in.do("POST", "/api/v1/cases/"+caseID+"/notes", agent, jsonBody(map[string]any{"body": body}), nil)
				id, _ := n["id"].(float64)
				if code != 201 && code != 200 || id == 0 {
					t.Fatalf("note: %d %v", code, n)
				}
				ids = append(ids, id)
			}
			if ids[0] == ids[1] {
				t.Fatalf("two notes, one id: %v", ids)
			}
			code, tl := in.do("GET", "/api/v1/cases/"+caseID+"/timeline", agent, nil, nil)
			if code != 200 {
				t.Fatalf("timeline: %d", code)
			}
			found := 0
			for _, e := range tl["data"].([]any) {
				e := e.(map[string]any)
				if e["type"] == "note" && (e["id"] == ids[0] || e["id"] == ids[1]) {
					found++
				}
			}
			if found != 2 {
				t.Fatalf("note ids %v not on the timeline: %v", ids, tl)
			}
			if code, m := in.do("GET", "/api/v1/cases/"+caseID+"/actions", agent, nil, nil); code != 200 {
				t.Fatalf("actions of a case: %d %v", code, m)
			}
			code, m := in.do("GET", "/api/v1/cases/case_nope/actions", agent, nil, nil)
			if e, _ := m["error"].(map[string]any); code != 404 || e["code"] != "not_found" {
				t.Fatalf("actions of an unknown case: %d %v", code, m)
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"serve", "migrate", "user create", "user list", "user deactivate", "token create --user", "token list", "token revoke", "replay", "demo", "healthcheck", "version"} {
		if !strings.Contains(out.String(), "\n  "+cmd) {
			t.Errorf("usage lacks %q:\n%s", cmd, out.String())
		}
	}
}
