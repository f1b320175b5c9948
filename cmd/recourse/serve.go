package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	stripeprovider "github.com/recourse-hq/recourse/billing/stripe"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/escalations"
	"github.com/recourse-hq/recourse/internal/apispec"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/migrations"
	"github.com/recourse-hq/recourse/notifications"
	"github.com/recourse-hq/recourse/privacy"
	"github.com/recourse-hq/recourse/reports"
	"github.com/recourse-hq/recourse/web" // web
	"github.com/recourse-hq/recourse/webhooks"
)

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func openDB(ctx context.Context, cfg config.Config) (*db.DB, error) {
	return db.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath, db.Options{MaxConns: cfg.DBMaxConns})
}

// service is the wired application: storage, HTTP handlers, intake, worker.
type service struct {
	cfg     config.Config
	log     *slog.Logger
	clock   clock.Clock
	db      *db.DB
	metrics *metrics.Metrics
	echo    *echo.Echo
	inbox   *webhooks.Inbox
	intake  *webhooks.Intake
	worker  *webhooks.Worker
	cases   *cases.Service
	actions *actions.Service
	facts   *disputes.FactStore
	ops     opsParts
	// notifier sends Slack and webhook notifications where the worker runs.
	notifier *notifications.Notifier
	// reconciler compares Stripe's event list with the inbox (nil without
	// a Stripe API key).
	reconciler *webhooks.Reconciler
	// retention prunes the webhook inbox by age where the worker runs.
	retention *webhooks.Retention
	// reportsDB is the reporting replica's handle, nil when reports read db.
	reportsDB *db.DB
	reports   *reports.Service
}

// close releases what newService opened, for a service that never ran.
func (s *service) close() {
	s.intake.Close()
	s.closeReportsDB()
	_ = s.db.Close()
}

func (s *service) closeReportsDB() {
	if s.reportsDB != nil {
		_ = s.reportsDB.Close()
	}
}

