package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/export"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/webhooks"
)

const exportUsage = "usage: recourse export cases|audit|webhook-events [--format csv|jsonl] [filters]"

// exportCmd is `recourse export LIST`: the same streams as the API's
// ?format=csv|jsonl, straight from the database to stdout, for a shell or
// a cron job without a token.
func exportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(exportUsage)
	}
	what, args := args[0], args[1:]
	fs := flag.NewFlagSet("export "+what, flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	format := fs.String("format", "csv", "csv or jsonl")
	var af audit.Filter
	var wf webhooks.Filter
	var from, to, status, query string
	switch what {
	case "cases":
		fs.StringVar(&query, "query", "", "GET /api/v1/cases filters as a query string, e.g. status=open&kind=dispute&sort=sla")
	case "audit":
		fs.StringVar(&af.CaseID, "case", "", "only entries of this case")
		fs.StringVar(&af.Actor, "actor", "", "only entries by this actor")
		fs.StringVar(&af.Action, "action", "", "only this action, e.g. case.escalate")
		fs.StringVar(&from, "from", "", "RFC 3339 time: entries at or after")
		fs.StringVar(&to, "to", "", "RFC 3339 time: entries before")
	case "webhook-events":
		fs.StringVar(&status, "status", "", "only events in this status (e.g. dead)")
		fs.StringVar(&wf.Type, "type", "", "only events of this type")
	default:
		return fmt.Errorf("unknown export %q; %s", what, exportUsage)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	f := export.Format(*format)
	if f != export.CSV && f != export.JSONL {
		return fmt.Errorf("--format must be csv or jsonl, not %q", *format)
	}
	var err error
	for _, tv := range []struct {
		s   string
		dst *time.Time
	}{{from, &af.From}, {to, &af.To}} {
		if tv.s == "" {
			continue
		}
		if *tv.dst, err = time.Parse(time.RFC3339, tv.s); err != nil {
			return fmt.Errorf("--from/--to must be RFC 3339 times: %w", err)
		}
	}
	if status != "" {
		if wf.Status, err = webhooks.ParseStatus(status); err != nil {
			return err
		}
	}
	ctx = cliContext(ctx, getenv)
	d, err := openMigrated(ctx, open)
	if err != nil {
		return err
	}
	defer d.Close()
	var n int
	switch what {
	case "cases":
		q, perr := url.ParseQuery(query)
		if perr != nil {
			return fmt.Errorf("--query: %w", perr)
		}
		cf, perr := cases.ParseFilter(q)
		if perr != nil {
			return perr
		}
		cs, perr := cases.NewService(cases.Options{DB: d, Clock: clock.System{}, Logger: slog.New(slog.DiscardHandler)})
		if perr != nil {
			return perr
		}
		n, err = export.Write(ctx, stdout, f, cases.ExportColumns, export.Pages(func(ctx context.Context, p httpx.PageRequest) (httpx.List[cases.Case], error) {
			return cs.List(ctx, cf, p)
		}))
	case "audit":
		log := audit.New(d, clock.System{})
		n, err = export.Write(ctx, stdout, f, audit.ExportColumns, export.Pages(func(ctx context.Context, p httpx.PageRequest) (httpx.List[audit.Entry], error) {
			return log.List(ctx, af, p)
		}))
	case "webhook-events":
		inbox := webhooks.NewInbox(d)
		n, err = export.Write(ctx, stdout, f, webhooks.ExportColumns, export.Pages(func(ctx context.Context, p httpx.PageRequest) (httpx.List[webhooks.Record], error) {
			return inbox.List(ctx, wf, p)
		}))
	}
	if err != nil {
		return fmt.Errorf("export %s: after %d rows: %w", what, n, err)
	}
	fmt.Fprintf(stderr, "exported %d rows\n", n)
	return nil
}
