package webhooks_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/internal/stripetest"
	"github.com/recourse-hq/recourse/webhooks"
)

// BenchmarkIntake measures the Stripe webhook endpoint on PostgreSQL against
// a floor: a bare single-row INSERT … ON CONFLICT DO NOTHING of
// the same kind of payload through the same connection pool.
//
// For each concurrency C (1, 8, 32) it measures, in the same run:
//
//   - floor: C goroutines, each inserting one pre-generated event per
//     statement (autocommit, so one commit per row) with database/sql on the
//     *sql.DB behind the intake's *db.DB;
//   - intake: C HTTP clients (keep-alive) POSTing distinct signed
//     invoice.payment_failed events to the real intake over loopback; each
//     answer arrives only after the event is committed.
//
// The two alternate in rounds (floor, intake, then intake, floor, …), so that
// a slow spell of a shared machine lands on both rather than on one. Each
// round starts from an empty webhook_events and a checkpoint. The results are
// reported by the sub-benchmarks c=C/floor and c=C/intake:
//
//	events/s         acknowledged (intake) or inserted (floor) events per second
//	p50-ms           median latency of one delivery (client side: request
//	                 written to answer read) or of one INSERT
//	p99-ms           99th percentile latency
//	x-floor          intake events/s ÷ floor events/s at the same C (intake only)
//	batch            mean rows per group commit (intake only)
//	go-cpu-us/event  CPU of this process per event: load generator, plus the
//	                 HTTP server and intake for the intake (Linux /proc)
//	pg-cpu-us/event  CPU of the pool's PostgreSQL backends per event (when
//	                 PostgreSQL runs on this host, Linux /proc)
//	B/event          mean payload size
//	ns/op            wall time per event (1e9 ÷ events/s)
//
// The size of a run is fixed (benchEvents per kind, after a warm-up), not
// scaled by b.N: run it with -benchtime 1x and -count 1, and repeat the
// command for more samples, as scripts/bench.sh does.
//
// After every round the ledger is balanced: each acknowledged event (2xx,
// duplicate=false, its own event id) must be exactly one row of
// webhook_events, and no row may exist that was not acknowledged; any
// difference, and any non-2xx answer, fails the benchmark.
//
// Knobs, all optional (environment variables):
//
//	RECOURSE_BENCH_CONCURRENCY        comma-separated levels (default 1,8,32)
//	RECOURSE_BENCH_EVENTS             events per kind and level (default: benchEvents)
//	RECOURSE_BENCH_ROUNDS             rounds the events are split into (default 5)
//	RECOURSE_BENCH_DB_MAX_CONNS       pool size shared by floor and intake (default 20, the service default)
//	RECOURSE_BENCH_INTAKE_COMMITTERS  IntakeConfig.Committers (default 0: the intake's default)
//	RECOURSE_BENCH_INTAKE_MAX_BATCH   IntakeConfig.MaxBatch (default 0: the intake's default)
func BenchmarkIntake(b *testing.B) {
	// The sub-benchmarks report a measurement their parent made; -count would
	// repeat the report, not the measurement.
	if f := flag.Lookup("test.count"); f != nil && f.Value.String() != "1" {
		b.Fatalf("BenchmarkIntake measures once per invocation: run it with -count 1 and repeat the command (scripts/bench.sh does, COUNT times)")
	}
	dbtest.RequirePostgres(b)
	levels := envInts(b, "RECOURSE_BENCH_CONCURRENCY", []int{1, 8, 32})
	rounds := max(1, envInt(b, "RECOURSE_BENCH_ROUNDS", 5))
	maxConns := envInt(b, "RECOURSE_BENCH_DB_MAX_CONNS", 20)
	cfg := webhooks.IntakeConfig{
		Secrets:    []string{secretA, secretB},
		Tolerance:  300 * time.Second, // the service defaults
		MaxBody:    1 << 20,
		Committers: envInt(b, "RECOURSE_BENCH_INTAKE_COMMITTERS", 0),
		MaxBatch:   envInt(b, "RECOURSE_BENCH_INTAKE_MAX_BATCH", 0),
	}

	ctx := context.Background()
	d, err := db.Open(ctx, dbtest.NewPostgresURL(b), "", db.Options{MaxConns: maxConns})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	dbtest.Migrate(b, d)
	pool, err := d.Gorm.DB()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("pool: %d connections; intake: committers=%d max_batch=%d (0 = default); %d rounds; GOMAXPROCS %d, CPUs %d",
		maxConns, cfg.Committers, cfg.MaxBatch, rounds, runtime.GOMAXPROCS(0), runtime.NumCPU())

	gen := stripetest.New(20240601)
	for _, c := range levels {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			per := (benchEvents(b, c) + rounds - 1) / rounds
			srv := startBenchIntake(b, d, cfg, c)
			runFloor(b, pool, genBenchEvents(gen, warmupEvents(c)), c, nil)
			srv.run(b, genBenchEvents(gen, warmupEvents(c)), c, nil)

			var floor, intake runResult
			var size float64
			before := srv.batches()
			for round := 0; round < rounds; round++ {
				for k := 0; k < 2; k++ {
					evs := genBenchEvents(gen, per)
					size += meanSize(evs) / float64(2*rounds)
					backends := resetInbox(b, pool, maxConns)
					if (round+k)%2 == 0 {
						floor.add(runFloor(b, pool, evs, c, backends))
						balanceFloor(b, pool, evs)
					} else {
						r := srv.run(b, evs, c, backends)
						balanceIntake(b, pool, evs, r)
						intake.add(r.runResult)
					}
				}
			}
			after := srv.batches()

			b.Run("floor", func(b *testing.B) {
				b.Logf("floor ledger balanced over %d rounds: %d inserted = %d rows, 0 missing, 0 doubled, 0 unacknowledged",
					rounds, len(floor.lat), len(floor.lat))
				floor.report(b)
				b.ReportMetric(size, "B/event")
			})
			b.Run("intake", func(b *testing.B) {
				b.Logf("intake ledger balanced over %d rounds: %d acknowledged (2xx) = %d rows, 0 missing, 0 doubled, 0 unacknowledged",
					rounds, len(intake.lat), len(intake.lat))
				intake.report(b)
				b.ReportMetric(size, "B/event")
				if after.count > before.count {
					b.ReportMetric((after.sum-before.sum)/(after.count-before.count), "batch")
				}
				b.ReportMetric(intake.rate()/floor.rate(), "x-floor")
			})
		})
	}
}

