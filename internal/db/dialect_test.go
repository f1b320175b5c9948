package db_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

type item struct {
	ID string `gorm:"primaryKey"`
	N  int
}

func (item) TableName() string { return "seam_items" }

func seamTable(t *testing.T, d *db.DB) {
	t.Helper()
	if err := d.Gorm.Exec("CREATE TABLE seam_items (id TEXT PRIMARY KEY, n INTEGER NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
}

func returned(t *testing.T, d *db.DB, rows [][]any) []string {
	t.Helper()
	rs, err := d.InsertReturning(context.Background(), "seam_items", []string{"id", "n"}, rows, "ON CONFLICT (id) DO NOTHING RETURNING id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var ids []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	return ids
}

// TestInsertReturning: one statement, dialect placeholders, the conflict
// clause and RETURNING tell new rows from existing ones on both databases.
func TestInsertReturning(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		seamTable(t, d)
		if got := returned(t, d, [][]any{{"a", 1}, {"b", 2}}); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("first insert returned %v", got)
		}
		if got := returned(t, d, [][]any{{"b", 3}, {"c", 4}}); !slices.Equal(got, []string{"c"}) {
			t.Fatalf("second insert returned %v", got)
		}
		var b item
		if err := d.Gorm.Take(&b, "id = ?", "b").Error; err != nil || b.N != 2 {
			t.Fatalf("conflicting row overwritten: %+v %v", b, err)
		}
		if _, err := d.InsertReturning(context.Background(), "seam_items", []string{"id", "n"}, [][]any{{"x"}}, ""); err == nil {
			t.Fatal("a row with too few values was accepted")
		}
		if _, err := d.InsertReturning(context.Background(), "seam_items", []string{"id", "n"}, nil, ""); err == nil {
			t.Fatal("no rows was accepted")
		}
	})
}

// TestRowLocksSQL: the row locks are spelled only on PostgreSQL.
func TestRowLocksSQL(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		dry := d.Gorm.Session(&gorm.Session{DryRun: true})
		lock := d.Dialect.ForUpdate(dry.Model(&item{})).Find(&[]item{}).Statement.SQL.String()
		skip := d.Dialect.ForUpdateSkipLocked(dry.Model(&item{})).Find(&[]item{}).Statement.SQL.String()
		pg := d.Dialect == db.Postgres
		if strings.Contains(lock, "FOR UPDATE") != pg || strings.Contains(skip, "FOR UPDATE SKIP LOCKED") != pg ||
			strings.Contains(d.Dialect.SkipLockedSQL(), "SKIP LOCKED") != pg {
			t.Fatalf("%s: lock %q, skip %q, raw %q", d.Dialect, lock, skip, d.Dialect.SkipLockedSQL())
		}
	})
}

// TestSkipLocked: on PostgreSQL a second transaction skips the rows a first
// one holds.
func TestSkipLocked(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.Postgres)
	seamTable(t, d)
	returned(t, d, [][]any{{"a", 1}, {"b", 2}})
	ctx := context.Background()
	tx1 := d.Gorm.WithContext(ctx).Begin()
	defer tx1.Rollback()
	var held []item
	if err := d.Dialect.ForUpdate(tx1.Where("id = ?", "a")).Find(&held).Error; err != nil || len(held) != 1 {
		t.Fatalf("lock a: %v %v", held, err)
	}
	tx2 := d.Gorm.WithContext(ctx).Begin()
	defer tx2.Rollback()
	var free []item
	if err := d.Dialect.ForUpdateSkipLocked(tx2.Order("id")).Find(&free).Error; err != nil {
		t.Fatal(err)
	}
	if len(free) != 1 || free[0].ID != "b" {
		t.Fatalf("second transaction got %v, want only b", free)
	}
	var raw []item
	if err := tx2.Raw("SELECT id, n FROM seam_items WHERE id IN (SELECT id FROM seam_items ORDER BY id" + d.Dialect.SkipLockedSQL() + ")").Scan(&raw).Error; err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 || raw[0].ID != "b" {
		t.Fatalf("raw skip locked got %v", raw)
	}
}

// TestAdvisoryXactLock: the same (class, key) waits for the holder's
// transaction to end; another class or key does not. On SQLite it is a
// no-op (one writer).
func TestAdvisoryXactLock(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if d.Dialect == db.SQLite {
			err := d.Transact(ctx, func(tx *gorm.DB) error {
				return d.Dialect.AdvisoryXactLock(ctx, tx, db.LockCaseSubject, "k")
			})
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		tx1 := d.Gorm.WithContext(ctx).Begin()
		defer tx1.Rollback()
		if err := d.Dialect.AdvisoryXactLock(ctx, tx1, db.LockCaseSubject, "dispute:dp_1"); err != nil {
			t.Fatal(err)
		}
		try := func(class db.LockClass, key string) chan error {
			done := make(chan error, 1)
			go func() {
				done <- d.Transact(ctx, func(tx *gorm.DB) error { return d.Dialect.AdvisoryXactLock(ctx, tx, class, key) })
			}()
			return done
		}
		for _, free := range []struct {
			class db.LockClass
			key   string
		}{{db.LockActionSubject, "dispute:dp_1"}, {db.LockCaseSubject, "dispute:dp_2"}} {
			select {
			case err := <-try(free.class, free.key):
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("lock %d/%s waited for an unrelated holder", free.class, free.key)
			}
		}
		same := try(db.LockCaseSubject, "dispute:dp_1")
		select {
		case err := <-same:
			t.Fatalf("same lock taken while held (err %v)", err)
		case <-time.After(300 * time.Millisecond):
		}
		if err := tx1.Commit().Error; err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-same:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("same lock still waiting after the holder committed")
		}
	})
}

// TestSQLitePathWithURICharacters: a path with '#', '?' or '%' opens that
// very file (SQLite's URI syntax would otherwise cut the path there).
func TestSQLitePathWithURICharacters(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a#b?c%d")
	path := filepath.Join(dir, "recourse.db")
	d, err := db.Open(context.Background(), "", path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Gorm.Exec("CREATE TABLE probe (id INTEGER)").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}

// TestAdvisories: on PostgreSQL the autovacuum advisory is given exactly
// when the server's autovacuum is off (whichever way this server is set);
// SQLite gives none.
func TestAdvisories(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		got, err := d.Advisories(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Dialect != db.Postgres {
			if len(got) != 0 {
				t.Fatalf("SQLite advises %v", got)
			}
			return
		}
		var setting string
		if err := d.Gorm.Raw("SHOW autovacuum").Scan(&setting).Error; err != nil {
			t.Fatal(err)
		}
		warned := len(got) == 1 && strings.Contains(got[0], "autovacuum is off")
		if warned != (setting == "off") || len(got) > 1 {
			t.Fatalf("autovacuum = %s, advisories %q", setting, got)
		}
	})
}
