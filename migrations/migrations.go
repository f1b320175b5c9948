// Package migrations holds Recourse's versioned, forward-only schema
// migrations (one set per dialect), embedded in the binary, and applies them.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Status is one migration and whether it has been applied.
type Status struct {
	Version   int
	Name      string
	AppliedAt *time.Time
}

// All returns the migrations for dialect d in version order.
func All(d db.Dialect) ([]Migration, error) {
	dir := string(d)
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s migrations: %w", d, err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", name)
		}
		body, err := fs.ReadFile(files, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations share version %d", out[i].Version)
		}
	}
	return out, nil
}

// Latest returns the highest migration version for dialect d.
func Latest(d db.Dialect) (int, error) {
	all, err := All(d)
	if err != nil || len(all) == 0 {
		return 0, err
	}
	return all[len(all)-1].Version, nil
}

func ensureTable(ctx context.Context, g *gorm.DB) error {
	return g.WithContext(ctx).Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMP NOT NULL
	)`).Error
}

// Up applies every pending migration, each in its own transaction with its
// version row, and returns the versions it applied. On PostgreSQL an advisory
// lock keeps two processes starting at once from racing.
func Up(ctx context.Context, d *db.DB, now func() time.Time) ([]int, error) {
	all, err := All(d.Dialect)
	if err != nil {
		return nil, err
	}
	var applied []int
	err = d.Transact(ctx, func(tx *gorm.DB) error {
		if err := d.Dialect.AdvisoryXactLock(ctx, tx, db.LockMigrations, "schema"); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		if err := ensureTable(ctx, tx); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		done, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range all {
			if _, ok := done[m.Version]; ok {
				continue
			}
			if err := tx.Exec(m.SQL).Error; err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if err := tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, now().UTC()).Error; err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
			applied = append(applied, m.Version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

func appliedVersions(ctx context.Context, g *gorm.DB) (map[int]time.Time, error) {
	var rows []struct {
		Version   int
		AppliedAt time.Time
	}
	if err := g.WithContext(ctx).Raw("SELECT version, applied_at FROM schema_migrations").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	out := make(map[int]time.Time, len(rows))
	for _, r := range rows {
		out[r.Version] = r.AppliedAt
	}
	return out, nil
}

// List reports every known migration and whether it is applied.
func List(ctx context.Context, d *db.DB) ([]Status, error) {
	all, err := All(d.Dialect)
	if err != nil {
		return nil, err
	}
	if err := ensureTable(ctx, d.Gorm); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	done, err := appliedVersions(ctx, d.Gorm)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(all))
	for _, m := range all {
		s := Status{Version: m.Version, Name: m.Name}
		if t, ok := done[m.Version]; ok {
			t := t
			s.AppliedAt = &t
		}
		out = append(out, s)
	}
	return out, nil
}

// Pending returns how many migrations are not yet applied. It does not create
// anything, so readiness probes can call it.
func Pending(ctx context.Context, d *db.DB) (int, error) {
	all, err := All(d.Dialect)
	if err != nil {
		return 0, err
	}
	var versions []int
	if err := d.WithContext(ctx).Raw("SELECT version FROM schema_migrations").Scan(&versions).Error; err != nil {
		return len(all), fmt.Errorf("read schema_migrations: %w", err)
	}
	have := make(map[int]bool, len(versions))
	for _, v := range versions {
		have[v] = true
	}
	n := 0
	for _, m := range all {
		if !have[m.Version] {
			n++
		}
	}
	return n, nil
}