// benchEvents is the fixed size of one measured run at concurrency c: long
// enough (a few seconds on a 2-core machine) for stable rates and a p99
// drawn from thousands of samples.
func benchEvents(b *testing.B, c int) int {
	if n := envInt(b, "RECOURSE_BENCH_EVENTS", 0); n > 0 {
		return n
	}
	if c <= 1 {
		return 8000
	}
	return 25000
}

// warmupEvents opens every connection (HTTP and pool) and fills statement
// caches before the measured run.
func warmupEvents(c int) int { return max(300, 20*c) }

// benchEvent is one pre-generated, pre-signed delivery plus the columns the
// intake would derive from its envelope (the floor inserts those directly).
type benchEvent struct {
	id, typ, objType, objID string
	created                 time.Time
	payload                 []byte
	signature               string
}

// genBenchEvents returns n distinct invoice.payment_failed events, each
// carrying a full invoice object (a subscription line item with its price,
// status transitions, hosted invoice and PDF links), about 2.9 KB compacted,
// signed with secretA now.
func genBenchEvents(g *stripetest.Generator, n int) []benchEvent {
	now := time.Now()
	out := make([]benchEvent, n)
	for i := range out {
		inv := g.Invoice(stripetest.InvoiceParams{
			Status:             "open",
			Subscription:       g.NewID("sub_"),
			AttemptCount:       1,
			NextPaymentAttempt: now.Add(72 * time.Hour),
			Created:            now.Add(-time.Hour),
		})
		// Trim what adds bytes but carries nothing: null fields and the line
		// item's legacy plan (a copy of its price). Every populated field of
		// the invoice stays.
		for _, line := range inv["lines"].(map[string]any)["data"].([]any) {
			delete(line.(map[string]any), "plan")
		}
		dropNulls(inv)
		ev := g.NewEvent("invoice.payment_failed", inv)
		var buf bytes.Buffer
		if err := json.Compact(&buf, ev.Payload); err != nil {
			panic(err)
		}
		p := buf.Bytes()
		out[i] = benchEvent{id: ev.ID, typ: ev.Type, objType: "invoice", objID: inv["id"].(string),
			created: ev.Created, payload: p, signature: sign(p, secretA, now)}
	}
	return out
}

