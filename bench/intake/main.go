// Command intake measures Recourse's Stripe webhook intake and apply rate from
// outside, against the peer of issue 11: the endpoint a team writes in an
// afternoon (net/http, HMAC-SHA256 with the standard library, one INSERT
// through a pgxpool with one connection per concurrent request, 200).
//
// It builds the real binary, runs `recourse serve` (worker on) on a fresh
// database, starts the peer in this process on its own listener, and drives
// both with one load generator in alternating rounds at each concurrency. Between
// rounds it waits for Recourse's inbox to drain and measures the apply rate
// from the processed_at timestamps. It also measures the bare INSERT floor
// (single-row autocommit INSERTs of the same payloads into a three-column
// table over C pgx connections) and samples Recourse's resident memory.
//
// Run from the repository root, with PostgreSQL reachable:
//
//	go run ./bench/intake -pg postgres://postgres@127.0.0.1:5432/test
//
// See docs/benchmarks.md ("Intake and apply against the peer").
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/recourse-hq/recourse/internal/stripetest"
)

const secret = "whsec_bench_intake_0123456789abcdef"

func main() {
	pgURL := flag.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL of an existing database (a fresh one is created beside it)")
	concList := flag.String("c", "8,32,128", "concurrency levels")
	rounds := flag.Int("rounds", 3, "rounds per concurrency (peer first in odd rounds, Recourse first in even ones)")
	perRound := flag.Int("events", 4000, "events per round per endpoint")
	seed := flag.Uint64("seed", 11, "stripetest seed")
	profileAt := flag.Int("profile-c", 32, "take a perf CPU profile of the Recourse process during its first round at this concurrency (0: none)")
	profileOut := flag.String("profile-out", "", "where to write perf.data (default: a temporary directory)")
	connCap := flag.Int("max-pg-conns", 60, "cap on the peer's (and floor's) pool size: PostgreSQL's max_connections is shared with Recourse's pool")
	keep := flag.Bool("keep-db", false, "keep the benchmark database")
	e2eDur := flag.Duration("e2e", 0, "after the rounds, deliver events at a sustained rate for this long and measure event→case latency (0: skip)")
	e2eRate := flag.Float64("e2e-rate", 0, "events/s for -e2e (0: half the highest backlog apply rate measured by the rounds, or by a calibration burst when -rounds 0)")
	workerEnv := flag.String("recourse-env", "", "extra KEY=VALUE settings for recourse serve, comma-separated (e.g. RECOURSE_WORKER_BATCH=1)")
	flag.Parse()

	var concs []int
	for _, s := range strings.Split(*concList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("bad -c %q", *concList)
		}
		concs = append(concs, n)
	}
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "recourse-bench-intake-")
	check(err)
	defer os.RemoveAll(tmp)
	fmt.Printf("load average at start: %s\n", loadavg())

	// The events: distinct, of the demo's mix, generated up front.
	const warm = 300
	need := *perRound**rounds*len(concs) + warm*len(concs)
	warmNext := *perRound * *rounds * len(concs)
	gen := stripetest.New(*seed)
	start := time.Now().Add(-60 * 24 * time.Hour)
	var events [][]byte
	var ids []string
	var bytesTotal int
	for customers := need / 4; len(events) < need; customers = need / 8 {
		for _, e := range gen.Mix(customers, start) {
			events = append(events, e.Payload)
			ids = append(ids, e.ID)
			bytesTotal += len(e.Payload)
		}
	}
	fmt.Printf("generated %d events of the demo mix (%d needed), mean payload %d bytes\n", len(events), need, bytesTotal/len(events))
	types := map[string]int{}
	for _, p := range events[:need] {
		var env struct{ Type string }
		_ = json.Unmarshal(p, &env)
		types[env.Type]++
	}
	fmt.Printf("event types in the sent part: %d distinct\n", len(types))

	// A fresh database for this run.
	admin, err := pgx.Connect(ctx, *pgURL)
	check(err)
	dbName := fmt.Sprintf("recourse_bench_intake_%d", time.Now().Unix())
	_, err = admin.Exec(ctx, "CREATE DATABASE "+dbName)
	check(err)
	defer func() {
		if !*keep {
			_, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
			if err != nil {
				log.Printf("drop %s: %v", dbName, err)
			}
		}
		admin.Close(context.Background())
	}()
	u, err := url.Parse(*pgURL)
	check(err)
	u.Path = "/" + dbName
	dbURL := u.String()

	// Recourse: the real binary.
	bin := filepath.Join(tmp, "recourse")
	build := exec.Command("go", "build", "-o", bin, "./cmd/recourse")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	check(build.Run())
	recAddr := freeAddr()
	logPath := filepath.Join(tmp, "recourse.log")
	logf, err := os.Create(logPath)
	check(err)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(filteredEnv(),
		"DATABASE_URL="+dbURL,
		"RECOURSE_HTTP_ADDR="+recAddr,
		"RECOURSE_STRIPE_WEBHOOK_SECRETS="+secret,
		"RECOURSE_RATE_LIMIT_STRIPE=0", "RECOURSE_RATE_LIMIT_IP=0", "RECOURSE_RATE_LIMIT_TOKEN=0",
		"RECOURSE_LOG_LEVEL=warn",
	)
	for _, kv := range strings.Split(*workerEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	check(cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	recURL := "http://" + recAddr
	waitReady(recURL+"/readyz", logPath)
	pid := cmd.Process.Pid

	// Resident memory, sampled every 200 ms for the whole run.
	var rss rssSampler
	stopRSS := rss.run(pid)
	defer stopRSS()

	// The peer and floor tables, and a connection to watch Recourse's inbox.
	watch := newPool(ctx, dbURL, 2)
	defer watch.Close()
	_, err = watch.Exec(ctx, `CREATE TABLE peer_events (event_id text PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(), payload jsonb NOT NULL);
CREATE TABLE floor_events (event_id text PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(), payload jsonb NOT NULL)`)
	check(err)

	type result struct {
		peerN, recN, floorN, applied        int
		peerDur, recDur, floorDur, applyDur time.Duration
		drainDur                            time.Duration
		peerLat, recLat                     []time.Duration
		peerErr, recErr                     int
		rssKB                               int64
		dead                                int
		backlogN                            int
		backlogDur                          time.Duration
	}
	results := map[int]*result{}
	next := 0
	for _, c := range concs {
		r := &result{}
		results[c] = r
		conns := min(c, *connCap)
		peer := startPeer(ctx, dbURL, conns)
		client := &http.Client{Transport: &http.Transport{MaxIdleConns: 4 * c, MaxIdleConnsPerHost: 2 * c, IdleConnTimeout: time.Minute}, Timeout: 30 * time.Second}
		floorPool := peer.pool // the floor runs while the peer is idle: same pool, same connections
		// Warm-up: open connections on both sides with events that are not measured
		// (the peer gets the first round's, which it will see again: ON CONFLICT).
		w := min(warm, *perRound)
		send(client, peer.url, events[next:next+w], c)
		floor(floorPool, ids[next:next+w], events[next:next+w], c)
		send(client, recURL+"/webhooks/stripe", events[warmNext:warmNext+warm], c)
		warmNext += warm
		_, err := watch.Exec(ctx, "TRUNCATE peer_events, floor_events")
		check(err)
		waitDrained(ctx, watch)

		for round := 1; round <= *rounds; round++ {
			evs, evIDs := events[next:next+*perRound], ids[next:next+*perRound]
			next += *perRound
			rss.reset()
			runPeer := func() {
				d, lat, bad := send(client, peer.url, evs, c)
				r.peerN += len(evs)
				r.peerDur += d
				r.peerLat = append(r.peerLat, lat...)
				r.peerErr += bad
			}
			runRec := func() {
				prof := c == *profileAt && round == 1
				var stopProf func()
				if prof {
					stopProf = perfRecord(pid, *profileOut, tmp, "intake")
				}
				sendStart := time.Now()
				d, lat, bad := send(client, recURL+"/webhooks/stripe", evs, c)
				sendEnd := time.Now()
				if stopProf != nil {
					stopProf()
					stopProf = nil
				}
				if prof {
					stopProf = perfRecord(pid, *profileOut, tmp, "drain")
				}
				r.recN += len(evs)
				r.recDur += d
				r.recLat = append(r.recLat, lat...)
				r.recErr += bad
				// Drain: wait for no pending events, then read the apply span.
				waitDrained(ctx, watch)
				if stopProf != nil {
					stopProf()
				}
				r.drainDur += time.Since(sendStart) - d
				var n, after, dead int
				var first, last *time.Time
				check(watch.QueryRow(ctx, `SELECT count(processed_at), count(*) FILTER (WHERE processed_at > $2), count(*) FILTER (WHERE status = 'dead'), min(processed_at), max(processed_at)
FROM webhook_events WHERE event_id = ANY($1)`, evIDs, sendEnd).Scan(&n, &after, &dead, &first, &last))
				r.applied += n
				r.dead += dead
				if first != nil && last != nil {
					r.applyDur += last.Sub(*first)
					if last.After(sendEnd) {
						r.backlogN += after
						r.backlogDur += last.Sub(sendEnd)
					}
				}
			}
			runFloor := func() {
				d := floor(floorPool, evIDs, evs, c)
				r.floorN += len(evs)
				r.floorDur += d
				_, err := watch.Exec(ctx, "TRUNCATE floor_events")
				check(err)
			}
			if round%2 == 1 {
				runPeer()
				runFloor()
				runRec()
			} else {
				runRec()
				runPeer()
				runFloor()
			}
			r.rssKB = max(r.rssKB, rss.peak())
			_, err := watch.Exec(ctx, "TRUNCATE peer_events")
			check(err)
			fmt.Printf("C=%d round %d done (load %s)\n", c, round, loadavg())
		}
		peer.close()
		client.CloseIdleConnections()
	}

	var statuses []string
	rows, err := watch.Query(ctx, "SELECT status || ' ' || count(*) FROM webhook_events GROUP BY status ORDER BY status")
	check(err)
	for rows.Next() {
		var s string
		check(rows.Scan(&s))
		statuses = append(statuses, s)
	}
	check(rows.Err())
	var cases int
	check(watch.QueryRow(ctx, "SELECT count(*) FROM cases").Scan(&cases))

	fmt.Printf("\nload average at end: %s; Recourse inbox: %s; cases: %d; peak RSS over the run: %.1f MB\n\n",
		loadavg(), strings.Join(statuses, ", "), cases, float64(rss.max.Load())/1024)
	fmt.Println("| C | peer ev/s | Recourse ev/s | Recourse ÷ peer | peer p50 / p99 ms | Recourse p50 / p99 ms | apply ev/s (first→last processed) | apply ev/s (backlog, after sends) | INSERT floor ev/s | backlog apply ÷ floor | drain after sends s/round | peak RSS MB | errors peer/Recourse | dead |")
	fmt.Println("| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
	for _, c := range concs {
		r := results[c]
		pr := rate(r.peerN, r.peerDur)
		rr := rate(r.recN, r.recDur)
		ar := rate(r.applied, r.applyDur)
		fr := rate(r.floorN, r.floorDur)
		br := rate(r.backlogN, r.backlogDur)
		fmt.Printf("| %d | %.0f | %.0f | **%.2f** | %.2f / %.2f | %.2f / %.2f | %.0f | %.0f | %.0f | **%.0f%%** | %.1f | %.1f | %d / %d | %d |\n",
			c, pr, rr, rr/pr, ms(pct(r.peerLat, 0.50)), ms(pct(r.peerLat, 0.99)), ms(pct(r.recLat, 0.50)), ms(pct(r.recLat, 0.99)),
			ar, br, fr, 100*br/fr, r.drainDur.Seconds()/float64(*rounds), float64(r.rssKB)/1024, r.peerErr, r.recErr, r.dead)
	}

	if *e2eDur > 0 {
		rateNow := *e2eRate
		if rateNow <= 0 {
			best := 0.0
			for _, c := range concs {
				if r := results[c]; r != nil && *rounds > 0 {
					best = max(best, rate(r.backlogN, r.backlogDur))
				}
			}
			if best == 0 {
				// Calibrate: a burst at C=32, then the backlog apply rate.
				client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
				var evs [][]byte
				var evIDs []string
				for _, e := range stripetest.New(*seed+2).Mix(1000, start) {
					evs, evIDs = append(evs, e.Payload), append(evIDs, e.ID)
				}
				evs, evIDs = evs[:min(len(evs), 4000)], evIDs[:min(len(evIDs), 4000)]
				_, _, _ = send(client, recURL+"/webhooks/stripe", evs, 32)
				sendEnd := time.Now()
				waitDrained(ctx, watch)
				var after int
				var last *time.Time
				check(watch.QueryRow(ctx, `SELECT count(*) FILTER (WHERE processed_at > $2), max(processed_at) FROM webhook_events WHERE event_id = ANY($1)`, evIDs, sendEnd).Scan(&after, &last))
				if last != nil {
					best = rate(after, last.Sub(sendEnd))
				}
				fmt.Printf("calibration: backlog apply %.0f ev/s\n", best)
			}
			rateNow = best / 2
		}
		if rateNow <= 0 {
			log.Fatalf("e2e: no apply rate measured; give -e2e-rate")
		}
		runE2E(ctx, recURL+"/webhooks/stripe", watch, &rss, *seed+1, rateNow, *e2eDur)
	}
}

// runE2E delivers fresh events of the demo mix at a fixed rate (open loop:
// each event has a scheduled send time, and a late sender does not push the
// schedule back) for dur, and measures event→case latency: from the event's
// scheduled send time to the moment a reader sees it applied (its inbox row
// no longer pending — the same transaction that updated its case). A poller
// asks every 25 ms about the 2,000 oldest events still outstanding; its
// period bounds the measurement's resolution. It also reports the ack latency and the peak RSS
// sampled throughout, per minute and overall.
func runE2E(ctx context.Context, target string, watch *pgxpool.Pool, rss *rssSampler, seed uint64, evRate float64, dur time.Duration) {
	fmt.Printf("\n--- event→case at a sustained %.0f events/s for %s (load %s) ---\n", evRate, dur, loadavg())
	type item struct {
		id      string
		payload []byte
	}
	total := int(evRate * dur.Seconds())
	feed := make(chan item, 20000)
	go func() { // generate as we go: ten minutes of events do not fit in memory up front
		gen := stripetest.New(seed)
		start := time.Now().Add(-60 * 24 * time.Hour)
		n := 0
		for n < total {
			for _, e := range gen.Mix(500, start) {
				if n == total {
					break
				}
				feed <- item{e.ID, e.Payload}
				n++
			}
		}
		close(feed)
	}()
	var mu sync.Mutex
	outstanding := map[string]time.Time{}
	var order []string // ids in send order; order[:head] are all applied
	head := 0
	const pollWindow = 2000
	var e2eLat, ackLat []time.Duration
	var bad atomic.Int64
	type minute struct {
		sent, applied int
		lat           []time.Duration
		rssKB         int64
	}
	minutes := make([]minute, int(dur/time.Minute)+2)
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}, Timeout: 30 * time.Second}
	t0 := time.Now()
	jobs := make(chan struct {
		it    item
		sched time.Time
	}, 100000)
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				req, err := stripetest.NewWebhookRequest(context.Background(), target, j.it.payload, secret, time.Time{})
				check(err)
				resp, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat := time.Since(j.sched)
				if resp.StatusCode/100 != 2 {
					bad.Add(1)
				}
				mu.Lock()
				ackLat = append(ackLat, lat)
				mu.Unlock()
			}
		}()
	}
	// The poller.
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		var last bool
		for {
			select {
			case <-stopPoll:
				last = true
			case <-t.C:
			}
			// Only the oldest outstanding events are asked about: asking
			// about all of them costs the database a lookup per outstanding
			// event every 25 ms, which once a backlog builds takes the CPU
			// the worker needs and makes the backlog grow (the observer
			// effect of an earlier version of this poller). The worker
			// applies each shard in arrival order, so the next events it
			// applies are among the oldest; one applied out of order is
			// seen when it enters the window, which can only overstate
			// its latency.
			mu.Lock()
			for head < len(order) {
				if _, ok := outstanding[order[head]]; ok {
					break
				}
				head++
			}
			ids := make([]string, 0, pollWindow)
			for k := head; k < len(order) && len(ids) < pollWindow; k++ {
				if _, ok := outstanding[order[k]]; ok {
					ids = append(ids, order[k])
				}
			}
			mu.Unlock()
			for len(ids) > 0 {
				chunk := ids
				ids = nil
				rows, err := watch.Query(ctx, "SELECT event_id FROM webhook_events WHERE event_id = ANY($1) AND status <> 'pending'", chunk)
				check(err)
				seen := time.Now()
				mu.Lock()
				for rows.Next() {
					var id string
					check(rows.Scan(&id))
					if sched, ok := outstanding[id]; ok {
						l := seen.Sub(sched)
						e2eLat = append(e2eLat, l)
						m := &minutes[min(int(sched.Sub(t0)/time.Minute), len(minutes)-1)]
						m.applied++
						m.lat = append(m.lat, l)
						delete(outstanding, id)
					}
				}
				mu.Unlock()
				check(rows.Err())
			}
			mu.Lock()
			left := len(outstanding)
			mu.Unlock()
			if last && left == 0 {
				return
			}
		}
	}()
	// RSS per minute.
	stopRSS := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopRSS:
				return
			case <-t.C:
				k := min(int(time.Since(t0)/time.Minute), len(minutes)-1)
				mu.Lock()
				minutes[k].rssKB = max(minutes[k].rssKB, rss.current.Load())
				mu.Unlock()
			}
		}
	}()
	rss.reset()
	interval := time.Duration(float64(time.Second) / evRate)
	i := 0
	lastReport := t0
	for it := range feed {
		sched := t0.Add(time.Duration(i) * interval)
		if d := time.Until(sched); d > 0 {
			time.Sleep(d)
		}
		mu.Lock()
		outstanding[it.id] = sched
		order = append(order, it.id)
		minutes[min(int(sched.Sub(t0)/time.Minute), len(minutes)-1)].sent++
		mu.Unlock()
		jobs <- struct {
			it    item
			sched time.Time
		}{it, sched}
		i++
		if time.Since(lastReport) >= time.Minute {
			lastReport = time.Now()
			mu.Lock()
			fmt.Printf("e2e %s: sent %d, outstanding %d, RSS %.1f MB, load %s\n", time.Since(t0).Round(time.Second), i, len(outstanding), float64(rss.peak())/1024, loadavg())
			mu.Unlock()
		}
	}
	close(jobs)
	wg.Wait()
	sendEnd := time.Now()
	close(stopPoll)
	<-pollDone
	close(stopRSS)
	fmt.Printf("e2e: sent %d events in %s (%.0f/s scheduled %.0f/s), %d not answered 2xx; last applied %s after the last send\n",
		i, sendEnd.Sub(t0).Round(time.Millisecond), float64(i)/sendEnd.Sub(t0).Seconds(), evRate, bad.Load(), time.Since(sendEnd).Round(time.Millisecond))
	fmt.Println("| minute | sent | p50 event→case ms | p99 event→case ms | max ms | peak RSS MB |")
	fmt.Println("| --: | --: | --: | --: | --: | --: |")
	for k, m := range minutes {
		if m.sent == 0 {
			continue
		}
		fmt.Printf("| %d | %d | %.0f | %.0f | %.0f | %.1f |\n", k+1, m.sent, ms(pct(m.lat, 0.5)), ms(pct(m.lat, 0.99)), ms(pct(m.lat, 1)), float64(m.rssKB)/1024)
	}
	fmt.Printf("e2e overall: event→case p50 %.0f ms, p99 %.0f ms, max %.0f ms (poll period 25 ms); ack p50 %.2f ms, p99 %.2f ms; peak RSS %.1f MB over the phase; load %s\n",
		ms(pct(e2eLat, 0.5)), ms(pct(e2eLat, 0.99)), ms(pct(e2eLat, 1)), ms(pct(ackLat, 0.5)), ms(pct(ackLat, 0.99)), float64(rss.peak())/1024, loadavg())
}

