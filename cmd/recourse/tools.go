package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/pan"
	"github.com/recourse-hq/recourse/migrations"
	"github.com/recourse-hq/recourse/web"
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

// cliContext returns ctx carrying the operator at this terminal as the
// actor (cli:<os user>), so what the command changes is audited as theirs.
func cliContext(ctx context.Context, getenv func(string) string) context.Context {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = getenv("USER")
	}
	return auth.WithPrincipal(ctx, auth.CLIPrincipal(name))
}

// openMigrated opens the database and applies pending migrations.
func openMigrated(ctx context.Context, open func(context.Context) (*db.DB, error)) (*db.DB, error) {
	d, err := open(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Up(ctx, d, clock.System{}.Now); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// findUser resolves --user: an email, or a numeric user id.
func findUser(ctx context.Context, users *auth.UserStore, ref string) (auth.User, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return users.Get(ctx, id)
	}
	return users.ByEmail(ctx, ref)
}

func tokenCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: recourse token create --user EMAIL [--name LABEL] [--role R] | list | revoke ID")
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	userRef := fs.String("user", "", "the token's user, by email or id (create)")
	name := fs.String("name", "", "a label for the token; without --user, the name of the person it is for (create)")
	role := fs.String("role", "", "agent, analyst, supervisor or admin; with --user, defaults to the user's role and may not exceed it (create)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx = cliContext(ctx, getenv)
	d, err := openMigrated(ctx, open)
	if err != nil {
		return err
	}
	defer d.Close()
	auditLog := audit.New(d, clock.System{})
	store := auth.NewTokenStore(d, clock.System{}).WithAuditor(auditLog.ForAuth())
	switch args[0] {
	case "create":
		var (
			secret string
			tok    auth.Token
		)
		if *userRef != "" {
			u, err := findUser(ctx, auth.NewUserStore(d, clock.System{}, nil), *userRef)
			if err != nil {
				return err
			}
			var r auth.Role
			if *role != "" {
				if r, err = auth.ParseRole(*role); err != nil {
					return err
				}
			}
			label := pan.Mask(*name) // a name is text like any other
			if label == "" {
				label = "cli"
			}
			secret, tok, err = store.Issue(ctx, u.ID, label, r)
			if err != nil {
				return err
			}
		} else {
			// Before users: --name named the person; that person is the
			// user with that display name and no email.
			r, err := auth.ParseRole(*role)
			if err != nil {
				return err
			}
			if secret, tok, err = store.Create(ctx, pan.Mask(*name), r); err != nil {
				return err
			}
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "created token %d %q for user %d with role %s; it is shown only this once\n", tok.ID, tok.Name, tok.UserID, tok.Role)
		return nil
	case "list":
		toks, err := store.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "ID\tUSER\tNAME\tROLE\tPREFIX\tCREATED\tREVOKED\n")
		for _, t := range toks {
			rev := "-"
			if t.RevokedAt != nil {
				rev = t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s…\t%s\t%s\n", t.ID, t.UserID, t.Name, t.Role, t.Prefix, t.CreatedAt.Format(time.RFC3339), rev)
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

func userCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const usage = "usage: recourse user create --email E --name N --role R [--teams T,T] [--password-stdin] | password EMAIL|ID --password-stdin | link EMAIL|ID | list | deactivate EMAIL|ID | scope EMAIL|ID (--teams T,T --business-lines B,B | --clear)"
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("user "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	email := fs.String("email", "", "the user's email (create)")
	name := fs.String("name", "", "the user's display name (create)")
	role := fs.String("role", "", "agent, analyst, supervisor or admin (create)")
	teams := fs.String("teams", "", "comma-separated team memberships, e.g. disputes,risk (create); the teams of the scope (scope)")
	businessLines := fs.String("business-lines", "", "comma-separated business lines of the scope (scope)")
	clear := fs.Bool("clear", false, "remove the user's scope: unrestricted again (scope)")
	pwStdin := fs.Bool("password-stdin", false, "read the console password from the first line of standard input (create, password)")
	rest, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	var password string
	if *pwStdin {
		if password, err = readPassword(stdin); err != nil {
			return err
		}
		if err := auth.ValidatePassword(password); err != nil {
			return err
		}
	}
	ctx = cliContext(ctx, getenv)
	d, err := openMigrated(ctx, open)
	if err != nil {
		return err
	}
	defer d.Close()
	users := auth.NewUserStore(d, clock.System{}, audit.New(d, clock.System{}).ForAuth()).WithKnownTeams(teamNames())
	switch args[0] {
	case "create":
		r, err := auth.ParseRole(*role)
		if err != nil {
			return err
		}
		u, err := users.Create(ctx, auth.NewUser{Email: *email, DisplayName: pan.Mask(*name), Role: r, Teams: splitList(*teams)})
		if err != nil {
			return err
		}
		if *pwStdin {
			if err := users.SetPassword(ctx, u.ID, password); err != nil {
				return fmt.Errorf("user %d created, but setting the password failed: %w", u.ID, err)
			}
		}
		fmt.Fprintf(stdout, "created user %d %s <%s> (%s)\n", u.ID, u.DisplayName, deref(u.Email), u.Role)
		return nil
	case "password":
		if len(rest) != 1 || !*pwStdin {
			return errors.New("usage: echo PASSWORD | recourse user password EMAIL|ID --password-stdin")
		}
		u, err := findUser(ctx, users, rest[0])
		if err != nil {
			return err
		}
		if err := users.SetPassword(ctx, u.ID, password); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "set the console password of user %d %s\n", u.ID, u.DisplayName)
		return nil
	case "list":
		list, err := users.All(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "ID\tEMAIL\tNAME\tROLE\tTEAMS\tSCOPE\tACTIVE\n")
		for _, u := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%t\n", u.ID, deref(u.Email), u.DisplayName, u.Role, strings.Join(u.Teams, ","), u.Scope, u.Active)
		}
		return tw.Flush()
	case "link":
		if len(rest) != 1 {
			return errors.New("usage: recourse user link EMAIL|ID")
		}
		ttl := auth.DefaultPasswordLinkTTL
		if v := getenv("RECOURSE_PASSWORD_LINK_TTL"); v != "" {
			if ttl, err = time.ParseDuration(v); err != nil || ttl < time.Minute {
				return fmt.Errorf("RECOURSE_PASSWORD_LINK_TTL must be a duration of at least 1m, like 24h (got %q)", v)
			}
		}
		u, err := findUser(ctx, users, rest[0])
		if err != nil {
			return err
		}
		tok, link, err := users.CreatePasswordLink(ctx, u.ID, ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, web.PasswordLinkURL(getenv("RECOURSE_PUBLIC_URL"), tok))
		fmt.Fprintf(stderr, "one-time password link for user %d %s <%s>: works once, until %s\n", u.ID, u.DisplayName, deref(u.Email), link.ExpiresAt.Format(time.RFC3339))
		return nil
	case "deactivate":
		if len(rest) != 1 {
			return errors.New("usage: recourse user deactivate EMAIL|ID")
		}
		u, err := findUser(ctx, users, rest[0])
		if err != nil {
			return err
		}
		if u, err = users.Deactivate(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deactivated user %d %s; every token they held is revoked\n", u.ID, u.DisplayName)
		return nil
	case "scope":
		// Scoping (README "Scoping"): what the user sees and touches, applied
		// to their tokens and console sessions at their next request.
		if len(rest) != 1 || (*clear == (*teams != "" || *businessLines != "")) {
			return errors.New("usage: recourse user scope EMAIL|ID --teams T,T --business-lines B,B | --clear")
		}
		u, err := findUser(ctx, users, rest[0])
		if err != nil {
			return err
		}
		sc := auth.Scope{Teams: splitList(*teams), BusinessLines: splitList(*businessLines)}
		if u, err = users.Update(ctx, u.ID, auth.UserPatch{Scope: &sc}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "scope of user %d %s: %s\n", u.ID, u.DisplayName, u.Scope)
		return nil
	default:
		return fmt.Errorf("unknown user command %q (want create, password, link, list, deactivate or scope)", args[0])
	}
}

// splitList reads a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	out := []string{}
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// teamNames are the teams a scope may name: the case vocabulary's.
func teamNames() []string {
	var out []string
	for _, t := range cases.Teams() {
		out = append(out, string(t))
	}
	return out
}

// parseInterleaved parses fs's flags wherever they stand among the
// positional arguments (user password EMAIL --password-stdin) and returns
// the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// readPassword returns the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("--password-stdin: standard input is empty; pipe the password in on its first line")
	}
	return line, nil
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
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
	ctx = cliContext(ctx, getenv)
	d, err := openMigrated(ctx, open)
	if err != nil {
		return err
	}
	defer d.Close()
	inbox := webhooks.NewInbox(d).WithAudit(audit.New(d, clock.System{}))
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
