package db

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The dialect seam. These are the only operations the two databases spell
// differently; domain code calls them and never branches on the dialect
// itself (a test greps for `Dialect ==` outside this package).
//
//	operation            PostgreSQL                          SQLite
//	ForUpdate            SELECT … FOR UPDATE                 plain SELECT (one writer; _txlock=immediate)
//	ForUpdateSkipLocked  SELECT … FOR UPDATE SKIP LOCKED     plain SELECT (one writer)
//	SkipLockedSQL        " FOR UPDATE SKIP LOCKED"           ""
//	AdvisoryXactLock     pg_advisory_xact_lock(class, hashtext(key))   no-op (one writer)
//	InsertReturning      INSERT … VALUES ($1,…),(…) … RETURNING …       same with ? placeholders
//	Partitioned          true: webhook_events by month (0029)   false: plain tables
//	OverlappingWriters   true: transactions write concurrently  false: one writer at a time
//
// SQLite runs on one connection and opens every transaction with BEGIN
// IMMEDIATE, so a transaction already holds the only write lock there is:
// every lock below would be redundant.

// LockClass names what an advisory lock serialises; it is the first half of
// the lock key, so two classes never block each other.
type LockClass int32

// Advisory lock classes. Keep them distinct; the values are part of the
// protocol between processes of different versions, so never renumber one.
const (
	// LockMigrations serialises migrators (key: "schema").
	LockMigrations LockClass = 7_460_001
	// LockCaseSubject serialises find-or-create of a case (key: kind:subject).
	LockCaseSubject LockClass = 7_460_004
	// LockActionSubject serialises action policy checks on one provider
	// object (key: the object's provider id).
	LockActionSubject LockClass = 7_460_005
	// LockChargeChildren serialises a charge gaining its customer with the
	// events of its refunds, disputes and fraud warnings that find the
	// charge without one (key: the charge's provider id).
	LockChargeChildren LockClass = 7_460_006
)