// dropNulls deletes null-valued keys from m and the objects nested in it.
func dropNulls(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			dropNulls(v)
		case []any:
			for _, e := range v {
				if o, ok := e.(map[string]any); ok {
					dropNulls(o)
				}
			}
		}
	}
}

func meanSize(evs []benchEvent) float64 {
	t := 0
	for _, e := range evs {
		t += len(e.payload)
	}
	return float64(t) / float64(len(evs))
}

// runResult is one measured run.
type runResult struct {
	elapsed time.Duration
	lat     []time.Duration // per event, by index
	cpu     cpuUse          // CPU spent during the run
}

func (r runResult) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// add appends round o to r.
func (r *runResult) add(o runResult) {
	first := r.lat == nil
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	r.cpu = cpuUse{self: r.cpu.self + o.cpu.self, pg: r.cpu.pg + o.cpu.pg,
		ok: (first || r.cpu.ok) && o.cpu.ok, pgOK: (first || r.cpu.pgOK) && o.cpu.pgOK}
}

func (r runResult) report(b *testing.B) {
	s := slices.Clone(r.lat)
	slices.Sort(s)
	ms := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		i = min(max(i, 0), len(s)-1)
		return float64(s[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(r.rate(), "events/s")
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(r.elapsed.Nanoseconds())/float64(len(s)), "ns/op")
	if r.cpu.ok {
		b.ReportMetric(float64(r.cpu.self.Microseconds())/float64(len(s)), "go-cpu-us/event")
		if r.cpu.pgOK {
			b.ReportMetric(float64(r.cpu.pg.Microseconds())/float64(len(s)), "pg-cpu-us/event")
		}
	}
}

// cpuUse is CPU time (user + system) read from /proc: this process (the load
// generator and, for the intake, the HTTP server) and the PostgreSQL backends
// of the pool (parse, insert, TOAST, index and WAL work, commit; not the
// shared WAL writer or checkpointer). Best effort: ok is false without /proc,
// and pgOK is false when the backends are not visible (PostgreSQL on another
// host or in a container).
type cpuUse struct {
	self, pg time.Duration
	ok, pgOK bool
}

func (a cpuUse) sub(b cpuUse) cpuUse {
	return cpuUse{self: a.self - b.self, pg: a.pg - b.pg, ok: a.ok && b.ok, pgOK: a.pgOK && b.pgOK}
}

// procCPU returns the command name and CPU time of process pid ("self" for
// this one). /proc counts clock ticks (USER_HZ, 100 on Linux).
func procCPU(pid string) (comm string, cpu time.Duration, ok bool) {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(raw)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := strings.Fields(s[end+1:]) // f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return "", 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return s[open+1 : end], time.Duration(u+k) * 10 * time.Millisecond, true
}

func readCPU(backends []int) cpuUse {
	var c cpuUse
	if _, c.self, c.ok = procCPU("self"); !c.ok {
		return c
	}
	c.pgOK = len(backends) > 0
	for _, pid := range backends {
		comm, cpu, ok := procCPU(strconv.Itoa(pid))
		if !ok || comm != "postgres" {
			c.pgOK = false
			break
		}
		c.pg += cpu
	}
	return c
}

// backendPIDs opens all n connections of the pool (it keeps n idle, so they
// stay open) and returns the process ids of their PostgreSQL backends.
func backendPIDs(b *testing.B, pool *sql.DB, n int) []int {
	b.Helper()
	ctx := context.Background()
	pids := make([]int, 0, n)
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := pool.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		var pid int
		if err := c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			b.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// fanOut runs do(i) for every i in [0, n) on exactly c goroutines, which start
// together, and returns the wall time from start to the last completion and
// the CPU spent meanwhile.
func fanOut(n, c int, backends []int, do func(i int)) (time.Duration, cpuUse) {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				do(i)
			}
		}()
	}
	cpu0 := readCPU(backends)
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	return elapsed, readCPU(backends).sub(cpu0)
}

