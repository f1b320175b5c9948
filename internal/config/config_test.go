package config

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestEnvThenFlags(t *testing.T) {
	env := map[string]string{"RECOURSE_HTTP_ADDR": ":9000", "RECOURSE_STRIPE_WEBHOOK_SECRETS": " whsec_a , whsec_b,", "RECOURSE_WORKER_LEASE": "90s"}
	c, err := Load([]string{"--http-addr", "127.0.0.1:1"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:1" {
		t.Errorf("flag did not override env: %q", c.HTTPAddr)
	}
	if len(c.WebhookSecrets) != 2 || c.WebhookSecrets[1] != "whsec_b" {
		t.Errorf("secrets: %q", c.WebhookSecrets)
	}
	if c.WorkerLease != 90*time.Second || c.WebhookTolerance != 300*time.Second || !c.AutoMigrate {
		t.Errorf("durations/defaults wrong: %+v", c)
	}
}

func TestBadValuesNamed(t *testing.T) {
	for env, val := range map[string]string{"RECOURSE_WORKER_LEASE": "soon", "RECOURSE_DB_MAX_CONNS": "many", "RECOURSE_AUTO_MIGRATE": "perhaps", "RECOURSE_LOG_FORMAT": "xml"} {
		_, err := Load(nil, func(k string) string {
			if k == env {
				return val
			}
			return ""
		}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: error %v does not name the setting", env, val, err)
		}
	}
}

// Every setting is documented in the README.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		row := "| `" + s.Env + "` | `--" + s.Flag + "` |"
		if !strings.Contains(string(b), row) {
			t.Errorf("README lacks a row for %s (%s)", s.Env, row)
		}
	}
}

// Single sign-on is all or nothing, and its URLs are https unless they
// stay on this machine.
func TestOIDCSettings(t *testing.T) {
	on := map[string]string{
		"RECOURSE_OIDC_ISSUER":       "https://idp.example.com/realms/support",
		"RECOURSE_OIDC_CLIENT_ID":    "recourse",
		"RECOURSE_OIDC_REDIRECT_URL": "https://recourse.example.com/login/oidc/callback",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range on {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	load := func(env map[string]string) (Config, error) {
		return Load(nil, func(k string) string { return env[k] }, io.Discard)
	}
	c, err := load(on)
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDCIssuer != on["RECOURSE_OIDC_ISSUER"] || c.OIDCLabel != "Sign in with single sign-on" || c.OIDCClientSecret != "" {
		t.Fatalf("loaded %+v", c)
	}
	if c, err := load(nil); err != nil || c.OIDCIssuer != "" {
		t.Fatalf("off by default: %v %q", err, c.OIDCIssuer)
	}
	for _, ok := range []map[string]string{
		with("RECOURSE_OIDC_ISSUER", "http://127.0.0.1:5556/dex"),
		with("RECOURSE_OIDC_REDIRECT_URL", "http://localhost:8080/login/oidc/callback"),
		with("RECOURSE_OIDC_CLIENT_SECRET", "s3cret"),
	} {
		if _, err := load(ok); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"client id without issuer": {map[string]string{"RECOURSE_OIDC_CLIENT_ID": "x"}, "RECOURSE_OIDC_ISSUER"},
		"no client id":             {with("RECOURSE_OIDC_CLIENT_ID", ""), "RECOURSE_OIDC_CLIENT_ID"},
		"no redirect":              {with("RECOURSE_OIDC_REDIRECT_URL", ""), "RECOURSE_OIDC_REDIRECT_URL"},
		"plain http issuer":        {with("RECOURSE_OIDC_ISSUER", "http://idp.example.com"), "RECOURSE_OIDC_ISSUER"},
		"relative issuer":          {with("RECOURSE_OIDC_ISSUER", "idp.example.com"), "RECOURSE_OIDC_ISSUER"},
		"plain http redirect":      {with("RECOURSE_OIDC_REDIRECT_URL", "http://recourse.example.com/login/oidc/callback"), "RECOURSE_OIDC_REDIRECT_URL"},
		"redirect elsewhere":       {with("RECOURSE_OIDC_REDIRECT_URL", "https://recourse.example.com/callback"), "RECOURSE_OIDC_REDIRECT_URL"},
		"label too long":           {with("RECOURSE_OIDC_LABEL", strings.Repeat("x", 81)), "RECOURSE_OIDC_LABEL"},
	} {
		if _, err := load(tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v does not name %s", name, err, tc.want)
		}
	}
}

// Rate limits read rps:burst (0 is off) and trusted proxies CIDRs or
// addresses; bad values name their setting.
func TestRateLimitSettings(t *testing.T) {
	d := Defaults()
	if d.RateLimitToken.Off() || d.RateLimitIP.Off() || d.RateLimitConsole.Off() || d.RateLimitStripe.Off() || d.RateLimitEscalation.Off() || len(d.TrustedProxies) != 0 {
		t.Fatalf("defaults: %+v", d)
	}
	env := map[string]string{"RECOURSE_RATE_LIMIT_TOKEN": "0", "RECOURSE_RATE_LIMIT_IP": "2.5:7", "RECOURSE_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,2001:db8::/32"}
	c, err := Load(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.RateLimitToken.Off() || c.RateLimitIP.PerSecond != 2.5 || c.RateLimitIP.Burst != 7 {
		t.Errorf("rates: %+v %+v", c.RateLimitToken, c.RateLimitIP)
	}
	if len(c.TrustedProxies) != 3 || c.TrustedProxies[1].String() != "192.0.2.7/32" || c.TrustedProxies[2].String() != "2001:db8::/32" {
		t.Errorf("trusted proxies: %v", c.TrustedProxies)
	}
	for env, val := range map[string]string{"RECOURSE_RATE_LIMIT_IP": "lots", "RECOURSE_TRUSTED_PROXIES": "10.0.0.0/33", "RECOURSE_RATE_LIMIT_MAX_KEYS": "0"} {
		_, err := Load(nil, func(k string) string {
			if k == env {
				return val
			}
			return ""
		}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: error %v does not name the setting", env, val, err)
		}
	}
}

// Inbox rows may not be deleted before Stripe's 30 days are over.
func TestRetentionSettings(t *testing.T) {
	for val, ok := range map[string]bool{"0": true, "30": true, "365": true, "29": false, "1": false, "-1": false} {
		_, err := Load(nil, func(k string) string {
			if k == "RECOURSE_RETENTION_EVENTS_DAYS" {
				return val
			}
			return ""
		}, io.Discard)
		if (err == nil) != ok {
			t.Errorf("RECOURSE_RETENTION_EVENTS_DAYS=%s: error %v", val, err)
		}
		if err != nil && !strings.Contains(err.Error(), "30") {
			t.Errorf("the refusal does not say why: %v", err)
		}
	}
}
