// Package dbtest gives tests an isolated, migrated database on each dialect:
// a fresh SQLite file, and a fresh schema in the test PostgreSQL.
//
// PostgreSQL is found at RECOURSE_TEST_DATABASE_URL, else DATABASE_URL, else
// postgres://postgres@127.0.0.1:5432/test. When it cannot be reached the
// PostgreSQL half of a test is skipped, except under CI=true, where that is a
// failure: CI must never pass without having run against PostgreSQL.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/migrations"
)

// DefaultPostgresURL is the local test database the README's test command uses.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	probeOnce sync.Once
	probeErr  error
)

// BasePostgresURL returns the URL of the test PostgreSQL server.
func BasePostgresURL() string {
	for _, k := range []string{"RECOURSE_TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return DefaultPostgresURL
}

// RequirePostgres skips t (or fails it under CI=true) when PostgreSQL is not
// reachable.
func RequirePostgres(t testing.TB) {
	t.Helper()
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := db.Open(ctx, BasePostgresURL(), "", db.Options{MaxConns: 1})
		if err != nil {
			probeErr = err
			return
		}
		_ = d.Close()
	})
	if probeErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required under CI=true but unreachable at %s: %v", BasePostgresURL(), probeErr)
		}
		t.Skipf("PostgreSQL unreachable (%v); set RECOURSE_TEST_DATABASE_URL or run `make test`, which starts it", probeErr)
	}
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// WithSearchPath returns url with its search_path set to schema.
func WithSearchPath(url, schema string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}

// NewPostgresURL creates an empty schema for t, dropped when t ends, and
// returns a URL whose connections use it. Nothing is migrated.
func NewPostgresURL(t testing.TB) string {
	t.Helper()
	RequirePostgres(t)
	ctx := context.Background()
	admin, err := db.Open(ctx, BasePostgresURL(), "", db.Options{MaxConns: 1})
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	schema := randomName("t_")
	if err := admin.Gorm.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.Gorm.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE").Error
		_ = admin.Close()
	})
	return WithSearchPath(BasePostgresURL(), schema)
}

// NewSQLitePath returns a fresh SQLite file path in t's temp directory.
func NewSQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "recourse.db")
}

// NewLocation returns where a fresh, empty database of dialect d lives, as
// db.Open takes it: a PostgreSQL URL (a new schema) or a SQLite file path.
func NewLocation(t testing.TB, d db.Dialect) (url, sqlitePath string) {
	t.Helper()
	switch d {
	case db.Postgres:
		return NewPostgresURL(t), ""
	case db.SQLite:
		return "", NewSQLitePath(t)
	}
	t.Fatalf("unknown dialect %q", d)
	return "", ""
}

// Open returns a migrated, isolated database of dialect d, closed when t ends.
func Open(t testing.TB, d db.Dialect) *db.DB {
	t.Helper()
	ctx := context.Background()
	url, path := NewLocation(t, d)
	conn, err := db.Open(ctx, url, path, db.Options{MaxConns: 20})
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := migrations.Up(ctx, conn, func() time.Time { return time.Now().UTC() }); err != nil {
		t.Fatalf("migrate %s: %v", d, err)
	}
	return conn
}

// Dialects lists the dialects every storage test runs on.
func Dialects() []db.Dialect { return []db.Dialect{db.SQLite, db.Postgres} }

// Each runs fn as a subtest on a fresh database of every dialect.
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	for _, dialect := range Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			fn(t, Open(t, dialect))
		})
	}
}

// Migrate applies every migration to d and returns it.
func Migrate(t testing.TB, d *db.DB) *db.DB {
	t.Helper()
	if _, err := migrations.Up(context.Background(), d, func() time.Time { return time.Now().UTC() }); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return d
}
