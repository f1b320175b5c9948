package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/recourse-hq/recourse/internal/browsertest"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// A chargeback arrives as signed Stripe events; an analyst signs in, opens
// the case and its workbench, assembles the evidence, rewrites the letter
// (the counter follows), saves, rebuilds the packet, sees it previewed in
// the page (its URL answers a PDF carrying the edit), and submits it to
// stripe-mock: the action succeeds and the case waits for the issuer.
//
// With RECOURSE_UPDATE_DOCS_IMG=true it also writes the 1280×800 view of
// the workbench to docs/img/console-workbench.png (the README's picture).
func TestConsoleDisputeWorkbenchBrowser(t *testing.T) {
	b := browsertest.Start(t)
	mock := stripemock.Start(t)
	for i, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": mock.URL}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin, analystToken := in.token("admin"), in.token("analyst")
			const password = "correct horse battery"
			withStdin(password+"\n", func() {
				in.mustCLI("user", "create", "--email", "ann@example.com", "--name", "Ann Analyst", "--role", "analyst", "--password-stdin")
			})

			// The dispute arrives from Stripe, signed; the customer's product
			// sends what it knows (a login and the service delivered).
			evs := chargebackNow(uint64(950+i), stripetest.ChargebackOptions{Brand: "visa", Reason: "product_not_received", Code: "13.1", Renewals: 1})
			var charges []map[string]any
			for _, e := range evs {
				in.post(e)
				if e.Type == "charge.succeeded" {
					charges = append(charges, e.Object)
				}
				if e.Type == "charge.dispute.funds_withdrawn" {
					break
				}
			}
			in.drained(admin)
			disputeID := lastOf(evs, "charge.dispute.created").Object["id"].(string)
			customer := charges[0]["customer"].(string)
			last := chargeTime(charges[len(charges)-1])
			if code, r := in.do("POST", "/api/v1/customers/"+customer+"/facts", analystToken, jsonBody(map[string]any{"facts": []map[string]any{
				fact("login-1", "login", last.Add(2*time.Hour), map[string]any{"ip": "203.0.113.7", "device_id": "dev_9"}),
				fact("delivery-1", "delivery", last.Add(10*time.Minute), map[string]any{"data": map[string]any{"what": "Pro features unlocked"}}),
			}}), nil); code != 200 {
				t.Fatalf("facts: %d %v", code, r)
			}
			caseID := in.caseOf(admin, "dispute", disputeID)["id"].(string)

			ann := b.NewSession(t)
			ann.Timeout = time.Minute // two cores shared by many builds
			signIn(ann, in.url, "ann@example.com", password)
			ann.Navigate(in.url + "/cases/" + caseID)
			ann.Click("#open-workbench")
			ann.WaitText("h1", "Evidence workbench")
			ann.WaitText("#dispute", disputeID)
			ann.WaitText("#reason-code", "13.1")
			ann.WaitVisible("#deadline time")
			ann.WaitVisible("#checklist")
			ann.WaitVisible("#recommendation")
			ann.Axe()
			ann.Screenshot("workbench-before-assembly")

			ann.ClickButton("Assemble")
			ann.WaitText("#notice", "Evidence assembled")
			ann.WaitVisible("#packet-preview")

			// The analyst rewrites the letter; the counter follows as they type.
			const letter = "Rebuttal of dispute " + "\nThe Pro workspace was delivered and used (marker QX9 from the console)."
			before := ann.Text("#c-uncategorized_text .chars")
			ann.Fill("#f-uncategorized_text", letter)
			ann.WaitText("#c-uncategorized_text .chars", strconv.Itoa(len([]rune(letter))))
			if after := ann.Text("#c-uncategorized_text .chars"); after == before {
				t.Fatalf("the counter did not move: %s", after)
			}
			ann.ClickButton("Save fields")
			ann.WaitText("#notice", "Saved")
			ann.WaitText("#c-uncategorized_text", strconv.Itoa(len([]rune(letter)))+" / 20000")
			ann.WaitVisible("#packet-stale")
			// Assembling again keeps the edit and rebuilds the packet with it.
			ann.ClickButton("Assemble")
			ann.WaitText("#notice", "Evidence assembled")
			ann.WaitText("label[for=f-uncategorized_text]", "edited")

			// The preview: the iframe's own URL, fetched by the page, is the
			// packet, and the packet carries the analyst's letter.
			src := browsertest.Eval[string](ann, `document.querySelector("#packet-preview").src`)
			if !strings.HasSuffix(src, "/cases/"+caseID+"/evidence/packet.pdf") {
				t.Fatalf("the preview points at %s", src)
			}
			got := browsertest.Eval[map[string]string](ann, `fetch(document.querySelector("#packet-preview").src).then(async r => {
  const buf = new Uint8Array(await r.arrayBuffer());
  let bin = ""; for (const b of buf) bin += String.fromCharCode(b);
  return {status: String(r.status), type: r.headers.get("content-type"), frame: r.headers.get("x-frame-options"), body: btoa(bin)};
})`)
			if got["status"] != "200" || got["type"] != "application/pdf" || got["frame"] != "SAMEORIGIN" {
				t.Fatalf("the preview's URL answers %s %s (X-Frame-Options %s)", got["status"], got["type"], got["frame"])
			}
			pdf, err := base64.StdEncoding.DecodeString(got["body"])
			if err != nil {
				t.Fatal(err)
			}
			if pages := pdfPages(t, pdf); !strings.Contains(pages[0], "marker QX9 from the console") {
				t.Fatalf("the packet's letter lacks the analyst's edit:\n%s", pages[0])
			}
			if w := browsertest.Eval[int](ann, `document.documentElement.scrollWidth`); w > browsertest.ViewportWidth {
				t.Errorf("the workbench is %dpx wide: it scrolls sideways at %dpx", w, browsertest.ViewportWidth)
			}
			ann.Axe()
			ann.Screenshot("workbench-assembled")
			if os.Getenv("RECOURSE_UPDATE_DOCS_IMG") == "true" && dialect == "sqlite" {
				viewportScreenshot(t, ann, filepath.Join("..", "..", "docs", "img", "console-workbench.png"))
			}

			// Submit to Stripe (stripe-mock): the action succeeds; the case
			// waits for the issuer, as the API's flow moves it.
			ann.ClickButton("Submit to Stripe")
			ann.WaitText("#action-result", "Submission to Stripe: succeeded.")
			ann.WaitText("#draft-status", "submitted")
			ann.WaitText("#files", "sent to Stripe as file_")
			if c := in.caseOf(admin, "dispute", disputeID); c["state"] != "under_review" {
				t.Fatalf("case after submission: %v", c["state"])
			}
			ann.WaitText("#dispute-status", "under review")
			ann.WaitVisible("#submitted-note")
			if n := browsertest.Eval[int](ann, `document.querySelectorAll("#fields-form, #assemble-form, #send-form, #accept-form").length`); n != 0 {
				t.Errorf("%d forms to change submitted evidence are still offered", n)
			}
			ann.Axe()
			ann.Screenshot("workbench-submitted")
			ann.NoConsoleErrors()
		})
	}
}

// viewportScreenshot writes the top 1280×800 of the session's page (the
// window's own viewport is shorter than 800 by the browser's frame).
func viewportScreenshot(t *testing.T, s *browsertest.Session, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.Context(), time.Minute)
	defer cancel()
	full, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	r := image.Rect(0, 0, browsertest.ViewportWidth, browsertest.ViewportHeight).Intersect(img.Bounds())
	top := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(top, top.Bounds(), img, r.Min, draw.Src)
	var out bytes.Buffer
	if err := png.Encode(&out, top); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%dx%d)", path, r.Dx(), r.Dy())
}
