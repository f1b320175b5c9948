// Package config reads Recourse's settings from RECOURSE_* environment
// variables (and DATABASE_URL), with command-line flags overriding them.
package config

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/recourse-hq/recourse/internal/ratelimit"
)

// Config is every setting of the service. The zero value is not useful: use
// Load, or Defaults for tests.
type Config struct {
	HTTPAddr    string
	DatabaseURL string
	SQLitePath  string
	// ReportingDatabaseURL, when set, is a PostgreSQL read replica the
	// reports (GET /reports/{name}) read from instead of DatabaseURL.
	ReportingDatabaseURL string
	DBMaxConns           int
	AutoMigrate          bool
	WebhookSecrets       []string
	WebhookTolerance     time.Duration
	WebhookMaxBody       int64
	WebhookCommitters    int
	APIMaxBody           int64
	ReadHeaderTimeout    time.Duration
	ReadTimeout          time.Duration
	WriteTimeout         time.Duration
	IdleTimeout          time.Duration
	ShutdownTimeout      time.Duration
	WorkerEnabled        bool
	WorkerConcurrency    int
	WorkerBatch          int
	WorkerMaxAttempts    int
	WorkerLease          time.Duration
	WorkerPoll           time.Duration
	WorkerBackoffBase    time.Duration
	WorkerBackoffMax     time.Duration
	LogLevel             string
	LogFormat            string
	StripeAPIKey         string
	StripeAPIBase        string
	StripeTimeout        time.Duration
	StripeRetries        int
	PolicyFile           string
	SweepInterval        time.Duration
	// ConsoleIdleTimeout ends a console session unused this long.
	ConsoleIdleTimeout time.Duration
	// ConsoleSessionMax ends a console session this long after sign-in.
	ConsoleSessionMax time.Duration
	// ConsoleSecureCookies marks the session cookie Secure even when the
	// request did not arrive over TLS (TLS ends at a proxy).
	ConsoleSecureCookies bool
	// EscalationSources are the desks that may post tickets to
	// /webhooks/escalations/{name}: "name:type:secret,…" (escalations).
	EscalationSources string
	// PasswordLinkTTL is how long a one-time password link works.
	PasswordLinkTTL time.Duration
	// PublicURL is the console's address as users reach it, for links
	// (password links, cases in notifications).
	PublicURL string
	// Notification delivery (notifications): poll interval, the events
	// feed's settle delay it waits out, per-call timeout and retries.
	NotifyPoll        time.Duration
	NotifySettle      time.Duration
	NotifyTimeout     time.Duration
	NotifyMaxAttempts int
	NotifyBackoffBase time.Duration
	NotifyBackoffMax  time.Duration
	// Reconciliation with the provider's event list (webhooks.Reconciler):
	// every ReconcileInterval (0: off), from the last reconciled point or
	// ReconcileWindow back on the first run.
	ReconcileInterval time.Duration
	ReconcileWindow   time.Duration
	// ReconcileStaleAfter: each run also reads at Stripe the objects behind
	// open cases whose mirror was last synced longer ago than this (0: off).
	ReconcileStaleAfter time.Duration
	// Retention of the webhook inbox (webhooks.Retention): the raw payload
	// of an applied event older than RetentionPayloadDays is emptied, an
	// applied row older than RetentionEventsDays deleted (0: never; at
	// least 30), every RetentionInterval where the worker runs.
	RetentionPayloadDays int
	RetentionEventsDays  int
	RetentionInterval    time.Duration
	// OIDC* configure console sign-in through an OpenID Connect provider;
	// an empty OIDCIssuer turns single sign-on off.
	OIDCIssuer, OIDCClientID, OIDCClientSecret, OIDCRedirectURL, OIDCLabel string
	// Abuse limits (internal/ratelimit): a token bucket per API token, per
	// client address (before authentication), per console user, per
	// address on POST /webhooks/stripe and per source and address on the
	// escalation webhooks; the zero Rate is off. RateLimitMaxKeys caps the
	// buckets each limit keeps.
	RateLimitToken, RateLimitIP, RateLimitConsole, RateLimitStripe, RateLimitEscalation ratelimit.Rate
	RateLimitMaxKeys                                                                    int
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when finding a request's client address; empty: the peer's address.
	TrustedProxies []*net.IPNet
}

