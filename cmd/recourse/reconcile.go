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

	stripeprovider "github.com/recourse-hq/recourse/billing/stripe"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/webhooks"
)

// reconcileCmd is `recourse reconcile [--since 72h|TIME] [--json]`: one
// reconciliation run, as the periodic job makes (RECOURSE_RECONCILE_INTERVAL),
// reported on stdout. Without --since it starts where the last successful
// run ended (RECOURSE_RECONCILE_WINDOW back on the first). The events it
// feeds are applied by the service's worker.
func reconcileCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	since := fs.String("since", "", "a duration back from now (72h) or an RFC 3339 time; default: from the last reconciled point")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The Stripe and reconcile settings are serve's, from the environment.
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		return err
	}
	if cfg.StripeAPIKey == "" {
		return errors.New("reconcile needs RECOURSE_STRIPE_API_KEY (a restricted key that may read events is enough)")
	}
	sc, err := stripeprovider.New(stripeprovider.Config{APIKey: cfg.StripeAPIKey, APIBase: cfg.StripeAPIBase,
		Timeout: cfg.StripeTimeout, MaxNetworkRetries: int64(cfg.StripeRetries)})
	if err != nil {
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
	rec := webhooks.NewReconciler(d, webhooks.NewInbox(d), sc, clk, log, audit.New(d, clk), nil, nil)
	var from time.Time
	switch {
	case *since == "":
		if from, err = rec.Since(ctx, cfg.ReconcileWindow); err != nil {
			return err
		}
	default:
		if dur, derr := time.ParseDuration(*since); derr == nil && dur > 0 {
			from = clk.Now().Add(-dur)
		} else if from, err = time.Parse(time.RFC3339, *since); err != nil {
			return fmt.Errorf("--since must be a positive duration (72h) or an RFC 3339 time, not %q", *since)
		}
	}
	rep, err := rec.Run(ctx, from)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(rep); eerr != nil && err == nil {
			err = eerr
		}
	} else {
		printReconcile(stdout, rep)
	}
	return err
}

func printReconcile(w io.Writer, rep webhooks.ReconcileReport) {
	fmt.Fprintf(w, "reconciled Stripe events created %s → %s\n", rep.Since.Format(time.RFC3339), rep.Until.Format(time.RFC3339))
	if rep.Clamped {
		fmt.Fprintln(w, "  (started at the edge of Stripe's 30 days of events: older ones cannot be listed)")
	}
	fmt.Fprintf(w, "  listed   %d\n  present  %d\n  missing  %d (stored in the inbox; the worker applies them)\n", rep.Listed, rep.Present, rep.Missing)
	if rep.Invalid > 0 {
		fmt.Fprintf(w, "  invalid  %d (listed but not usable events; see the log)\n", rep.Invalid)
	}
	if len(rep.MissingIDs) > 0 {
		more := ""
		if rep.Missing > len(rep.MissingIDs) {
			more = fmt.Sprintf(" and %d more", rep.Missing-len(rep.MissingIDs))
		}
		fmt.Fprintf(w, "  missing events: %s%s\n", strings.Join(rep.MissingIDs, " "), more)
	}
}
