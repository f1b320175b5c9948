package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// BenchmarkConsolePages renders the console's pages through the real
// handlers (session middleware, cases.Service, templates) over httptest,
// signed in as an agent in a team, over 1,000,000 cases on PostgreSQL
// (RECOURSE_BENCH_CASES overrides the count) of which every 50th has a
// timeline of 5 to 10 entries. One sub-benchmark per queue view and one
// for case pages (cycling over 200 cases with timelines); each reports the
// latency of single requests as p50_ms and p99_ms and the page's size as
// bytes (the largest seen). Pages must stay under 200 KB.
//
//	go test ./web -run '^$' -bench BenchmarkConsolePages -benchtime 200x
func BenchmarkConsolePages(b *testing.B) {
	dbtest.RequirePostgres(b)
	d := dbtest.Open(b, db.Postgres)
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("RECOURSE_BENCH_CASES")); err == nil && v > 0 {
		n = v
	}
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	clk := clock.NewManual(now)
	log := slog.New(slog.DiscardHandler)
	cs, err := cases.NewService(cases.Options{DB: d, Clock: clk, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	users := auth.NewUserStore(d, clk, nil)
	ctx := context.Background()
	u, err := users.Create(ctx, auth.NewUser{Email: "agent07@example.com", DisplayName: "agent07", Role: auth.RoleAgent, Teams: []string{"billing_support"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := users.SetPassword(ctx, u.ID, password); err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	seedPages(b, d, now, n)
	b.Logf("seeded %d cases and their timelines in %s", n, time.Since(start).Round(time.Millisecond))
	var ids []string
	if err := d.Gorm.Raw(`SELECT DISTINCT case_id FROM case_timeline ORDER BY case_id LIMIT 200`).Scan(&ids).Error; err != nil || len(ids) == 0 {
		b.Fatalf("case ids with timelines: %d %v", len(ids), err)
	}

	con, err := New(Options{DB: d, Clock: clk, Log: log, Users: users, Cases: cs, IdleTimeout: 30 * time.Minute, SessionMax: 12 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	e := httpx.New(httpx.Options{Logger: log})
	con.Register(e)
	srv := httptest.NewServer(e)
	b.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, int, string) {
		r, err := client.Get(srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		return r.StatusCode, len(body), string(body)
	}
	_, _, lp := get("/login")
	m := csrfField.FindStringSubmatch(lp)
	if m == nil {
		b.Fatal("no csrf on /login")
	}
	r, err := client.PostForm(srv.URL+"/login", url.Values{"csrf": {m[1]}, "email": {"agent07@example.com"}, "password": {password}})
	if err != nil || r.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign in: %v %v", r, err)
	}
	_ = r.Body.Close()

	pages := []struct {
		name  string
		paths []string
	}{
		{"queue_open", []string{"/?view=open"}},
		{"queue_mine", []string{"/?view=mine"}},
		{"queue_team", []string{"/?view=team"}},
		{"queue_unassigned", []string{"/?view=unassigned"}},
		{"queue_breached", []string{"/?view=breached"}},
		{"queue_due_soon", []string{"/?view=due_soon"}},
		{"case", func() []string {
			out := make([]string, len(ids))
			for i, id := range ids {
				out[i] = "/cases/" + id
			}
			return out
		}()},
	}
	for _, pg := range pages {
		b.Run(pg.name, func(b *testing.B) {
			var all []time.Duration
			largest := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				path := pg.paths[i%len(pg.paths)]
				t := time.Now()
				status, size, body := get(path)
				all = append(all, time.Since(t))
				if status != http.StatusOK {
					b.Fatalf("%s: %d %s", path, status, body)
				}
				if pg.name != "case" && !strings.Contains(body, `<table id="cases">`) && !strings.Contains(body, `class="empty"`) {
					b.Fatalf("%s: no queue table", path)
				}
				largest = max(largest, size)
			}
			b.StopTimer()
			b.ReportMetric(pagesMS(pagesPct(all, 50)), "p50_ms")
			b.ReportMetric(pagesMS(pagesPct(all, 99)), "p99_ms")
			b.ReportMetric(float64(largest), "bytes")
			if largest >= 200<<10 {
				b.Errorf("%s: a page of %d bytes (limit 200 KB)", pg.name, largest)
			}
		})
	}
}

func pagesPct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i, 1)-1]
}

func pagesMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sqlText quotes strings as a PostgreSQL text[] literal.
func sqlText(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return "ARRAY[" + strings.Join(q, ",") + "]::text[]"
}

// seedPages fills cases with n rows in one INSERT … SELECT over
// generate_series (seconds, not the minutes row-by-row inserts take):
// kinds in the proportions of cases/list_bench_test.go's seed, each with
// a state of its own lifecycle, 20% open (created over the last 10 days,
// due in 1 to 14 days, breached once due), the rest closed over the last
// year; 40 agents by name, 65% of open cases assigned, 25,000 customers.
// Every 50th case gets a timeline of 5 to 10 entries: opened, provider
// events, transitions, an assignment, notes.
func seedPages(b *testing.B, d *db.DB, now time.Time, n int) {
	b.Helper()
	type weighted struct {
		kind cases.Kind
		w    int
	}
	mix := []weighted{{cases.KindPaymentFailure, 35}, {cases.KindTrialConversion, 15}, {cases.KindCancellation, 15}, {cases.KindDispute, 10},
		{cases.KindRefundRequest, 9}, {cases.KindBillingInquiry, 8}, {cases.KindFraudWarning, 5}, {cases.KindRefundFailure, 3}}
	// k: the case's kind, chosen by g*37 % 100 against cumulative weights.
	var kindCase, openCase, closedCase, teamCase, prioCase, rankCase strings.Builder
	kindCase.WriteString("CASE")
	cum := 0
	for _, m := range mix {
		cum += m.w
		fmt.Fprintf(&kindCase, " WHEN (g*37) %% 100 < %d THEN '%s'", cum, m.kind)
	}
	kindCase.WriteString(" END")
	for _, w := range []*strings.Builder{&openCase, &closedCase, &teamCase, &prioCase, &rankCase} {
		w.WriteString("CASE k")
	}
	for _, m := range mix {
		lc, _ := cases.LifecycleOf(m.kind)
		var open, closed []string
		for _, st := range lc.States() {
			if lc.IsClosed(st) {
				closed = append(closed, st)
			} else {
				open = append(open, st)
			}
		}
		fmt.Fprintf(&openCase, " WHEN '%s' THEN (%s)[1 + g %% %d]", m.kind, sqlText(open), len(open))
		fmt.Fprintf(&closedCase, " WHEN '%s' THEN (%s)[1 + g %% %d]", m.kind, sqlText(closed), len(closed))
		fmt.Fprintf(&teamCase, " WHEN '%s' THEN '%s'", m.kind, lc.Team)
		fmt.Fprintf(&prioCase, " WHEN '%s' THEN '%s'", m.kind, lc.DefaultPriority)
		fmt.Fprintf(&rankCase, " WHEN '%s' THEN %d", m.kind, lc.DefaultPriority.Rank())
	}
	for _, w := range []*strings.Builder{&openCase, &closedCase, &teamCase, &prioCase, &rankCase} {
		w.WriteString(" END")
	}
	// The resolution a closed state records: looked up from each lifecycle.
	var resCase strings.Builder
	resCase.WriteString("CASE state")
	seen := map[string]bool{}
	for _, lc := range cases.Lifecycles() {
		for st, res := range lc.Closed {
			if !seen[st] {
				seen[st] = true
				fmt.Fprintf(&resCase, " WHEN '%s' THEN '%s'", st, res)
			}
		}
	}
	resCase.WriteString(" END")

	seed := fmt.Sprintf(`
INSERT INTO cases (id, kind, state, status, resolution, priority, priority_rank, assignee, team, business_line, channel,
  tags, title, description, subject_id, customer_id, first_response_due, resolution_due, first_responded_at,
  resolution_breached_at, breached, version, created_at, updated_at, closed_at, sla_due)
SELECT id, k, state, status, CASE WHEN status = 'closed' THEN %[1]s END, prio, rank, assignee, team, line, 'stripe',
  '[]', 'Case ' || g || ': ' || replace(k, '_', ' ') || ' for cus_b' || lpad((g %% 25000)::text, 5, '0'), '',
  k || '_b' || lpad(g::text, 7, '0'), 'cus_b' || lpad((g %% 25000)::text, 5, '0'),
  created + interval '4 hours', due,
  CASE WHEN assignee IS NOT NULL THEN created + interval '1 hour' END,
  CASE WHEN status = 'open' AND due < @now THEN due END, status = 'open' AND due < @now,
  1 + g %% 5, created, created, CASE WHEN status = 'closed' THEN created + interval '2 days' END,
  CASE WHEN assignee IS NULL AND created + interval '4 hours' < due THEN created + interval '4 hours' ELSE due END
FROM (
  SELECT g, k, id, created, status, assignee, line, due,
    CASE WHEN status = 'open' THEN %[2]s ELSE %[3]s END AS state,
    %[4]s AS team, %[5]s AS prio, %[6]s AS rank
  FROM (
    SELECT g, k, 'case_' || lpad(upper(to_hex(g)), 26, '0') AS id, status, created,
      CASE WHEN status = 'closed' OR (g / 5) %% 4 < 3 THEN 'agent' || lpad(((g / 20) %% 40)::text, 2, '0') END AS assignee,
      CASE WHEN g %% 10 > 0 THEN (ARRAY['subscriptions','live_gifts','ecommerce','creator_payouts'])[1 + g %% 4] END AS line,
      CASE WHEN status = 'open' THEN created + (1 + g %% 14) * interval '1 day' ELSE created + interval '3 days' END AS due
    FROM (
      SELECT g, %[7]s AS k,
        CASE WHEN g %% 5 = 0 THEN 'open' ELSE 'closed' END AS status,
        CASE WHEN g %% 5 = 0 THEN @now - ((g::bigint * 7919) %% 864000) * interval '1 second'
             ELSE @now - ((g::bigint * 7919) %% 31536000) * interval '1 second' END AS created
      FROM generate_series(1, @n::int) g
    ) a
  ) b
) c`, resCase.String(), openCase.String(), closedCase.String(), teamCase.String(), prioCase.String(), rankCase.String(), kindCase.String())
	// The values are the benchmark's own (a time and a count): inlined.
	seed = strings.NewReplacer("@now", "'"+now.Format(time.RFC3339)+"'::timestamptz", "@n", strconv.Itoa(n)).Replace(seed)
	if err := d.Gorm.Exec(seed).Error; err != nil {
		b.Fatalf("seed cases: %v", err)
	}
	timeline := `
INSERT INTO case_timeline (case_id, at, actor, actor_type, type, summary, event_id, from_state, to_state, transition, body)
SELECT c.id, c.created_at + e * interval '17 minutes',
  CASE WHEN e IN (1, 2) THEN 'stripe' WHEN e = 3 THEN 'system' ELSE coalesce(c.assignee, 'agent01') END,
  CASE WHEN e IN (1, 2) THEN 'stripe' WHEN e = 3 THEN 'system' ELSE 'user' END,
  CASE WHEN e = 1 THEN 'opened' WHEN e = 2 THEN 'provider_event' WHEN e = 3 THEN 'assigned'
       WHEN e % 2 = 0 THEN 'note' ELSE 'transition' END,
  CASE WHEN e = 1 THEN 'Opened from Stripe' WHEN e = 2 THEN 'Stripe: invoice.payment_failed (attempt 2 of 4)'
       WHEN e = 3 THEN 'Assigned to ' || coalesce(c.assignee, 'agent01')
       WHEN e % 2 = 0 THEN 'Note' ELSE 'Moved on' END,
  CASE WHEN e IN (1, 2) THEN 'evt_b' || g || '_' || e END,
  CASE WHEN e >= 4 AND e % 2 = 1 THEN c.state END,
  CASE WHEN e >= 4 AND e % 2 = 1 THEN c.state END,
  CASE WHEN e >= 4 AND e % 2 = 1 THEN 'retry' END,
  CASE WHEN e >= 4 AND e % 2 = 0 THEN 'Customer wrote in about the charge; card ending 4242, retried after the bank lifted the block. Waiting for the next attempt before closing.' END
FROM generate_series(50, @n::int, 50) g
JOIN cases c ON c.id = 'case_' || lpad(upper(to_hex(g)), 26, '0')
CROSS JOIN LATERAL generate_series(1, 5 + (g / 50) % 6) e`
	if err := d.Gorm.Exec(strings.ReplaceAll(timeline, "@n", strconv.Itoa(n))).Error; err != nil {
		b.Fatalf("seed timelines: %v", err)
	}
	if err := d.Gorm.Exec("ANALYZE cases; ANALYZE case_timeline").Error; err != nil {
		b.Fatal(err)
	}
}
