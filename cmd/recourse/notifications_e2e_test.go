package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/apispec"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stdwebhooks"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

const notifySecret = "whsec_bm90aWZpY2F0aW9ucy1lMmUtc2VjcmV0"

// receiver is a Slack-compatible incoming webhook and a Standard Webhooks
// consumer in one: it counts what it accepted, per message, and answers 500
// while down.
type receiver struct {
	srv    *httptest.Server
	down   atomic.Bool
	failed atomic.Int64 // requests refused while down
	mu     sync.Mutex
	slack  map[string]int // case link → accepted Slack messages
	hooks  map[string]int // webhook-id → accepted webhook deliveries
	bad    []string       // what did not look right
	bodies []string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{slack: map[string]int{}, hooks: map[string]int{}}
	key, _ := stdwebhooks.Key(notifySecret)
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if rc.down.Load() {
			rc.failed.Add(1)
			http.Error(w, "upstream outage", http.StatusInternalServerError)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.bodies = append(rc.bodies, string(body))
		switch r.URL.Path {
		case "/slack":
			var m struct {
				Text   string           `json:"text"`
				Blocks []map[string]any `json:"blocks"`
			}
			if err := json.Unmarshal(body, &m); err != nil || len(m.Blocks) < 3 || m.Blocks[0]["type"] != "header" {
				rc.bad = append(rc.bad, "slack body: "+string(body))
				break
			}
			link := ""
			for _, b := range m.Blocks {
				if b["type"] == "actions" {
					link, _ = b["elements"].([]any)[0].(map[string]any)["url"].(string)
				}
			}
			if !strings.HasPrefix(link, "https://desk.example.com/cases/") || !strings.HasPrefix(m.Text, "New dispute: ") {
				rc.bad = append(rc.bad, "slack message without case link or headline: "+string(body))
			}
			rc.slack[link]++
		case "/hook":
			id, err := stdwebhooks.Verify(r.Header, body, [][]byte{key}, time.Now(), stdwebhooks.DefaultTolerance)
			if err != nil {
				rc.bad = append(rc.bad, "webhook signature: "+err.Error())
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
			var m struct {
				Type string         `json:"type"`
				ID   string         `json:"id"`
				Data map[string]any `json:"data"`
			}
			if json.Unmarshal(body, &m) != nil || m.Type != "dispute.created" || m.ID != id || m.Data["kind"] != "dispute" || m.Data["case_id"] == nil {
				rc.bad = append(rc.bad, "webhook body: "+string(body))
			}
			if err := apispec.ValidateWebhook("notification", r.Header, body); err != nil {
				rc.bad = append(rc.bad, "OpenAPI contract: "+err.Error())
			}
			rc.hooks[id]++
		default:
			rc.bad = append(rc.bad, "unexpected path "+r.URL.Path)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) counts() (slack, hooks int, dup string, bad []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for k, n := range rc.slack {
		if n > 1 {
			dup = fmt.Sprintf("slack %s ×%d", k, n)
		}
	}
	for k, n := range rc.hooks {
		if n > 1 {
			dup = fmt.Sprintf("webhook %s ×%d", k, n)
		}
	}
	return len(rc.slack), len(rc.hooks), dup, append([]string(nil), rc.bad...)
}

func writePolicy(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Notifications reach a Slack-compatible receiver and a signed webhook once
// each, across a receiver outage (500s, retried with backoff) and a restart
// of Recourse in the middle of it (a second instance on the same database
// takes over the deliveries); the API lists them with their attempts.
func TestNotificationsE2E(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			rc := newReceiver(t)
			policy := writePolicy(t, fmt.Sprintf(`
notifications:
  destinations:
    - {name: desk, type: slack, url: %s/slack, allow_private: true}
    - {name: siem, type: webhook, url: %s/hook, secret: %s, allow_private: true}
  rules:
    - {on: [dispute.created], kinds: [dispute], to: [desk]}
    - {on: [dispute.created, action.failed], to: [siem]}
    - {on: [dispute.created], teams: [nobody], to: [desk]}
`, rc.srv.URL, rc.srv.URL, notifySecret))
			sqlitePath, pgURL := dbtest.NewSQLitePath(t), ""
			if dialect == "postgres" {
				pgURL = dbtest.NewPostgresURL(t)
			}
			env := func() map[string]string {
				return map[string]string{"RECOURSE_SQLITE_PATH": sqlitePath, "DATABASE_URL": pgURL, "RECOURSE_POLICY_FILE": policy,
					"RECOURSE_PUBLIC_URL": "https://desk.example.com", "RECOURSE_NOTIFY_SETTLE": "200ms", "RECOURSE_NOTIFY_POLL_INTERVAL": "50ms",
					"RECOURSE_NOTIFY_BACKOFF_BASE": "50ms", "RECOURSE_NOTIFY_BACKOFF_MAX": "200ms", "RECOURSE_NOTIFY_MAX_ATTEMPTS": "1000"}
			}
			g := stripetest.New(77)
			dispute := func(in *instance) {
				obj := g.Dispute(stripetest.DisputeParams{Status: "needs_response", Created: time.Now().Add(-time.Hour)})
				in.post(g.NewEvent("charge.dispute.created", obj))
			}

			rc.down.Store(true) // the receiver is out from the start
			a := boot(t, env())
			for range 3 {
				dispute(a)
			}
			waitFor(t, "the outage to be felt", func() bool { return rc.failed.Load() >= 6 })
			t0 := time.Now()
			if err := a.stop(); err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			b := boot(t, env())
			t.Logf("restart: stop %s, boot %s", t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
			for range 2 {
				dispute(b)
			}
			waitFor(t, "more failed attempts after the restart", func() bool { return rc.failed.Load() >= 16 })
			rc.down.Store(false) // the receiver recovers
			deadline := time.Now().Add(60 * time.Second)
			for s, h, _, bad := rc.counts(); s != 5 || h != 5; s, h, _, bad = rc.counts() {
				if time.Now().After(deadline) {
					_, l := b.do("GET", "/api/v1/notifications?limit=50", b.token("admin"), nil, nil)
					t.Fatalf("after 60 s: %d Slack messages and %d webhooks, want 5 each; wrong: %v\ndeliveries: %v\nlogs:\n%s", s, h, bad, l, b.logs())
				}
				time.Sleep(25 * time.Millisecond)
			}
			time.Sleep(time.Second) // anything sent twice would arrive by now
			s, h, dup, bad := rc.counts()
			if s != 5 || h != 5 || dup != "" || len(bad) > 0 {
				t.Fatalf("slack %d, webhooks %d (want 5 each), duplicate %q, wrong: %v", s, h, dup, bad)
			}

			sup := b.token("supervisor")
			code, l := b.do("GET", "/api/v1/notifications?status=sent&destination=desk", sup, nil, nil)
			data, _ := l["data"].([]any)
			if code != 200 || len(data) != 5 {
				t.Fatalf("GET /notifications?status=sent&destination=desk = %d, %d rows: %v", code, len(data), l)
			}
			retried := 0
			for _, row := range data {
				r := row.(map[string]any)
				if r["destination_type"] != "slack" || r["event_type"] != "dispute.created" || r["status"] != "sent" || r["sent_at"] == nil {
					t.Fatalf("delivery %v", r)
				}
				if r["attempts"].(float64) > 1 && r["last_error"] != "" {
					retried++
				}
			}
			if retried == 0 {
				t.Fatalf("no delivery shows the retries of the outage: %v", data)
			}
			if code, l := b.do("GET", "/api/v1/notifications?status=pending", sup, nil, nil); code != 200 || len(l["data"].([]any)) != 0 {
				t.Fatalf("pending notifications left: %d %v", code, l)
			}
			if code, l := b.do("GET", "/api/v1/notifications?limit=4", sup, nil, nil); code != 200 || len(l["data"].([]any)) != 4 || l["next_cursor"] == nil {
				t.Fatalf("first page of 4: %d %v", code, l)
			} else if code, l2 := b.do("GET", "/api/v1/notifications?limit=4&cursor="+l["next_cursor"].(string), sup, nil, nil); code != 200 || len(l2["data"].([]any)) != 4 {
				t.Fatalf("second page: %d %v", code, l2)
			}
			if code, _ := b.do("GET", "/api/v1/notifications?status=lost", sup, nil, nil); code != 400 {
				t.Fatalf("unknown status answered %d, want 400", code)
			}
			for role, want := range map[string]int{"agent": 403, "analyst": 403, "supervisor": 200, "admin": 200} {
				if code, _ := b.do("GET", "/api/v1/notifications", b.token(role), nil, nil); code != want {
					t.Errorf("%s GET /notifications = %d, want %d", role, code, want)
				}
			}
			id := data[0].(map[string]any)["id"].(string)
			if code, l := b.do("POST", "/api/v1/notifications/"+id+"/replay", sup, nil, nil); code != 409 {
				t.Fatalf("replay of a sent notification = %d %v, want 409", code, l)
			}
			if code, _ := b.do("POST", "/api/v1/notifications/ntf_nope/replay", sup, nil, nil); code != 404 {
				t.Fatalf("replay of an unknown notification = %d, want 404", code)
			}
			if code, _ := b.do("POST", "/api/v1/notifications/"+id+"/replay", b.token("agent"), nil, nil); code != 403 {
				t.Fatalf("agent replay = %d, want 403", code)
			}
			// Credentials stay out of the policy as shown and the logs.
			_, pol := b.do("GET", "/api/v1/policy", sup, nil, nil)
			shown, _ := json.Marshal(pol)
			if bytes.Contains(shown, []byte(notifySecret)) || !bytes.Contains(shown, []byte(`"secret":"set (sha256:`)) {
				t.Fatalf("policy shows the secret: %s", shown)
			}
			if strings.Contains(a.logs()+b.logs(), notifySecret) {
				t.Fatal("a log line holds the webhook secret")
			}
			resp, err := b.api.Get(b.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			m, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Contains(m, []byte(`recourse_notification_attempts_failed_total{type="slack"}`)) ||
				!bytes.Contains(m, []byte(`recourse_notifications_sent_total{type="webhook"}`)) {
				t.Fatalf("notification metrics missing:\n%s", m)
			}
		})
	}
}

// A destination on a private address without allow_private stops the
// service at startup, with an error that says why.
func TestNotificationsPrivateDestinationRefused(t *testing.T) {
	for _, tc := range []struct{ url, allow, want string }{
		{"https://127.0.0.1/hook", "false", "private, loopback"},
		{"https://10.1.2.3/hook", "false", "private, loopback"},
		{"https://169.254.169.254/latest", "false", "private, loopback"},
		{"http://hooks.example.com/x", "false", "must be https"},
	} {
		policy := writePolicy(t, fmt.Sprintf("notifications:\n  destinations:\n    - {name: desk, type: slack, url: %q, allow_private: %s}\n", tc.url, tc.allow))
		env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "RECOURSE_POLICY_FILE": policy, "RECOURSE_HTTP_ADDR": "127.0.0.1:0"}
		var logs bytes.Buffer
		err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, io.Discard, &logs)
		if err == nil || !strings.Contains(err.Error(), "notifications: destination desk") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: serve = %v, want a startup error with %q", tc.url, err, tc.want)
		}
	}
	for _, bad := range []struct{ yaml, want string }{
		{"    - {name: desk, type: email, url: \"https://hooks.example.com/x\"}\n", `type "email" is unknown`},
		{"    - {name: desk, type: slack, url: \"https://127.0.0.1/x\", allow_private: true}\n  rules:\n    - {on: [dispute.opened], to: [desk]}\n", `event type "dispute.opened" is unknown`},
		{"    - {name: desk, type: slack, url: \"https://127.0.0.1/x\", allow_private: true}\n  rules:\n    - {on: [dispute.created], to: [pager]}\n", `destination "pager" is not defined`},
	} {
		policy := writePolicy(t, "notifications:\n  destinations:\n"+bad.yaml)
		env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "RECOURSE_POLICY_FILE": policy, "RECOURSE_HTTP_ADDR": "127.0.0.1:0"}
		if err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("serve = %v, want a startup error with %q", err, bad.want)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
