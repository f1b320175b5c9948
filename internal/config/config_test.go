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