func newService(ctx context.Context, cfg config.Config, log *slog.Logger, clk clock.Clock) (*service, error) {
	d, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &service{cfg: cfg, log: log, clock: clk, db: d, metrics: metrics.New()}
	if cfg.AutoMigrate {
		applied, err := migrations.Up(ctx, d, clk.Now)
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		if len(applied) > 0 {
			log.Info("migrations applied", "versions", applied)
		}
	}
	// PostgreSQL: this month's and the next months' inbox partitions, in
	// case no retention job has run for a while. A failure only costs
	// events landing in DEFAULT until the job makes them.
	if n, err := webhooks.EnsurePartitions(ctx, d, clk.Now()); err != nil {
		log.Warn("could not make the webhook inbox's month partitions; the retention job tries again", "err", err)
	} else if n > 0 {
		log.Info("webhook inbox month partitions made", "count", n)
	}

	policy, err := loadPolicy(ctx, cfg.PolicyFile, net.DefaultResolver)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	auditLog := audit.New(d, clk)
	s.facts = disputes.NewFactStore(d, clk).WithAudit(auditLog)
	if err := auditPolicyInForce(ctx, auditLog, policy, cfg.PolicyFile); err != nil {
		log.Warn("could not record the policy in force in the audit log", "err", err)
	}
	var provider billing.Provider
	var fetcher billing.Fetcher
	var lister webhooks.EventLister
	var reader billing.ObjectReader
	if cfg.StripeAPIKey != "" {
		var sc *stripeprovider.Client
		if sc, err = stripeprovider.New(stripeprovider.Config{APIKey: cfg.StripeAPIKey, APIBase: cfg.StripeAPIBase,
			Timeout: cfg.StripeTimeout, MaxNetworkRetries: int64(cfg.StripeRetries), Logger: log}); err != nil {
			_ = d.Close()
			return nil, err
		}
		provider, fetcher, lister, reader = sc, sc, sc, sc
	}
	store := billing.NewStore(d, clk, billing.WithFetcher(fetcher, cfg.StripeTimeout))
	actionMirror, caseMirror := mirrorFor(store)
	s.cases, err = cases.NewService(cases.Options{DB: d, Clock: clk, Audit: auditLog, Billing: caseMirror, SLA: &policy.SLA,
		Logger: log, Registerer: s.metrics.Registry, Echoes: actions.Echoes{}})
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	workbench := disputes.NewWorkbench(disputes.WorkbenchOptions{DB: d, Clock: clk, Billing: store, Cases: s.cases,
		Facts: s.facts, Policy: policy.Disputes, Audit: auditLog})
	s.actions = actions.NewService(actions.Config{DB: d, Clock: clk, Log: log, Provider: provider, Fetcher: fetcher, Mirror: actionMirror,
		Cases: s.cases, Audit: auditLog, Policy: policy.Actions,
		Evidence: workbench, CallBudget: actions.CallBudget(cfg.StripeTimeout, cfg.StripeRetries)})
	for _, c := range s.actions.Collectors() {
		if err := s.metrics.Registry.Register(c); err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("register action metrics: %w", err)
		}
	}

	if s.ops, err = newOpsParts(d, clk, log, s.metrics, s.cases, s.actions, store, policy); err != nil {
		_ = d.Close()
		return nil, err
	}

	if s.reports, s.reportsDB, err = newReports(ctx, cfg, d, clk, log, s.metrics, policy); err != nil {
		_ = d.Close()
		return nil, err
	}

	notices := notifications.NewStore(d, auditLog)
	if s.notifier, err = notifications.New(notifications.Options{Store: notices, Feed: events.NewFeed(d, clk, cfg.NotifySettle),
		Policy: policy.Notifications, Clock: clk, Log: log, Registerer: s.metrics.Registry, PublicURL: cfg.PublicURL,
		PollInterval: cfg.NotifyPoll, Timeout: cfg.NotifyTimeout, MaxAttempts: cfg.NotifyMaxAttempts,
		BackoffBase: cfg.NotifyBackoffBase, BackoffMax: cfg.NotifyBackoffMax}); err != nil {
		_ = d.Close()
		return nil, err
	}

	inbox := webhooks.NewInbox(d).WithAudit(auditLog)
	s.inbox = inbox
	registry := webhooks.NewRegistry()
	webhooks.RegisterBilling(registry, store, s.cases)
	s.metrics.RegisterInbox(func(ctx context.Context) (int64, time.Duration, error) {
		return inbox.Backlog(ctx, clk.Now())
	}, log)
	concurrency := cfg.WorkerConcurrency
	s.worker = webhooks.NewWorker(d, inbox, registry, clk, log, s.metrics, webhooks.WorkerConfig{
		Concurrency: concurrency, Batch: cfg.WorkerBatch, MaxAttempts: cfg.WorkerMaxAttempts, Lease: cfg.WorkerLease,
		PollInterval: cfg.WorkerPoll, BackoffBase: cfg.WorkerBackoffBase, BackoffMax: cfg.WorkerBackoffMax,
	})
	notify, notifyShards := func() {}, func([]int64) {}
	if cfg.WorkerEnabled {
		notify, notifyShards = s.worker.Notify, s.worker.NotifyShards
	}
	if lister != nil {
		s.reconciler = webhooks.NewReconciler(d, inbox, lister, clk, log, auditLog, s.metrics.Registry, notify)
		if cfg.ReconcileStaleAfter > 0 {
			s.reconciler.WithRefetch(webhooks.RefetchOptions{Reader: reader, Store: store, Cases: s.cases,
				StaleAfter: cfg.ReconcileStaleAfter}, s.metrics.Registry)
		}
	}
	if s.retention, err = webhooks.NewRetention(d, clk, log, auditLog, s.metrics.Registry, retentionPolicy(cfg)); err != nil {
		_ = d.Close()
		return nil, err
	}
	s.intake = webhooks.NewIntake(inbox, clk, log, s.metrics, webhooks.IntakeConfig{
		Secrets: cfg.WebhookSecrets, Tolerance: cfg.WebhookTolerance, MaxBody: cfg.WebhookMaxBody,
		Committers: cfg.WebhookCommitters,
	}, notifyShards)

	e := httpx.New(httpx.Options{Logger: log, Metrics: s.metrics, APIMaxBody: cfg.APIMaxBody, TrustedProxies: cfg.TrustedProxies})
	lim := newLimits(cfg, clk, s.metrics)
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", s.ready)
	e.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
	apispec.Register(e) // GET /api/v1/openapi.json, public
	s.intake.Register(e, lim.stripe)
	sources, err := escalations.ParseSources(cfg.EscalationSources)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	escalations.NewReceiver(s.cases, store, clk.Now, sources).Register(e, cfg.WebhookMaxBody, lim.escalation)

	tokens := auth.NewTokenStore(d, clk).WithAuditor(auditLog.ForAuth())
	// The address's limit comes before the token check, so floods and
	// token guessing are limited too; the token's after it.
	api := e.Group("/api/v1", httpx.BodyLimit(cfg.APIMaxBody), lim.apiIP, auth.Middleware(tokens), lim.token)
	webhooks.NewAdmin(inbox, clk, s.metrics, notify).Register(api)
	store.CountingOpenCases(s.cases).Register(api) // open-case counts on GET /customers?q=
	s.cases.Register(api)
	s.facts.Register(api)
	workbench.Register(api)
	actions.NewHTTP(s.actions, auditLog, policy).Register(api)
	auth.NewTokenHTTP(tokens).Register(api)
	users := auth.NewUserStore(d, clk, auditLog.ForAuth()).WithKnownTeams(teamNames()) // web
	auth.NewUserHTTP(users).Register(api)
	s.ops.register(api)
	notifications.NewHTTP(notices, clk).Register(api)
	reports.NewHTTP(s.reports).Register(api)
	eraser := privacy.NewEraser(d, clk, auditLog, log)
	privacy.NewHTTP(eraser).Register(api)
	console, err := web.New(web.Options{DB: d, Clock: clk, Log: log, Users: users, Cases: s.cases, Billing: store, Actions: s.actions, Facts: s.facts, Eraser: eraser, // web
		IdleTimeout: cfg.ConsoleIdleTimeout, SessionMax: cfg.ConsoleSessionMax, SecureCookies: cfg.ConsoleSecureCookies, // web
		Tokens: tokens, Inbox: inbox, Audit: auditLog, Policy: policy, // admin
		Replayed:        func() { s.metrics.WebhookReplayed.Inc(); notify() }, // admin
		PasswordLinkTTL: cfg.PasswordLinkTTL, PublicURL: cfg.PublicURL,        // admin
		OIDC: web.OIDC{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret, // oidc
			RedirectURL: cfg.OIDCRedirectURL, Label: cfg.OIDCLabel}, // oidc
		Workbench: workbench, Notifications: notices, // web: the dispute workbench; the notifications screen
		Reports: s.reports, // web: the reports page
		// web: abuse limits (README "Limits")
		IPLimit: lim.console.ip, UserLimit: lim.console.user, RateLimited: s.metrics.RateLimited})
	if err != nil { // web
		_ = d.Close()   // web
		return nil, err // web
	} // web
	// A provider that is down must not keep the service from starting:
	// sign-in retries discovery and says so on its page.
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second) // oidc
	err = console.DiscoverOIDC(dctx)                         // oidc
	dcancel()                                                // oidc
	if err != nil {                                          // oidc
		log.Warn("single sign-on: cannot reach the OpenID Connect provider yet; password sign-in works, single sign-on retries on use", "issuer", cfg.OIDCIssuer, "err", err) // oidc
	} // oidc
	console.Register(e) // web
	s.echo = e
	return s, nil
}

