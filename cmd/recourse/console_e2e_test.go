package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// withStdin runs fn with the CLI's standard input reading s.
func withStdin(s string, fn func()) {
	old := stdin
	stdin = strings.NewReader(s)
	defer func() { stdin = old }()
	fn()
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// The console end to end: users with passwords from the CLI, sign-in, a
// transition and a note through the console that the API then shows.
func TestConsoleEndToEnd(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			withStdin("short\n", func() {
				_, _, err := in.cli("user", "create", "--email", "ada@example.com", "--name", "Ada", "--role", "agent", "--password-stdin")
				if err == nil || !strings.Contains(err.Error(), "at least 12 characters") {
					t.Fatalf("short password: %v", err)
				}
			})
			if out, _, _ := in.cli("user", "list"); strings.Contains(out, "ada@example.com") {
				t.Fatal("a user was created with a refused password")
			}
			withStdin("first password 1\n", func() {
				in.mustCLI("user", "create", "--email", "ada@example.com", "--name", "Ada", "--role", "agent", "--password-stdin")
			})
			withStdin("second password 2\r\n", func() {
				in.mustCLI("user", "password", "ada@example.com", "--password-stdin")
			})

			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Transport: apispectest.Transport(t, nil), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			get := func(path string) (int, string) {
				resp, err := c.Get(in.url + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			post := func(path string, form url.Values) (int, string) {
				resp, err := c.PostForm(in.url+path, form)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			csrf := func(body string) string {
				m := consoleCSRF.FindStringSubmatch(body)
				if m == nil {
					t.Fatalf("no csrf field:\n%s", body)
				}
				return m[1]
			}
			_, lp := get("/login")
			if code, _ := post("/login", url.Values{"csrf": {csrf(lp)}, "email": {"ada@example.com"}, "password": {"first password 1"}}); code != 401 {
				t.Fatalf("old password: %d", code)
			}
			_, lp = get("/login")
			if code, body := post("/login", url.Values{"csrf": {csrf(lp)}, "email": {"ada@example.com"}, "password": {"second password 2"}}); code != 303 {
				t.Fatalf("login: %d %s", code, body)
			}

			tok := in.token("agent")
			code, cs := in.do("POST", "/api/v1/cases", tok, []byte(`{"kind":"billing_inquiry","channel":"email","title":"Why two charges?","links":{"customer":"cus_e2e"}}`), nil)
			if code != 201 {
				t.Fatalf("open case: %d %v", code, cs)
			}
			id := cs["id"].(string)
			code, qp := get("/")
			if code != 200 || !strings.Contains(qp, `data-case-id="`+id+`"`) {
				t.Fatalf("queues: %d\n%s", code, qp)
			}
			code, cp := get("/cases/" + id)
			if code != 200 {
				t.Fatalf("case page: %d", code)
			}
			allowed := cs["allowed_transitions"].([]any)
			event := allowed[0].(string)
			version := json.Number(strings.TrimSuffix(strings.TrimSuffix(jsonString(cs["version"]), ".0"), "\n"))
			if code, body := post("/cases/"+id+"/transitions", url.Values{"csrf": {csrf(cp)}, "event": {event}, "version": {version.String()}}); code != 303 {
				t.Fatalf("transition %s: %d %s", event, code, body)
			}
			if code, body := post("/cases/"+id+"/notes", url.Values{"csrf": {csrf(cp)}, "body": {"checked both charges"}}); code != 303 {
				t.Fatalf("note: %d %s", code, body)
			}
			code, got := in.do("GET", "/api/v1/cases/"+id, tok, nil, nil)
			if code != 200 || got["state"] == cs["state"] {
				t.Fatalf("case after console transition: %d %v", code, got)
			}
			tl, _ := json.Marshal(got["timeline"])
			if !strings.Contains(string(tl), "checked both charges") || !strings.Contains(string(tl), `"actor":"Ada"`) {
				t.Fatalf("timeline: %s", tl)
			}

			// A dispute case: an agent gets no transition buttons and a
			// forged transition is refused 403; an analyst gets them.
			admin := in.token("admin")
			var disputeID string
			for _, e := range stripetest.New(11).Chargeback(time.Now().UTC().Add(-time.Hour), stripetest.ChargebackOptions{Brand: "visa", NoResponse: true}) {
				in.post(e)
				if e.Type == "charge.dispute.created" {
					disputeID = e.Object["id"].(string)
					break
				}
			}
			in.drained(admin)
			dc := in.caseOf(admin, "dispute", disputeID)
			did := dc["id"].(string)
			code, dp := get("/cases/" + did)
			if code != 200 || strings.Contains(dp, `action="/cases/`+did+`/transitions"`) {
				t.Fatalf("agent's dispute page: %d\n%s", code, dp)
			}
			if code, _ := post("/cases/"+did+"/transitions", url.Values{"csrf": {csrf(dp)}, "event": {"start_evidence"}}); code != 403 {
				t.Fatalf("agent's dispute transition: %d", code)
			}
			withStdin("analyst password 3\n", func() {
				in.mustCLI("user", "create", "--email", "an@example.com", "--name", "An", "--role", "analyst", "--password-stdin")
			})
			jar2, _ := cookiejar.New(nil)
			c.Jar = jar2
			_, lp = get("/login")
			if code, _ := post("/login", url.Values{"csrf": {csrf(lp)}, "email": {"an@example.com"}, "password": {"analyst password 3"}}); code != 303 {
				t.Fatalf("analyst login: %d", code)
			}
			if allowed, _ := dc["allowed_transitions"].([]any); len(allowed) > 0 {
				if code, dp := get("/cases/" + did); code != 200 || !strings.Contains(dp, `action="/cases/`+did+`/transitions"`) {
					t.Fatalf("analyst's dispute page: %d\n%s", code, dp)
				}
			}
		})
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
