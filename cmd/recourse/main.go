// Command recourse is the Recourse service and its operator tools:
//
//	recourse serve                       run the HTTP service and webhook worker
//	recourse migrate up|status           apply or list schema migrations
//	recourse user create --email E --name N --role R [--teams T,T] [--password-stdin]   add a user
//	recourse user password EMAIL --password-stdin   set a user's console password
//	recourse user list | deactivate EMAIL|ID   list users, or deactivate one (revoking their tokens)
//	recourse user link EMAIL|ID          print a one-time password link (RECOURSE_PUBLIC_URL)
//	recourse token create --user EMAIL [--name LABEL] [--role R]   print a new API token (once)
//	recourse token list | revoke ID      list or revoke API tokens
//	recourse replay EVENT_ID | --all     put dead-lettered webhook events back
//	recourse retention run               prune the webhook inbox by age once
//	recourse customer erase ID --reason R   erase a customer's personal data
//	recourse facts import FILE.csv|FILE.jsonl   back-fill evidence facts
//	recourse demo                        play a realistic business as signed Stripe events
//	recourse healthcheck [--url URL]     exit 0 if /readyz answers 200
//	recourse version                     print the version
//
// Settings come from RECOURSE_* environment variables and DATABASE_URL;
// flags override them (recourse serve -h lists them).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// stdin is where --password-stdin reads; tests replace it.
var stdin io.Reader = os.Stdin

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "recourse:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: recourse <command> [flags]

commands:
  serve                              run the HTTP service and webhook worker
  migrate up | status                apply pending migrations, or list them
  user create --email E --name N --role R [--teams T,T] [--password-stdin]
                                     add a user (a person who holds API tokens; with
                                     --password-stdin, who signs in to the console)
  user password EMAIL|ID --password-stdin
                                     set a user's console password (first line of stdin)
  user link EMAIL|ID                 print a one-time link that lets the user set their console
                                     password (base RECOURSE_PUBLIC_URL; works once, 24h)
  user list                          list users
  user deactivate EMAIL|ID           deactivate a user and revoke all their tokens
  token create --user EMAIL [--name LABEL] [--role R]
                                     create an API token for a user and print it once
  token list                         list API tokens (never their secrets)
  token revoke ID                    revoke an API token
  replay EVENT_ID | --all            put dead-lettered webhook events back to pending
  reconcile [--since 72h|TIME] [--json]
                                     list Stripe's events and feed the inbox any it lacks
                                     (from the last reconciled point by default)
  retention run [--payload-days N] [--events-days N] [--json]
                                     prune the webhook inbox once (RECOURSE_RETENTION_*)
  customer erase ID --reason R       erase a customer's personal data (GDPR art. 17; audited)
  export cases|audit|webhook-events [--format csv|jsonl] [filters]
                                     stream a list as CSV or JSON lines to stdout
  facts import [--customer-column C] FILE.csv|FILE.jsonl
                                     back-fill evidence facts (batches of 1,000)
  demo [--url URL --secret S]        play a realistic business as signed Stripe events
  healthcheck [--url URL]            exit 0 if /readyz answers 200 (container health checks)
  version                            print the version

Settings come from RECOURSE_* environment variables and DATABASE_URL;
flags override them. 'recourse serve -h' lists every setting.
`

// run is the whole program, callable from tests: args without the program
// name, the environment through getenv, output to stdout and stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return migrateCmd(ctx, rest, getenv, stdout, stderr)
	case "token":
		return tokenCmd(ctx, rest, getenv, stdout, stderr)
	case "user":
		return userCmd(ctx, rest, getenv, stdout, stderr)
	case "replay":
		return replayCmd(ctx, rest, getenv, stdout, stderr)
	case "export":
		return exportCmd(ctx, rest, getenv, stdout, stderr)
	case "reconcile":
		return reconcileCmd(ctx, rest, getenv, stdout, stderr)
	case "retention":
		return retentionCmd(ctx, rest, getenv, stdout, stderr)
	case "customer":
		return customerCmd(ctx, rest, getenv, stdout, stderr)
	case "facts":
		return factsCmd(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return demoCmd(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "recourse", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
