package db_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

func TestIsBrokenConn(t *testing.T) {
	for err, want := range map[error]bool{
		nil:                              false,
		io.ErrUnexpectedEOF:              true,
		fmt.Errorf("read: %w", io.EOF):   true,
		errors.New("write: broken pipe"): true,
		errors.New("failed to receive message: unexpected EOF"):             true,
		errors.New("ERROR: duplicate key value violates unique constraint"): false,
		context.Canceled: false,
		fmt.Errorf("q: %w", context.DeadlineExceeded): false,
	} {
		if got := db.IsBrokenConn(err); got != want {
			t.Errorf("IsBrokenConn(%v) = %v, want %v", err, got, want)
		}
	}
}

// After PostgreSQL goes away and comes back, every pooled connection is
// severed. Reads through Read succeed at once; a failed read is retried once
// on a fresh connection, and a non-connection error is not retried.
func TestReadSurvivesSeveredPool(t *testing.T) {
	dbtest.RequirePostgres(t)
	proxy, viaProxy := dbtest.NewProxy(t, dbtest.NewPostgresURL(t))
	d, err := db.Open(context.Background(), viaProxy, "", db.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ctx := context.Background()
	// Fill the pool: eight connections, each used just now.
	parallel := func(n int, fn func() error) []error {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = fn()
			}()
		}
		wg.Wait()
		return errs
	}
	sleepy := func() error { return d.Gorm.WithContext(ctx).Exec("SELECT pg_sleep(0.05)").Error }
	for _, err := range parallel(8, sleepy) {
		if err != nil {
			t.Fatal(err)
		}
	}
	warm := func() {
		t.Helper()
		for _, err := range parallel(8, sleepy) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	cut := func() {
		proxy.Stop()
		proxy.Start()
	}
	selectOne := func(g *gorm.DB) error {
		var n int
		return g.Raw("SELECT 1").Scan(&n).Error
	}

	// Without Read, requests that draw a severed connection fail: the
	// outage this guards against.
	cut()
	failed := 0
	for _, err := range parallel(8, func() error { return selectOne(d.Gorm.WithContext(ctx)) }) {
		if err != nil {
			if !db.IsBrokenConn(err) {
				t.Fatalf("plain read failed otherwise: %v", err)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no plain read failed after the cut; the test does not reproduce the outage")
	}

	warm()
	cut()
	var mu sync.Mutex
	calls := 0
	for i, err := range parallel(20, func() error {
		return d.Read(ctx, func(g *gorm.DB) error {
			mu.Lock()
			calls++
			mu.Unlock()
			return selectOne(g)
		})
	}) {
		if err != nil {
			t.Fatalf("read %d after the outage: %v", i, err)
		}
	}
	if calls <= 20 {
		t.Fatalf("%d calls for 20 reads: none was retried, so none drew a severed connection", calls)
	}

	// Plain reads through GORM's query API (Find, Take, Count…) outside a
	// transaction are retried the same way, without calling Read.
	warm()
	cut()
	for i, err := range parallel(20, func() error {
		var names []string
		return d.Gorm.WithContext(ctx).Table("pg_catalog.pg_namespace").Where("nspname = ?", "public").Pluck("nspname", &names).Error
	}) {
		if err != nil {
			t.Fatalf("query-API read %d after the outage: %v", i, err)
		}
	}

	// A query the database refuses is not retried.
	calls = 0
	err = d.Read(ctx, func(g *gorm.DB) error {
		calls++
		var n int
		return g.Raw("SELECT no_such_column FROM no_such_table").Scan(&n).Error
	})
	if err == nil || calls != 1 {
		t.Fatalf("refused query: err %v after %d calls, want an error after 1", err, calls)
	}
}