// send POSTs evs, each signed at send time, from c goroutines sharing client.
// It returns the wall time, the per-delivery latencies and the number of
// deliveries not answered 2xx.
func send(client *http.Client, target string, evs [][]byte, c int) (time.Duration, []time.Duration, int) {
	lat := make([]time.Duration, len(evs))
	var nextIdx atomic.Int64
	var bad atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(nextIdx.Add(1)) - 1
				if i >= len(evs) {
					return
				}
				req, err := stripetest.NewWebhookRequest(context.Background(), target, evs[i], secret, time.Time{})
				check(err)
				s := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					lat[i] = time.Since(s)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(s)
				if resp.StatusCode/100 != 2 {
					if bad.Add(1) <= 3 {
						log.Printf("%s: %d", target, resp.StatusCode)
					}
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t0), lat, int(bad.Load())
}

// floor runs the bare single-row INSERTs (autocommit) over c connections.
func floor(pool *pgxpool.Pool, ids []string, evs [][]byte, c int) time.Duration {
	var nextIdx atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(nextIdx.Add(1)) - 1
				if i >= len(evs) {
					return
				}
				_, err := pool.Exec(context.Background(), "INSERT INTO floor_events (event_id, received_at, payload) VALUES ($1, now(), $2) ON CONFLICT (event_id) DO NOTHING", ids[i], string(evs[i]))
				check(err)
			}
		}()
	}
	wg.Wait()
	return time.Since(t0)
}

