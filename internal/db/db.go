// Package db opens Recourse's database (PostgreSQL or the embedded SQLite
// default) through GORM and provides the one transaction helper.
package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the SQL dialect behind a DB.
type Dialect string

// Supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open database: the GORM handle plus the dialect, which storage
// code needs for the few statements the two dialects spell differently.
type DB struct {
	Gorm    *gorm.DB
	Dialect Dialect
	maxIdle int // restored after Read drops the idle connections
}

// Options tune Open.
type Options struct {
	// MaxConns bounds PostgreSQL connections. SQLite always uses one
	// connection: one writer at a time is what SQLite supports, and a single
	// connection turns lock contention into queueing instead of SQLITE_BUSY.
	MaxConns int
	Logger   *slog.Logger
}

// Open connects to url (postgres://… or postgresql://…), or, when url is
// empty, to the SQLite file at sqlitePath (created with its directory).
func Open(ctx context.Context, url, sqlitePath string, opt Options) (*DB, error) {
	cfg := &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		Logger:                 logger.Discard,
	}
	var (
		g   *gorm.DB
		d   Dialect
		err error
	)
	switch {
	case url == "":
		if err := os.MkdirAll(filepath.Dir(sqlitePath), 0o750); err != nil {
			return nil, fmt.Errorf("create sqlite directory: %w", err)
		}
		g, err = gorm.Open(sqlite.Open(SQLiteDSN(sqlitePath)), cfg)
		d = SQLite
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		g, err = gorm.Open(postgres.Open(url), cfg)
		d = Postgres
	default:
		return nil, fmt.Errorf("DATABASE_URL must start with postgres:// (got %q)", redactURL(url))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	maxIdle := 1
	if d == SQLite {
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
	} else {
		n := opt.MaxConns
		if n < 1 {
			n = 20
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		maxIdle = n
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", d, err)
	}
	out := &DB{Gorm: g, Dialect: d, maxIdle: maxIdle}
	if err := out.registerReadRetry(); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	return out, nil
}

// SQLiteDSN is the connection string for the SQLite file at path: WAL so
// readers never block the writer, a busy timeout, foreign keys on. The path
// is escaped for SQLite's URI syntax, so a '#', '?' or '%' in it names the
// file rather than starting a fragment or the parameters.
func SQLiteDSN(path string) string {
	path = strings.NewReplacer("%", "%25", "#", "%23", "?", "%3f").Replace(path)
	return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// Close releases the connection pool.
func (d *DB) Close() error {
	s, err := d.Gorm.DB()
	if err != nil {
		return err
	}
	return s.Close()
}

// Ping checks the database answers within ctx.
func (d *DB) Ping(ctx context.Context) error {
	s, err := d.Gorm.DB()
	if err != nil {
		return err
	}
	return s.PingContext(ctx)
}

// WithContext returns the GORM handle bound to ctx.
func (d *DB) WithContext(ctx context.Context) *gorm.DB { return d.Gorm.WithContext(ctx) }

// Transact runs fn in a transaction, committing if fn returns nil and rolling
// back otherwise (or on panic, which is re-raised).
func (d *DB) Transact(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return d.Gorm.WithContext(ctx).Transaction(fn)
}

// IsUnavailable reports whether err means the database could not be reached
// (as opposed to a query the database refused).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "failed to connect", "broken pipe", "connection reset", "no such host", "database is closed", "bad connection", "the database system is", "terminating connection", "server closed the connection", "timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		return u[:i] + "://…"
	}
	return "…"
}
