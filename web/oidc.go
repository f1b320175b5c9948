package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/errs"
)

// OIDC configures single sign-on through an OpenID Connect provider. The
// provider only vouches for an email address: it must be verified and
// belong to an existing, active Recourse user (no account is created).
type OIDC struct {
	// Issuer is the provider's issuer URL (discovery is at
	// Issuer/.well-known/openid-configuration).
	Issuer string
	// ClientID and ClientSecret are Recourse's registration at the
	// provider (an empty secret: a public client; PKCE is always used).
	ClientID, ClientSecret string
	// RedirectURL is the public URL of GET /login/oidc/callback.
	RedirectURL string
	// Label is the sign-in button's text.
	Label string
	// HTTPClient talks to the provider (nil: one with a 10s timeout).
	HTTPClient *http.Client
}

// DefaultOIDCLabel is the button's text when none is configured.
const DefaultOIDCLabel = "Sign in with single sign-on"

const (
	// ssoCookie carries one sign-in attempt's state, nonce and PKCE
	// verifier from /login/oidc to its callback, and nowhere else.
	ssoCookie     = "recourse_oidc"
	ssoCookiePath = "/login/oidc"
	// ssoAttemptTTL is how long a person has at the provider.
	ssoAttemptTTL = 10 * time.Minute
	// ssoRetryAfter spaces discovery attempts while the provider is down,
	// so a crowd at the sign-in page does not queue up behind timeouts.
	ssoRetryAfter = 5 * time.Second
	ssoTimeout    = 10 * time.Second
)

// sso is the console's side of the authorization-code flow. The provider
// is discovered lazily (first use, or DiscoverOIDC at start) and retried
// while it cannot be reached: the service starts and serves password
// sign-in even when the provider is down.
type sso struct {
	cfg    OIDC
	clock  clock.Clock
	client *http.Client

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	lastErr  error
	lastTry  time.Time
}

func newSSO(cfg OIDC, clk clock.Clock) *sso {
	if cfg.Label == "" {
		cfg.Label = DefaultOIDCLabel
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: ssoTimeout}
	}
	return &sso{cfg: cfg, clock: clk, client: client}
}

// errSSOUnavailable wraps a failed discovery.
var errSSOUnavailable = errors.New("the single sign-on provider cannot be reached")

// provider returns the discovered endpoints and the ID token verifier,
// discovering them first if need be.
func (s *sso) provider(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oauth != nil {
		return s.oauth, s.verifier, nil
	}
	now := s.clock.Now()
	if s.lastErr != nil && now.Sub(s.lastTry) < ssoRetryAfter {
		return nil, nil, s.lastErr
	}
	s.lastTry = now
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, s.client), ssoTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, s.cfg.Issuer)
	if err != nil {
		s.lastErr = fmt.Errorf("%w: discover %s: %w", errSSOUnavailable, s.cfg.Issuer, err)
		return nil, nil, s.lastErr
	}
	s.oauth = &oauth2.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, RedirectURL: s.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	s.verifier = p.Verifier(&oidc.Config{ClientID: s.cfg.ClientID, Now: s.clock.Now})
	s.lastErr = nil
	return s.oauth, s.verifier, nil
}

// DiscoverOIDC reads the provider's discovery document now, so a wrong
// issuer shows in the log at start rather than at the first sign-in. An
// error does not stop the console: sign-in retries discovery.
func (con *Console) DiscoverOIDC(ctx context.Context) error {
	if con.sso == nil {
		return nil
	}
	_, _, err := con.sso.provider(ctx)
	return err
}

// ssoAttempt is what the browser keeps between the redirect to the
// provider and the callback.
type ssoAttempt struct{ state, nonce, verifier string }

// random32 is 32 random bytes, base64url: unguessable and cookie-safe.
func random32() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random sign-in value: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

var ssoValue = regexp.MustCompile(`^[A-Za-z0-9_-]{43,128}$`)

// ssoErrorCode is an OAuth error code as RFC 6749 spells them; anything
// else the provider (or whoever crafted the link) sent is not echoed.
var ssoErrorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

