package cases

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// BenchmarkCaseList measures GET /cases over a realistic table of 100,000
// cases on PostgreSQL (RECOURSE_BENCH_CASES overrides the count): a mix of
// two-filter list queries, each sort order, and a deep keyset page, through
// the real Echo handler (auth middleware included; sub-benchmark "http") and
// through Service.List alone ("store"). It reports the latency percentiles of
// single requests as p50_ms and p99_ms; ns/op is one pass over the whole mix.
//
//	go test ./cases -run '^$' -bench BenchmarkCaseList -benchtime 100x
func BenchmarkCaseList(b *testing.B) {
	dbtest.RequirePostgres(b)
	d := dbtest.Open(b, db.Postgres)
	a := newAPI(b, d)
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("RECOURSE_BENCH_CASES")); err == nil && v > 0 {
		n = v
	}
	start := time.Now()
	seed := seedBenchCases(b, d, a.f.clock.Now(), n)
	if err := d.Gorm.Exec("ANALYZE cases").Error; err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d cases in %s", n, time.Since(start).Round(time.Millisecond))

	since := url.QueryEscape(a.f.clock.Now().Add(-90 * 24 * time.Hour).Format(time.RFC3339))
	queries := []string{
		"status=open&kind=payment_failure",
		"status=open&team=disputes",
		"assignee=" + seed.agent + "&status=open",
		"kind=dispute&state=needs_response",
		"assignee=none&team=billing_support",
		"priority=urgent&status=open",
		"business_line=live_gifts&status=open",
		"customer=" + seed.customer + "&status=open",
		"subject=" + seed.customer + "&kind=payment_failure",
		"sla=breached&team=billing_support",
		"sla=due_soon&team=billing_support",
		"kind=refund_request&created_after=" + since,
		"kind=billing_inquiry&priority=high",
		"kind=trial_conversion&business_line=subscriptions",
		"status=closed&kind=cancellation",
		"status=open&kind=dispute&sort=sla",
		"status=open&team=risk&sort=priority",
		"status=open&kind=payment_failure&sort=created_at",
		"kind=payment_failure&status=closed&sort=priority",
		"team=billing_support&priority=normal&sort=sla",
		// The console's queues in every order (migration 0017).
		"status=open&sort=sla",
		"status=open&assignee=none&sort=-sla",
		"status=open&sort=-updated_at",
		"status=open&team=disputes&sort=updated_at",
		"status=open&sort=-priority",
		"status=open&kind=dispute&sla=breached&sort=-sla",
		// Combinations that match little or nothing (correlated columns
		// mislead the planner's estimates): still one index pass at most.
		"team=disputes&kind=payment_failure",
		"status=open&state=won",
		"priority=low&team=disputes",
		"assignee=none&status=closed",
	}
	// A deep page: the 40th page of a large result.
	deep := "status=closed&kind=payment_failure"
	cursor := ""
	for i := 0; i < 40; i++ {
		m := a.want(a.do(auth.RoleSupervisor, "GET", "/cases?"+deep+"&limit=50"+cursorParam(cursor), nil), 200).json(b)
		cursor, _ = m["next_cursor"].(string)
	}
	queries = append(queries, deep+cursorParam(cursor))

	// The same mix through Service.List only (no HTTP, auth or JSON): the
	// database's share.
	b.Run("store", func(b *testing.B) {
		type parsed struct {
			f    Filter
			page httpx.PageRequest
		}
		ps := make([]parsed, len(queries))
		for i, q := range queries {
			c := a.e.NewContext(httptest.NewRequest("GET", "/cases?"+q+"&limit=50", nil), httptest.NewRecorder())
			f, err := parseFilter(c)
			if err != nil {
				b.Fatal(err)
			}
			page, err := httpx.ParsePage(c)
			if err != nil {
				b.Fatal(err)
			}
			ps[i] = parsed{f, page}
		}
		var all []time.Duration
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, p := range ps {
				t := time.Now()
				if _, err := a.f.svc.List(ctx, p.f, p.page); err != nil {
					b.Fatal(err)
				}
				all = append(all, time.Since(t))
			}
		}
		b.StopTimer()
		b.ReportMetric(ms(pct(all, 50)), "p50_ms")
		b.ReportMetric(ms(pct(all, 99)), "p99_ms")
		b.ReportMetric(ms(slices.Max(all)), "max_ms")
	})

	b.Run("http", func(b *testing.B) {
		per := make(map[string][]time.Duration, len(queries))
		var all []time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, q := range queries {
				t := time.Now()
				r := a.do(auth.RoleSupervisor, "GET", "/cases?"+q+"&limit=50", nil)
				el := time.Since(t)
				if r.status != 200 {
					b.Fatalf("%s: %d %s", q, r.status, r.body)
				}
				per[q] = append(per[q], el)
				all = append(all, el)
			}
		}
		b.StopTimer()
		b.ReportMetric(ms(pct(all, 50)), "p50_ms")
		b.ReportMetric(ms(pct(all, 99)), "p99_ms")
		b.ReportMetric(ms(slices.Max(all)), "max_ms")
		if b.N >= 10 {
			for _, q := range queries {
				b.Logf("p50 %6.2f ms  p99 %6.2f ms  %s", ms(pct(per[q], 50)), ms(pct(per[q], 99)), q)
			}
		}
	})
}

