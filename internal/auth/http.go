package auth

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Auditor records token management in the audit log (internal/audit's Log
// satisfies it through a small adapter in the wiring).
type Auditor func(ctx context.Context, action, objectID, detail string) error

// TokenHTTP serves token management for admins.
type TokenHTTP struct {
	store *TokenStore
	audit Auditor
}

// NewTokenHTTP returns the endpoints; audit may be nil.
func NewTokenHTTP(s *TokenStore, audit Auditor) *TokenHTTP { return &TokenHTTP{store: s, audit: audit} }

// Register mounts GET/POST /tokens and DELETE /tokens/:id on the
// authenticated /api/v1 group, for tokens:manage only.
func (h *TokenHTTP) Register(g *echo.Group) {
	m := Require(PermTokensManage)
	g.GET("/tokens", h.list, m)
	g.POST("/tokens", h.create, m)
	g.DELETE("/tokens/:id", h.revoke, m)
}

type createToken struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// CreatedToken is a new token with its secret, shown once.
type CreatedToken struct {
	Token
	Secret string `json:"token"`
}

func (h *TokenHTTP) record(c echo.Context, action, id, detail string) error {
	if h.audit == nil {
		return nil
	}
	return h.audit(c.Request().Context(), action, id, detail)
}

func (h *TokenHTTP) list(c echo.Context) error {
	toks, err := h.store.List(c.Request().Context())
	if err != nil {
		return err
	}
	if toks == nil {
		toks = []Token{}
	}
	return c.JSON(http.StatusOK, map[string]any{"data": toks})
}

func (h *TokenHTTP) create(c echo.Context) error {
	var req createToken
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		return err
	}
	secret, tok, err := h.store.Create(c.Request().Context(), req.Name, role)
	if err != nil {
		return err
	}
	if err := h.record(c, "token.create", strconv.FormatInt(tok.ID, 10), tok.Name+" ("+string(tok.Role)+")"); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, CreatedToken{Token: tok, Secret: secret})
}

func (h *TokenHTTP) revoke(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return errs.Invalid("token id must be a number")
	}
	if err := h.store.Revoke(c.Request().Context(), id); err != nil {
		return err
	}
	if err := h.record(c, "token.revoke", c.Param("id"), ""); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
