package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// cli runs a recourse command against in's database.
func (in *instance) cli(args ...string) (string, string, error) {
	in.t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, in.getenv, &out, &errb)
	return out.String(), errb.String(), err
}

// mustCLI runs a command that must succeed and returns its output.
func (in *instance) mustCLI(args ...string) string {
	in.t.Helper()
	out, errOut, err := in.cli(args...)
	if err != nil {
		in.t.Fatalf("recourse %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// deadEvent stores a dead-lettered webhook event directly, as the worker
// leaves one after its last attempt.
func (in *instance) deadEvent(id string) {
	in.t.Helper()
	d, err := db.Open(context.Background(), in.env["DATABASE_URL"], in.env["RECOURSE_SQLITE_PATH"], db.Options{MaxConns: 1})
	if err != nil {
		in.t.Fatal(err)
	}
	defer d.Close()
	now := time.Now().UTC()
	payload := []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"product.created","created":%d,"data":{"object":{"id":"prod_1","object":"product"}}}`, id, now.Unix()))
	if err := d.Gorm.Exec(`INSERT INTO webhook_events (event_id, type, created, payload, status, attempts, next_attempt_at, last_error, received_at)
VALUES (?, 'product.created', ?, ?, 'dead', 8, ?, 'gave up', ?)`, id, now, payload, now, now).Error; err != nil {
		in.t.Fatal(err)
	}
}

// failedNotification writes a notification delivery that gave up, as the
// sender leaves one.
func (in *instance) failedNotification(id string) {
	in.t.Helper()
	d, err := db.Open(context.Background(), in.env["DATABASE_URL"], in.env["RECOURSE_SQLITE_PATH"], db.Options{MaxConns: 1})
	if err != nil {
		in.t.Fatal(err)
	}
	defer d.Close()
	now := time.Now().UTC()
	if err := d.Gorm.Exec(`INSERT INTO notification_deliveries (id, event_id, event_type, subject, destination, dest_type, status, attempts,
last_error, next_attempt_at, created_at, updated_at) VALUES (?, 1, 'action.failed', '', 'ops-hook', 'webhook', 'failed', 8,
'POST https://hooks.example.com/recourse: the receiver answered 500', ?, ?, ?)`, id, now, now, now).Error; err != nil {
		in.t.Fatal(err)
	}
}

func auditActions(t *testing.T, in *instance, token, query string) []map[string]any {
	t.Helper()
	code, m := in.do("GET", "/api/v1/audit?limit=200&"+query, token, nil, nil)
	if code != 200 {
		t.Fatalf("audit %s: %d %v", query, code, m)
	}
	var out []map[string]any
	for _, e := range m["data"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// Users and their tokens from the command line and the API; every change,
// and every webhook replay, in the audit log with its actor.
func TestUsersCLIAndAuditEndToEnd(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			p, _ := auth.FromContext(cliContext(context.Background(), in.getenv))
			operator := p.Name
			if !strings.HasPrefix(operator, "cli:") || operator == "cli:" {
				t.Fatalf("CLI actor %q", operator)
			}

			if out := in.mustCLI("user", "create", "--email", "Ada@Example.com", "--name", "Ada", "--role", "admin", "--teams", "disputes, risk"); !strings.Contains(out, "ada@example.com") {
				t.Fatalf("user create: %s", out)
			}
			in.mustCLI("user", "create", "--email", "bo@example.com", "--name", "Bo", "--role", "agent")
			if _, _, err := in.cli("user", "create", "--email", "bo@example.com", "--name", "Bo again", "--role", "agent"); err == nil {
				t.Fatal("second user with the same email accepted")
			}
			ada := strings.TrimSpace(in.mustCLI("token", "create", "--user", "ada@example.com"))
			adaPhone := strings.TrimSpace(in.mustCLI("token", "create", "--user", "ada@example.com", "--name", "phone"))
			bo := strings.TrimSpace(in.mustCLI("token", "create", "--user", "bo@example.com"))
			if _, _, err := in.cli("token", "create", "--user", "bo@example.com", "--role", "admin"); err == nil {
				t.Fatal("token above its user's role accepted")
			}
			if _, _, err := in.cli("token", "create", "--user", "nobody@example.com"); err == nil {
				t.Fatal("token for an unknown user accepted")
			}
			list := in.mustCLI("user", "list")
			for _, want := range []string{"ada@example.com", "bo@example.com", "disputes,risk", "admin", "agent"} {
				if !strings.Contains(list, want) {
					t.Fatalf("user list lacks %q:\n%s", want, list)
				}
			}
			for _, tok := range []string{ada, adaPhone} {
				if code, m := in.do("GET", "/api/v1/users", tok, nil, nil); code != 200 || len(m["data"].([]any)) != 2 {
					t.Fatalf("admin listing users: %d %v", code, m)
				}
			}
			if code, _ := in.do("GET", "/api/v1/users", bo, nil, nil); code != 403 {
				t.Fatalf("agent listing users: %d", code)
			}
			// A token revoked from the CLI stops working.
			code, toks := in.do("GET", "/api/v1/tokens", ada, nil, nil)
			if code != 200 {
				t.Fatalf("tokens: %d", code)
			}
			var phoneID string
			for _, tk := range toks["data"].([]any) {
				if tk := tk.(map[string]any); tk["name"] == "phone" {
					phoneID = fmt.Sprint(tk["id"])
				}
			}
			in.mustCLI("token", "revoke", phoneID)
			if code, _ := in.do("GET", "/api/v1/users", adaPhone, nil, nil); code != 401 {
				t.Fatalf("revoked token: %d", code)
			}
			// A user deactivated from the CLI loses every token at once.
			in.mustCLI("user", "deactivate", "bo@example.com")
			if code, _ := in.do("GET", "/api/v1/cases", bo, nil, nil); code != 401 {
				t.Fatalf("deactivated user's token: %d", code)
			}
			if _, _, err := in.cli("token", "create", "--user", "bo@example.com"); err == nil {
				t.Fatal("token for a deactivated user accepted")
			}
			// Over the API too.
			code, cy := in.do("POST", "/api/v1/users", ada, jsonBody(map[string]any{"email": "cy@example.com", "display_name": "Cy", "role": "supervisor"}), nil)
			if code != 201 {
				t.Fatalf("create over the API: %d %v", code, cy)
			}
			if code, m := in.do("PATCH", fmt.Sprintf("/api/v1/users/%v", cy["id"]), ada, jsonBody(map[string]any{"teams": []string{"payments"}}), nil); code != 200 {
				t.Fatalf("patch: %d %v", code, m)
			}
			if code, m := in.do("PATCH", fmt.Sprintf("/api/v1/users/%v", cy["id"]), ada, jsonBody(map[string]any{"active": false}), nil); code != 200 || m["active"] != false {
				t.Fatalf("deactivate over the API: %d %v", code, m)
			}

			// Replays: one over the API, one and then all from the CLI.
			in.deadEvent("evt_dead_api")
			in.deadEvent("evt_dead_cli")
			in.deadEvent("evt_dead_all")
			if code, m := in.do("POST", "/api/v1/webhook-events/evt_dead_api/replay", ada, nil, nil); code != 200 {
				t.Fatalf("API replay: %d %v", code, m)
			}
			in.mustCLI("replay", "evt_dead_cli")
			if out := in.mustCLI("replay", "--all"); !strings.Contains(out, "replayed 1 ") {
				t.Fatalf("replay --all: %s", out)
			}
			in.deadEvent("evt_dead_api_all")
			if code, m := in.do("POST", "/api/v1/webhook-events/replay", ada, nil, nil); code != 200 || m["replayed"] != float64(1) {
				t.Fatalf("API replay all: %d %v", code, m)
			}

			type key struct{ action, object, actor, kind string }
			got := map[key]bool{}
			for _, e := range auditActions(t, in, ada, "") {
				got[key{fmt.Sprint(e["action"]), fmt.Sprint(e["object_id"]), fmt.Sprint(e["actor"]), fmt.Sprint(e["actor_kind"])}] = true
			}
			has := func(action, object, actor, kind string) {
				t.Helper()
				if !got[key{action, object, actor, kind}] {
					t.Errorf("audit lacks %s on %s by %s (%s); has %v", action, object, actor, kind, got)
				}
			}
			has("user.create", "1", operator, "cli")
			has("user.create", "2", operator, "cli")
			has("token.create", "1", operator, "cli")
			has("token.revoke", phoneID, operator, "cli")
			has("user.deactivate", "2", operator, "cli")
			has("user.create", fmt.Sprint(cy["id"]), "Ada", "user")
			has("user.update", fmt.Sprint(cy["id"]), "Ada", "user")
			has("user.deactivate", fmt.Sprint(cy["id"]), "Ada", "user")
			has("webhook_event.replay", "evt_dead_api", "Ada", "user")
			has("webhook_event.replay", "evt_dead_cli", operator, "cli")
			has("webhook_event.replay", "evt_dead_all", operator, "cli")
			has("webhook_event.replay", "evt_dead_api_all", "Ada", "user")
			if cliOnly := auditActions(t, in, ada, "actor_kind=cli"); len(cliOnly) < 8 {
				t.Fatalf("audit by actor kind cli: %d entries", len(cliOnly))
			}
		})
	}
}
