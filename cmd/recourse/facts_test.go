package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/pan"
)

// A back-fill from JSONL and CSV, in batches, with progress, a summary that
// names rejected lines, idempotent on a second run; the facts are then
// served by the API of the running instance.
func TestFactsImportEndToEnd(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			in.mustCLI("user", "create", "--email", "ana@example.com", "--name", "Ana", "--role", "analyst")
			tok := strings.TrimSpace(in.mustCLI("token", "create", "--user", "ana@example.com"))
			dir := t.TempDir()

			// 2,500 lines over three customers, two of them bad.
			base := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Second)
			var jl strings.Builder
			for i := 0; i < 2500; i++ {
				switch i {
				case 7:
					jl.WriteString("{not json\n")
				case 1500:
					fmt.Fprintf(&jl, `{"customer":"cus_J%d","id":"f%d","kind":"teleport","occurred_at":%q}`+"\n", i%3, i, base.Format(time.RFC3339))
				default:
					fmt.Fprintf(&jl, `{"customer":"cus_J%d","id":"f%d","kind":"login","occurred_at":%q,"ip":"203.0.113.9","data":{"note":"card 4242 4242 4242 4242"}}`+"\n",
						i%3, i, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339))
				}
				if i == 100 {
					jl.WriteString("\n") // blank lines are skipped
				}
			}
			jsonl := filepath.Join(dir, "facts.jsonl")
			if err := os.WriteFile(jsonl, []byte(jl.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, err := in.cli("facts", "import", jsonl)
			if err == nil || !strings.Contains(err.Error(), "2 of 2500 lines rejected") {
				t.Fatalf("import: %v\n%s\n%s", err, out, errOut)
			}
			if !strings.Contains(out, "2500 lines: 2498 accepted, 0 duplicates, 2 rejected") ||
				!strings.Contains(out, "line 8: fact_malformed") || !strings.Contains(out, "line 1502: fact_kind_unknown") {
				t.Fatalf("summary:\n%s", out)
			}
			for _, p := range []string{"imported 1000/2500 lines", "imported 2000/2500 lines", "imported 2500/2500 lines"} {
				if !strings.Contains(errOut, p) {
					t.Fatalf("progress lacks %q:\n%s", p, errOut)
				}
			}
			// Again: everything kept is a duplicate.
			out, _, _ = in.cli("facts", "import", jsonl)
			if !strings.Contains(out, "0 accepted, 2498 duplicates, 2 rejected") {
				t.Fatalf("second run:\n%s", out)
			}

			csvFile := filepath.Join(dir, "facts.csv")
			csvText := "account,id,kind,occurred_at,ip,policy_key,policy_version,channel,template,data\n" +
				"cus_C,s1,signup,2026-01-05T10:00:00Z,198.51.100.4,,,,,\n" +
				"cus_C,c1,consent,2026-01-05T10:01:00Z,198.51.100.4,terms,3,web,,\"{\"\"checkbox\"\":\"\"I agree\"\"}\"\n" +
				"cus_C,n1,notice,2026-02-01T09:00:00Z,,,,email,renewal_reminder,\"{\"\"bad\"\n" +
				"cus_C,n2,notice,2026-02-01T09:00:00Z,,,,email,receipt,\n" +
				",x1,login,2026-02-01T09:00:00Z,,,,,,\n" +
				"cus_C,q1,login,2026-02-01T09:00:00Z,,,,,,\"x\"y\n"
			if err := os.WriteFile(csvFile, []byte(csvText), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, err = in.cli("facts", "import", "--customer-column", "account", csvFile)
			if err == nil || !strings.Contains(out, "6 lines: 3 accepted, 0 duplicates, 3 rejected") || !strings.Contains(out, "line 4: fact_data_invalid") || !strings.Contains(out, "line 6: customer_required") || !strings.Contains(out, "line 7: csv_malformed") {
				t.Fatalf("csv import: %v\n%s\n%s", err, out, errOut)
			}
			if _, _, err := in.cli("facts", "import", filepath.Join(dir, "facts.txt")); err == nil {
				t.Fatal("unknown extension accepted")
			}

			code, m := in.do("GET", "/api/v1/customers/cus_C/facts", tok, nil, nil)
			facts, _ := m["facts"].([]any)
			if code != 200 || len(facts) != 3 {
				t.Fatalf("facts of cus_C: %d %v", code, m)
			}
			consent := facts[1].(map[string]any)
			if consent["id"] != "c1" || consent["policy"].(map[string]any)["version"] != "3" || consent["data"].(map[string]any)["checkbox"] != "I agree" {
				t.Fatalf("consent %v", consent)
			}
			code, m = in.do("GET", "/api/v1/customers/cus_J1/facts?limit=10000", tok, nil, nil)
			facts, _ = m["facts"].([]any)
			if code != 200 || len(facts) != 832 || pan.Contains(fmt.Sprint(m)) {
				t.Fatalf("facts of cus_J1: %d, %d facts", code, len(facts))
			}
		})
	}
}
