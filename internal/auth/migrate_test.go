package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/migrations"
)

// openAt returns a fresh database of dialect with migrations up to version
// applied, as a database from before that version would be.
func openAt(t *testing.T, dialect db.Dialect, version int) *db.DB {
	t.Helper()
	ctx := context.Background()
	url, path := dbtest.NewLocation(t, dialect)
	d, err := db.Open(ctx, url, path, db.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	all, err := migrations.All(dialect)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Gorm.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.Version > version {
			break
		}
		if err := d.Gorm.Exec(m.SQL).Error; err != nil {
			t.Fatalf("apply %s: %v", m.Name, err)
		}
		if err := d.Gorm.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, time.Now().UTC()).Error; err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func hashOf(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

// Tokens from before users become one user per distinct token name; actions
// and audit entries are attributed to those users.
func TestMigrationGivesEveryTokenNameAUser(t *testing.T) {
	for _, dialect := range dbtest.Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			d := openAt(t, dialect, 5)
			now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
			secrets := map[string]string{"ada-agent": "rct_aaaaaa01", "ada-admin": "rct_aaaaaa02", "bob": "rct_bbbbbb01"}
			for _, tk := range []struct{ key, name, role string }{{"ada-agent", "Ada", "agent"}, {"ada-admin", "Ada", "admin"}, {"bob", "Bob", "supervisor"}} {
				if err := d.Gorm.Exec("INSERT INTO api_tokens (name, role, token_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)",
					tk.name, tk.role, hashOf(secrets[tk.key]), secrets[tk.key][:10], now).Error; err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Gorm.Exec(`INSERT INTO actions (id, case_id, type, params, status, requested_by, requested_role, client_key, request_hash, provider_key, decided_by, created_at, updated_at)
VALUES ('act_1', 'c1', 'refund', '{}', 'pending_approval', 'Ada', 'admin', 'k1', 'h', 'recourse_act_1', 'Bob', ?, ?)`, now, now).Error; err != nil {
				t.Fatal(err)
			}
			for _, actor := range []string{"Ada", "system", "stripe"} {
				if err := d.Gorm.Exec("INSERT INTO audit_log (at, actor, role, action) VALUES (?, ?, 'x', 'test')", now, actor).Error; err != nil {
					t.Fatal(err)
				}
			}
			if _, err := migrations.Up(ctx, d, time.Now); err != nil {
				t.Fatalf("migrate: %v", err)
			}

			users, err := auth.NewUserStore(d, clock.System{}, nil).All(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(users) != 2 || users[0].DisplayName != "Ada" || users[0].Role != auth.RoleAdmin || users[1].DisplayName != "Bob" ||
				users[1].Role != auth.RoleSupervisor || users[0].Email != nil || !users[0].Active {
				t.Fatalf("users: %+v", users)
			}
			ada, bob := users[0].ID, users[1].ID
			tokens := auth.NewTokenStore(d, clock.System{})
			for key, want := range map[string]auth.Principal{
				"ada-agent": {UserID: ada, Name: "Ada", Role: auth.RoleAgent},
				"ada-admin": {UserID: ada, Name: "Ada", Role: auth.RoleAdmin},
				"bob":       {UserID: bob, Name: "Bob", Role: auth.RoleSupervisor},
			} {
				p, err := tokens.Authenticate(ctx, secrets[key])
				if err != nil || p.UserID != want.UserID || p.Name != want.Name || p.Role != want.Role || p.ActorKind() != auth.ActorUser {
					t.Fatalf("%s: %+v %v", key, p, err)
				}
			}
			var act struct {
				RequestedByUserID *int64
				DecidedByUserID   *int64
			}
			if err := d.Gorm.Raw("SELECT requested_by_user_id, decided_by_user_id FROM actions WHERE id = 'act_1'").Scan(&act).Error; err != nil {
				t.Fatal(err)
			}
			if act.RequestedByUserID == nil || *act.RequestedByUserID != ada || act.DecidedByUserID == nil || *act.DecidedByUserID != bob {
				t.Fatalf("action attribution: %+v", act)
			}
			var rows []struct {
				Actor       string
				ActorKind   string
				ActorUserID *int64
			}
			if err := d.Gorm.Raw("SELECT actor, actor_kind, actor_user_id FROM audit_log ORDER BY id").Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			if len(rows) != 3 || rows[0].ActorKind != "user" || rows[0].ActorUserID == nil || *rows[0].ActorUserID != ada ||
				rows[1].ActorKind != "system" || rows[2].ActorKind != "stripe" || rows[2].ActorUserID != nil {
				t.Fatalf("audit attribution: %+v", rows)
			}
			if err := d.Gorm.Exec("UPDATE audit_log SET actor = 'someone else'").Error; err == nil {
				t.Fatal("audit log accepted an update after the migration")
			}
		})
	}
}