const floorInsert = `INSERT INTO webhook_events (event_id, type, created, livemode, account, api_version, object_type, object_id, payload, status, attempts, next_attempt_at, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING`

// runFloor inserts evs one row per statement from c goroutines.
func runFloor(b *testing.B, pool *sql.DB, evs []benchEvent, c int, backends []int) runResult {
	b.Helper()
	r := runResult{lat: make([]time.Duration, len(evs))}
	var (
		mu       sync.Mutex
		failed   int
		firstErr error
	)
	r.elapsed, r.cpu = fanOut(len(evs), c, backends, func(i int) {
		e := evs[i]
		t0 := time.Now()
		now := time.Now().UTC().Truncate(time.Microsecond)
		res, err := pool.ExecContext(context.Background(), floorInsert, e.id, e.typ, e.created.UTC(), false, nil,
			stripetest.APIVersion, e.objType, e.objID, e.payload, string(webhooks.StatusPending), 0, now, now)
		r.lat[i] = time.Since(t0)
		if err == nil {
			var k int64
			if k, err = res.RowsAffected(); err == nil && k != 1 {
				err = fmt.Errorf("event %s: %d rows inserted, want 1", e.id, k)
			}
		}
		if err != nil {
			mu.Lock()
			if failed++; firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	})
	if failed > 0 {
		b.Fatalf("floor: %d of %d inserts failed; first: %v", failed, len(evs), firstErr)
	}
	return r
}

// resetInbox empties webhook_events (so each round starts from the same table
// size and its ledger is the whole table), checkpoints, so no checkpoint left
// over from the previous round lands in this one, and returns the pool's
// backend process ids.
func resetInbox(b *testing.B, pool *sql.DB, maxConns int) []int {
	b.Helper()
	if _, err := pool.Exec("TRUNCATE webhook_events"); err != nil {
		b.Fatal(err)
	}
	_, _ = pool.Exec("CHECKPOINT") // needs superuser or pg_checkpoint; best effort
	return backendPIDs(b, pool, maxConns)
}

// benchIntake is the real intake behind a real HTTP server on loopback.
type benchIntake struct {
	url     string
	client  *http.Client
	metrics *metrics.Metrics
}

func startBenchIntake(b *testing.B, d *db.DB, cfg webhooks.IntakeConfig, c int) *benchIntake {
	b.Helper()
	// The service's JSON access log, written nowhere.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m := metrics.New()
	intake := webhooks.NewIntake(webhooks.NewInbox(d), clock.System{}, log, m, cfg, nil)
	e := httpx.New(httpx.Options{Logger: log, Metrics: m})
	intake.Register(e)
	srv := httptest.NewServer(e)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * c,
		MaxIdleConnsPerHost: 2 * c,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		intake.Close()
	})
	return &benchIntake{url: srv.URL + "/webhooks/stripe", client: &http.Client{Transport: tr, Timeout: time.Minute}, metrics: m}
}

// intakeResult is a measured intake run and what each delivery got back.
type intakeResult struct {
	runResult
	status []int
	body   [][]byte
	errs   []error
}

