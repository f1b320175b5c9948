package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/privacy"
)

// customerCmd is `recourse customer erase ID --reason R [--force] [--json]`:
// the same erasure as POST /api/v1/customers/{id}/erase, audited as
// cli:<os user> (whoever can run it holds the database's credentials, as
// an admin's).
func customerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const use = "usage: recourse customer erase ID --reason R [--force] [--json]"
	if len(args) < 2 || args[0] != "erase" {
		return errors.New(use)
	}
	id := args[1]
	fs := flag.NewFlagSet("customer erase", flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	reason := fs.String("reason", "", "why (the request's reference); kept in the audit log")
	force := fs.Bool("force", false, "erase although the customer has an open dispute case (its evidence is lost)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(use)
	}
	ctx = cliContext(ctx, getenv)
	d, err := openMigrated(ctx, open)
	if err != nil {
		return err
	}
	defer d.Close()
	clk := clock.System{}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := privacy.NewEraser(d, clk, audit.New(d, clk), log).Erase(ctx, privacy.Request{CustomerID: id, Reason: *reason, Force: *force})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "erased customer %s at %s (%d cases)\n", rep.CustomerID, rep.ErasedAt.Format("2006-01-02T15:04:05Z"), rep.Cases)
	tables := make([]string, 0, len(rep.Rows))
	for t := range rep.Rows {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		fmt.Fprintf(stdout, "  %-26s %d rows\n", t, rep.Rows[t])
	}
	return nil
}
