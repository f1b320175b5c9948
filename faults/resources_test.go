package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

const (
	idleConns   = 10000
	slowHeaders = 300
	slowBodies  = 200
	oversized   = 50
	// Each open connection costs the server about 16 kB (its goroutine
	// and read/write buffers) until a timeout closes it; the bound allows
	// 24 kB per attacking connection over the memory before the attack.
	perConnKB     = 24
	slackKB       = 32 << 10
	servedWithin  = time.Second
	headerTimeout = 5 * time.Second
	readTimeout   = 10 * time.Second
)

// raiseFileLimit lifts the soft limit on open files to the hard one, for the
// test process (the attacker) and the server it starts.
func raiseFileLimit(t *testing.T, need uint64) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < need && lim.Max > lim.Cur {
		lim.Cur = min(lim.Max, need)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("raise RLIMIT_NOFILE: %v", err)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

// TestResourceFaults holds 10,000 idle connections, slowloris headers, slow
// bodies and oversized bodies against one serve process while signed
// deliveries keep coming: the server's memory stays bounded, it closes
// what stalls, refuses what is too big, and serves every normal delivery
// within a second; the deliveries balance in the ledger.
func TestResourceFaults(t *testing.T) {
	requireSuite(t)
	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nofile := raiseFileLimit(t, 2*idleConns+2000)
	idle := idleConns
	if nofile < uint64(idleConns+slowHeaders+slowBodies+1000) {
		idle = int(nofile) - slowHeaders - slowBodies - 1000
		t.Logf("RLIMIT_NOFILE is %d: holding %d idle connections, not %d", nofile, idle, idleConns)
	}
	url := dbtest.NewPostgresURL(t)
	srv := newServer(t, "a", map[string]string{"DATABASE_URL": url,
		"RECOURSE_HTTP_READ_HEADER_TIMEOUT": headerTimeout.String(), "RECOURSE_HTTP_READ_TIMEOUT": readTimeout.String()})
	rssBefore := srv.rssKB()

	// Sample the server's resident memory throughout.
	var peak atomic.Int64
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for ctx.Err() == nil {
			if kb := srv.rssKB(); kb > peak.Load() {
				peak.Store(kb)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	var attack sync.WaitGroup
	// 1. Idle connections: opened, then nothing sent.
	var idleOpen, idleClosedByServer atomic.Int64
	conns := make(chan net.Conn, idle)
	var dialers sync.WaitGroup
	for w := range 16 {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for i := w; i < idle; i += 16 {
				c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
				if err != nil {
					continue
				}
				idleOpen.Add(1)
				conns <- c
			}
		}()
	}
	dialers.Wait()
	close(conns)
	var idleList []net.Conn
	for c := range conns {
		idleList = append(idleList, c)
	}
	t.Logf("%d idle connections open (%s after start)", idleOpen.Load(), time.Since(began).Round(time.Millisecond))
	for _, c := range idleList {
		attack.Add(1)
		go func() {
			defer attack.Done()
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(headerTimeout + 20*time.Second))
			if _, err := c.Read(make([]byte, 1)); err == io.EOF {
				idleClosedByServer.Add(1)
			}
		}()
	}

	// 2. Slowloris: a header line every second, never the blank line.
	var slowHeaderLife []time.Duration
	var mu sync.Mutex
	for range slowHeaders {
		attack.Add(1)
		go func() {
			defer attack.Done()
			c, err := net.Dial("tcp", srv.addr)
			if err != nil {
				return
			}
			defer c.Close()
			opened := time.Now()
			_, _ = fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: %s\r\n", srv.addr)
			for i := 0; time.Since(opened) < headerTimeout+20*time.Second; i++ {
				if _, err := fmt.Fprintf(c, "X-Slow-%d: %d\r\n", i, i); err != nil {
					break
				}
				time.Sleep(time.Second)
			}
			mu.Lock()
			slowHeaderLife = append(slowHeaderLife, time.Since(opened))
			mu.Unlock()
		}()
	}

	// 3. Slow bodies: complete headers, then 10 bytes a second of a 100 kB body.
	var slowBodyLife []time.Duration
	for range slowBodies {
		attack.Add(1)
		go func() {
			defer attack.Done()
			c, err := net.Dial("tcp", srv.addr)
			if err != nil {
				return
			}
			defer c.Close()
			opened := time.Now()
			_, _ = fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: 100000\r\n\r\n", srv.addr)
			for time.Since(opened) < readTimeout+20*time.Second {
				if _, err := c.Write([]byte(`{"aaaaaaa"`)); err != nil {
					break
				}
				time.Sleep(time.Second)
			}
			mu.Lock()
			slowBodyLife = append(slowBodyLife, time.Since(opened))
			mu.Unlock()
		}()
	}

	// 4. Oversized bodies, with and without a Content-Length: 413 at once.
	var tooLarge, closedMidBody atomic.Int64
	var oversizedAnswers sync.Map
	big := bytes.Repeat([]byte("a"), 5<<20)
	for i := range oversized {
		attack.Add(1)
		go func() {
			defer attack.Done()
			var body io.Reader = bytes.NewReader(big)
			if i%2 == 1 {
				body = io.MultiReader(bytes.NewReader(big)) // no length: chunked
			}
			req, _ := http.NewRequest("POST", srv.url+"/webhooks/stripe", body)
			req.Header.Set("Stripe-Signature", "t=1,v1=00")
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				// The server may answer 413 and close before the client has
				// written the rest: the client then sees its write fail.
				if msg := err.Error(); strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset") {
					closedMidBody.Add(1)
				}
				oversizedAnswers.Store(i, err.Error())
				return
			}
			discard(resp)
			oversizedAnswers.Store(i, resp.Status)
			if resp.StatusCode == http.StatusRequestEntityTooLarge {
				tooLarge.Add(1)
			}
		}()
	}

	// 5. Meanwhile, Stripe's deliveries, one at a time, each timed.
	start := time.Now().UTC().Add(-40 * 24 * time.Hour).Truncate(24 * time.Hour)
	events := stripetest.New(3333).Mix(12, start)
	f := newFeeder(srv.url)
	var latencies []time.Duration
	var worst string
	for i, ev := range events {
		t0 := time.Now()
		f.deliver(ctx, i, ev)
		l := time.Since(t0)
		latencies = append(latencies, l)
		if l > servedWithin && worst == "" {
			worst = fmt.Sprintf("%s took %s", ev.ID, l)
		}
		time.Sleep(60 * time.Millisecond) // spread over the whole attack
	}
	readyz := func() time.Duration {
		t0 := time.Now()
		resp, err := http.Get(srv.url + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("/readyz during the attack: %v %v", err, resp)
			return time.Since(t0)
		}
		discard(resp)
		return time.Since(t0)
	}
	readyDuring := readyz()
	rssDuring := srv.rssKB()

	attack.Wait()
	time.Sleep(2 * time.Second)
	rssAfter := srv.rssKB()
	cancel()
	<-sampling
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1))] }
	life := func(ls []time.Duration) string {
		if len(ls) == 0 {
			return "none"
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
		return fmt.Sprintf("min %s, max %s", ls[0].Round(100*time.Millisecond), ls[len(ls)-1].Round(100*time.Millisecond))
	}
	var answers []string
	oversizedAnswers.Range(func(_, v any) bool {
		if s := v.(string); !strings.HasPrefix(s, "413") && !strings.Contains(s, "broken pipe") && !strings.Contains(s, "connection reset") {
			answers = append(answers, s)
		}
		return true
	})
	t.Logf("idle: %d open, %d closed by the server; slowloris closed after %s; slow bodies closed after %s; oversized: %d of %d answered 413, %d cut off mid-body %v",
		idleOpen.Load(), idleClosedByServer.Load(), life(slowHeaderLife), life(slowBodyLife), tooLarge.Load(), oversized, closedMidBody.Load(), answers)
	t.Logf("deliveries during the attack: %d, p50 %s, p99 %s, max %s; /readyz %s", len(latencies), p(0.5), p(0.99), p(1), readyDuring)
	t.Logf("server RSS: before %d MB, during %d MB, peak %d MB, after %d MB", rssBefore>>10, rssDuring>>10, peak.Load()>>10, rssAfter>>10)
	resourceSummary = fmt.Sprintf("%d idle connections (all closed by the server after the %s header timeout: %d), %d slowloris (closed after %s), %d slow bodies (closed after %s), %d oversized (%d answered 413, %d cut off mid-body); "+
		"%d deliveries meanwhile: p50 %s, p99 %s, max %s; server RSS before %d MB, peak %d MB, after %d MB",
		idleOpen.Load(), headerTimeout, idleClosedByServer.Load(), slowHeaders, life(slowHeaderLife), slowBodies, life(slowBodyLife), oversized, tooLarge.Load(), closedMidBody.Load(),
		len(latencies), p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), p(1).Round(time.Millisecond), rssBefore>>10, peak.Load()>>10, rssAfter>>10)

	attackers := idleOpen.Load() + slowHeaders + slowBodies + oversized
	if limit := rssBefore + perConnKB*attackers + slackKB; peak.Load() > limit {
		t.Errorf("server RSS peaked at %d MB, over %d MB (%d MB before, %d kB for each of %d connections, %d MB slack)",
			peak.Load()>>10, limit>>10, rssBefore>>10, perConnKB, attackers, slackKB>>10)
	}
	if g := goroutines(t, srv.url); g > 200 {
		t.Errorf("%d goroutines in the server after the attack: connections were not let go", g)
	} else {
		t.Logf("%d goroutines in the server after the attack", g)
	}
	if worst != "" {
		t.Errorf("a delivery was not served within %s during the attack: %s", servedWithin, worst)
	}
	if readyDuring > servedWithin {
		t.Errorf("/readyz took %s during the attack", readyDuring)
	}
	if n := idleClosedByServer.Load(); n < idleOpen.Load()*99/100 {
		t.Errorf("the server closed only %d of %d idle connections", n, idleOpen.Load())
	}
	if tooLarge.Load()+closedMidBody.Load() != oversized || tooLarge.Load() == 0 {
		t.Errorf("of %d oversized bodies %d answered 413 and %d were cut off mid-body; the others: %v", oversized, tooLarge.Load(), closedMidBody.Load(), answers)
	}
	for _, l := range slowHeaderLife {
		if l > headerTimeout+5*time.Second {
			t.Errorf("a slowloris connection lived %s, past the %s header timeout", l, headerTimeout)
			break
		}
	}
	for _, l := range slowBodyLife {
		if l > readTimeout+5*time.Second {
			t.Errorf("a slow body lived %s, past the %s read timeout", l, readTimeout)
			break
		}
	}

	d := openDB(t, url)
	drain(t, d, time.Minute)
	s, err := readSnapshot(context.Background(), d.Gorm)
	if err != nil {
		t.Fatal(err)
	}
	r := balance(ledgerInput{fault: fmt.Sprintf("resources: %d idle conns, slowloris, slow and oversized bodies", idleOpen.Load()),
		events: events, deliveries: len(events), acked: f.ackedIDs()}, s)
	r.Elapsed, r.Retried = time.Since(began), int(f.retries.Load())
	record(t, r)
}

// goroutines reads go_goroutines from the server's /metrics.
func goroutines(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			var n int
			_, _ = fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// resourceSummary is printed under the ledger.
var resourceSummary string
