package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

var rowIDs = regexp.MustCompile(`<tr data-case-id="([^"]+)" data-url=`)

func idsOf(body string) []string {
	var out []string
	for _, m := range rowIDs.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// The queue sorts by each order the API has (?sort=), keeps the sort on
// the next page, and shows a bad sort inline with the API's code.
func TestQueueSort(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		ada := en.user("ada@example.com", "Ada", auth.RoleAgent)
		var opened []cases.Case
		for i, prio := range []cases.Priority{cases.PriorityLow, cases.PriorityUrgent, cases.PriorityNormal} {
			cs, err := en.cases.OpenManual(context.Background(), ada, cases.ManualCase{Kind: cases.KindBillingInquiry,
				Channel: cases.ChannelChat, Title: "sort " + strconv.Itoa(i), Priority: prio})
			if err != nil {
				t.Fatal(err)
			}
			opened = append(opened, cs)
			en.clock.Advance(time.Minute)
		}
		b := en.browser()
		b.mustLogin("ada@example.com")
		for sort, order := range map[string][]int{
			"-created_at": {2, 1, 0}, "created_at": {0, 1, 2},
			"priority": {1, 2, 0}, "-priority": {0, 2, 1},
			"sla": {1, 2, 0}, // urgent is due first, low last
		} {
			p := b.get("/?view=open&sort=" + url.QueryEscape(sort))
			want(t, p, http.StatusOK, `<option value="`+sort+`" selected>`)
			got := idsOf(p.body)
			if len(got) != 3 {
				t.Fatalf("sort %s: %d rows", sort, len(got))
			}
			for i, j := range order {
				if got[i] != opened[j].ID {
					t.Fatalf("sort %s: row %d is %s, want %s (%v)", sort, i, got[i], opened[j].ID, got)
				}
			}
		}
		p := b.get("/?view=open&sort=due")
		want(t, p, http.StatusBadRequest, `data-code="invalid_sort"`)
		want(t, b.get("/?view=nowhere"), http.StatusNotFound)

		// Paging keeps the sort.
		for i := 0; i < 50; i++ {
			openCase(t, en, ada, "more "+strconv.Itoa(i))
		}
		p = b.get("/?view=open&sort=priority")
		m := nextLink.FindStringSubmatch(p.body)
		if m == nil || !strings.Contains(m[1], "sort=priority") {
			t.Fatalf("next link %v", m)
		}
		p2 := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
		want(t, p2, http.StatusOK)
		if n := len(idsOf(p.body)) + len(idsOf(p2.body)); n != 53 {
			t.Fatalf("two pages hold %d cases", n)
		}
	})
}