func cursorParam(c string) string {
	if c == "" {
		return ""
	}
	return "&cursor=" + url.QueryEscape(c)
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type benchSeed struct {
	agent, customer string
}

// seedBenchCases bulk-inserts n cases with realistic shapes: kinds in
// production-like proportions, 20% open, 40 agents, 25,000 customers, four
// business lines, priorities per kind with some bumped, SLA clocks from the
// default policy and ~8% breached, created over the last year.
func seedBenchCases(b *testing.B, d *db.DB, now time.Time, n int) benchSeed {
	b.Helper()
	rng := rand.New(rand.NewPCG(42, 7))
	pol := DefaultSLAPolicy()
	type weighted struct {
		kind Kind
		w    int
	}
	mix := []weighted{{KindPaymentFailure, 35}, {KindTrialConversion, 15}, {KindCancellation, 15}, {KindDispute, 10},
		{KindRefundRequest, 9}, {KindBillingInquiry, 8}, {KindFraudWarning, 5}, {KindRefundFailure, 3}}
	pick := func() Kind {
		r := rng.IntN(100)
		for _, m := range mix {
			if r < m.w {
				return m.kind
			}
			r -= m.w
		}
		return KindBillingInquiry
	}
	lines := []string{"subscriptions", "live_gifts", "ecommerce", "creator_payouts"}
	agents := make([]string, 40)
	for i := range agents {
		agents[i] = fmt.Sprintf("agent%02d", i)
	}
	openStates, closedStates := map[Kind][]string{}, map[Kind][]string{}
	for _, lc := range lifecycles {
		for _, st := range lc.States() {
			if lc.IsClosed(st) {
				closedStates[lc.Kind] = append(closedStates[lc.Kind], st)
			} else {
				openStates[lc.Kind] = append(openStates[lc.Kind], st)
			}
		}
	}
	rows := make([]caseRow, 0, 1000)
	flush := func() {
		if len(rows) == 0 {
			return
		}
		if err := d.Gorm.CreateInBatches(rows, len(rows)).Error; err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for i := 0; i < n; i++ {
		kind := pick()
		lc := mustLifecycle(kind)
		created := now.Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Microsecond)
		open := rng.IntN(100) < 20
		c := Case{ID: NewID(created), Kind: kind, Priority: lc.DefaultPriority, Team: lc.Team, Channel: ChannelStripe,
			Tags: []string{}, Title: "bench case", Version: 1 + int64(rng.IntN(5)), CreatedAt: created, UpdatedAt: created}
		switch r := rng.IntN(100); {
		case r < 15:
			c.Priority = c.Priority.Bump()
		case r < 25 && c.Priority.Rank() > 1:
			c.Priority = priorityOfRank(c.Priority.Rank() - 1)
		}
		if rng.IntN(100) < 5 {
			c.Team = EscalationTeams()[rng.IntN(len(EscalationTeams()))]
		}
		if !open || rng.IntN(100) < 65 {
			c.Assignee = strp(agents[rng.IntN(len(agents))])
		}
		if rng.IntN(10) > 0 {
			c.BusinessLine = strp(lines[rng.IntN(len(lines))])
		}
		cus := fmt.Sprintf("cus_b%05d", rng.IntN(25_000))
		c.Links.Customer = &cus
		subject := fmt.Sprintf("%s_b%07d", kind, i)
		switch kind {
		case KindDispute:
			c.Links.Dispute, c.Links.Charge = strp(subject), strp(fmt.Sprintf("ch_b%07d", i))
		case KindFraudWarning:
			c.Links.FraudWarning, c.Links.Charge = strp(subject), strp(fmt.Sprintf("ch_b%07d", i))
		case KindPaymentFailure:
			c.Links.Invoice, c.Links.Subscription = strp(subject), strp(fmt.Sprintf("sub_b%06d", rng.IntN(60_000)))
		case KindTrialConversion, KindCancellation:
			c.Links.Subscription = strp(subject)
		case KindRefundFailure:
			c.Links.Refund = strp(subject)
		case KindRefundRequest:
			c.Links.Charge = strp(subject)
		}
		if kind != KindBillingInquiry {
			c.Subject = strp(subject)
		}
		if !slices.Contains(ManualKinds(), kind) || kind == KindCancellation && rng.IntN(2) == 0 {
			c.Channel = ChannelStripe
		} else {
			c.Channel = ManualChannels()[rng.IntN(len(ManualChannels()))]
		}
		c.SLA.FirstResponseDue, c.SLA.ResolutionDue = pol.dueTimes(kind, c.Team, c.Priority, created, nil)
		if open {
			c.State, c.Status = openStates[kind][rng.IntN(len(openStates[kind]))], StatusOpen
		} else {
			c.State, c.Status = closedStates[kind][rng.IntN(len(closedStates[kind]))], StatusClosed
			res := lc.Closed[c.State]
			closedAt := created.Add(time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
			c.Resolution, c.ClosedAt = &res, &closedAt
		}
		if c.Assignee != nil || !open {
			c.SLA.FirstRespondedAt = timep(created.Add(time.Duration(rng.Int64N(int64(c.SLA.FirstResponseDue.Sub(created)) * 3 / 2))))
		}
		if rng.IntN(100) < 8 {
			c.SLA.ResolutionBreachedAt = timep(c.SLA.ResolutionDue)
			c.SLA.Breached = true
		}
		rows = append(rows, toRow(c))
		if len(rows) == cap(rows) {
			flush()
		}
	}
	flush()
	return benchSeed{agent: agents[7], customer: "cus_b00042"}
}
