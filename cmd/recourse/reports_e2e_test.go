package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/dbtest"
)

// Reports over real HTTP: an agent is refused, a supervisor gets the JSON
// and the CSV (by ?format= and by Accept), bad parameters are 400 and an
// unknown report 404, the disputes report is served, and the duration
// histogram counts. On PostgreSQL the reports read through
// RECOURSE_REPORTING_DATABASE_URL (here the same database).
func TestReportsEndToEnd(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
				env["RECOURSE_REPORTING_DATABASE_URL"] = env["DATABASE_URL"]
			}
			in := boot(t, env)
			agent, sup := in.token("agent"), in.token("supervisor")
			for _, ch := range []string{"email", "chat", "chat"} {
				if code, c := in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "billing_inquiry", "channel": ch,
					"title": "Why was I charged?", "links": map[string]any{"customer": "cus_x"}}), nil); code != 201 {
					t.Fatalf("create: %d %v", code, c)
				}
			}

			if code, m := in.do("GET", "/api/v1/reports/volume", agent, nil, nil); code != 403 {
				t.Fatalf("agent: %d %v", code, m)
			}
			code, m := in.do("GET", "/api/v1/reports/volume?group_by=channel", sup, nil, nil)
			if code != 200 || m["report"] != "volume" || m["interval"] != "day" || m["group_by"] != "channel" {
				t.Fatalf("supervisor: %d %v", code, m)
			}
			if b := m["buckets"].([]any); len(b) != 30 {
				t.Fatalf("%d buckets, want the 30 days up to today", len(b))
			}
			totals := map[string]float64{}
			for _, g := range m["totals"].([]any) {
				g := g.(map[string]any)
				totals[g["key"].(string)+".opened"] = g["opened"].(float64)
				totals[g["key"].(string)+".backlog"] = g["backlog"].(float64)
			}
			if totals["chat.opened"] != 2 || totals["email.opened"] != 1 || totals["chat.backlog"] != 2 {
				t.Fatalf("totals %v", totals)
			}

			for _, header := range []map[string]string{nil, {"Accept": "text/csv"}} {
				path := "/api/v1/reports/volume?group_by=channel&interval=month"
				if header == nil {
					path += "&format=csv"
				}
				code, ct, body := in.raw(path, sup, header)
				if code != 200 || ct != "text/csv; charset=utf-8" {
					t.Fatalf("csv: %d %s %s", code, ct, body)
				}
				recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(recs[0], ",") != "report,section,bucket_start,bucket_end,group,metric,value" {
					t.Fatalf("header %v", recs[0])
				}
				found := false
				for _, r := range recs[1:] {
					if r[1] == "totals" && r[4] == "chat" && r[5] == "opened" && r[6] == "2" {
						found = true
					}
				}
				if !found {
					t.Fatalf("no totals row chat opened 2 in\n%s", body)
				}
			}
			if code, ct, body := in.raw("/api/v1/reports/team?format=jsonl", sup, nil); code != 200 || ct != "application/x-ndjson" ||
				!strings.Contains(body, `"report":"team"`) {
				t.Fatalf("jsonl: %d %s %s", code, ct, body)
			}

			for _, tc := range []struct {
				path string
				code int
				err  string
			}{
				{"/api/v1/reports/nope", 404, "unknown_report"},
				{"/api/v1/reports/volume?group_by=priority", 400, "invalid_group_by"},
				{"/api/v1/reports/volume?interval=hour", 400, "invalid_interval"},
				{"/api/v1/reports/volume?from=yesterday", 400, "invalid_from"},
				{"/api/v1/reports/volume?from=2026-03-02&to=2026-03-01", 400, "invalid_range"},
			} {
				if code, m := in.do("GET", tc.path, sup, nil, nil); code != tc.code || errCode(m) != tc.err {
					t.Errorf("%s: %d %v, want %d %s", tc.path, code, m, tc.code, tc.err)
				}
			}
			if code, m := in.do("GET", "/api/v1/reports/volume?tz=Europe/Dublin&interval=week", sup, nil, nil); code != 200 || m["tz"] != "Europe/Dublin" {
				t.Errorf("tz: %d %v", code, m)
			}
			if code, m := in.do("GET", "/api/v1/reports/volume?tz=Nowhere", sup, nil, nil); code != 400 || errCode(m) != "invalid_tz" {
				t.Errorf("bad tz: %d %v", code, m)
			}
			for _, name := range []string{"resolution", "team", "recovery", "root_causes", "disputes"} {
				if code, m := in.do("GET", "/api/v1/reports/"+name, sup, nil, nil); code != 200 {
					t.Errorf("%s: %d %v", name, code, m)
				}
			}
			if code, m := in.do("GET", "/api/v1/reports", sup, nil, nil); code != 200 || len(m["data"].([]any)) != 6 {
				t.Errorf("catalogue: %d %v", code, m)
			}
			_, _, metrics := in.raw("/metrics", "", nil)
			if !strings.Contains(metrics, `recourse_report_duration_seconds_count{report="volume"} 4`) {
				t.Errorf("metrics lack the volume report's duration count:\n%s", grepLines(metrics, "recourse_report_duration_seconds_count"))
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A reporting replica is PostgreSQL like the main database: set beside the
// SQLite default, serve refuses to start and says why.
func TestReportsReplicaNeedsPostgres(t *testing.T) {
	env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "RECOURSE_REPORTING_DATABASE_URL": "postgres://replica/db"}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "RECOURSE_REPORTING_DATABASE_URL") || !strings.Contains(err.Error(), "SQLite") {
		t.Fatalf("got %v", err)
	}
}
