package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/pan"
	"github.com/recourse-hq/recourse/migrations"
	"github.com/recourse-hq/recourse/webhooks"
)

// dbFlags adds --database-url and --sqlite-path (defaulting from the
// environment) to fs and returns a function that opens the database.
func dbFlags(fs *flag.FlagSet, getenv func(string) string) func(ctx context.Context) (*db.DB, error) {
	def := config.Defaults()
	url := fs.String("database-url", getenv("DATABASE_URL"), "PostgreSQL URL; empty means SQLite (env DATABASE_URL)")
	path := def.SQLitePath
	if v := getenv("RECOURSE_SQLITE_PATH"); v != "" {
		path = v
	}
	sqlitePath := fs.String("sqlite-path", path, "SQLite file (env RECOURSE_SQLITE_PATH)")
	return func(ctx context.Context) (*db.DB, error) {
		return db.Open(ctx, *url, *sqlitePath, db.Options{MaxConns: 4})
	}
}

func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: recourse migrate up|status")
	}
	fs := flag.NewFlagSet("migrate "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	d, err := open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	switch args[0] {
	case "up":
		applied, err := migrations.Up(ctx, d, clock.System{}.Now)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "schema is current; nothing to apply")
		}
		for _, v := range applied {
			fmt.Fprintf(stdout, "applied %04d\n", v)
		}
		return nil
	case "status":
		list, err := migrations.List(ctx, d)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "VERSION\tNAME\tAPPLIED\n")
		for _, m := range list {
			at := "pending"
			if m.AppliedAt != nil {
				at = m.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%04d\t%s\t%s\n", m.Version, m.Name, at)
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown migrate command %q (want up or status)", args[0])
	}
}

func tokenCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: recourse token create --name N --role R | list | revoke ID")
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	name := fs.String("name", "", "who or what the token is for (create)")
	role := fs.String("role", "", "agent, analyst, supervisor or admin (create)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	d, err := open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := migrations.Up(ctx, d, clock.System{}.Now); err != nil {
		return err
	}
	store := auth.NewTokenStore(d, clock.System{})
	switch args[0] {
	case "create":
		r, err := auth.ParseRole(*role)
		if err != nil {
			return err
		}
		secret, tok, err := store.Create(ctx, pan.Mask(*name), r) // a name is text like any other
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "created token %d for %q with role %s; it is shown only this once\n", tok.ID, tok.Name, tok.Role)
		return nil
	case "list":
		toks, err := store.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "ID\tNAME\tROLE\tPREFIX\tCREATED\tREVOKED\n")
		for _, t := range toks {
			rev := "-"
			if t.RevokedAt != nil {
				rev = t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s…\t%s\t%s\n", t.ID, t.Name, t.Role, t.Prefix, t.CreatedAt.Format(time.RFC3339), rev)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("usage: recourse token revoke ID")
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return fmt.Errorf("token id must be a number: %q", fs.Arg(0))
		}
		if err := store.Revoke(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked token %d\n", id)
		return nil
	default:
		return fmt.Errorf("unknown token command %q (want create, list or revoke)", args[0])
	}
}

func replayCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	all := fs.Bool("all", false, "replay every dead-lettered event")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *all == (fs.NArg() == 1) || fs.NArg() > 1 {
		return errors.New("usage: recourse replay EVENT_ID | --all")
	}
	d, err := open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	inbox := webhooks.NewInbox(d)
	now := clock.System{}.Now()
	if *all {
		n, err := inbox.ReplayDead(ctx, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %d dead-lettered events; a running worker picks them up\n", n)
		return nil
	}
	rec, err := inbox.Replay(ctx, fs.Arg(0), now)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed %s (%s); a running worker picks it up\n", rec.EventID, rec.Type)
	return nil
}

// healthcheck probes a running instance's /readyz, for container health
// checks on images without curl.
func healthcheck(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "readiness URL to probe")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", *url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: status %d", *url, resp.StatusCode)
	}
	return nil
}