// waitDrained waits until Recourse's inbox has no pending event.
func waitDrained(ctx context.Context, watch *pgxpool.Pool) {
	for {
		var pending int
		check(watch.QueryRow(ctx, "SELECT count(*) FROM webhook_events WHERE status = 'pending'").Scan(&pending))
		if pending == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newPool(ctx context.Context, dbURL string, c int) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(dbURL)
	check(err)
	cfg.MaxConns = int32(c)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	check(err)
	return pool
}

type peerServer struct {
	url   string
	srv   *http.Server
	pool  *pgxpool.Pool
	errs  atomic.Int64
	close func()
}

// startPeer starts the afternoon endpoint: verify, INSERT, 200.
func startPeer(ctx context.Context, dbURL string, c int) *peerServer {
	p := &peerServer{pool: newPool(ctx, dbURL, c)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	p.url = "http://" + ln.Addr().String() + "/webhooks/stripe"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/stripe", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := verify(body, r.Header.Get("Stripe-Signature"), secret, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		if _, err := p.pool.Exec(r.Context(), "INSERT INTO peer_events (event_id, received_at, payload) VALUES ($1, now(), $2) ON CONFLICT (event_id) DO NOTHING", ev.ID, string(body)); err != nil {
			p.errs.Add(1)
			http.Error(w, "db", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	p.close = func() {
		_ = p.srv.Close()
		p.pool.Close()
	}
	return p
}

// verify checks a Stripe-Signature header ("t=…,v1=…[,v1=…]") over payload
// with HMAC-SHA256, within a five-minute tolerance.
func verify(payload []byte, header, secret string, now time.Time) error {
	var ts int64 = -1
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errors.New("bad timestamp")
			}
			ts = n
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts < 0 || len(sigs) == 0 {
		return errors.New("no signature")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp outside tolerance")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte("."))
	mac.Write(payload)
	want := mac.Sum(nil)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return errors.New("signature mismatch")
}

// perfRecord starts `perf record` on pid and returns a function that stops it
// and prints the top of the report.
func perfRecord(pid int, out, tmp, name string) func() {
	if _, err := exec.LookPath("perf"); err != nil {
		log.Printf("no perf: profile not taken")
		return nil
	}
	if out == "" {
		out = tmp
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		log.Printf("perf record: %v", err)
		return nil
	}
	out = filepath.Join(out, "perf-"+name+".data")
	rec := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", out)
	var stderr bytes.Buffer
	rec.Stderr = &stderr
	if err := rec.Start(); err != nil {
		log.Printf("perf record: %v", err)
		return nil
	}
	time.Sleep(300 * time.Millisecond)
	return func() {
		_ = rec.Process.Signal(syscall.SIGINT)
		_ = rec.Wait()
		rep := exec.Command("perf", "report", "-i", out, "--no-children", "--sort", "symbol", "--stdio", "-g", "none", "--percent-limit", "1.5")
		b, err := rep.Output()
		if err != nil {
			log.Printf("perf report: %v\n%s", err, stderr.String())
			return
		}
		fmt.Printf("\n--- perf profile of recourse serve during %s (self time, ≥1.5%%), %s ---\n", name, out)
		printReport(b)
		rep = exec.Command("perf", "report", "-i", out, "--children", "--sort", "symbol", "--stdio", "-g", "none", "--percent-limit", "8")
		if b, err = rep.Output(); err == nil {
			fmt.Printf("--- %s, inclusive (children, ≥8%%) ---\n", name)
			printReport(b)
		}
		fmt.Println("---")
	}
}

// printReport prints perf report lines without comments and empty trailing columns.
func printReport(b []byte) {
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		for len(f) > 0 && f[len(f)-1] == "-" {
			f = f[:len(f)-1]
		}
		fmt.Println(strings.Join(f, " "))
	}
}

type rssSampler struct {
	max     atomic.Int64
	current atomic.Int64
}

func (s *rssSampler) run(pid int) func() {
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := vmRSS(pid); kb > 0 {
				for {
					m := s.current.Load()
					if kb <= m || s.current.CompareAndSwap(m, kb) {
						break
					}
				}
				for {
					m := s.max.Load()
					if kb <= m || s.max.CompareAndSwap(m, kb) {
						break
					}
				}
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stop) }
}

func (s *rssSampler) reset()      { s.current.Store(0) }
func (s *rssSampler) peak() int64 { return s.current.Load() }

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func waitReady(u, logPath string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	log.Fatalf("recourse not ready within 60s:\n%s", b)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().String()
}

func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "RECOURSE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func check(err error) {
	if err != nil {
		log.Panic(err)
	}
}
