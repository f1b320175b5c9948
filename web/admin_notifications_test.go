package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// delivery writes a notification delivery as the dispatcher and sender
// leave it: status, destination (a webhook) and last error.
func (a *adminEnv) delivery(id, status, destination, lastErr string) {
	a.t.Helper()
	now := a.clock.Now()
	attempts := 0
	var sent any
	switch status {
	case "failed":
		attempts = 8
	case "sent":
		attempts, sent = 1, now
	}
	var n int64
	a.d.Gorm.Table("notification_deliveries").Count(&n)
	if err := a.d.Gorm.Exec(`INSERT INTO notification_deliveries (id, event_id, event_type, subject, destination, dest_type, status, attempts,
		last_error, next_attempt_at, sent_at, created_at, updated_at) VALUES (?, ?, 'action.failed', 'case_x', ?, 'webhook', ?, ?, ?, ?, ?, ?, ?)`,
		id, n+1, destination, status, attempts, lastErr, now.Add(time.Minute), sent, now.Add(time.Duration(n)*time.Second), now).Error; err != nil {
		a.t.Fatal(err)
	}
}

func (a *adminEnv) deliveryStatus(id string) string {
	a.t.Helper()
	var s string
	if err := a.d.Gorm.Raw(`SELECT status FROM notification_deliveries WHERE id = ?`, id).Scan(&s).Error; err != nil {
		a.t.Fatal(err)
	}
	return s
}

// TestAdminNotifications: deliveries by status and destination with their
// last error and attempts, as GET /api/v1/notifications lists them; a
// failed one is replayed through notifications.Store.Replay (audited as the
// signed-in supervisor), only with the form's CSRF token, and only once.
func TestAdminNotifications(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAdminEnv(t, d)
		ctx := context.Background()
		b, _ := a.signedIn(auth.RoleSupervisor)
		want(t, b.get("/admin/notifications"), http.StatusOK, "No notification has been routed yet")
		want(t, b.get("/admin"), http.StatusOK, `href="/admin/notifications"`)
		a.delivery("ntf_failed", "failed", "ops-hook", "POST https://hooks.example.com/x: 500 Internal Server Error")
		a.delivery("ntf_sent", "sent", "slack-desk", "")
		a.delivery("ntf_pending", "pending", "ops-hook", "timeout after 5s")
		if err := d.Gorm.Exec(`UPDATE notification_deliveries SET event_type = 'webhook.dead_lettered', subject = 'evt_gone' WHERE id = 'ntf_pending'`).Error; err != nil {
			t.Fatal(err)
		}

		all := b.get("/admin/notifications")
		want(t, all, http.StatusOK, "ntf_failed", "ntf_sent", "ntf_pending", "500 Internal Server Error", `<td class="num">8</td>`,
			`href="/cases/case_x"`, `href="/admin/webhooks/evt_gone"`, `aria-current="page"`)
		if n := strings.Count(all.body, `action="/admin/notifications/`); n != 1 {
			t.Fatalf("%d replay forms, want one (for the failed delivery)", n)
		}
		failed := b.get("/admin/notifications?status=failed")
		want(t, failed, http.StatusOK, "ntf_failed", `action="/admin/notifications/ntf_failed/replay"`)
		if strings.Contains(failed.body, "ntf_sent") || strings.Contains(failed.body, "ntf_pending") {
			t.Fatal("the failed filter shows other deliveries")
		}
		hook := b.get("/admin/notifications?destination=ops-hook")
		want(t, hook, http.StatusOK, "ntf_failed", "ntf_pending")
		if strings.Contains(hook.body, "ntf_sent") {
			t.Fatal("the destination filter shows another destination")
		}
		bad := b.get("/admin/notifications?status=bogus")
		if bad.status != http.StatusBadRequest || codeOf(bad) != "invalid_status" {
			t.Fatalf("bad status: %d %q", bad.status, codeOf(bad))
		}

		csrf := csrfOf(t, failed)
		want(t, b.post("/admin/notifications/ntf_failed/replay", url.Values{"back": {"status=failed"}}), http.StatusForbidden)
		if st := a.deliveryStatus("ntf_failed"); st != "failed" {
			t.Fatalf("replayed without CSRF: %s", st)
		}
		p := b.post("/admin/notifications/ntf_failed/replay", url.Values{"csrf": {csrf}, "back": {"status=failed&cursor=x&evil=1"}})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/admin/notifications?done=replayed&status=failed" {
			t.Fatalf("replay: %d %q %s", p.status, p.header.Get("Location"), p.body)
		}
		if st := a.deliveryStatus("ntf_failed"); st != "pending" {
			t.Fatalf("after replay: %s", st)
		}
		want(t, b.get(p.header.Get("Location")), http.StatusOK, "Replayed")
		// Again: the store's 409 not_failed, inline on the list.
		again := b.post("/admin/notifications/ntf_failed/replay", url.Values{"csrf": {csrf}, "back": {"status=failed"}})
		if again.status != http.StatusConflict || codeOf(again) != "not_failed" {
			t.Fatalf("replay twice: %d %q", again.status, codeOf(again))
		}
		if nf := b.post("/admin/notifications/ntf_nope/replay", url.Values{"csrf": {csrf}}); nf.status != http.StatusNotFound {
			t.Fatalf("unknown: %d", nf.status)
		}
		l, _ := a.audit.List(ctx, audit.Filter{Action: "notification.replay"}, pageOf(10))
		if len(l.Data) != 1 || l.Data[0].Actor != "The supervisor" || l.Data[0].ObjectID != "ntf_failed" {
			t.Fatalf("replay audit: %+v", l.Data)
		}

		// An admin sees and replays too; an analyst may not open the screen.
		adm, _ := a.signedIn(auth.RoleAdmin)
		want(t, adm.get("/admin/notifications"), http.StatusOK, "ntf_failed")
		an, _ := a.signedIn(auth.RoleAnalyst)
		want(t, an.get("/admin/notifications"), http.StatusForbidden, "notifications:read")
		if strings.Contains(an.get("/admin").body, `href="/admin/notifications"`) {
			t.Fatal("the admin index offers Notifications to an analyst")
		}
	})
}