// ForUpdate adds a row lock (FOR UPDATE) to q on PostgreSQL; the rows stay
// locked until the transaction ends. On SQLite q is returned unchanged.
func (d Dialect) ForUpdate(q *gorm.DB) *gorm.DB {
	if d == Postgres {
		return q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return q
}

// ForUpdateSkipLocked adds FOR UPDATE SKIP LOCKED to q on PostgreSQL, so
// several workers can claim rows at once without taking the same one. On
// SQLite q is returned unchanged.
func (d Dialect) ForUpdateSkipLocked(q *gorm.DB) *gorm.DB {
	if d == Postgres {
		return q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
	}
	return q
}

// SkipLockedSQL is the suffix that locks the rows of a raw sub-SELECT and
// skips those another transaction holds: " FOR UPDATE SKIP LOCKED" on
// PostgreSQL, "" on SQLite.
func (d Dialect) SkipLockedSQL() string {
	if d == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// Partitioned reports whether the dialect's schema partitions the large
// append-only tables by month (PostgreSQL, migration 0029: the webhook
// inbox), so retention may drop a month instead of deleting its rows.
func (d Dialect) Partitioned() bool { return d == Postgres }

// OverlappingWriters reports whether one transaction may write while
// another that began earlier is still open and has not seen its writes
// (PostgreSQL). SQLite has one writer and serializable snapshots, so a
// transaction sees all of every earlier one's writes.
func (d Dialect) OverlappingWriters() bool { return d == Postgres }

// AdvisoryXactLock takes the advisory lock (class, key) inside tx and holds
// it until tx ends; another transaction asking for the same (class, key)
// waits. On SQLite it does nothing (one writer at a time already).
func (d Dialect) AdvisoryXactLock(ctx context.Context, tx *gorm.DB, class LockClass, key string) error {
	if d != Postgres {
		return nil
	}
	if err := tx.WithContext(ctx).Exec("SELECT pg_advisory_xact_lock(?, hashtext(?))", int32(class), key).Error; err != nil {
		return fmt.Errorf("advisory lock %d/%s: %w", class, key, err)
	}
	return nil
}

// LockTimeout makes every lock wait in tx give up after d (SET LOCAL
// lock_timeout) on PostgreSQL, failing the statement; the setting ends with
// tx. On SQLite it does nothing (its busy timeout applies).
func (d Dialect) LockTimeout(ctx context.Context, tx *gorm.DB, timeout time.Duration) error {
	if d != Postgres {
		return nil
	}
	ms := max(timeout.Milliseconds(), 1)
	if err := tx.WithContext(ctx).Exec("SET LOCAL lock_timeout = " + strconv.FormatInt(ms, 10)).Error; err != nil {
		return fmt.Errorf("set lock timeout: %w", err)
	}
	return nil
}

// IndexOrder makes the planner walk an index in order for the rest of tx
// (SET LOCAL enable_seqscan, enable_bitmapscan and enable_sort off) on
// PostgreSQL: for a queue claim — the first few due rows in index order —
// whose cheap plan depends on row estimates that a fast-moving queue
// table's statistics rarely have right (a 70,000-event backlog estimated
// at 800 rows made every claim read and sort all of them). Nothing on
// SQLite.
func (d Dialect) IndexOrder(ctx context.Context, tx *gorm.DB) error {
	if d != Postgres {
		return nil
	}
	err := tx.WithContext(ctx).Exec("SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)").Error
	if err != nil {
		return fmt.Errorf("prefer index order: %w", err)
	}
	return nil
}

// placeholder is the n-th (1-based) bind parameter.
func (d Dialect) placeholder(n int) string {
	if d == Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// InsertReturning inserts rows (each with one value per column) into table
// in one statement, followed by suffix (e.g. "ON CONFLICT (id) DO NOTHING
// RETURNING id"), on the root connection pool, outside any transaction, and
// returns the rows the statement returns. The caller closes them. Table,
// columns and suffix are SQL text: never pass user input there.
func (d *DB) InsertReturning(ctx context.Context, table string, columns []string, rows [][]any, suffix string) (*sql.Rows, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("insert into %s: no rows", table)
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES ")
	args := make([]any, 0, len(rows)*len(columns))
	for i, r := range rows {
		if len(r) != len(columns) {
			return nil, fmt.Errorf("insert into %s: row %d has %d values for %d columns", table, i, len(r), len(columns))
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for k := range r {
			if k > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(d.Dialect.placeholder(len(args) + 1))
			args = append(args, r[k])
		}
		sb.WriteByte(')')
	}
	if suffix != "" {
		sb.WriteString(" " + suffix)
	}
	sqlDB, err := d.Gorm.DB()
	if err != nil {
		return nil, err
	}
	return sqlDB.QueryContext(ctx, sb.String(), args...)
}

// TextColumns lists every text or JSON column of every table in the current
// schema, from the database's own catalogue, so that a table added later is
// covered too (the card-number scan walks them). Binary columns are left out.
func (d *DB) TextColumns(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	if d.Dialect == Postgres {
		var cols []struct{ TableName, ColumnName string }
		err := d.WithContext(ctx).Raw(`SELECT c.table_name, c.column_name FROM information_schema.columns c
			JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
			WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
			  AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED')
			ORDER BY 1, 2`).Scan(&cols).Error
		if err != nil {
			return nil, fmt.Errorf("list text columns: %w", err)
		}
		for _, c := range cols {
			out[c.TableName] = append(out[c.TableName], c.ColumnName)
		}
		return out, nil
	}
	var tables []string
	if err := d.WithContext(ctx).Raw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).Scan(&tables).Error; err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for _, tb := range tables {
		var cols []struct {
			Name string
			Type string
		}
		if err := d.WithContext(ctx).Raw(`SELECT name, type FROM pragma_table_info(?)`, tb).Scan(&cols).Error; err != nil {
			return nil, fmt.Errorf("list columns of %s: %w", tb, err)
		}
		for _, c := range cols {
			typ := strings.ToUpper(c.Type)
			if typ == "" || strings.Contains(typ, "TEXT") || strings.Contains(typ, "CHAR") || strings.Contains(typ, "JSON") || strings.Contains(typ, "CLOB") {
				out[tb] = append(out[tb], c.Name)
			}
		}
	}
	return out, nil
}

// Advisories are what the database server's own settings will cost the
// service, for the operator: today, PostgreSQL without autovacuum, under
// which the webhook inbox's dead row versions are never reclaimed and the
// worker's claims and marks slow as they pile up (docs/benchmarks.md, issue
// 11's third pass). SQLite has none.
func (d *DB) Advisories(ctx context.Context) ([]string, error) {
	if d.Dialect != Postgres {
		return nil, nil
	}
	var autovacuum string
	if err := d.WithContext(ctx).Raw("SELECT current_setting('autovacuum')").Scan(&autovacuum).Error; err != nil {
		return nil, fmt.Errorf("read autovacuum setting: %w", err)
	}
	if autovacuum == "off" {
		return []string{"PostgreSQL autovacuum is off: the webhook inbox's dead rows are never reclaimed and the worker slows as they pile up; turn it on, or VACUUM ANALYZE webhook_events regularly"}, nil
	}
	return nil, nil
}
