package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
)

// Read runs fn, which must only read, on a pooled connection. If it fails
// because that connection was severed while it sat in the pool (a database
// restart or a network blip: "unexpected EOF", "connection reset"), the idle
// connections, which were very likely severed too, are dropped and fn runs
// once more on a connection that has just answered a ping. Nothing else is
// retried, and writes must never go through Read: a write whose answer was
// lost may have been applied.
//
// fn receives a handle bound to ctx; it may be called twice, so it must
// reset anything it fills.
func (d *DB) Read(ctx context.Context, fn func(g *gorm.DB) error) error {
	ctx = context.WithValue(ctx, inReadKey{}, true) // Read retries; the query callback need not
	err := fn(d.Gorm.WithContext(ctx))
	if err == nil || !IsBrokenConn(err) || ctx.Err() != nil {
		return err
	}
	d.dropIdle()
	return d.onLiveConn(ctx, fn)
}

type inReadKey struct{}

// registerReadRetry makes every query through GORM's query API (Find,
// First, Take, Count…) that is a SELECT and runs outside a transaction
// retry once, as Read does, when its pooled connection turns out severed;
// so every plain read path survives a database restart without each
// calling Read. Statements inside a transaction, raw statements run with
// Exec or Scan (which may write: UPDATE … RETURNING), and anything that is
// not a SELECT are never retried.
func (d *DB) registerReadRetry() error {
	return d.Gorm.Callback().Query().After("gorm:query").Before("gorm:preload").Register("recourse:retry_severed_read", func(tx *gorm.DB) {
		st := tx.Statement
		if tx.Error == nil || !IsBrokenConn(tx.Error) || st.Context.Err() != nil || st.Context.Value(inReadKey{}) != nil {
			return
		}
		if _, pooled := st.ConnPool.(*sql.DB); !pooled {
			return // a transaction or a pinned connection: not ours to retry
		}
		if !isSelect(st.SQL.String()) {
			return
		}
		d.dropIdle()
		tx.Error = nil
		callbacks.Query(tx)
	})
}

func isSelect(q string) bool {
	q = strings.TrimLeft(q, " \t\r\n(")
	return len(q) >= 6 && strings.EqualFold(q[:6], "SELECT")
}

// dropIdle closes every idle connection: after one is found severed, the
// others from the same moment are too, and each would cost a request.
func (d *DB) dropIdle() {
	s, err := d.Gorm.DB()
	if err != nil || d.Dialect != Postgres {
		return
	}
	s.SetMaxIdleConns(0)
	s.SetMaxIdleConns(d.maxIdle)
}

// onLiveConn runs fn on a connection that answers a ping, discarding (up to
// a bound) connections that do not.
func (d *DB) onLiveConn(ctx context.Context, fn func(g *gorm.DB) error) error {
	var err error
	for range 3 {
		err = d.Gorm.WithContext(ctx).Connection(func(tx *gorm.DB) error {
			if c, ok := tx.Statement.ConnPool.(*sql.Conn); ok {
				if perr := c.PingContext(ctx); perr != nil {
					return errPingFailed{perr}
				}
			}
			return fn(tx)
		})
		var pf errPingFailed
		if !errors.As(err, &pf) {
			return err
		}
		err = pf.err
	}
	return err
}

type errPingFailed struct{ err error }

func (e errPingFailed) Error() string { return "ping before retry: " + e.err.Error() }
func (e errPingFailed) Unwrap() error { return e.err }

// IsBrokenConn reports whether err means the connection itself failed under
// the query (severed, reset, closed), as opposed to the database refusing
// the query or the context ending.
func IsBrokenConn(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, sql.ErrConnDone) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"unexpected EOF", "conn closed", "connection reset by peer", "broken pipe", "bad connection", "use of closed network connection"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
