package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/recourse-hq/recourse/internal/dbtest"
)

// A policy change (edit the file, restart) is in the audit log once, as the
// system, with the policy before and after; a restart on the same policy
// adds nothing.
func TestPolicyChangeAudited(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			policy := filepath.Join(t.TempDir(), "policy.yaml")
			write := func(limit string) {
				if err := os.WriteFile(policy, []byte("actions:\n  refund:\n    agent_limit: "+limit+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			base := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "RECOURSE_POLICY_FILE": policy}
			if dialect == "postgres" {
				base["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			start := func() *instance {
				env := map[string]string{}
				for k, v := range base {
					env[k] = v
				}
				return boot(t, env)
			}
			changes := func(in *instance, admin string) []map[string]any {
				return auditActions(t, in, admin, "action=policy.change")
			}

			write("10000")
			in := start()
			admin := in.token("admin")
			if got := changes(in, admin); len(got) != 1 || got[0]["actor"] != "system" || got[0]["actor_kind"] != "system" || got[0]["before"] != nil {
				t.Fatalf("first start: %v", got)
			}
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			in = start()
			if got := changes(in, admin); len(got) != 1 {
				t.Fatalf("restart on the same policy: %d entries", len(got))
			}
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			write("2000")
			in = start()
			got := changes(in, admin)
			if len(got) != 2 || got[0]["before"] == nil || got[0]["after"] == nil || got[0]["object_id"] == got[1]["object_id"] {
				t.Fatalf("after the change: %v", got)
			}
			after := got[0]["after"].(map[string]any)["actions"].(map[string]any)["refund"].(map[string]any)
			before := got[0]["before"].(map[string]any)["actions"].(map[string]any)["refund"].(map[string]any)
			if after["agent_limit"] != float64(2000) || before["agent_limit"] != float64(10000) {
				t.Fatalf("before %v, after %v", before, after)
			}
		})
	}
}
