package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/internal/ratelimit"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// demoEvents is the stretch of business the demo plays: n customers' stories
// started over the last 45 days, cut at now (so some are still unfolding:
// open disputes, failing renewals, trials about to end).
func demoEvents(seed uint64, customers int, now time.Time) []stripetest.Event {
	g := stripetest.New(seed)
	all := g.Mix(customers, now.Add(-45*24*time.Hour))
	out := all[:0]
	for _, e := range all {
		if !e.Created.After(now) {
			out = append(out, e)
		}
	}
	return out
}

// deliver posts events, signed with secret, to url with the given
// concurrency, in order per customer story. It returns how many were
// acknowledged.
func deliver(ctx context.Context, url, secret string, events []stripetest.Event, concurrency int, stderr io.Writer) (int64, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	// Events of one story go through one lane, in order, as Stripe tends to
	// send them; lanes run concurrently.
	lanes := make([][]stripetest.Event, concurrency)
	laneOf := map[string]int{}
	for _, e := range events {
		l, ok := laneOf[e.Story+"/"+storyKey(e)]
		if !ok {
			l = len(laneOf) % concurrency
			laneOf[e.Story+"/"+storyKey(e)] = l
		}
		lanes[l] = append(lanes[l], e)
	}
	var acked atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Add(1)
		go func(lane []stripetest.Event) {
			defer wg.Done()
			for _, e := range lane {
				if ctx.Err() != nil {
					return
				}
				err := postSigned(ctx, client, url, secret, e.Payload)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("deliver %s (%s): %w", e.ID, e.Type, err)
					}
					mu.Unlock()
					return
				}
				acked.Add(1)
			}
		}(lane)
	}
	wg.Wait()
	return acked.Load(), firstErr
}

// storyKey groups a story's events: they share the customer.
func storyKey(e stripetest.Event) string {
	if c, ok := e.Object["customer"].(string); ok && c != "" {
		return c
	}
	if e.Object["object"] == "customer" {
		if id, ok := e.Object["id"].(string); ok {
			return id
		}
	}
	return e.ID
}

func postSigned(ctx context.Context, client *http.Client, url, secret string, payload []byte) error {
	for attempt := 0; ; attempt++ {
		req, err := stripetest.NewWebhookRequest(ctx, url, payload, secret, time.Now())
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
			if resp.StatusCode == http.StatusTooManyRequests && attempt < 4 {
				// Over the instance's rate limit: wait as told, as Stripe does.
				wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(max(wait, 1)) * time.Second):
				}
				continue
			}
			if resp.StatusCode < 500 {
				return err
			}
		}
		if attempt == 4 {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

func demoCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "webhook URL of a running instance (e.g. http://localhost:8080/webhooks/stripe); empty runs an embedded instance")
	secret := fs.String("secret", "", "webhook signing secret of that instance (default: first of RECOURSE_STRIPE_WEBHOOK_SECRETS)")
	customers := fs.Int("customers", 120, "customers whose stories are played")
	seed := fs.Uint64("seed", 2026, "generator seed (the same seed plays the same business)")
	concurrency := fs.Int("concurrency", 8, "deliveries in flight")
	addr := fs.String("http-addr", ":8080", "embedded instance: address to serve on")
	dataDir := fs.String("data", "./data", "embedded instance: directory for demo.db (recreated on each run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *customers < 1 || *concurrency < 1 {
		return fmt.Errorf("customers and concurrency must be at least 1")
	}
	events := demoEvents(*seed, *customers, time.Now().UTC())

	if *url != "" {
		s := *secret
		if s == "" {
			s = strings.TrimSpace(strings.Split(getenv("RECOURSE_STRIPE_WEBHOOK_SECRETS"), ",")[0])
		}
		if s == "" {
			return fmt.Errorf("--secret (or RECOURSE_STRIPE_WEBHOOK_SECRETS) is required to sign events for %s", *url)
		}
		start := time.Now()
		n, err := deliver(ctx, *url, s, events, *concurrency, stderr)
		fmt.Fprintf(stdout, "delivered %d of %d signed events for %d customers in %s\n", n, len(events), *customers, time.Since(start).Round(time.Millisecond))
		return err
	}

	// Embedded: a fresh SQLite database, a random secret, the real service.
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	whsec := "whsec_demo_" + hex.EncodeToString(b)
	dbPath := filepath.Join(*dataDir, "demo.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(dbPath + suffix)
	}
	cfg, err := config.Load(nil, getenv, stderr)
	if err != nil {
		return err
	}
	cfg.DatabaseURL, cfg.SQLitePath, cfg.HTTPAddr = "", dbPath, *addr
	cfg.WebhookSecrets = []string{whsec}
	cfg.RateLimitStripe = ratelimit.Rate{} // the demo's own instance, fed as fast as it takes
	cfg.WorkerPoll = 100 * time.Millisecond
	cfg.LogLevel = "warn"
	log := newLogger(cfg, stderr)
	svc, err := newService(ctx, cfg, log, clock.System{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		svc.close()
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	base := "http://" + loopbackAddr(ln.Addr())
	done := make(chan error, 1)
	go func() { done <- svc.run(ctx, ln) }()

	tokens := auth.NewTokenStore(svc.db, clock.System{}).WithAuditor(audit.New(svc.db, clock.System{}).ForAuth())
	operator := cliContext(ctx, getenv) // the demo's users and tokens are audited as the operator's
	people := []struct {
		name string
		role auth.Role
	}{{"Dana (dispute analyst)", auth.RoleAnalyst}, {"Alex (support agent)", auth.RoleAgent}, {"Sam (supervisor)", auth.RoleSupervisor}, {"Ops (admin)", auth.RoleAdmin}}
	secrets := make([]string, len(people))
	for i, p := range people {
		if secrets[i], _, err = tokens.Create(operator, p.name, p.role); err != nil {
			return err
		}
	}
	start := time.Now()
	n, err := deliver(ctx, base+"/webhooks/stripe", whsec, events, *concurrency, stderr)
	if err != nil {
		return err
	}
	// Wait for the worker to apply everything.
	for i := 0; i < 600; i++ {
		pending, _, err := svc.inbox.Backlog(ctx, time.Now())
		if err == nil && pending == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "Recourse demo: %d Stripe events for %d customers delivered and applied in %s.\n", n, *customers, time.Since(start).Round(time.Millisecond))
	nc, nf, err := seedDemoFacts(operator, svc.facts, events)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Evidence facts: %d for the %d customers with a dispute; policy documents: %d.\n", nf, nc, len(demoPolicies))
	fmt.Fprintf(stdout, "Serving on %s (SQLite %s). Tokens (shown once):\n", base, dbPath)
	for i, p := range people {
		fmt.Fprintf(stdout, "  %-24s %-10s %s\n", p.name, p.role, secrets[i])
	}
	fmt.Fprintf(stdout, "Try:\n  curl -s -H 'Authorization: Bearer %s' '%s/api/v1/cases?kind=dispute&status=open'\n", secrets[0], base)
	fmt.Fprintf(stdout, "Webhook secret for more events: %s\nCtrl-C stops it.\n", whsec)
	return <-done
}

func loopbackAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