// A filter built on the page is saved as a view, shown as a tab, listed
// for its owner only (unless shared), refused when invalid (the API's code)
// and deleted by its owner.
func TestQueueSavedViews(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		ada := en.user("ada@example.com", "Ada", auth.RoleAgent)
		en.user("ben@example.com", "Ben", auth.RoleAgent)
		urgent, err := en.cases.OpenManual(context.Background(), ada, cases.ManualCase{Kind: cases.KindBillingInquiry,
			Channel: cases.ChannelChat, Title: "Urgent one", Priority: cases.PriorityUrgent})
		if err != nil {
			t.Fatal(err)
		}
		other := openCase(t, en, ada, "Normal one")
		b := en.browser()
		b.mustLogin("ada@example.com")
		p := b.get("/?view=filter&priority=urgent&status=open&sort=sla")
		want(t, p, http.StatusOK, `data-case-id="`+urgent.ID+`"`, `name="query" value="priority=urgent&amp;sort=sla&amp;status=open"`)
		if strings.Contains(p.body, other.ID) {
			t.Fatal("the filter shows a normal case")
		}
		tok := csrfOf(t, p)
		// Without CSRF nothing is saved.
		want(t, b.post("/views", url.Values{"name": {"Urgent"}, "query": {"priority=urgent"}}), http.StatusForbidden)
		// An invalid filter: the API's code inline.
		want(t, b.post("/views", url.Values{"csrf": {tok}, "name": {"Bad"}, "query": {"priority=asap"}, "back": {"view=open"}}),
			http.StatusBadRequest, `data-code="invalid_priority"`)
		r := b.post("/views", url.Values{"csrf": {tok}, "name": {"Urgent"}, "query": {"priority=urgent&status=open&sort=sla"}})
		loc := r.header.Get("Location")
		if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/?saved=") {
			t.Fatalf("save: %d %s", r.status, loc)
		}
		v := b.get(loc)
		want(t, v, http.StatusOK, `href="`+strings.ReplaceAll(loc, "&", "&amp;")+`" aria-current="page" class="current">Urgent</a>`,
			`data-case-id="`+urgent.ID+`"`, `id="delete-view"`, `<option value="sla" selected>`)
		if strings.Contains(v.body, other.ID) {
			t.Fatal("the view shows a normal case")
		}
		// The same name again: the API's conflict inline.
		want(t, b.post("/views", url.Values{"csrf": {tok}, "name": {"Urgent"}, "query": {""}}), http.StatusConflict, `data-code="view_exists"`)

		// Ben sees neither the tab nor the view, and cannot delete it.
		ben := en.browser()
		ben.mustLogin("ben@example.com")
		if bp := ben.get("/"); strings.Contains(bp.body, ">Urgent</a>") {
			t.Fatal("another user sees an unshared view")
		}
		want(t, ben.get(loc), http.StatusNotFound)
		id := strings.TrimPrefix(loc, "/?saved=")
		want(t, ben.post("/views/"+id+"/delete", url.Values{"csrf": {csrfOf(t, ben.get("/"))}}), http.StatusNotFound)

		// A shared view is a tab for Ben too, without a delete button.
		r = b.post("/views", url.Values{"csrf": {tok}, "name": {"Team urgent"}, "shared": {"on"}, "query": {"priority=urgent"}})
		sharedLoc := r.header.Get("Location")
		sp := ben.get(sharedLoc)
		want(t, sp, http.StatusOK, ">Team urgent</a>", "shared by Ada")
		if strings.Contains(sp.body, `id="delete-view"`) {
			t.Fatal("another user may delete a shared view")
		}

		// Ada deletes her view: the tab goes.
		d2 := b.post("/views/"+id+"/delete", url.Values{"csrf": {tok}})
		if d2.status != http.StatusSeeOther {
			t.Fatalf("delete: %d %s", d2.status, d2.body)
		}
		if p := b.get("/?deleted=view"); strings.Contains(p.body, ">Urgent</a>") || !strings.Contains(p.body, "The saved view was deleted.") {
			t.Fatalf("after delete:\n%s", p.body)
		}
		want(t, b.get(loc), http.StatusNotFound)
	})
}

// Bulk actions from the queue: each selected case goes through
// cases.Service.Bulk and gets its own result row (ok, or the API's code);
// a stale row (its version moved since the page was shown) is a conflict
// and the others are applied.
func TestQueueBulk(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		ada := en.user("ada@example.com", "Ada", auth.RoleAgent)
		a := openCase(t, en, ada, "Bulk A")
		bc := openCase(t, en, ada, "Bulk B")
		c := openCase(t, en, ada, "Bulk C")
		b := en.browser()
		b.mustLogin("ada@example.com")
		p := b.get("/?view=unassigned")
		want(t, p, http.StatusOK, `<form method="post" action="/cases/bulk" id="bulk-form">`, `id="select-all"`,
			`<label for="sel-`+a.ID+`" class="sr-only">Select “Bulk A”</label>`, `name="v_`+a.ID+`" value="1"`, `id="bulk-assign-me"`)
		tok := csrfOf(t, p)
		// B moves after the page was shown.
		if _, err := en.cases.AddNote(context.Background(), ada, bc.ID, "moved on"); err != nil {
			t.Fatal(err)
		}
		form := url.Values{"csrf": {tok}, "op": {"assign_me"}, "back": {"view=unassigned"},
			"case": {a.ID, bc.ID, c.ID}, "v_" + a.ID: {"1"}, "v_" + bc.ID: {"1"}, "v_" + c.ID: {"1"}}
		want(t, b.post("/cases/bulk", url.Values{"op": {"assign_me"}, "case": {a.ID}}), http.StatusForbidden)
		r := b.post("/cases/bulk", form)
		want(t, r, http.StatusOK, `id="bulk-results"`, "2 of 3 cases changed.",
			`<tr data-case-id="`+a.ID+`" class="result-ok">`, `<tr data-case-id="`+bc.ID+`" class="result-error">`,
			`data-code="version_conflict"`)
		for id, assigned := range map[string]bool{a.ID: true, bc.ID: false, c.ID: true} {
			got, _ := en.cases.Get(context.Background(), id)
			if (got.Assignee != nil && *got.Assignee == "Ada") != assigned {
				t.Fatalf("%s assignee %v, want assigned %v", id, got.Assignee, assigned)
			}
		}
		// A step not allowed in one case's state: its own error, the rest applied.
		cur := b.get("/?view=mine")
		if _, err := en.cases.Transition(context.Background(), ada, c.ID, cases.TransitionRequest{Event: "decline"}); err != nil {
			t.Fatal(err)
		}
		r = b.post("/cases/bulk", url.Values{"csrf": {csrfOf(t, cur)}, "op": {"transition"}, "event": {"decline"}, "reason": {"answered"},
			"case": {a.ID, c.ID}, "back": {"view=mine"}})
		want(t, r, http.StatusOK, "1 of 2 cases changed.", `data-code="illegal_transition"`)
		// Nothing selected, or an unknown op: the whole request is refused inline.
		want(t, b.post("/cases/bulk", url.Values{"csrf": {tok}, "op": {"assign_me"}}), http.StatusBadRequest, `data-code="invalid_case_ids"`)
		want(t, b.post("/cases/bulk", url.Values{"csrf": {tok}, "op": {"delete"}, "case": {a.ID}}), http.StatusBadRequest, `data-code="invalid_op"`)
		many := url.Values{"csrf": {tok}, "op": {"assign_me"}}
		for i := 0; i <= cases.MaxBulkCases; i++ {
			many.Add("case", "case_"+strconv.Itoa(i))
		}
		want(t, b.post("/cases/bulk", many), http.StatusBadRequest, `data-code="too_many_cases"`)
	})
}