// Setting documents one configuration knob; the README table lists these.
type Setting struct {
	Env, Flag, Default, Help string
}

// settings is the single list of knobs: environment name, flag, default, help.
var settings = []Setting{
	{"RECOURSE_HTTP_ADDR", "http-addr", ":8080", "address the HTTP server listens on"},
	{"DATABASE_URL", "database-url", "", "PostgreSQL URL (postgres://…); empty means the embedded SQLite file"},
	{"RECOURSE_SQLITE_PATH", "sqlite-path", "./data/recourse.db", "SQLite file used when DATABASE_URL is empty"},
	{"RECOURSE_REPORTING_DATABASE_URL", "reporting-database-url", "", "PostgreSQL URL (postgres://…) of a read replica the reports (/api/v1/reports/…) read from; empty reads the main database; needs DATABASE_URL to be PostgreSQL too"},
	{"RECOURSE_DB_MAX_CONNS", "db-max-conns", "20", "maximum open PostgreSQL connections (SQLite always uses one writer)"},
	{"RECOURSE_AUTO_MIGRATE", "migrate", "true", "apply pending migrations when serve starts"},
	{"RECOURSE_STRIPE_WEBHOOK_SECRETS", "stripe-webhook-secrets", "", "comma-separated Stripe webhook signing secrets (whsec_…); any one may match, for rotation"},
	{"RECOURSE_ESCALATION_SOURCES", "escalation-sources", "", "desks that post escalated tickets to /webhooks/escalations/{name}: name:type:secret,… (type generic = Standard Webhooks, secret whsec_…; type zendesk = Zendesk webhook signing secret)"},
	{"RECOURSE_WEBHOOK_TOLERANCE", "webhook-tolerance", "300s", "how old a Stripe-Signature timestamp may be"},
	{"RECOURSE_WEBHOOK_COMMITTERS", "webhook-committers", "1", "group-commit loops writing acknowledged deliveries to the inbox at once"},
	{"RECOURSE_WEBHOOK_MAX_BODY", "webhook-max-body", "1048576", "largest webhook body accepted, in bytes (larger gets 413)"},
	{"RECOURSE_API_MAX_BODY", "api-max-body", "1048576", "largest API request body, in bytes"},
	{"RECOURSE_HTTP_READ_HEADER_TIMEOUT", "read-header-timeout", "5s", "time allowed to read request headers"},
	{"RECOURSE_HTTP_READ_TIMEOUT", "read-timeout", "30s", "time allowed to read a whole request"},
	{"RECOURSE_HTTP_WRITE_TIMEOUT", "write-timeout", "30s", "time allowed to write a response"},
	{"RECOURSE_HTTP_IDLE_TIMEOUT", "idle-timeout", "120s", "how long an idle keep-alive connection is kept"},
	{"RECOURSE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "how long a graceful shutdown waits for in-flight work"},
	{"RECOURSE_WORKER_ENABLED", "worker", "true", "run the webhook inbox worker in this process"},
	{"RECOURSE_WORKER_CONCURRENCY", "worker-concurrency", "4", "worker loops in this process, each applying one shard of the customers' events"},
	{"RECOURSE_WORKER_BATCH", "worker-batch", "16", "events one worker loop claims and applies in one transaction (1–64)"},
	{"RECOURSE_WORKER_MAX_ATTEMPTS", "worker-max-attempts", "8", "attempts before an event is dead-lettered"},
	{"RECOURSE_WORKER_LEASE", "worker-lease", "2m", "how long a claimed event stays reserved if its worker dies"},
	{"RECOURSE_WORKER_POLL_INTERVAL", "worker-poll-interval", "1s", "how often an idle worker looks for due events"},
	{"RECOURSE_WORKER_BACKOFF_BASE", "worker-backoff-base", "10s", "first retry delay; doubles per attempt"},
	{"RECOURSE_WORKER_BACKOFF_MAX", "worker-backoff-max", "1h", "longest retry delay"},
	{"RECOURSE_STRIPE_API_KEY", "stripe-api-key", "", "Stripe secret or restricted key (sk_…/rk_…) for case actions; empty disables actions (503)"},
	{"RECOURSE_STRIPE_API_BASE", "stripe-api-base", "https://api.stripe.com", "Stripe API base URL (point it at stripe-mock for testing)"},
	{"RECOURSE_STRIPE_TIMEOUT", "stripe-timeout", "20s", "timeout of one Stripe API request"},
	{"RECOURSE_STRIPE_MAX_RETRIES", "stripe-max-retries", "2", "stripe-go network retries (same idempotency key)"},
	{"RECOURSE_POLICY_FILE", "policy-file", "", "YAML policy file (action limits, approval thresholds, windows, SLA targets); empty uses the defaults"},
	{"RECOURSE_SWEEP_INTERVAL", "sweep-interval", "1m", "how often SLA breaches and stuck actions are swept"},
	{"RECOURSE_CONSOLE_IDLE_TIMEOUT", "console-idle-timeout", "30m", "a console session unused this long ends"},
	{"RECOURSE_CONSOLE_SESSION_MAX", "console-session-max", "12h", "a console session ends this long after sign-in, used or not"},
	{"RECOURSE_CONSOLE_SECURE_COOKIES", "console-secure-cookies", "false", "mark the console session cookie Secure even over plain HTTP (TLS ends at a proxy); it is always Secure over TLS"},
	{"RECOURSE_PASSWORD_LINK_TTL", "password-link-ttl", "24h", "how long a one-time password link (recourse user link, the console's Users screen) works"},
	{"RECOURSE_PUBLIC_URL", "public-url", "http://localhost:8080", "the console's address as users reach it, for one-time password links and links to cases in notifications"},
	{"RECOURSE_NOTIFY_POLL_INTERVAL", "notify-poll-interval", "2s", "how often notifications are dispatched from the events feed and due ones sent"},
	{"RECOURSE_NOTIFY_SETTLE", "notify-settle", "5s", "how old an event must be before it is notified (the events feed's settle delay; longer than any transaction)"},
	{"RECOURSE_NOTIFY_TIMEOUT", "notify-timeout", "10s", "timeout of one notification HTTP call"},
	{"RECOURSE_NOTIFY_MAX_ATTEMPTS", "notify-max-attempts", "10", "attempts before a notification is marked failed"},
	{"RECOURSE_NOTIFY_BACKOFF_BASE", "notify-backoff-base", "10s", "first notification retry delay; doubles per attempt"},
	{"RECOURSE_NOTIFY_BACKOFF_MAX", "notify-backoff-max", "1h", "longest notification retry delay"},
	{"RECOURSE_RETENTION_PAYLOAD_DAYS", "retention-payload-days", "0", "empty the raw payload of processed or ignored webhook events created more than this many days ago (id, type, object, times and status stay); 0 keeps payloads"},
	{"RECOURSE_RETENTION_EVENTS_DAYS", "retention-events-days", "0", "delete processed or ignored webhook inbox rows created more than this many days ago; 0 keeps them, else at least 30 (Stripe can redeliver or list an event for 30 days, and its id is what dedupes it)"},
	{"RECOURSE_RETENTION_INTERVAL", "retention-interval", "1h", "how often the retention job runs where the worker runs (recourse retention run runs it once)"},
	{"RECOURSE_RECONCILE_INTERVAL", "reconcile-interval", "0s", "how often to list Stripe's events and feed the inbox any it lacks (needs RECOURSE_STRIPE_API_KEY); 0 turns the periodic run off (`recourse reconcile` runs it once)"},
	{"RECOURSE_RECONCILE_WINDOW", "reconcile-window", "72h", "how far back the first reconciliation looks when none has finished yet (Stripe keeps events 30 days)"},
	{"RECOURSE_RECONCILE_STALE_AFTER", "reconcile-stale-after", "24h", "each reconciliation also reads at Stripe the customer, subscription, invoice, charge and dispute of every open case whose mirror has heard nothing from Stripe for longer than this, and applies what it finds (newer wins, as for events); 0 turns refetching off"},
	{"RECOURSE_OIDC_ISSUER", "oidc-issuer", "", "OpenID Connect issuer URL for console single sign-on (https, or http on loopback); empty turns single sign-on off"},
	{"RECOURSE_OIDC_CLIENT_ID", "oidc-client-id", "", "client id Recourse is registered under at the OpenID Connect provider"},
	{"RECOURSE_OIDC_CLIENT_SECRET", "oidc-client-secret", "", "client secret of that registration (empty for a public client: PKCE is always used)"},
	{"RECOURSE_OIDC_REDIRECT_URL", "oidc-redirect-url", "", "public callback URL registered at the provider, ending in /login/oidc/callback (e.g. https://recourse.example.com/login/oidc/callback)"},
	{"RECOURSE_OIDC_LABEL", "oidc-label", "Sign in with single sign-on", "text of the single sign-on button on the sign-in page"},
	{"RECOURSE_RATE_LIMIT_TOKEN", "rate-limit-token", "20:100", "requests per second and burst allowed per API token on /api/v1 (rps:burst; 0 turns it off); over it: 429 with Retry-After"},
	{"RECOURSE_RATE_LIMIT_IP", "rate-limit-ip", "50:200", "requests per second and burst allowed per client address on /api/v1 (before the token is checked) and the console (rps:burst; 0 turns it off)"},
	{"RECOURSE_RATE_LIMIT_CONSOLE", "rate-limit-console", "10:60", "requests per second and burst allowed per signed-in console user (rps:burst; 0 turns it off)"},
	{"RECOURSE_RATE_LIMIT_STRIPE", "rate-limit-stripe", "200:2000", "requests per second and burst allowed per client address on POST /webhooks/stripe, kept well above Stripe's bursts (rps:burst; 0 turns it off)"},
	{"RECOURSE_RATE_LIMIT_ESCALATION", "rate-limit-escalation", "10:50", "requests per second and burst allowed per source and client address on POST /webhooks/escalations/{name} (rps:burst; 0 turns it off)"},
	{"RECOURSE_RATE_LIMIT_MAX_KEYS", "rate-limit-max-keys", "100000", "most buckets each rate limit keeps (least recently used evicted first), so rotating addresses cannot grow memory without bound"},
	{"RECOURSE_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated CIDRs (or addresses) of reverse proxies whose X-Forwarded-For names the client; empty trusts no forwarding header (the client is the connection's peer)"},
	{"RECOURSE_LOG_LEVEL", "log-level", "info", "debug, info, warn or error"},
	{"RECOURSE_LOG_FORMAT", "log-format", "json", "json or text"},
}

// Settings returns the documented settings, in order.
func Settings() []Setting { return append([]Setting(nil), settings...) }

// Defaults returns the configuration with every default applied and no
// environment consulted.
func Defaults() Config {
	c, err := Load(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		panic(err) // defaults are constants; a failure is a programming error
	}
	return c
}

// Load builds the configuration: defaults, then environment (via getenv),
// then flags in args. It returns an error naming the bad setting.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(usage)
	vals := make(map[string]*string, len(settings))
	for _, s := range settings {
		def := s.Default
		if v, ok := lookup(getenv, s.Env); ok {
			def = v
		}
		vals[s.Env] = fs.String(s.Flag, def, fmt.Sprintf("%s (env %s, default %q)", s.Help, s.Env, s.Default))
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var c Config
	p := parser{vals: vals}
	c.HTTPAddr = p.str("RECOURSE_HTTP_ADDR")
	c.DatabaseURL = p.str("DATABASE_URL")
	c.SQLitePath = p.str("RECOURSE_SQLITE_PATH")
	c.ReportingDatabaseURL = p.str("RECOURSE_REPORTING_DATABASE_URL")
	c.DBMaxConns = p.int("RECOURSE_DB_MAX_CONNS")
	c.AutoMigrate = p.bool("RECOURSE_AUTO_MIGRATE")
	c.WebhookSecrets = splitList(p.str("RECOURSE_STRIPE_WEBHOOK_SECRETS"))
	c.EscalationSources = p.str("RECOURSE_ESCALATION_SOURCES")
	c.WebhookTolerance = p.dur("RECOURSE_WEBHOOK_TOLERANCE")
	c.WebhookMaxBody = int64(p.int("RECOURSE_WEBHOOK_MAX_BODY"))
	c.WebhookCommitters = p.int("RECOURSE_WEBHOOK_COMMITTERS")
	c.APIMaxBody = int64(p.int("RECOURSE_API_MAX_BODY"))
	c.ReadHeaderTimeout = p.dur("RECOURSE_HTTP_READ_HEADER_TIMEOUT")
	c.ReadTimeout = p.dur("RECOURSE_HTTP_READ_TIMEOUT")
	c.WriteTimeout = p.dur("RECOURSE_HTTP_WRITE_TIMEOUT")
	c.IdleTimeout = p.dur("RECOURSE_HTTP_IDLE_TIMEOUT")
	c.ShutdownTimeout = p.dur("RECOURSE_SHUTDOWN_TIMEOUT")
	c.WorkerEnabled = p.bool("RECOURSE_WORKER_ENABLED")
	c.WorkerConcurrency = p.int("RECOURSE_WORKER_CONCURRENCY")
	c.WorkerBatch = p.int("RECOURSE_WORKER_BATCH")
	c.WorkerMaxAttempts = p.int("RECOURSE_WORKER_MAX_ATTEMPTS")
	c.WorkerLease = p.dur("RECOURSE_WORKER_LEASE")
	c.WorkerPoll = p.dur("RECOURSE_WORKER_POLL_INTERVAL")
	c.WorkerBackoffBase = p.dur("RECOURSE_WORKER_BACKOFF_BASE")
	c.WorkerBackoffMax = p.dur("RECOURSE_WORKER_BACKOFF_MAX")
	c.LogLevel = p.str("RECOURSE_LOG_LEVEL")
	c.LogFormat = p.str("RECOURSE_LOG_FORMAT")
	c.StripeAPIKey = p.str("RECOURSE_STRIPE_API_KEY")
	c.StripeAPIBase = p.str("RECOURSE_STRIPE_API_BASE")
	c.StripeTimeout = p.dur("RECOURSE_STRIPE_TIMEOUT")
	c.StripeRetries = p.int("RECOURSE_STRIPE_MAX_RETRIES")
	c.PolicyFile = p.str("RECOURSE_POLICY_FILE")
	c.SweepInterval = p.dur("RECOURSE_SWEEP_INTERVAL")
	c.ConsoleIdleTimeout = p.dur("RECOURSE_CONSOLE_IDLE_TIMEOUT")
	c.ConsoleSessionMax = p.dur("RECOURSE_CONSOLE_SESSION_MAX")
	c.ConsoleSecureCookies = p.bool("RECOURSE_CONSOLE_SECURE_COOKIES")
	c.PasswordLinkTTL = p.dur("RECOURSE_PASSWORD_LINK_TTL")
	c.PublicURL = p.str("RECOURSE_PUBLIC_URL")
	c.NotifyPoll = p.dur("RECOURSE_NOTIFY_POLL_INTERVAL")
	c.NotifySettle = p.dur("RECOURSE_NOTIFY_SETTLE")
	c.NotifyTimeout = p.dur("RECOURSE_NOTIFY_TIMEOUT")
	c.NotifyMaxAttempts = p.int("RECOURSE_NOTIFY_MAX_ATTEMPTS")
	c.NotifyBackoffBase = p.dur("RECOURSE_NOTIFY_BACKOFF_BASE")
	c.NotifyBackoffMax = p.dur("RECOURSE_NOTIFY_BACKOFF_MAX")
	c.ReconcileInterval = p.dur("RECOURSE_RECONCILE_INTERVAL")
	c.ReconcileWindow = p.dur("RECOURSE_RECONCILE_WINDOW")
	c.ReconcileStaleAfter = p.dur("RECOURSE_RECONCILE_STALE_AFTER")
	c.RetentionPayloadDays = p.int("RECOURSE_RETENTION_PAYLOAD_DAYS")
	c.RetentionEventsDays = p.int("RECOURSE_RETENTION_EVENTS_DAYS")
	c.RetentionInterval = p.dur("RECOURSE_RETENTION_INTERVAL")
	c.OIDCIssuer = p.str("RECOURSE_OIDC_ISSUER")
	c.OIDCClientID = p.str("RECOURSE_OIDC_CLIENT_ID")
	c.OIDCClientSecret = p.str("RECOURSE_OIDC_CLIENT_SECRET")
	c.OIDCRedirectURL = p.str("RECOURSE_OIDC_REDIRECT_URL")
	c.OIDCLabel = p.str("RECOURSE_OIDC_LABEL")
	c.RateLimitToken = p.rate("RECOURSE_RATE_LIMIT_TOKEN")
	c.RateLimitIP = p.rate("RECOURSE_RATE_LIMIT_IP")
	c.RateLimitConsole = p.rate("RECOURSE_RATE_LIMIT_CONSOLE")
	c.RateLimitStripe = p.rate("RECOURSE_RATE_LIMIT_STRIPE")
	c.RateLimitEscalation = p.rate("RECOURSE_RATE_LIMIT_ESCALATION")
	c.RateLimitMaxKeys = p.int("RECOURSE_RATE_LIMIT_MAX_KEYS")
	c.TrustedProxies = p.cidrs("RECOURSE_TRUSTED_PROXIES")
	if p.err != nil {
		return Config{}, p.err
	}
	return c, c.Validate()
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.ReportingDatabaseURL != "" && c.DatabaseURL == "":
		return fmt.Errorf("RECOURSE_REPORTING_DATABASE_URL is a PostgreSQL read replica, but DATABASE_URL is empty (the embedded SQLite file): set DATABASE_URL to the primary, or unset RECOURSE_REPORTING_DATABASE_URL")
	case c.ReportingDatabaseURL != "" && !strings.HasPrefix(c.ReportingDatabaseURL, "postgres://") && !strings.HasPrefix(c.ReportingDatabaseURL, "postgresql://"):
		return fmt.Errorf("RECOURSE_REPORTING_DATABASE_URL must start with postgres:// (the same kind of database as DATABASE_URL)")
	case c.WebhookMaxBody <= 0 || c.APIMaxBody <= 0:
		return fmt.Errorf("body limits must be positive")
	case c.WorkerConcurrency < 1:
		return fmt.Errorf("RECOURSE_WORKER_CONCURRENCY must be at least 1")
	case c.WebhookCommitters < 1 || c.WebhookCommitters > 16:
		return fmt.Errorf("RECOURSE_WEBHOOK_COMMITTERS must be between 1 and 16")
	case c.WorkerBatch < 1 || c.WorkerBatch > 64:
		return fmt.Errorf("RECOURSE_WORKER_BATCH must be between 1 and 64")
	case c.WorkerMaxAttempts < 1:
		return fmt.Errorf("RECOURSE_WORKER_MAX_ATTEMPTS must be at least 1")
	case c.WorkerLease < time.Second:
		return fmt.Errorf("RECOURSE_WORKER_LEASE must be at least 1s")
	case c.WebhookTolerance <= 0:
		return fmt.Errorf("RECOURSE_WEBHOOK_TOLERANCE must be positive")
	case c.DBMaxConns < 1:
		return fmt.Errorf("RECOURSE_DB_MAX_CONNS must be at least 1")
	case c.SweepInterval < time.Second:
		return fmt.Errorf("RECOURSE_SWEEP_INTERVAL must be at least 1s")
	case c.ConsoleIdleTimeout < time.Minute || c.ConsoleSessionMax < c.ConsoleIdleTimeout:
		return fmt.Errorf("RECOURSE_CONSOLE_IDLE_TIMEOUT must be at least 1m and RECOURSE_CONSOLE_SESSION_MAX at least as long")
	case c.PasswordLinkTTL < time.Minute:
		return fmt.Errorf("RECOURSE_PASSWORD_LINK_TTL must be at least 1m")
	case c.StripeTimeout <= 0:
		return fmt.Errorf("RECOURSE_STRIPE_TIMEOUT must be positive")
	case c.NotifyPoll <= 0 || c.NotifySettle <= 0 || c.NotifyTimeout <= 0 || c.NotifyBackoffBase <= 0 || c.NotifyBackoffMax < c.NotifyBackoffBase:
		return fmt.Errorf("RECOURSE_NOTIFY_* durations must be positive and RECOURSE_NOTIFY_BACKOFF_MAX at least RECOURSE_NOTIFY_BACKOFF_BASE")
	case c.NotifyMaxAttempts < 1:
		return fmt.Errorf("RECOURSE_NOTIFY_MAX_ATTEMPTS must be at least 1")
	case c.ReconcileInterval != 0 && c.ReconcileInterval < time.Minute:
		return fmt.Errorf("RECOURSE_RECONCILE_INTERVAL must be 0 (off) or at least 1m")
	case c.RateLimitMaxKeys < 1:
		return fmt.Errorf("RECOURSE_RATE_LIMIT_MAX_KEYS must be at least 1")
	case c.RetentionPayloadDays < 0:
		return fmt.Errorf("RECOURSE_RETENTION_PAYLOAD_DAYS must be 0 (keep payloads) or a number of days")
	case c.RetentionEventsDays < 0 || (c.RetentionEventsDays > 0 && c.RetentionEventsDays < 30):
		return fmt.Errorf("RECOURSE_RETENTION_EVENTS_DAYS must be 0 (keep rows) or at least 30: Stripe can redeliver or list an event for 30 days, and the inbox row's event id is what keeps it from being applied twice")
	case c.RetentionInterval < time.Minute:
		return fmt.Errorf("RECOURSE_RETENTION_INTERVAL must be at least 1m")
	case c.ReconcileWindow <= 0 || c.ReconcileWindow > 30*24*time.Hour:
		return fmt.Errorf("RECOURSE_RECONCILE_WINDOW must be positive and at most 720h (Stripe keeps events 30 days)")
	case c.ReconcileStaleAfter < 0 || (c.ReconcileStaleAfter > 0 && c.ReconcileStaleAfter < time.Minute):
		return fmt.Errorf("RECOURSE_RECONCILE_STALE_AFTER must be 0 (off) or at least 1m")
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("RECOURSE_LOG_FORMAT must be json or text, not %q", c.LogFormat)
	}
	return c.validateOIDC()
}

