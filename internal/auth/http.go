package auth

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// TokenHTTP serves token management for admins.
type TokenHTTP struct {
	store *TokenStore
}

// NewTokenHTTP returns the endpoints. Changes are audited by the store
// (TokenStore.WithAuditor).
func NewTokenHTTP(s *TokenStore) *TokenHTTP { return &TokenHTTP{store: s} }

// Register mounts GET/POST /tokens and DELETE /tokens/:id on the
// authenticated /api/v1 group, for tokens:manage only.
func (h *TokenHTTP) Register(g *echo.Group) {
	m := Require(PermTokensManage) // refused within a scope: see unscopedOnly
	g.GET("/tokens", h.list, m)
	g.POST("/tokens", h.create, m)
	g.DELETE("/tokens/:id", h.revoke, m)
}

// createToken is the body of POST /tokens: the token's user, a label, and
// optionally a role below the user's.
type createToken struct {
	UserID int64  `json:"user_id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
}

// CreatedToken is a new token with its secret, shown once.
type CreatedToken struct {
	Token
	Secret string `json:"token"`
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
	if req.UserID <= 0 {
		return errs.Coded(errs.EINVALID, "user_required", "user_id is required: every token belongs to a user (POST /api/v1/users creates one)")
	}
	var role Role
	if req.Role != "" {
		r, err := ParseRole(req.Role)
		if err != nil {
			return err
		}
		role = r
	}
	secret, tok, err := h.store.Issue(c.Request().Context(), req.UserID, req.Name, role)
	if err != nil {
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
	return c.NoContent(http.StatusNoContent)
}

// UserHTTP serves user management for admins.
type UserHTTP struct {
	store *UserStore
}

// NewUserHTTP returns the endpoints. Changes are audited by the store.
func NewUserHTTP(s *UserStore) *UserHTTP { return &UserHTTP{store: s} }

// Register mounts GET/POST /users and GET/PATCH /users/:id on the
// authenticated /api/v1 group, for users:manage only.
func (h *UserHTTP) Register(g *echo.Group) {
	m := Require(PermUsersManage) // refused within a scope: see unscopedOnly
	g.GET("/users", h.list, m)
	g.POST("/users", h.create, m)
	g.GET("/users/:id", h.get, m)
	g.PATCH("/users/:id", h.patch, m)
}

// createUserRequest is the body of POST /users. Unknown fields (id,
// active, created_at…) are refused: nothing else can be assigned.
type createUserRequest struct {
	Email       string   `json:"email"`
	DisplayName string   `json:"display_name"`
	Role        string   `json:"role"`
	Teams       []string `json:"teams"`
}

// patchUserRequest is the body of PATCH /users/{id}; absent fields stay.
type patchUserRequest struct {
	Email       *string   `json:"email"`
	DisplayName *string   `json:"display_name"`
	Role        *string   `json:"role"`
	Teams       *[]string `json:"teams"`
	Scope       *Scope    `json:"scope"`
	Active      *bool     `json:"active"`
}

func userID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.Invalid("user id must be a positive number")
	}
	return id, nil
}

func (h *UserHTTP) list(c echo.Context) error {
	page, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	var f UserFilter
	switch v := c.QueryParam("active"); v {
	case "":
	case "true", "false":
		b := v == "true"
		f.Active = &b
	default:
		return errs.Invalid("active must be true or false")
	}
	if v := c.QueryParam("role"); v != "" {
		if f.Role, err = ParseRole(v); err != nil {
			return err
		}
	}
	users, err := h.store.List(c.Request().Context(), f, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, users)
}

func (h *UserHTTP) get(c echo.Context) error {
	id, err := userID(c)
	if err != nil {
		return err
	}
	u, err := h.store.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

func (h *UserHTTP) create(c echo.Context) error {
	var req createUserRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		return err
	}
	u, err := h.store.Create(c.Request().Context(), NewUser{Email: req.Email, DisplayName: req.DisplayName, Role: role, Teams: req.Teams})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, u)
}

func (h *UserHTTP) patch(c echo.Context) error {
	id, err := userID(c)
	if err != nil {
		return err
	}
	var req patchUserRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	p := UserPatch{Email: req.Email, DisplayName: req.DisplayName, Teams: req.Teams, Scope: req.Scope, Active: req.Active}
	if req.Role != nil {
		role, err := ParseRole(*req.Role)
		if err != nil {
			return err
		}
		p.Role = &role
	}
	u, err := h.store.Update(c.Request().Context(), id, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}
