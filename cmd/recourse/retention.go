package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/webhooks"
)

const day = 24 * time.Hour

// retentionPolicy is the webhook inbox's retention from the settings.
func retentionPolicy(cfg config.Config) webhooks.RetentionPolicy {
	return webhooks.RetentionPolicy{PayloadAge: time.Duration(cfg.RetentionPayloadDays) * day,
		EventAge: time.Duration(cfg.RetentionEventsDays) * day}
}

// retentionCmd is `recourse retention run [--payload-days N] [--events-days
// N] [--json]`: one run of the job serve makes every
// RECOURSE_RETENTION_INTERVAL, with the RECOURSE_RETENTION_* settings
// unless the flags say otherwise; audited as cli:<os user>.
func retentionCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return errors.New("usage: recourse retention run [--payload-days N] [--events-days N] [--json]")
	}
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("retention run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	payloadDays := fs.Int("payload-days", cfg.RetentionPayloadDays, "empty payloads of applied events older than this many days (0: keep)")
	eventsDays := fs.Int("events-days", cfg.RetentionEventsDays, "delete applied events older than this many days (0: keep; at least 30)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg.RetentionPayloadDays, cfg.RetentionEventsDays = *payloadDays, *eventsDays
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx = cliContext(ctx, getenv)
	d, err := openMigrated(ctx, open)
	if err != nil {
		return err
	}
	defer d.Close()
	clk := clock.System{}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ret, err := webhooks.NewRetention(d, clk, log, audit.New(d, clk), nil, retentionPolicy(cfg))
	if err != nil {
		return err
	}
	if !ret.Enabled() {
		fmt.Fprintln(stdout, "retention is off: set RECOURSE_RETENTION_PAYLOAD_DAYS / RECOURSE_RETENTION_EVENTS_DAYS (or --payload-days / --events-days)")
		return nil
	}
	rep, err := ret.Run(ctx)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(rep); eerr != nil && err == nil {
			err = eerr
		}
		return err
	}
	if !rep.PayloadCutoff.IsZero() {
		fmt.Fprintf(stdout, "payloads emptied  %d (applied events created before %s)\n", rep.PayloadsEmptied, rep.PayloadCutoff.Format(time.RFC3339))
	}
	if !rep.EventCutoff.IsZero() {
		fmt.Fprintf(stdout, "events deleted    %d (applied events created before %s)\n", rep.EventsDeleted, rep.EventCutoff.Format(time.RFC3339))
	}
	if len(rep.PartitionsDropped) > 0 {
		fmt.Fprintf(stdout, "months dropped    %d (%s; %d pending or dead events of them kept)\n", len(rep.PartitionsDropped),
			strings.Join(rep.PartitionsDropped, ", "), rep.EventsMoved)
	}
	return err
}
