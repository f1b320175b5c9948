// Package auth issues and checks API tokens and decides what each role may
// do. Tokens are random, shown once, and stored only as a SHA-256 hash.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Role is what a token's holder is.
type Role string

// Roles, from the front line up.
const (
	RoleAgent      Role = "agent"
	RoleAnalyst    Role = "analyst"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
)

// Roles lists every role, from the least to the most privileged.
func Roles() []Role { return []Role{RoleAgent, RoleAnalyst, RoleSupervisor, RoleAdmin} }

// rank orders roles: a higher rank may do at least what a lower one may.
func (r Role) rank() int {
	for i, x := range Roles() {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// lower returns the less privileged of a and b: a token acts with its own
// role, but never above its user's.
func lower(a, b Role) Role {
	if a.rank() <= b.rank() {
		return a
	}
	return b
}

// ParseRole returns the role named s, or EINVALID.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", errs.Invalid("role must be one of agent, analyst, supervisor, admin (got %q)", s)
}

// tokenPrefix marks Recourse tokens so secret scanners can find leaked ones.
const tokenPrefix = "rct_"

// Token is a stored API token, without its secret.
type Token struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"user_id"`
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type tokenRow struct {
	ID         int64
	UserID     int64
	Name       string
	Role       string
	TokenHash  string
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

func (tokenRow) TableName() string { return "api_tokens" }

func (r tokenRow) token() Token {
	return Token{ID: r.ID, UserID: r.UserID, Name: r.Name, Role: Role(r.Role), Prefix: r.Prefix, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
}

// ActorKind says what kind of actor did something. It is recorded with
// every audit entry.
type ActorKind string

// Actor kinds: a person (through one of their API tokens), Recourse itself
// (sweepers, resumers, automation), an operator at the command line, or the
// billing provider.
const (
	ActorUser   ActorKind = "user"
	ActorSystem ActorKind = "system"
	ActorCLI    ActorKind = "cli"
	ActorStripe ActorKind = "stripe"
)

// Principal is who made a request: a user through one of their tokens, or
// (Kind set) a non-person actor such as the CLI operator.
type Principal struct {
	// Kind is empty or ActorUser for a person.
	Kind ActorKind
	// TokenID is the token the request came with (0 when not over the API).
	TokenID int64
	// UserID is the person (0 for non-person actors).
	UserID int64
	// Name is the user's display name, or the actor's name ("system",
	// "stripe", "cli:<os user>").
	Name string
	// Role is the token's role, never above its user's.
	Role Role
	// Scope is the user's scope, read with the token or session on every
	// request (empty: unrestricted; non-person actors are never scoped).
	Scope Scope
}

// ActorKind returns what kind of actor p is.
func (p Principal) ActorKind() ActorKind {
	if p.Kind == "" {
		return ActorUser
	}
	return p.Kind
}

// Actor is how the principal is named on timelines and in the audit log.
func (p Principal) Actor() string { return p.Name }

// CLIPrincipal is the operator running a command, named cli:<os user>.
func CLIPrincipal(osUser string) Principal {
	if osUser == "" {
		osUser = "unknown"
	}
	return Principal{Kind: ActorCLI, Name: "cli:" + osUser}
}

// TokenStore keeps API tokens.
type TokenStore struct {
	db    *db.DB
	clock clock.Clock
	audit Auditor
}

// NewTokenStore returns a store over d. Token changes are audited once an
// auditor is set with WithAuditor.
func NewTokenStore(d *db.DB, c clock.Clock) *TokenStore { return &TokenStore{db: d, clock: c} }

// WithAuditor makes s record every token it creates or revokes with a, in
// the same transaction, and returns s.
func (s *TokenStore) WithAuditor(a Auditor) *TokenStore {
	s.audit = a
	return s
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return tokenPrefix + hex.EncodeToString(b), nil
}

func cleanTokenName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", errs.Invalid("token name must be 1–200 characters")
	}
	return name, nil
}

// Create makes a token named name with role for the person called name and
// returns the secret, which is never stored and cannot be shown again. This
// is the shortcut from before users: the owner is the user with that
// display name and no email (as the 0006 migration made one user per token
// name), created with role if there is none, and raised to role if lower.
// Tokens for a known person are made with Issue. EINVALID for a bad name
// or role, or a deactivated user.
func (s *TokenStore) Create(ctx context.Context, name string, role Role) (string, Token, error) {
	name, err := cleanTokenName(name)
	if err != nil {
		return "", Token{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", Token{}, err
	}
	var secret string
	var tok Token
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		var u userRow
		err := tx.WithContext(ctx).Where("display_name = ? AND email IS NULL", name).Order("id").Take(&u).Error
		now := s.clock.Now()
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			u = userRow{DisplayName: name, Role: string(role), Active: true, CreatedAt: now, UpdatedAt: now}
			if err := tx.WithContext(ctx).Create(&u).Error; err != nil {
				return fmt.Errorf("create user %q: %w", name, err)
			}
			if err := s.record(ctx, tx, Change{Action: "user.create", ObjectType: "user", ObjectID: strconv.FormatInt(u.ID, 10),
				After: u.user(nil, Scope{}), Detail: name + " (" + string(role) + "), for a token"}); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("find user %q: %w", name, err)
		case !u.Active:
			return errs.Coded(errs.EINVALID, "user_inactive", "user %q is deactivated; reactivate them first", name)
		case role.rank() > Role(u.Role).rank():
			before := u.user(nil, Scope{})
			if err := tx.WithContext(ctx).Model(&userRow{}).Where("id = ?", u.ID).Updates(map[string]any{"role": string(role), "updated_at": now}).Error; err != nil {
				return fmt.Errorf("raise role of user %d: %w", u.ID, err)
			}
			u.Role, u.UpdatedAt = string(role), now
			if err := s.record(ctx, tx, Change{Action: "user.update", ObjectType: "user", ObjectID: strconv.FormatInt(u.ID, 10),
				Before: before, After: u.user(nil, Scope{}), Detail: "role raised for a new token"}); err != nil {
				return err
			}
		}
		secret, tok, err = s.issueIn(ctx, tx, u.ID, name, role)
		return err
	})
	if err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

// Issue makes a token named name for user userID and returns the secret,
// shown once. role empty means the user's role; it may not be above it.
// ENOTFOUND (no such user), EINVALID (bad name or role, deactivated user).
func (s *TokenStore) Issue(ctx context.Context, userID int64, name string, role Role) (string, Token, error) {
	name, err := cleanTokenName(name)
	if err != nil {
		return "", Token{}, err
	}
	var secret string
	var tok Token
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		u, err := getUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if !u.Active {
			return errs.Coded(errs.EINVALID, "user_inactive", "user %d is deactivated; a deactivated user gets no tokens", userID)
		}
		if role == "" {
			role = Role(u.Role)
		}
		if _, err := ParseRole(string(role)); err != nil {
			return err
		}
		if role.rank() > Role(u.Role).rank() {
			return errs.Coded(errs.EINVALID, "role_above_user", "a token cannot have role %s: its user is %s", role, u.Role)
		}
		secret, tok, err = s.issueIn(ctx, tx, u.ID, name, role)
		return err
	})
	if err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

func (s *TokenStore) issueIn(ctx context.Context, tx *gorm.DB, userID int64, name string, role Role) (string, Token, error) {
	secret, err := newSecret()
	if err != nil {
		return "", Token{}, err
	}
	row := tokenRow{UserID: userID, Name: name, Role: string(role), TokenHash: hashToken(secret), Prefix: secret[:len(tokenPrefix)+6], CreatedAt: s.clock.Now()}
	if err := tx.WithContext(ctx).Create(&row).Error; err != nil {
		return "", Token{}, fmt.Errorf("store token %q: %w", name, err)
	}
	tok := row.token()
	if err := s.record(ctx, tx, Change{Action: "token.create", ObjectType: "api_token", ObjectID: strconv.FormatInt(row.ID, 10),
		After: tok, Detail: fmt.Sprintf("%s (%s) for user %d", tok.Name, tok.Role, userID)}); err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

func (s *TokenStore) record(ctx context.Context, tx *gorm.DB, c Change) error {
	if s.audit == nil {
		return nil
	}
	return s.audit(ctx, tx, c)
}

// authRow is a token joined with its user.
type authRow struct {
	TokenID    int64
	TokenRole  string
	RevokedAt  *time.Time
	LastUsedAt *time.Time
	UserID     int64
	UserName   string
	UserRole   string
	Active     bool
}

// Authenticate returns the principal for secret: the token's user, acting
// with the token's role but never above the user's. EUNAUTHORIZED when the
// token is unknown or revoked or its user deactivated, EUNAVAILABLE when
// the database cannot be reached (a read on a severed pooled connection is
// retried once on a fresh one first).
func (s *TokenStore) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return Principal{}, errs.New(errs.EUNAUTHORIZED, "invalid API token")
	}
	var rows []authRow
	err := s.db.Read(ctx, func(g *gorm.DB) error {
		rows = rows[:0]
		return g.Raw(`SELECT t.id AS token_id, t.role AS token_role, t.revoked_at, t.last_used_at,
       u.id AS user_id, u.display_name AS user_name, u.role AS user_role, u.active
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = ?`, hashToken(secret)).Scan(&rows).Error
	})
	if err != nil {
		return Principal{}, errs.Wrap(errs.EUNAVAILABLE, err, "cannot check the API token right now")
	}
	if len(rows) == 0 {
		return Principal{}, errs.New(errs.EUNAUTHORIZED, "invalid API token")
	}
	row := rows[0]
	if row.RevokedAt != nil {
		return Principal{}, errs.New(errs.EUNAUTHORIZED, "API token has been revoked")
	}
	if !row.Active {
		return Principal{}, errs.New(errs.EUNAUTHORIZED, "the user of this API token has been deactivated")
	}
	var scope Scope
	if err := s.db.Read(ctx, func(g *gorm.DB) error {
		var err error
		scope, err = LoadScope(ctx, g, row.UserID)
		return err
	}); err != nil {
		return Principal{}, errs.Wrap(errs.EUNAVAILABLE, err, "cannot check the API token right now")
	}
	now := s.clock.Now()
	// Record use at most once a minute so reads do not turn into writes. A
	// failure here is not the request's problem (and is never retried).
	if row.LastUsedAt == nil || now.Sub(*row.LastUsedAt) > time.Minute {
		_ = s.db.WithContext(ctx).Model(&tokenRow{}).Where("id = ?", row.TokenID).Update("last_used_at", now).Error
	}
	return Principal{Kind: ActorUser, TokenID: row.TokenID, UserID: row.UserID, Name: row.UserName,
		Role: lower(Role(row.TokenRole), Role(row.UserRole)), Scope: scope}, nil
}

// List returns every token, newest first.
func (s *TokenStore) List(ctx context.Context) ([]Token, error) {
	var rows []tokenRow
	if err := s.db.Read(ctx, func(g *gorm.DB) error { return g.Order("id DESC").Find(&rows).Error }); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]Token, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, nil
}

// Revoke disables token id. ENOTFOUND if there is no active token id.
func (s *TokenStore) Revoke(ctx context.Context, id int64) error {
	return s.db.Transact(ctx, func(tx *gorm.DB) error {
		now := s.clock.Now()
		res := tx.WithContext(ctx).Model(&tokenRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", now)
		if res.Error != nil {
			return fmt.Errorf("revoke token %d: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return errs.NotFound("no active token %d", id)
		}
		var row tokenRow
		if err := tx.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
			return fmt.Errorf("read revoked token %d: %w", id, err)
		}
		return s.record(ctx, tx, Change{Action: "token.revoke", ObjectType: "api_token", ObjectID: strconv.FormatInt(id, 10),
			After: row.token(), Detail: fmt.Sprintf("%s (%s) of user %d", row.Name, row.Role, row.UserID)})
	})
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of the request, if authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Middleware authenticates every request by its Bearer token: 401 without a
// valid one.
func Middleware(s *TokenStore) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Request().Header.Get(echo.HeaderAuthorization)
			scheme, secret, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="recourse"`)
				return errs.New(errs.EUNAUTHORIZED, "an Authorization: Bearer <token> header is required")
			}
			p, err := s.Authenticate(c.Request().Context(), strings.TrimSpace(secret))
			if err != nil {
				if errs.Is(err, errs.EUNAUTHORIZED) {
					c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="recourse", error="invalid_token"`)
				}
				return err
			}
			c.SetRequest(c.Request().WithContext(WithPrincipal(c.Request().Context(), p)))
			return next(c)
		}
	}
}