// OIDCCallbackPath is where the provider sends the browser back; the
// console serves it, so RECOURSE_OIDC_REDIRECT_URL must end in it.
const OIDCCallbackPath = "/login/oidc/callback"

// validateOIDC checks the single sign-on settings: all or nothing, and
// URLs that do not send codes or tokens in the clear off this machine.
func (c Config) validateOIDC() error {
	if c.OIDCIssuer == "" {
		if c.OIDCClientID != "" || c.OIDCClientSecret != "" || c.OIDCRedirectURL != "" {
			return fmt.Errorf("RECOURSE_OIDC_CLIENT_ID, _CLIENT_SECRET or _REDIRECT_URL is set but RECOURSE_OIDC_ISSUER is not: set the issuer to turn single sign-on on, or unset the others")
		}
		return nil
	}
	if err := checkOIDCURL("RECOURSE_OIDC_ISSUER", c.OIDCIssuer); err != nil {
		return err
	}
	if c.OIDCClientID == "" {
		return fmt.Errorf("RECOURSE_OIDC_CLIENT_ID must be set when RECOURSE_OIDC_ISSUER is")
	}
	if c.OIDCRedirectURL == "" {
		return fmt.Errorf("RECOURSE_OIDC_REDIRECT_URL must be set when RECOURSE_OIDC_ISSUER is (the public URL of %s)", OIDCCallbackPath)
	}
	if err := checkOIDCURL("RECOURSE_OIDC_REDIRECT_URL", c.OIDCRedirectURL); err != nil {
		return err
	}
	if u, _ := url.Parse(c.OIDCRedirectURL); u.Path != OIDCCallbackPath || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("RECOURSE_OIDC_REDIRECT_URL must be the public URL of %s, like https://recourse.example.com%s (got %q)", OIDCCallbackPath, OIDCCallbackPath, c.OIDCRedirectURL)
	}
	if c.OIDCLabel == "" || len(c.OIDCLabel) > 80 {
		return fmt.Errorf("RECOURSE_OIDC_LABEL must have 1 to 80 bytes")
	}
	return nil
}

