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

// textColumns lists every text or JSON column of every table (see
// db.TextColumns), so a table added later is scanned too.
func textColumns(ctx context.Context, t *testing.T, d *db.DB) map[string][]string {
	t.Helper()
	out, err := d.TextColumns(ctx)
	if err != nil {
		t.Fatal(err)
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
