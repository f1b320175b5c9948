package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	stripeprovider "github.com/recourse-hq/recourse/billing/stripe"
	"github.com/recourse-hq/recourse/cases"
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
	auditLog := audit.New(d, clk)
	rec := webhooks.NewReconciler(d, webhooks.NewInbox(d), sc, clk, log, auditLog, nil, nil)
	if cfg.ReconcileStaleAfter > 0 {
		// Reads move cases as the service's worker would: the same SLA
		// policy and echo finder.
		policy, err := loadPolicy(ctx, cfg.PolicyFile, net.DefaultResolver)
		if err != nil {
			return err
		}
		store := billing.NewStore(d, clk, billing.WithFetcher(sc, cfg.StripeTimeout))
		_, caseMirror := mirrorFor(store)
		cs, err := cases.NewService(cases.Options{DB: d, Clock: clk, Audit: auditLog, Billing: caseMirror, SLA: &policy.SLA,
			Logger: log, Echoes: actions.Echoes{}})
		if err != nil {
			return err
		}
		rec.WithRefetch(webhooks.RefetchOptions{Reader: sc, Store: store, Cases: cs, StaleAfter: cfg.ReconcileStaleAfter}, nil)
	}
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
	if f := rep.Refetch; f != nil {
		printRefetch(w, f)
	}
}

func printRefetch(w io.Writer, f *webhooks.RefetchReport) {
	fmt.Fprintf(w, "refetched the stale objects of open cases (last synced before %s, %s ago)\n", f.Cutoff.Format(time.RFC3339), f.StaleAfter)
	fmt.Fprintf(w, "  objects     %d\n  stale       %d\n  checked     %d\n  changed     %d (Stripe's state differed and was newer: the mirror took it)\n"+
		"  fixed       %d (changes that reached their cases)\n  superseded  %d (an event newer than the read had arrived)\n  failed      %d\n",
		f.Objects, f.Stale, f.Checked, f.Changed, f.Fixed, f.Superseded, f.Failed)
	for _, o := range f.ChangedObjects {
		fmt.Fprintf(w, "  changed: %s %s: %s → %s (%d case(s))\n", o.Kind, o.ID, o.Before, o.After, o.Cases)
	}
	for _, o := range f.FailedObjects {
		fmt.Fprintf(w, "  failed: %s %s: %s\n", o.Kind, o.ID, o.Error)
	}
	if n := f.Changed - len(f.ChangedObjects); n > 0 {
		fmt.Fprintf(w, "  (and %d more changed)\n", n)
	}
	if n := f.Failed - len(f.FailedObjects); n > 0 {
		fmt.Fprintf(w, "  (and %d more failed)\n", n)
	}
}