func (a ssoAttempt) String() string { return a.state + "." + a.nonce + "." + a.verifier }

func parseSSOAttempt(v string) (ssoAttempt, bool) {
	p := strings.Split(v, ".")
	if len(p) != 3 {
		return ssoAttempt{}, false
	}
	for _, s := range p {
		if !ssoValue.MatchString(s) {
			return ssoAttempt{}, false
		}
	}
	return ssoAttempt{state: p[0], nonce: p[1], verifier: p[2]}, true
}

func (con *Console) setSSOCookie(c echo.Context, value string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: ssoCookie, Value: value, Path: ssoCookiePath, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: con.secure(c), MaxAge: maxAge})
}

// ssoLimited answers 429 when the client's address is at the failed
// sign-in limit (true), as password sign-in does.
func (con *Console) ssoLimited(c echo.Context) (bool, error) {
	_, byIP, err := con.sessions.failures(c.Request().Context(), "", clientIP(c), con.opt.Clock.Now().Add(-LoginWindow))
	if err != nil {
		return false, con.fail(c, err)
	}
	if byIP < MaxFailuresPerIP {
		return false, nil
	}
	c.Response().Header().Set("Retry-After", "900")
	return true, con.renderError(c, http.StatusTooManyRequests, "Too many failed sign-ins from your address. Wait 15 minutes and try again.")
}

func (con *Console) ssoUnavailable(c echo.Context, err error) error {
	con.opt.Log.Warn("console: single sign-on provider unreachable", "issuer", con.sso.cfg.Issuer, "err", err)
	c.Response().Header().Set("Retry-After", "60")
	return con.renderError(c, http.StatusServiceUnavailable,
		"Single sign-on is not available right now: Recourse cannot reach your identity provider. Try again in a minute, or sign in with your password.")
}

// ssoStart sends the browser to the provider with a fresh state, nonce
// and PKCE challenge; their originals stay in a cookie only the callback
// path receives, for ssoAttemptTTL.
func (con *Console) ssoStart(c echo.Context) error {
	if con.sso == nil {
		return con.renderError(c, http.StatusNotFound, "There is no such page.")
	}
	if limited, err := con.ssoLimited(c); limited || err != nil {
		return err
	}
	oc, _, err := con.sso.provider(c.Request().Context())
	if err != nil {
		return con.ssoUnavailable(c, err)
	}
	var a ssoAttempt
	if a.state, err = random32(); err != nil {
		return con.fail(c, err)
	}
	if a.nonce, err = random32(); err != nil {
		return con.fail(c, err)
	}
	a.verifier = oauth2.GenerateVerifier()
	con.setSSOCookie(c, a.String(), int(ssoAttemptTTL.Seconds()))
	return c.Redirect(http.StatusFound, oc.AuthCodeURL(a.state, oidc.Nonce(a.nonce), oauth2.S256ChallengeOption(a.verifier)))
}

// ssoRefusal is a callback that signs nobody in: the status and message
// the person sees, and what the log says.
type ssoRefusal struct {
	status int
	msg    string
	why    string
}

const ssoAgain = " Go back to the sign-in page and start again."

// ssoCallback finishes the flow: the state must match the cookie's
// (constant time), the code is exchanged with the PKCE verifier, the ID
// token is verified (signature, issuer, audience, expiry) and must carry
// the cookie's nonce and a verified email of an existing active user.
// Any refusal counts as a failed sign-in from the client's address.
func (con *Console) ssoCallback(c echo.Context) error {
	if con.sso == nil {
		return con.renderError(c, http.StatusNotFound, "There is no such page.")
	}
	if limited, err := con.ssoLimited(c); limited || err != nil {
		return err
	}
	var attempt string
	if ck, err := c.Cookie(ssoCookie); err == nil {
		attempt = ck.Value
	}
	// One attempt, one callback: the cookie goes whatever happens next.
	con.setSSOCookie(c, "", -1)
	p, ref, err := con.ssoVerify(c, attempt)
	if err != nil {
		if errors.Is(err, errSSOUnavailable) {
			return con.ssoUnavailable(c, err)
		}
		return con.fail(c, err)
	}
	if ref != nil {
		ctx := c.Request().Context()
		now := con.opt.Clock.Now()
		con.opt.Log.Info("console: single sign-on refused", "why", ref.why, "ip", clientIP(c))
		if err := con.sessions.recordFailure(ctx, "", clientIP(c), now, now.Add(-LoginWindow)); err != nil {
			return con.fail(c, err)
		}
		return con.renderError(c, ref.status, ref.msg)
	}
	return con.startSession(c, p, "oidc")
}

