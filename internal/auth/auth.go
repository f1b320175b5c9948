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

// Roles lists every role.
func Roles() []Role { return []Role{RoleAgent, RoleAnalyst, RoleSupervisor, RoleAdmin} }

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
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type tokenRow struct {
	ID         int64
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
	return Token{ID: r.ID, Name: r.Name, Role: Role(r.Role), Prefix: r.Prefix, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
}

// Principal is who made a request.
type Principal struct {
	TokenID int64
	Name    string
	Role    Role
}

// Actor is how the principal is named on timelines and in the audit log.
func (p Principal) Actor() string { return p.Name }

// TokenStore keeps API tokens.
type TokenStore struct {
	db    *db.DB
	clock clock.Clock
}

// NewTokenStore returns a store over d.
func NewTokenStore(d *db.DB, c clock.Clock) *TokenStore { return &TokenStore{db: d, clock: c} }

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// Create makes a token for name with role and returns the secret, which is
// never stored and cannot be shown again. EINVALID for a bad name or role.
func (s *TokenStore) Create(ctx context.Context, name string, role Role) (string, Token, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", Token{}, errs.Invalid("token name must be 1–200 characters")
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", Token{}, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", Token{}, fmt.Errorf("generate token: %w", err)
	}
	secret := tokenPrefix + hex.EncodeToString(b)
	row := tokenRow{Name: name, Role: string(role), TokenHash: hashToken(secret), Prefix: secret[:len(tokenPrefix)+6], CreatedAt: s.clock.Now()}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return "", Token{}, fmt.Errorf("store token %q: %w", name, err)
	}
	return secret, row.token(), nil
}

// Authenticate returns the principal for secret. EUNAUTHORIZED when the token
// is unknown or revoked, EUNAVAILABLE when the database cannot be reached.
func (s *TokenStore) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return Principal{}, errs.New(errs.EUNAUTHORIZED, "invalid API token")
	}
	var row tokenRow
	err := s.db.WithContext(ctx).Where("token_hash = ?", hashToken(secret)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Principal{}, errs.New(errs.EUNAUTHORIZED, "invalid API token")
	}
	if err != nil {
		return Principal{}, errs.Wrap(errs.EUNAVAILABLE, err, "cannot check the API token right now")
	}
	if row.RevokedAt != nil {
		return Principal{}, errs.New(errs.EUNAUTHORIZED, "API token has been revoked")
	}
	now := s.clock.Now()
	// Record use at most once a minute so reads do not turn into writes.
	if row.LastUsedAt == nil || now.Sub(*row.LastUsedAt) > time.Minute {
		_ = s.db.WithContext(ctx).Model(&tokenRow{}).Where("id = ?", row.ID).Update("last_used_at", now).Error
	}
	return Principal{TokenID: row.ID, Name: row.Name, Role: Role(row.Role)}, nil
}

// List returns every token, newest first.
func (s *TokenStore) List(ctx context.Context) ([]Token, error) {
	var rows []tokenRow
	if err := s.db.WithContext(ctx).Order("id DESC").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]Token, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, nil
}

// Revoke disables token id. ENOTFOUND if there is none.
func (s *TokenStore) Revoke(ctx context.Context, id int64) error {
	res := s.db.WithContext(ctx).Model(&tokenRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", s.clock.Now())
	if res.Error != nil {
		return fmt.Errorf("revoke token %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return errs.NotFound("no active token %d", id)
	}
	return nil
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
