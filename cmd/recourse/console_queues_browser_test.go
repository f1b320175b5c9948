package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/recourse-hq/recourse/internal/browsertest"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// An agent works a queue in a real browser against the real binary: she
// sorts by SLA due (the rows come in the API's sort=sla order), saves the
// queue as a view and finds it as a tab, selects two rows and assigns them
// to herself in bulk (a result per row), opens the shortcuts dialog with ?
// (axe passes with it open, Esc closes it), moves with j and opens a case
// with Enter, and goes on to the next case of the queue with n. The SLA
// countdown runs (its text changes within two seconds), and no page logs a
// console or CSP error.
func TestConsoleQueuesBrowser(t *testing.T) {
	b := browsertest.Start(t)
	in := boot(t, map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)})
	const password = "correct horse battery"
	withStdin(password+"\n", func() {
		in.mustCLI("user", "create", "--email", "ada@example.com", "--name", "Ada Agent", "--role", "agent", "--password-stdin")
	})
	tok, admin := in.token("agent"), in.token("admin")

	// Two chargebacks (amounts, customers with emails) and a few manual
	// cases of different priorities and business lines.
	for _, seed := range []uint64{21, 22} {
		for _, e := range stripetest.New(seed).Chargeback(time.Now().UTC().Add(-time.Hour), stripetest.ChargebackOptions{Brand: "visa", NoResponse: true}) {
			in.post(e)
			if e.Type == "charge.dispute.created" {
				break
			}
		}
	}
	in.drained(admin)
	for i, c := range []struct{ title, prio, line, customer string }{
		{"Charged twice for the annual plan", "urgent", "subscriptions", "cus_q1"},
		{"Why is there a pending authorisation?", "normal", "e-commerce", "cus_q2"},
		{"Gift card top-up not credited", "high", "live_gifts", "cus_q3"},
		{"Invoice address is wrong", "low", "subscriptions", "cus_q4"},
	} {
		body := fmt.Sprintf(`{"kind":"billing_inquiry","channel":"chat","title":%q,"priority":%q,"business_line":%q,"links":{"customer":%q}}`,
			c.title, c.prio, c.line, c.customer)
		if code, m := in.do("POST", "/api/v1/cases", tok, []byte(body), nil); code != 201 {
			t.Fatalf("open case %d: %d %v", i, code, m)
		}
	}
	// The order the API gives for sort=sla: the console must show the same.
	code, list := in.do("GET", "/api/v1/cases?status=open&sort=sla", tok, nil, nil)
	if code != 200 {
		t.Fatalf("list: %d", code)
	}
	var apiOrder []string
	for _, c := range list["data"].([]any) {
		apiOrder = append(apiOrder, c.(map[string]any)["id"].(string))
	}
	if len(apiOrder) < 5 {
		t.Fatalf("only %d open cases", len(apiOrder))
	}

	ada := b.NewSession(t)
	signIn(ada, in.url, "ada@example.com", password)
	ada.WaitVisible("#cases")

	// Sort by SLA due.
	browsertest.Eval[bool](ada, `(() => { document.querySelector("#sort").value = "sla"; return true; })()`)
	ada.ClickButton("Sort")
	waitForPage(t, ada, `location.search.includes("sort=sla")`)
	ada.WaitVisible("#cases")
	rows := browsertest.Eval[[]string](ada, `[...document.querySelectorAll("#cases tbody tr")].map(r => r.dataset.caseId)`)
	if strings.Join(rows, ",") != strings.Join(apiOrder, ",") {
		t.Errorf("sorted by SLA the console shows\n%v\nthe API\n%v", rows, apiOrder)
	}

	// The countdown runs.
	first := ada.Text("#cases tbody tr:first-child .countdown")
	time.Sleep(2100 * time.Millisecond)
	if again := ada.Text("#cases tbody tr:first-child .countdown"); again == first || !strings.Contains(again, "left") {
		t.Errorf("the SLA countdown did not run: %q then %q", first, again)
	}

	// Save the sorted queue as a view: it becomes the current tab.
	ada.FillLabeled("View name", "By SLA")
	ada.ClickButton("Save view")
	ada.WaitText(".tabs a.current", "By SLA")
	if got := browsertest.Eval[string](ada, `document.querySelector("#sort").value`); got != "sla" {
		t.Errorf("the saved view's sort is %q", got)
	}
	ada.Axe()
	ada.Screenshot("queue-sorted-saved-view")

	// Relative times, the absolute one as the title.
	if got := browsertest.Eval[[]string](ada, `(() => { const t = document.querySelector("#cases time[datetime]"); return [t.textContent, t.title]; })()`); (got[0] != "just now" && !strings.HasSuffix(got[0], "ago")) || got[1] == "" {
		t.Errorf("relative time %q, title %q", got[0], got[1])
	}
	// Select all on page, and none again.
	ada.Click("#select-all")
	if n := browsertest.Eval[int](ada, `document.querySelectorAll('#cases input[name="case"]:checked').length`); n != len(rows) {
		t.Errorf("select all checked %d of %d rows", n, len(rows))
	}
	ada.Click("#select-all")
	if n := browsertest.Eval[int](ada, `document.querySelectorAll('#cases input[name="case"]:checked').length`); n != 0 {
		t.Errorf("unselect all left %d rows checked", n)
	}

	// Select two rows and assign them to herself.
	picked := rows[:2]
	for _, id := range picked {
		ada.Click("#sel-" + id)
	}
	ada.ClickButton("Assign to me")
	ada.WaitVisible("#bulk-results")
	ada.WaitText("#notice", "2 of 2 cases changed.")
	for _, id := range picked {
		if got := ada.Text(`#bulk-results tr[data-case-id="` + id + `"] td:last-child`); got != "ok" {
			t.Errorf("bulk result for %s: %q", id, got)
		}
		_, c := in.do("GET", "/api/v1/cases/"+id, tok, nil, nil)
		if c["assignee"] != "Ada Agent" {
			t.Errorf("case %s assignee %v after bulk assign", id, c["assignee"])
		}
	}
	ada.Axe()
	ada.Screenshot("bulk-assign-results")

	// The shortcuts dialog: ? opens it, Esc closes it.
	ada.Navigate(in.url + "/?view=open&sort=sla")
	ada.WaitVisible("#cases")
	waitForPage(t, ada, `document.readyState === "complete"`)
	ada.Do("press ?", chromedp.KeyEvent("?"))
	ada.WaitVisible("#shortcuts")
	if txt := ada.Text("#shortcuts"); !strings.Contains(txt, "Keyboard shortcuts") || !strings.Contains(txt, "open the case") {
		t.Errorf("shortcuts dialog says %q", txt)
	}
	if !browsertest.Eval[bool](ada, `document.querySelector("#shortcuts").open && document.activeElement.closest("#shortcuts") !== null`) {
		t.Error("the dialog is not modal or does not hold the focus")
	}
	ada.Axe()
	ada.Screenshot("shortcuts-dialog")
	ada.Do("press Esc", chromedp.KeyEvent(kb.Escape))
	waitForPage(t, ada, `!document.querySelector("#shortcuts").open`)

	// Typing in a field fires no shortcut.
	ada.Fill("#view-name", "jj?")
	if browsertest.Eval[bool](ada, `document.querySelector("#shortcuts").open || document.querySelector("tr.focused") !== null`) {
		t.Error("a shortcut fired while typing")
	}
	browsertest.Eval[bool](ada, `(() => { document.activeElement.blur(); return true; })()`)

	// j j j k Enter opens the second case of the queue.
	ada.Do("press j j j k", chromedp.KeyEvent("jjjk"))
	if got := browsertest.Eval[string](ada, `document.activeElement.dataset.caseId || ""`); got != apiOrder[1] {
		t.Errorf("after j j the focus is on %q, want %s", got, apiOrder[1])
	}
	ada.Do("press Enter", chromedp.KeyEvent(kb.Enter))
	waitForPage(t, ada, fmt.Sprintf(`location.pathname === "/cases/%s"`, apiOrder[1]))
	ada.WaitVisible("#case-live")
	waitForPage(t, ada, `document.readyState === "complete"`)
	ada.Screenshot("case-opened-with-keyboard")

	// n: the next case of the same queue.
	ada.Do("press n", chromedp.KeyEvent("n"))
	waitForPage(t, ada, fmt.Sprintf(`location.pathname === "/cases/%s"`, apiOrder[2]))
	ada.WaitVisible("#case-live")
	waitForPage(t, ada, `document.readyState === "complete"`)

	// On a case with steps and nobody on it: c, t and a.
	var inquiry string
	for _, c := range list["data"].([]any) {
		if m := c.(map[string]any); m["title"] == "Why is there a pending authorisation?" {
			inquiry = m["id"].(string)
		}
	}
	ada.Navigate(in.url + "/cases/" + inquiry)
	ada.WaitVisible("#transition-form")
	waitForPage(t, ada, `document.readyState === "complete"`)
	ada.Do("press c", chromedp.KeyEvent("c"))
	if got := browsertest.Eval[string](ada, `document.activeElement.id`); got != "note-body" {
		t.Errorf("after c the focus is on %q", got)
	}
	// In the note box, letters are text, not shortcuts. (DevTools sends the
	// typed character apart from the key press, so c itself may land in
	// the box: clear it first.)
	browsertest.Eval[bool](ada, `(() => { document.querySelector("#note-body").value = ""; return true; })()`)
	ada.Do("type in the note", chromedp.KeyEvent("at"))
	if got := browsertest.Eval[string](ada, `document.querySelector("#note-body").value`); got != "at" {
		t.Errorf("the note box holds %q after typing \"at\"", got)
	}
	browsertest.Eval[bool](ada, `(() => { document.querySelector("#note-body").value = ""; document.activeElement.blur(); return true; })()`)
	// t: the next-step form; a: assign to me (the #assign-me form).
	ada.Do("press t", chromedp.KeyEvent("t"))
	if !browsertest.Eval[bool](ada, `document.activeElement.closest("#transition-form") !== null`) {
		t.Error("t did not move the focus into the next-step form")
	}
	browsertest.Eval[bool](ada, `(() => { document.querySelector("#reason").value = ""; document.activeElement.blur(); return true; })()`)
	ada.Do("press a", chromedp.KeyEvent("a"))
	ada.WaitText("#assignee", "Ada Agent")
	ada.NoConsoleErrors()

	// The time zone cookie is set from the browser.
	if tz := browsertest.Eval[string](ada, `document.cookie`); !strings.Contains(tz, "recourse_tz=") {
		t.Errorf("no recourse_tz cookie: %q", tz)
	}
	raw, _ := json.Marshal(rows)
	t.Logf("queue by SLA: %s", raw)
}

// waitFor polls a JavaScript condition in the page for up to 10 seconds.
func waitForPage(t *testing.T, s *browsertest.Session, cond string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if browsertest.Eval[bool](s, "!!("+cond+")") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("page never reached: %s (at %s)", cond, s.Location())
}
