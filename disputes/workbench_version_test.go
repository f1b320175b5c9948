package disputes_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// PatchVersion writes only at the version the analyst read; an assembly
// that keeps the analyst's letter makes it the packet's first page.
func TestPatchVersionAndKeptLetter(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := newBench(t, d)
		ctx := context.Background()
		c, _, _ := b.chargeback(611, time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
			stripetest.ChargebackOptions{Brand: "visa", Reason: "product_not_received", Code: "13.1", Renewals: 1})
		doc, err := b.wb.Assemble(ctx, c.ID, "ann", disputes.AssembleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v := doc.Draft.Version
		original := doc.Draft.Fields["uncategorized_text"]

		// A stale version: ECONFLICT evidence_draft_changed, nothing written.
		_, err = b.wb.PatchVersion(ctx, c.ID, v-1, map[string]string{"product_description": "stale"}, "ann")
		if e, ok := errs.As(err); !ok || e.Kind != errs.ECONFLICT || e.Code != disputes.CodeDraftChanged || e.Details["current_version"] != v {
			t.Fatalf("stale patch: %v", err)
		}
		if now, _ := b.wb.Evidence(ctx, c.ID); now.Draft.Version != v || now.Draft.Fields["product_description"] == "stale" {
			t.Fatalf("a stale patch wrote: %+v", now.Draft)
		}
		// The current version: written.
		letter := "Our answer to dispute\n\nThe analyst rewrote this letter (marker QX7)."
		doc, err = b.wb.PatchVersion(ctx, c.ID, v, map[string]string{"uncategorized_text": letter}, "ann")
		if err != nil || doc.Draft.Version != v+1 {
			t.Fatalf("patch at the version: %v %+v", err, doc.Draft)
		}
		// Editing alone leaves the packet as assembled.
		pdf, err := b.wb.Packet(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if pages := pdfText(t, pdf); strings.Contains(pages[0], "QX7") {
			t.Fatal("an edit changed the packet")
		}
		// Assembly keeps the edit and puts the analyst's letter on page 1.
		if _, err := b.wb.Assemble(ctx, c.ID, "ann", disputes.AssembleOptions{}); err != nil {
			t.Fatal(err)
		}
		pdf, _ = b.wb.Packet(ctx, c.ID)
		pages := pdfText(t, pdf)
		if !strings.Contains(pages[0], "marker QX7") || !strings.Contains(pages[0], "Our answer to dispute") || len(pages) < 2 {
			t.Fatalf("the kept letter is not page 1 (%d pages):\n%s", len(pages), pages[0])
		}
		// Overwrite drops the edit, and the packet's letter is assembled again.
		doc, err = b.wb.Assemble(ctx, c.ID, "ann", disputes.AssembleOptions{Overwrite: true})
		if err != nil || doc.Draft.Fields["uncategorized_text"] != original {
			t.Fatalf("overwrite: %v", err)
		}
		pdf, _ = b.wb.Packet(ctx, c.ID)
		if strings.Contains(pdfText(t, pdf)[0], "QX7") {
			t.Fatal("the dropped letter is still in the packet")
		}
	})
}

// PATCH /cases/{id}/evidence with "version": 409 when stale, 200 at the
// draft's version; without it, as before.
func TestPatchVersionHTTP(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := newBench(t, d)
		ctx := context.Background()
		c, _, _ := b.chargeback(612, time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
			stripetest.ChargebackOptions{Brand: "visa", Reason: "product_not_received", Code: "13.1", Renewals: 1})
		doc, err := b.wb.Assemble(ctx, c.ID, "ann", disputes.AssembleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e := httpx.New(httpx.Options{Logger: slog.New(slog.DiscardHandler)})
		ts := auth.NewTokenStore(d, b.clk)
		b.wb.Register(e.Group("/api/v1", auth.Middleware(ts)))
		srv := httptest.NewServer(apispectest.Handler(t, e))
		t.Cleanup(srv.Close)
		tok, _, err := ts.Create(ctx, "ann", auth.RoleAnalyst)
		if err != nil {
			t.Fatal(err)
		}
		patch := func(body string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest("PATCH", srv.URL+"/api/v1/cases/"+c.ID+"/evidence", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(raw)
		}
		v := doc.Draft.Version
		if code, body := patch(fmt.Sprintf(`{"fields":{"product_description":"old tab"},"version":%d}`, v-1)); code != 409 || !strings.Contains(body, "evidence_draft_changed") {
			t.Fatalf("stale: %d %s", code, body)
		}
		if code, body := patch(fmt.Sprintf(`{"fields":{"product_description":"current"},"version":%d}`, v)); code != 200 || !strings.Contains(body, `"version":`+fmt.Sprint(v+1)) {
			t.Fatalf("current: %d %s", code, body)
		}
		if code, body := patch(`{"fields":{"product_description":"no version"}}`); code != 200 {
			t.Fatalf("without version: %d %s", code, body)
		}
	})
}
