package main

import (
	"testing"

	"github.com/recourse-hq/recourse/internal/dbtest"
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