// ready answers 200 when the database answers and no migration is pending.
func (s *service) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "migrations": "ok"}
	status := http.StatusOK
	if err := s.db.Ping(ctx); err != nil {
		checks["database"] = "unreachable"
		status = http.StatusServiceUnavailable
		s.log.Warn("readiness: database unreachable", "err", err)
	} else if n, err := migrations.Pending(ctx, s.db); err != nil {
		checks["migrations"] = "unknown"
		status = http.StatusServiceUnavailable
	} else if n > 0 {
		checks["migrations"] = fmt.Sprintf("%d pending", n)
		status = http.StatusServiceUnavailable
	}
	word := "ready"
	if status != http.StatusOK {
		word = "not_ready"
	}
	return c.JSON(status, map[string]any{"status": word, "checks": checks})
}

// run serves on ln until ctx is cancelled, then shuts down gracefully: stop
// taking requests and finish those in flight, flush the intake, let the
// worker finish the event in hand, close the database.
func (s *service) run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if s.cfg.WorkerEnabled {
		wg.Add(3)
		go func() {
			defer wg.Done()
			s.worker.Run(workerCtx)
		}()
		// SLA sweeps and stuck-action recovery run where the worker runs.
		go func() {
			defer wg.Done()
			s.cases.Run(workerCtx, s.cfg.SweepInterval)
		}()
		go func() {
			defer wg.Done()
			s.actions.Run(workerCtx, s.cfg.SweepInterval)
		}()
		s.ops.run(workerCtx, &wg, s.cfg.SweepInterval)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.notifier.Run(workerCtx)
		}()
		if s.retention.Needed() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.retention.Loop(workerCtx, s.cfg.RetentionInterval)
			}()
		}
		if s.cfg.ReconcileInterval > 0 && s.reconciler != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.reconciler.Loop(workerCtx, s.cfg.ReconcileInterval, s.cfg.ReconcileWindow)
			}()
		} else if s.cfg.ReconcileInterval > 0 {
			s.log.Warn("RECOURSE_RECONCILE_INTERVAL is set but RECOURSE_STRIPE_API_KEY is not: nothing to reconcile against")
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("recourse serving", "addr", ln.Addr().String(), "database", string(s.db.Dialect), "version", versionString(),
		"worker", s.cfg.WorkerEnabled, "webhook_secrets", len(s.cfg.WebhookSecrets))
	if len(s.cfg.WebhookSecrets) == 0 {
		s.log.Warn("no Stripe webhook secret configured: POST /webhooks/stripe answers 503 until RECOURSE_STRIPE_WEBHOOK_SECRETS is set")
	}
	if advice, err := s.db.Advisories(ctx); err != nil {
		s.log.Warn("could not read the database's settings", "err", err)
	} else {
		for _, a := range advice {
			s.log.Warn(a)
		}
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown incomplete", "err", err)
	}
	s.intake.Close()
	stopWorker()
	wg.Wait()
	s.closeReportsDB()
	if err := s.db.Close(); err != nil {
		s.log.Warn("close database", "err", err)
	}
	s.log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if os.Getenv("GOGC") == "" {
		// The intake and worker allocate per event (bodies, JSON, GORM);
		// at the default 100 the collector took ~25% of the process's CPU
		// under load. 300 trades some heap for it (docs/benchmarks.md:
		// resident memory stayed under 150 MB); GOGC overrides.
		debug.SetGCPercent(300)
	}
	s, err := newService(ctx, cfg, log, clock.System{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		s.close()
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	return s.run(ctx, ln)
}
