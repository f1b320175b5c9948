package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

const testSecret = "whsec_e2e_secret"

// instance is one `recourse serve` booted through run().
type instance struct {
	t   *testing.T
	url string
	// api is the client for the API: every exchange is checked against
	// the OpenAPI document (apispectest.Transport).
	api  *http.Client
	env  map[string]string
	stop func() error
	logs func() string // everything serve logged so far
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func (in *instance) getenv(k string) string { return in.env[k] }

// boot starts serve with env and waits for /readyz.
// rateLimitSettings are the abuse limits boot turns off unless set.
var rateLimitSettings = []string{"RECOURSE_RATE_LIMIT_TOKEN", "RECOURSE_RATE_LIMIT_IP", "RECOURSE_RATE_LIMIT_CONSOLE",
	"RECOURSE_RATE_LIMIT_STRIPE", "RECOURSE_RATE_LIMIT_ESCALATION"}

func boot(t *testing.T, env map[string]string) *instance {
	t.Helper()
	addr := env["RECOURSE_HTTP_ADDR"] // preset when other settings need the URL (single sign-on's redirect)
	if addr == "" {
		addr = freeAddr(t)
	}
	in := &instance{t: t, url: "http://" + addr, env: env, api: apispectest.Client(t)}
	env["RECOURSE_HTTP_ADDR"] = addr
	if env["RECOURSE_STRIPE_WEBHOOK_SECRETS"] == "" {
		env["RECOURSE_STRIPE_WEBHOOK_SECRETS"] = testSecret
	}
	env["RECOURSE_WORKER_POLL_INTERVAL"] = "50ms"
	// The abuse limits are off unless a test sets them: the harness fires
	// bursts of API calls, console pages and webhooks from one address.
	for _, k := range rateLimitSettings {
		if env[k] == "" {
			env[k] = "0"
		}
	}
	if env["RECOURSE_LOG_LEVEL"] == "" {
		env["RECOURSE_LOG_LEVEL"] = "warn"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	var mu sync.Mutex
	in.logs = func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
	go func() { done <- run(ctx, []string{"serve"}, in.getenv, io.Discard, lockedWriter{&logs, &mu}) }()
	var once sync.Once
	var stopErr error
	in.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = fmt.Errorf("serve did not stop within 30s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = in.stop() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := in.api.Get(in.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return in
			}
		}
		select {
		case err := <-done:
			mu.Lock()
			t.Fatalf("serve exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered 200: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (in *instance) token(role string) string {
	in.t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"token", "create", "--name", "e2e-" + role, "--role", role}, in.getenv, &out, &errb); err != nil {
		in.t.Fatalf("token create: %v %s", err, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if !strings.HasPrefix(tok, "rct_") || strings.Contains(errb.String(), tok) {
		in.t.Fatalf("token output wrong: %q / %q", tok, errb.String())
	}
	return tok
}

func (in *instance) do(method, path, token string, body []byte, header map[string]string) (int, map[string]any) {
	in.t.Helper()
	req, _ := http.NewRequest(method, in.url+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := in.api.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func signedEvent(id, typ string) ([]byte, string) {
	p := []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"data":{"object":{"id":"cus_e2e","object":"customer"}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":%q}`, id, time.Now().Unix(), typ))
	h := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: p, Secret: testSecret, Timestamp: time.Now()}).Header
	return p, h
}

func (in *instance) waitStatus(token, eventID, want string) {
	in.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, m := in.do("GET", "/api/v1/webhook-events/"+eventID, token, nil, nil)
		if code == 200 && m["status"] == want {
			return
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("event %s: %d %v, want status %s", eventID, code, m, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeEndToEnd(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin := in.token("admin")
			agent := in.token("agent")

			if code, m := in.do("GET", "/healthz", "", nil, nil); code != 200 || m["status"] != "ok" {
				t.Fatalf("healthz: %d %v", code, m)
			}
			p, sig := signedEvent("evt_e2e_1", "product.created")
			if code, m := in.do("POST", "/webhooks/stripe", "", p, map[string]string{"Stripe-Signature": sig}); code != 200 {
				t.Fatalf("deliver: %d %v", code, m)
			}
			in.waitStatus(admin, "evt_e2e_1", "ignored")
			if code, _ := in.do("GET", "/api/v1/webhook-events", agent, nil, nil); code != 403 {
				t.Fatalf("agent listing events: %d", code)
			}
			// Admins manage tokens over the API too; agents may not.
			if code, _ := in.do("GET", "/api/v1/tokens", agent, nil, nil); code != 403 {
				t.Fatalf("agent listing tokens: %d", code)
			}
			code, robin := in.do("POST", "/api/v1/users", admin, []byte(`{"email":"robin@example.com","display_name":"Robin","role":"analyst"}`), nil)
			if code != 201 {
				t.Fatalf("create user: %d %v", code, robin)
			}
			code, tok := in.do("POST", "/api/v1/tokens", admin, []byte(fmt.Sprintf(`{"user_id":%v,"name":"laptop"}`, robin["id"])), nil)
			if code != 201 || !strings.HasPrefix(fmt.Sprint(tok["token"]), "rct_") {
				t.Fatalf("create token: %d %v", code, tok)
			}
			if code, _ := in.do("GET", "/api/v1/cases", tok["token"].(string), nil, nil); code != 200 {
				t.Fatalf("new token: %d", code)
			}
			if code, _ := in.do("DELETE", fmt.Sprintf("/api/v1/tokens/%v", tok["id"]), admin, nil, nil); code != 204 {
				t.Fatalf("revoke: %d", code)
			}
			if code, _ := in.do("GET", "/api/v1/cases", tok["token"].(string), nil, nil); code != 401 {
				t.Fatalf("revoked token: %d", code)
			}
			if code, _ := in.do("POST", "/api/v1/tokens", admin, []byte(fmt.Sprintf(`{"user_id":%v,"name":"x","role":"root"}`, robin["id"])), nil); code != 400 {
				t.Fatalf("bad role: %d", code)
			}
			if code, m := in.do("GET", "/api/v1/nope", admin, nil, nil); code != 404 || m["error"] == nil {
				t.Fatalf("unknown route: %d %v", code, m)
			}
			resp, err := in.api.Get(in.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{
				"recourse_webhook_events_received_total 1",
				`recourse_http_requests_total{method="POST",route="/webhooks/stripe",status="200"} 1`,
				"recourse_webhook_inbox_backlog 0",
				`recourse_webhook_events_processed_total{outcome="ignored"} 1`,
				"recourse_http_request_duration_seconds_bucket",
				`recourse_actions_total{outcome="failed",type="refund"} 0`,
				`recourse_action_approvals_requested_total{type="refund"} 0`,
				"recourse_actions_executing 0",
			} {
				if !strings.Contains(string(b), want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			if err := in.stop(); err != nil {
				t.Fatalf("graceful stop: %v", err)
			}
		})
	}
}

func TestMigrateAndVersionCommands(t *testing.T) {
	env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "status"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pending") {
		t.Fatalf("status before up: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "up"}, getenv, &out, io.Discard); err != nil || !strings.Contains(out.String(), "applied 0001") {
		t.Fatalf("up: %v %s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "up"}, getenv, &out, io.Discard); err != nil || !strings.Contains(out.String(), "nothing to apply") {
		t.Fatalf("second up: %v %s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"version"}, getenv, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "recourse ") {
		t.Fatalf("version: %v %s", err, out.String())
	}
	if err := run(context.Background(), []string{"token", "create", "--name", "x", "--role", "root"}, getenv, io.Discard, io.Discard); err == nil {
		t.Fatal("token with unknown role accepted")
	}
	if err := run(context.Background(), []string{"bogus"}, getenv, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := run(context.Background(), []string{"serve", "--worker-concurrency", "0"}, getenv, io.Discard, io.Discard); err == nil {
		t.Fatal("bad setting accepted")
	}
}

func TestServeWithoutAutoMigrateIsNotReady(t *testing.T) {
	env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "RECOURSE_AUTO_MIGRATE": "false", "RECOURSE_HTTP_ADDR": freeAddr(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	}()
	defer func() { cancel(); <-done }()
	var code int
	for i := 0; i < 200; i++ {
		resp, err := apispectest.Client(t).Get("http://" + env["RECOURSE_HTTP_ADDR"] + "/readyz")
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with pending migrations = %d, want 503", code)
	}
}
