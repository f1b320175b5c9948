package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/pan"
)

// recordingProxy stands between Recourse and stripe-mock and keeps every
// request Recourse sends to the provider, body included.
type recordingProxy struct {
	URL string
	mu  sync.Mutex
	log []sentRequest
}

type sentRequest struct {
	Method, Path, Query, IdempotencyKey string
	Body                                []byte
}

func (r sentRequest) String() string {
	return r.Method + " " + r.Path + "?" + r.Query + " key=" + r.IdempotencyKey + " " + string(r.Body)
}

func startRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.log = append(p.log, sentRequest{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery,
			IdempotencyKey: req.Header.Get("Idempotency-Key"), Body: body})
		p.mu.Unlock()
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *recordingProxy) requests() []sentRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sentRequest(nil), p.log...)
}

func (p *recordingProxy) count(method, path string) int {
	n := 0
	for _, r := range p.requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// panHit is a card number found where none may be.
type panHit struct{ where, found string }

func (h panHit) String() string { return h.where + ": " + h.found }

// scanText reports the card numbers in s (by pan's definition: 13–19
// digits, plain or in groups joined by single spaces or dashes, passing the
// Luhn check, not inside a longer identifier or hash), also after
// URL-decoding, as form bodies carry them.
func scanText(where, s string) []panHit {
	var hits []panHit
	seen := map[string]bool{}
	texts := []string{s}
	if d, err := url.QueryUnescape(s); err == nil && d != s {
		texts = append(texts, d)
	}
	for _, txt := range texts {
		for _, f := range pan.FindStandalone(txt) {
			if !seen[f] {
				seen[f] = true
				hits = append(hits, panHit{where, f})
			}
		}
	}
	return hits
}

func scanRequests(reqs []sentRequest) []panHit {
	var hits []panHit
	for i, r := range reqs {
		hits = append(hits, scanText(fmt.Sprintf("provider request %d %s %s", i, r.Method, r.Path), r.Path+"?"+r.Query+"\n"+r.IdempotencyKey+"\n"+string(r.Body))...)
	}
	return hits
}

func scanLogs(logs string) []panHit {
	var hits []panHit
	for i, line := range strings.Split(logs, "\n") {
		hits = append(hits, scanText(fmt.Sprintf("log line %d", i+1), line)...)
	}
	return hits
}

// textColumns lists every text or JSON column of every table, from the
// database's own catalogue, so a table added later is scanned too. Binary
// columns are left out: the only one holds the raw webhook payload, which
// is Stripe's own text.
func textColumns(ctx context.Context, t *testing.T, d *db.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	if d.Dialect == db.Postgres {
		var cols []struct{ TableName, ColumnName string }
		err := d.WithContext(ctx).Raw(`SELECT c.table_name, c.column_name FROM information_schema.columns c
			JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
			WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
			  AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED')
			ORDER BY 1, 2`).Scan(&cols).Error
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			out[c.TableName] = append(out[c.TableName], c.ColumnName)
		}
		return out
	}
	var tables []string
	if err := d.WithContext(ctx).Raw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var cols []struct {
			Name string
			Type string
		}
		if err := d.WithContext(ctx).Raw(`SELECT name, type FROM pragma_table_info(?)`, tb).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			typ := strings.ToUpper(c.Type)
			if typ == "" || strings.Contains(typ, "TEXT") || strings.Contains(typ, "CHAR") || strings.Contains(typ, "JSON") || strings.Contains(typ, "CLOB") {
				out[tb] = append(out[tb], c.Name)
			}
		}
	}
	return out
}

// scanDB reads every text and JSON column of every table and reports the
// card numbers in them, and how many values it read.
func scanDB(ctx context.Context, t *testing.T, d *db.DB) ([]panHit, int) {
	t.Helper()
	var hits []panHit
	values := 0
	for table, cols := range textColumns(ctx, t, d) {
		for _, col := range cols {
			var vals []string
			q := fmt.Sprintf(`SELECT COALESCE(CAST(%q AS TEXT), '') FROM %q`, col, table)
			if err := d.WithContext(ctx).Raw(q).Scan(&vals).Error; err != nil {
				t.Fatalf("scan %s.%s: %v", table, col, err)
			}
			for i, v := range vals {
				if v == "" {
					continue
				}
				values++
				hits = append(hits, scanText(fmt.Sprintf("%s.%s row %d", table, col, i+1), v)...)
			}
		}
	}
	return hits, values
}