// "Next case" follows the queue the case was opened from, in its sort;
// after the last case it goes back to the queue.
func TestNextCase(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d)
		ada := en.user("ada@example.com", "Ada", auth.RoleAgent)
		var ids []string
		for i := 0; i < 3; i++ {
			ids = append(ids, openCase(t, en, ada, "next "+strconv.Itoa(i)).ID)
			en.clock.Advance(time.Minute)
		}
		b := en.browser()
		b.mustLogin("ada@example.com")
		q := url.Values{"q": {"view=open&sort=created_at"}}.Encode()
		cp := b.get("/cases/" + ids[0] + "?" + q)
		want(t, cp, http.StatusOK, `id="next-case"`, `data-next-url="/cases/`+ids[0]+`/next?q=sort%3Dcreated_at%26view%3Dopen"`)
		for i, wantLoc := range []string{"/cases/" + ids[1] + "?q=sort%3Dcreated_at%26view%3Dopen", "/cases/" + ids[2] + "?q=sort%3Dcreated_at%26view%3Dopen", "/?sort=created_at&view=open"} {
			r := b.get("/cases/" + ids[i] + "/next?" + q)
			if r.status != http.StatusSeeOther || r.header.Get("Location") != wantLoc {
				t.Fatalf("next after %d: %d %s, want %s", i, r.status, r.header.Get("Location"), wantLoc)
			}
		}
		// Newest first (the default): the next after the newest is the middle one.
		if r := b.get("/cases/" + ids[2] + "/next"); r.header.Get("Location") != "/cases/"+ids[1]+"?q=sort%3D-created_at%26view%3Dopen" {
			t.Fatalf("default queue next: %s", r.header.Get("Location"))
		}
		want(t, b.get("/cases/nope/next"), http.StatusNotFound)
	})
}

// Times are rendered in the zone of the recourse_tz cookie (validated with
// time.LoadLocation); a missing or unknown zone is UTC.
func TestTimeZoneCookie(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		en := newEnv(t, d) // the clock is 2026-11-20 09:00 UTC
		ada := en.user("ada@example.com", "Ada", auth.RoleAgent)
		openCase(t, en, ada, "zoned")
		b := en.browser()
		b.mustLogin("ada@example.com")
		u, _ := url.Parse(en.srv.URL)
		for zone, text := range map[string]string{
			"":                    "2026-11-20 09:00 UTC",
			"Asia/Tokyo":          "2026-11-20 18:00 JST",
			"America/Los_Angeles": "2026-11-20 01:00 PST",
			"Mars/Olympus_Mons":   "2026-11-20 09:00 UTC",
			"../../etc/passwd":    "2026-11-20 09:00 UTC",
			"Local":               "2026-11-20 09:00 UTC",
		} {
			b.c.Jar.SetCookies(u, []*http.Cookie{{Name: TZCookie, Value: url.QueryEscape(zone), Path: "/"}})
			want(t, b.get("/?view=open"), http.StatusOK, `<time datetime="2026-11-20T09:00:00Z">`+text+`</time>`)
		}
	})
}
