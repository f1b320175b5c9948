package main

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/apispec"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// serverOwned are fields the server alone sets on what it stores: a client
// that could write them would close a case without its lifecycle, forge who
// did something, or skip optimistic locking (OWASP API3: mass assignment).
var serverOwned = []string{"id", "state", "status", "version", "versions", "created_by", "created_at", "updated_at",
	"closed_at", "resolution", "breached", "sla_due", "first_response_due", "resolution_due", "requested_by", "decided_by",
	"approved_by", "actor", "user_id", "role", "assignee", "team", "customer_id", "provider_object_id", "attempts", "erased_at"}

// declaredOnPurpose are the server-owned names some bodies declare, each
// for a reason; a body that starts declaring another one fails the test
// until it is decided here.
var declaredOnPurpose = map[string]string{
	"PATCH /api/v1/cases/{id} version":            "the version the client last read: a stale one is 409, it never sets the version",
	"PATCH /api/v1/cases/{id}/evidence version":   "the draft version the client last read (409 when stale)",
	"POST /api/v1/cases/{id}/transitions version": "the case version the client last read (409 when stale)",
	"POST /api/v1/cases/bulk versions":            "per case, the version the client last read",
	"POST /api/v1/cases/bulk assignee":            "op=assign names whom to assign, under cases:write",
	"POST /api/v1/cases/bulk team":                "op=escalate names the team escalated to",
	"POST /api/v1/cases/{id}/assign assignee":     "the request is to assign, under cases:write",
	"POST /api/v1/cases/{id}/assign team":         "the request is to assign to a team",
	"POST /api/v1/cases/{id}/escalate team":       "the team escalated to",
	"PATCH /api/v1/users/{id} role":               "users:manage (admins) change roles; tested in the users tests",
	"POST /api/v1/users role":                     "users:manage (admins) create users with a role",
	"POST /api/v1/tokens role":                    "a token's role, capped at its user's role",
	"POST /api/v1/tokens user_id":                 "whose token an admin creates (tokens:manage)",
	"POST /api/v1/policies version":               "a policy document's own version, named by its author; the same version with other content is 409",
}

// Every JSON body of the API refuses the fields the server owns: each is
// sent alone to its operation, on real objects where the path names one,
// and must be refused (400 malformed_json: bodies are decoded strictly)
// with nothing changed. A body that declares such a field must say why in
// declaredOnPurpose. Operations come from the OpenAPI document, which the
// route-coverage test keeps equal to the router.
func TestMassAssignmentRefused(t *testing.T) {
	doc, err := apispec.Document()
	if err != nil {
		t.Fatal(err)
	}
	type op struct{ method, path string }
	var ops []op
	declared := map[string]map[string]bool{}
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/api/v1/") {
			continue // the webhooks take the sender's documents as they are
		}
		for method, o := range item.Operations() {
			if o.RequestBody == nil || o.RequestBody.Value.Content.Get("application/json") == nil {
				continue
			}
			s := o.RequestBody.Value.Content.Get("application/json").Schema.Value
			key := method + " " + path
			if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
				t.Errorf("%s: the request body is open (additionalProperties); close it so unknown fields are refused", key)
			}
			declared[key] = map[string]bool{}
			for name := range s.Properties {
				declared[key][name] = true
			}
			for _, f := range serverOwned {
				if declared[key][f] && declaredOnPurpose[key+" "+f] == "" {
					t.Errorf("%s declares the server-owned field %q: say why in declaredOnPurpose, or drop it", key, f)
				}
			}
			ops = append(ops, op{method, path})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	if len(ops) < 15 {
		t.Fatalf("only %d operations with a JSON body in the document", len(ops))
	}

	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin := in.token("admin")
			code, cs := in.do("POST", "/api/v1/cases", admin, jsonBody(map[string]any{"kind": "billing_inquiry", "channel": "email",
				"title": "Mass assignment target", "links": map[string]any{"customer": "cus_mass"}}), nil)
			if code != 201 {
				t.Fatalf("open case: %d %v", code, cs)
			}
			code, user := in.do("POST", "/api/v1/users", admin, jsonBody(map[string]any{"email": "mass@example.com", "display_name": "Mass", "role": "agent"}), nil)
			if code != 201 {
				t.Fatalf("create user: %d %v", code, user)
			}
			ids := map[string]string{"/api/v1/cases/{id}": cs["id"].(string), "/api/v1/users/{id}": fmt.Sprint(user["id"])}
			idFor := func(path string) string {
				for prefix, id := range ids {
					if strings.HasPrefix(path, prefix) {
						return id
					}
				}
				return "x_mass_assignment"
			}
			tried := 0
			for _, o := range ops {
				for _, f := range serverOwned {
					if declared[o.method+" "+o.path][f] {
						continue
					}
					path := strings.Replace(o.path, "{id}", idFor(o.path), 1)
					code, m := in.do(o.method, path, admin, jsonBody(map[string]any{f: "closed"}), map[string]string{"Idempotency-Key": "mass-" + f})
					tried++
					if code != 400 || errCode(m) != "malformed_json" {
						t.Errorf("%s %s with %q: %d %v, want 400 malformed_json", o.method, path, f, code, m)
					}
				}
			}
			// What the refused bodies aimed at is as it was.
			_, after := in.do("GET", "/api/v1/cases/"+cs["id"].(string), admin, nil, nil)
			for _, f := range []string{"state", "status", "version", "created_by", "created_at", "assignee", "team", "priority"} {
				if fmt.Sprint(after[f]) != fmt.Sprint(cs[f]) {
					t.Errorf("the case's %s changed: %v → %v", f, cs[f], after[f])
				}
			}
			_, u := in.do("GET", "/api/v1/users/"+fmt.Sprint(user["id"]), admin, nil, nil)
			if u["role"] != "agent" || u["active"] != true {
				t.Errorf("the user changed: %v", u)
			}
			// The declared version is a precondition, never a value to set.
			code, m := in.do("PATCH", "/api/v1/cases/"+cs["id"].(string), admin, jsonBody(map[string]any{"version": 999, "priority": "high"}), nil)
			if code != 409 {
				t.Errorf("PATCH with a version the case never had: %d %v", code, m)
			}
			t.Logf("%d refused attempts over %d operations", tried, len(ops))
		})
	}
}