// ssoVerify checks the callback against the attempt cookie's value and
// returns the user to sign in, or why not. An error is Recourse's own
// trouble (database, provider unreachable), not the person's.
func (con *Console) ssoVerify(c echo.Context, cookie string) (auth.Principal, *ssoRefusal, error) {
	refuse := func(status int, msg, why string) (auth.Principal, *ssoRefusal, error) {
		return auth.Principal{}, &ssoRefusal{status: status, msg: msg, why: why}, nil
	}
	a, ok := parseSSOAttempt(cookie)
	if !ok {
		return refuse(http.StatusBadRequest, "This single sign-on attempt has expired or was started in another browser."+ssoAgain, "no attempt cookie")
	}
	q := c.QueryParams()
	if !sameToken(q.Get("state"), a.state) {
		return refuse(http.StatusBadRequest, "This single sign-on answer does not belong to the sign-in started in this browser."+ssoAgain, "state mismatch")
	}
	if e := q.Get("error"); e != "" {
		if !ssoErrorCode.MatchString(e) {
			e = "unknown"
		}
		return refuse(http.StatusUnauthorized, "Your identity provider did not sign you in ("+e+")."+ssoAgain, "provider error "+e)
	}
	code := q.Get("code")
	if code == "" {
		return refuse(http.StatusBadRequest, "Your identity provider's answer has no authorization code."+ssoAgain, "no code")
	}
	oc, verifier, err := con.sso.provider(c.Request().Context())
	if err != nil {
		return auth.Principal{}, nil, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(c.Request().Context(), con.sso.client), ssoTimeout)
	defer cancel()
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		return refuse(http.StatusUnauthorized, "Your identity provider did not confirm the sign-in."+ssoAgain, "code exchange: "+err.Error())
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refuse(http.StatusUnauthorized, "Your identity provider did not send an ID token."+ssoAgain, "no id_token")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return refuse(http.StatusUnauthorized, "Your identity provider's sign-in could not be verified (it may have expired)."+ssoAgain, "id token: "+err.Error())
	}
	if !sameToken(idt.Nonce, a.nonce) {
		return refuse(http.StatusUnauthorized, "Your identity provider's sign-in does not belong to this attempt."+ssoAgain, "nonce mismatch")
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return refuse(http.StatusUnauthorized, "Your identity provider's sign-in could not be read."+ssoAgain, "claims: "+err.Error())
	}
	if claims.Email == "" {
		return refuse(http.StatusForbidden, "Your identity provider did not tell Recourse your email address, so Recourse cannot tell which account is yours. Ask an admin to check the single sign-on setup.", "no email claim")
	}
	if claims.EmailVerified != true {
		return refuse(http.StatusForbidden, "Your identity provider has not verified your email address "+claims.Email+", so Recourse cannot sign you in with it. Ask an admin.", "email not verified")
	}
	u, err := con.opt.Users.ByEmail(c.Request().Context(), claims.Email)
	if errs.Is(err, errs.ENOTFOUND) || errs.Is(err, errs.EINVALID) {
		return refuse(http.StatusForbidden, "There is no Recourse account for "+claims.Email+". Ask an admin to create one; single sign-on does not create accounts.", "no such user")
	}
	if err != nil {
		return auth.Principal{}, nil, err
	}
	if !u.Active {
		return refuse(http.StatusForbidden, "The Recourse account for "+claims.Email+" is deactivated. Ask an admin to reactivate it.", "user deactivated")
	}
	return auth.Principal{Kind: auth.ActorUser, UserID: u.ID, Name: u.DisplayName, Role: u.Role}, nil, nil
}