func (s *benchIntake) run(b *testing.B, evs []benchEvent, c int, backends []int) intakeResult {
	b.Helper()
	r := intakeResult{runResult: runResult{lat: make([]time.Duration, len(evs))},
		status: make([]int, len(evs)), body: make([][]byte, len(evs)), errs: make([]error, len(evs))}
	r.elapsed, r.cpu = fanOut(len(evs), c, backends, func(i int) {
		e := evs[i]
		t0 := time.Now()
		req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(e.payload))
		if err != nil {
			r.errs[i] = err
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", e.signature)
		resp, err := s.client.Do(req)
		if err != nil {
			r.errs[i] = err
			r.lat[i] = time.Since(t0)
			return
		}
		r.body[i], r.errs[i] = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		r.lat[i] = time.Since(t0)
		r.status[i] = resp.StatusCode
	})
	bad := 0
	for i := range evs {
		if r.errs[i] != nil || r.status[i]/100 != 2 {
			if bad < 5 {
				b.Errorf("delivery %s: status %d, err %v, body %s", evs[i].id, r.status[i], r.errs[i], r.body[i])
			}
			bad++
		}
	}
	if bad > 0 {
		b.Fatalf("%d of %d deliveries were not acknowledged", bad, len(evs))
	}
	return r
}

type histogramSum struct{ sum, count float64 }

// batches reads the intake's batch-size histogram.
func (s *benchIntake) batches() histogramSum {
	fams, err := s.metrics.Registry.Gather()
	if err != nil {
		return histogramSum{}
	}
	for _, f := range fams {
		if f.GetName() != "recourse_webhook_intake_batch_size" {
			continue
		}
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				return histogramSum{sum: h.GetSampleSum(), count: float64(h.GetSampleCount())}
			}
		}
	}
	return histogramSum{}
}

// inboxRows returns how many rows of webhook_events each event id has.
func inboxRows(b *testing.B, pool *sql.DB) map[string]int {
	b.Helper()
	rows, err := pool.Query("SELECT event_id, COUNT(*) FROM webhook_events GROUP BY event_id")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			b.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

// balanceIntake checks the ledger of one intake run: every 2xx is one new
// event (duplicate=false, its own id), every acknowledged event is exactly
// one row, and there is no row nobody acknowledged.
func balanceIntake(b *testing.B, pool *sql.DB, evs []benchEvent, r intakeResult) {
	b.Helper()
	acked := make(map[string]int, len(evs))
	for i, e := range evs {
		var a struct {
			Received  bool   `json:"received"`
			EventID   string `json:"event_id"`
			Duplicate bool   `json:"duplicate"`
		}
		if err := json.Unmarshal(r.body[i], &a); err != nil || !a.Received || a.EventID != e.id || a.Duplicate {
			b.Fatalf("delivery %s: unexpected acknowledgement %s (err %v)", e.id, r.body[i], err)
		}
		acked[e.id]++
	}
	checkLedger(b, "intake", acked, inboxRows(b, pool))
}

// balanceFloor checks every floor insert left exactly one row.
func balanceFloor(b *testing.B, pool *sql.DB, evs []benchEvent) {
	b.Helper()
	want := make(map[string]int, len(evs))
	for _, e := range evs {
		want[e.id]++
	}
	checkLedger(b, "floor", want, inboxRows(b, pool))
}

func checkLedger(b *testing.B, what string, acked, rows map[string]int) {
	b.Helper()
	var missing, doubled, unacked []string
	total := 0
	for id, n := range acked {
		switch k := rows[id]; {
		case k == 0:
			missing = append(missing, id)
		case k > 1 || n > 1:
			doubled = append(doubled, id)
		}
	}
	for id, k := range rows {
		total += k
		if acked[id] == 0 {
			unacked = append(unacked, id)
		}
	}
	if len(missing)+len(doubled)+len(unacked) > 0 || total != len(acked) {
		b.Fatalf("%s ledger does not balance: %d acknowledged, %d rows; missing %d %v, doubled %d %v, unacknowledged %d %v",
			what, len(acked), total, len(missing), head(missing), len(doubled), head(doubled), len(unacked), head(unacked))
	}
}

func head(ids []string) []string { return ids[:min(len(ids), 3)] }

func envInt(b *testing.B, key string, def int) int {
	b.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("%s=%q: not an integer", key, v)
	}
	return n
}

func envInts(b *testing.B, key string, def []int) []int {
	b.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want comma-separated positive integers", key, v)
		}
		out = append(out, n)
	}
	return out
}