// readCSV parses an export's body.
func readCSV(t *testing.T, p resp) [][]string {
	t.Helper()
	if ct := p.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("content type %q: %s", ct, p.body)
	}
	if cd := p.header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=") {
		t.Fatalf("content disposition %q", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func column(rows [][]string, name string) []string {
	var out []string
	i := -1
	for j, h := range rows[0] {
		if h == name {
			i = j
		}
	}
	for _, r := range rows[1:] {
		if i >= 0 {
			out = append(out, r[i])
		}
	}
	return out
}

// TestConsoleExports: the queue, audit and webhook pages link to CSV
// downloads of exactly what they list (all pages), streamed through
// internal/export with each list's API columns and the session's rights.
func TestConsoleExports(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAdminEnv(t, d)
		ctx := context.Background()
		ada := a.user("ada@example.com", "Ada", auth.RoleAgent)
		mine := openCase(t, a.env, ada, "=HYPERLINK(\"http://evil\")")
		other := openCase(t, a.env, ada, "Someone else's")
		if _, err := a.cases.Assign(ctx, ada, mine.ID, cases.AssignRequest{Assignee: &ada.Name}); err != nil {
			t.Fatal(err)
		}
		b := a.browser()
		b.mustLogin("ada@example.com")

		q := b.get("/?view=mine")
		want(t, q, http.StatusOK, `id="export-csv"`, `href="/export/cases.csv?sort=-created_at&amp;view=mine"`)
		rows := readCSV(t, b.get("/export/cases.csv?sort=-created_at&view=mine"))
		if rows[0][0] != "id" || strings.Join(column(rows, "id"), ",") != mine.ID {
			t.Fatalf("my queue's export: %v", rows)
		}
		if title := column(rows, "title")[0]; title != "'=HYPERLINK(\"http://evil\")" {
			t.Fatalf("a formula is not neutralised: %q", title)
		}
		open := readCSV(t, b.get("/export/cases.csv?view=open"))
		if ids := column(open, "id"); len(ids) != 2 || !strings.Contains(strings.Join(ids, ","), other.ID) {
			t.Fatalf("open queue export: %v", ids)
		}
		// A filter built on the page, and its export, select the same.
		filtered := b.get("/?view=filter&assignee=none")
		want(t, filtered, http.StatusOK, other.ID)
		if ids := column(readCSV(t, b.get("/export/cases.csv?view=filter&assignee=none")), "id"); len(ids) != 1 || ids[0] != other.ID {
			t.Fatalf("filtered export: %v", ids)
		}
		// A bad filter is the console's error page, not a file.
		bad := b.get("/export/cases.csv?view=filter&kind=bogus")
		if bad.status != http.StatusBadRequest || bad.header.Get("Content-Disposition") != "" || !strings.Contains(bad.header.Get("Content-Type"), "text/html") {
			t.Fatalf("bad filter: %d %q %q", bad.status, bad.header.Get("Content-Disposition"), bad.header.Get("Content-Type"))
		}
		if p := b.get("/export/cases.csv?view=approvals"); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
			t.Fatalf("approvals export: %d", p.status)
		}
		// An agent may not export the audit log or the inbox.
		want(t, b.get("/export/audit.csv"), http.StatusForbidden, "audit:read")
		want(t, b.get("/export/webhook-events.csv"), http.StatusForbidden, "webhook_events:read")

		adm, _ := a.signedIn(auth.RoleAdmin)
		for i := range 3 {
			if err := a.audit.Record(ctx, nil, audit.Entry{Action: "case.note", Actor: "Zed", ActorKind: auth.ActorUser, Detail: "zed note", CaseID: "case_" + string(rune('a'+i))}); err != nil {
				t.Fatal(err)
			}
		}
		au := adm.get("/admin/audit?actor=Zed&from=2026-11-01")
		want(t, au, http.StatusOK, `href="/export/audit.csv?actor=Zed&amp;from=2026-11-01"`)
		entries := readCSV(t, adm.get("/export/audit.csv?actor=Zed&from=2026-11-01"))
		if actors := column(entries, "actor"); len(actors) != 3 || actors[0] != "Zed" || actors[2] != "Zed" {
			t.Fatalf("audit export: %v", entries)
		}
		if p := adm.get("/export/audit.csv?from=yesterday"); p.status != http.StatusBadRequest || p.header.Get("Content-Disposition") != "" ||
			!strings.Contains(p.body, "from must be a date") {
			t.Fatalf("bad audit filter: %d %q %s", p.status, p.header.Get("Content-Disposition"), p.body)
		}

		a.deadEvent("evt_dead_x", "PAYLOAD_MARKER")
		wh := adm.get("/admin/webhooks?status=dead")
		want(t, wh, http.StatusOK, `href="/export/webhook-events.csv?status=dead"`)
		evs := adm.get("/export/webhook-events.csv?status=dead")
		if ids := column(readCSV(t, evs), "id"); len(ids) != 1 || ids[0] != "evt_dead_x" || strings.Contains(evs.body, "PAYLOAD_MARKER") {
			t.Fatalf("webhook export: %v %s", ids, evs.body)
		}
		if ids := column(readCSV(t, adm.get("/export/webhook-events.csv?status=pending")), "id"); len(ids) != 0 {
			t.Fatalf("pending export: %v", ids)
		}
	})
}