// checkOIDCURL accepts an absolute https URL, or http to a loopback host
// (a provider or console on this machine, as in development and tests).
func checkOIDCURL(env, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return fmt.Errorf("%s must be an absolute https URL (got %q)", env, raw)
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%s must use https unless its host is loopback (got %q)", env, raw)
		}
	}
	return nil
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type parser struct {
	vals map[string]*string
	err  error
}

func (p *parser) str(env string) string { return strings.TrimSpace(*p.vals[env]) }

func (p *parser) int(env string) int {
	n, err := strconv.Atoi(p.str(env))
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %q is not a whole number", env, p.str(env))
	}
	return n
}

func (p *parser) bool(env string) bool {
	b, err := strconv.ParseBool(p.str(env))
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %q is not true or false", env, p.str(env))
	}
	return b
}

func (p *parser) rate(env string) ratelimit.Rate {
	r, err := ratelimit.ParseRate(p.str(env))
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %w", env, err)
	}
	return r
}

// cidrs reads comma-separated CIDRs; a bare address is its own /32 or /128.
func (p *parser) cidrs(env string) []*net.IPNet {
	var out []*net.IPNet
	for _, s := range splitList(p.str(env)) {
		if !strings.Contains(s, "/") {
			if ip := net.ParseIP(s); ip != nil {
				bits := 8 * len(ip.To16())
				if ip.To4() != nil {
					ip, bits = ip.To4(), 32
				}
				out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
				continue
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			if p.err == nil {
				p.err = fmt.Errorf("%s: %q is not a CIDR such as 10.0.0.0/8 or an address", env, s)
			}
			continue
		}
		out = append(out, n)
	}
	return out
}

func (p *parser) dur(env string) time.Duration {
	d, err := time.ParseDuration(p.str(env))
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %q is not a duration (e.g. 30s, 5m)", env, p.str(env))
	}
	return d
}
