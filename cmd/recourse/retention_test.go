package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recourse retention run refuses a row age under 30 days, says why, and
// runs on a fresh database.
func TestRetentionCommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{"RECOURSE_SQLITE_PATH": filepath.Join(t.TempDir(), "r.db")}
	getenv := func(k string) string { return env[k] }
	err := run(context.Background(), []string{"retention", "run", "--events-days", "29"}, getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "redeliver") {
		t.Fatalf("29 days: %v", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"retention", "run", "--payload-days", "7", "--events-days", "30"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "payloads emptied  0") || !strings.Contains(out.String(), "events deleted    0") {
		t.Fatalf("report: %q", out.String())
	}
}

// serve runs the retention job where the worker runs: its first run comes
// at start, and its metrics are on /metrics.
func TestRetentionRunsInServe(t *testing.T) {
	t.Parallel()
	in := boot(t, map[string]string{"RECOURSE_SQLITE_PATH": filepath.Join(t.TempDir(), "r.db"),
		"RECOURSE_RETENTION_PAYLOAD_DAYS": "7", "RECOURSE_RETENTION_EVENTS_DAYS": "35"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, body := in.raw("/metrics", "", nil)
		if strings.Contains(body, "recourse_retention_events_deleted_total 0") &&
			strings.Contains(body, "recourse_retention_last_success_timestamp_seconds") &&
			!strings.Contains(body, "recourse_retention_last_success_timestamp_seconds 0\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retention run in /metrics:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
