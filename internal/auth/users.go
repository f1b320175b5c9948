package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Change is one audited change to users or tokens. internal/audit turns it
// into an audit entry (auth cannot import audit, which imports auth).
type Change struct {
	Action     string // user.create, user.update, user.deactivate, token.create, token.revoke
	ObjectType string // user, api_token
	ObjectID   string
	Before     any
	After      any
	Detail     string
}

// Auditor records a change in the audit log inside tx, the transaction that
// makes the change, so the two commit together. The actor comes from ctx.
type Auditor func(ctx context.Context, tx *gorm.DB, c Change) error

// User is a person who works in Recourse. A user owns any number of API
// tokens; four-eyes approval compares users, and deactivating a user
// revokes every token they hold.
type User struct {
	ID int64 `json:"id"`
	// Email is unique; nil for users migrated from token names until an
	// admin sets it.
	Email       *string  `json:"email"`
	DisplayName string   `json:"display_name"`
	Role        Role     `json:"role"`
	Teams       []string `json:"teams"`
	// Scope limits what the user sees and touches (empty: everything);
	// see Scope.
	Scope         Scope      `json:"scope"`
	Active        bool       `json:"active"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	DeactivatedAt *time.Time `json:"deactivated_at"`
}

type userRow struct {
	ID            int64
	Email         *string
	DisplayName   string
	Role          string
	Active        bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	DeactivatedAt *time.Time
}

func (userRow) TableName() string { return "users" }

func (r userRow) user(teams []string, scope Scope) User {
	if teams == nil {
		teams = []string{}
	}
	if scope.Teams == nil {
		scope.Teams = []string{}
	}
	if scope.BusinessLines == nil {
		scope.BusinessLines = []string{}
	}
	return User{ID: r.ID, Email: r.Email, DisplayName: r.DisplayName, Role: Role(r.Role), Teams: teams, Scope: scope, Active: r.Active,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), DeactivatedAt: r.DeactivatedAt}
}

type userTeamRow struct {
	UserID int64
	Team   string
}

func (userTeamRow) TableName() string { return "user_teams" }

// NewUser is what it takes to create a user.
type NewUser struct {
	Email       string
	DisplayName string
	Role        Role
	Teams       []string
}

// UserPatch changes a user; nil fields are left as they are. Active false
// deactivates the user (revoking their tokens); true reactivates them
// (their revoked tokens stay revoked).
type UserPatch struct {
	Email       *string
	DisplayName *string
	Role        *Role
	Teams       *[]string
	// Scope replaces the user's scope (an empty one clears it). A scoped
	// actor may only set a scope their own covers.
	Scope  *Scope
	Active *bool
}

// UserStore keeps users.
type UserStore struct {
	db    *db.DB
	clock clock.Clock
	audit Auditor
	// teams are the teams a scope may name (nil: any well-formed name).
	teams []string
}

// WithKnownTeams makes s refuse scopes naming a team outside teams (the
// case vocabulary's, which auth cannot import), and returns s.
func (s *UserStore) WithKnownTeams(teams []string) *UserStore {
	s.teams = teams
	return s
}

// NewUserStore returns a store over d; every change is recorded with audit
// (nil records nothing).
func NewUserStore(d *db.DB, c clock.Clock, audit Auditor) *UserStore {
	return &UserStore{db: d, clock: c, audit: audit}
}

func (s *UserStore) record(ctx context.Context, tx *gorm.DB, c Change) error {
	if s.audit == nil {
		return nil
	}
	return s.audit(ctx, tx, c)
}

var teamPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// CleanEmail returns email trimmed and lower-cased, or EINVALID unless it is
// one plain address.
func CleanEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 {
		return "", errs.Coded(errs.EINVALID, "invalid_email", "email must be one plain address like ada@example.com (got %q)", email)
	}
	return email, nil
}

func cleanDisplayName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len([]rune(s)) > 200 {
		return "", errs.Coded(errs.EINVALID, "invalid_display_name", "display name must be 1–200 characters")
	}
	return s, nil
}

func cleanTeams(teams []string) ([]string, error) {
	seen := map[string]bool{}
	out := []string{}
	for _, t := range teams {
		t = strings.TrimSpace(t)
		if !teamPattern.MatchString(t) {
			return nil, errs.Coded(errs.EINVALID, "invalid_team", "team names are lower-case words like disputes or billing_support (got %q)", t)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if len(out) > 20 {
		return nil, errs.Coded(errs.EINVALID, "invalid_team", "a user belongs to at most 20 teams")
	}
	sort.Strings(out)
	return out, nil
}

func getUser(ctx context.Context, g *gorm.DB, id int64) (userRow, error) {
	var u userRow
	err := g.WithContext(ctx).Where("id = ?", id).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return userRow{}, errs.NotFound("no user %d", id)
	}
	if err != nil {
		return userRow{}, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

func teamsOf(ctx context.Context, g *gorm.DB, ids []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []userTeamRow
	if err := g.WithContext(ctx).Where("user_id IN ?", ids).Order("user_id, team").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read team memberships: %w", err)
	}
	for _, r := range rows {
		out[r.UserID] = append(out[r.UserID], r.Team)
	}
	return out, nil
}

func loadUser(ctx context.Context, g *gorm.DB, id int64) (User, error) {
	u, err := getUser(ctx, g, id)
	if err != nil {
		return User{}, err
	}
	teams, err := teamsOf(ctx, g, []int64{id})
	if err != nil {
		return User{}, err
	}
	scopes, err := scopesOf(ctx, g, []int64{id})
	if err != nil {
		return User{}, err
	}
	return u.user(teams[id], scopes[id]), nil
}

func setTeams(ctx context.Context, tx *gorm.DB, id int64, teams []string) error {
	if err := tx.WithContext(ctx).Where("user_id = ?", id).Delete(&userTeamRow{}).Error; err != nil {
		return fmt.Errorf("clear teams of user %d: %w", id, err)
	}
	for _, t := range teams {
		if err := tx.WithContext(ctx).Create(&userTeamRow{UserID: id, Team: t}).Error; err != nil {
			return fmt.Errorf("add user %d to team %s: %w", id, t, err)
		}
	}
	return nil
}

func emailTaken(email string) error {
	return errs.Coded(errs.ECONFLICT, "email_taken", "another user already has the email %s", email)
}

// Create adds an active user. EINVALID (bad email, name, role or team),
// ECONFLICT (email taken).
func (s *UserStore) Create(ctx context.Context, n NewUser) (User, error) {
	email, err := CleanEmail(n.Email)
	if err != nil {
		return User{}, err
	}
	name, err := cleanDisplayName(n.DisplayName)
	if err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(n.Role)); err != nil {
		return User{}, err
	}
	teams, err := cleanTeams(n.Teams)
	if err != nil {
		return User{}, err
	}
	var out User
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		now := s.clock.Now()
		u := userRow{Email: &email, DisplayName: name, Role: string(n.Role), Active: true, CreatedAt: now, UpdatedAt: now}
		if err := tx.WithContext(ctx).Create(&u).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return emailTaken(email)
			}
			return fmt.Errorf("create user %s: %w", email, err)
		}
		if err := setTeams(ctx, tx, u.ID, teams); err != nil {
			return err
		}
		out = u.user(teams, Scope{})
		return s.record(ctx, tx, Change{Action: "user.create", ObjectType: "user", ObjectID: strconv.FormatInt(u.ID, 10),
			After: out, Detail: fmt.Sprintf("%s <%s> (%s)", name, email, n.Role)})
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// Get returns user id. ENOTFOUND if there is none.
func (s *UserStore) Get(ctx context.Context, id int64) (User, error) {
	var out User
	err := s.db.Read(ctx, func(g *gorm.DB) error {
		var err error
		out, err = loadUser(ctx, g, id)
		return err
	})
	return out, err
}

// ByEmail returns the user with email. ENOTFOUND if there is none.
func (s *UserStore) ByEmail(ctx context.Context, email string) (User, error) {
	clean, err := CleanEmail(email)
	if err != nil {
		return User{}, err
	}
	var id int64
	err = s.db.Read(ctx, func(g *gorm.DB) error {
		var u userRow
		err := g.Where("email = ?", clean).Take(&u).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errs.NotFound("no user with email %s", clean)
		}
		id = u.ID
		return err
	})
	if err != nil {
		return User{}, err
	}
	return s.Get(ctx, id)
}

// UserFilter narrows List; zero fields match everyone.
type UserFilter struct {
	Active *bool
	Role   Role
}

// List returns users oldest first, a page at a time. EINVALID for a cursor
// it did not issue.
func (s *UserStore) List(ctx context.Context, f UserFilter, page httpx.PageRequest) (httpx.List[User], error) {
	var after int64
	hasCursor, err := httpx.DecodeCursor(page.Cursor, &after)
	if err != nil {
		return httpx.List[User]{}, err
	}
	var out []User
	err = s.db.Read(ctx, func(g *gorm.DB) error {
		q := g.Model(&userRow{})
		if f.Active != nil {
			q = q.Where("active = ?", *f.Active)
		}
		if f.Role != "" {
			q = q.Where("role = ?", string(f.Role))
		}
		if hasCursor {
			q = q.Where("id > ?", after)
		}
		var rows []userRow
		if err := q.Order("id").Limit(page.Limit + 1).Find(&rows).Error; err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		ids := make([]int64, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		teams, err := teamsOf(ctx, g, ids)
		if err != nil {
			return err
		}
		scopes, err := scopesOf(ctx, g, ids)
		if err != nil {
			return err
		}
		out = make([]User, len(rows))
		for i, r := range rows {
			out[i] = r.user(teams[r.ID], scopes[r.ID])
		}
		return nil
	})
	if err != nil {
		return httpx.List[User]{}, err
	}
	return httpx.NewList(out, page.Limit, func(u User) any { return u.ID }), nil
}

// All returns every user, oldest first (for the CLI).
func (s *UserStore) All(ctx context.Context) ([]User, error) {
	var all []User
	page := httpx.PageRequest{Limit: httpx.MaxLimit}
	for {
		l, err := s.List(ctx, UserFilter{}, page)
		if err != nil {
			return nil, err
		}
		all = append(all, l.Data...)
		if l.NextCursor == nil {
			return all, nil
		}
		page.Cursor = *l.NextCursor
	}
}

// Update applies p to user id and returns the user as it now is. Setting
// Active false deactivates the user and revokes all their tokens at once.
// The last active admin cannot be deactivated or demoted, and nobody can
// deactivate themselves (the user in ctx). ENOTFOUND, EINVALID, ECONFLICT
// (email taken, last_admin, self_deactivate).
func (s *UserStore) Update(ctx context.Context, id int64, p UserPatch) (User, error) {
	var out User
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		before, err := loadUser(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		set := map[string]any{}
		if p.Email != nil {
			email, err := CleanEmail(*p.Email)
			if err != nil {
				return err
			}
			set["email"] = email
		}
		if p.DisplayName != nil {
			name, err := cleanDisplayName(*p.DisplayName)
			if err != nil {
				return err
			}
			set["display_name"] = name
		}
		if p.Role != nil {
			if _, err := ParseRole(string(*p.Role)); err != nil {
				return err
			}
			set["role"] = string(*p.Role)
		}
		var teams []string
		if p.Teams != nil {
			if teams, err = cleanTeams(*p.Teams); err != nil {
				return err
			}
		}
		var scope Scope
		scopeChanged := false
		if p.Scope != nil {
			if scope, err = cleanScope(*p.Scope, s.teams); err != nil {
				return err
			}
			// A scoped actor can hand out no more than they see themselves,
			// to others or to themselves (the API refuses user management
			// to scoped principals outright; this holds for any caller).
			if me, ok := FromContext(ctx); ok && !me.Scope.Covers(scope) {
				return errs.Coded(errs.EFORBIDDEN, "scope_widening", "your scope (%s) does not cover %s", me.Scope, scope)
			}
			scopeChanged = scope.String() != before.Scope.String()
		}
		deactivate := p.Active != nil && !*p.Active && before.Active
		reactivate := p.Active != nil && *p.Active && !before.Active
		if deactivate {
			set["active"], set["deactivated_at"] = false, now
		}
		if reactivate {
			set["active"], set["deactivated_at"] = true, nil
		}
		demoted := p.Role != nil && *p.Role != RoleAdmin
		if before.Active && before.Role == RoleAdmin && (deactivate || demoted) {
			if err := s.keepAnAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		if deactivate {
			if me, ok := FromContext(ctx); ok && me.ActorKind() == ActorUser && me.UserID == id {
				return errs.Coded(errs.ECONFLICT, "self_deactivate", "you cannot deactivate yourself; ask another admin")
			}
		}
		if len(set) == 0 && p.Teams == nil && !scopeChanged {
			out = before // nothing to change, nothing to audit
			return nil
		}
		if scopeChanged {
			if err := setScope(ctx, tx, id, scope); err != nil {
				return err
			}
			after, err := loadUser(ctx, tx, id)
			if err != nil {
				return err
			}
			if err := s.record(ctx, tx, Change{Action: "user.scope", ObjectType: "user", ObjectID: strconv.FormatInt(id, 10),
				Before: before, After: after, Detail: before.Scope.String() + " → " + scope.String()}); err != nil {
				return err
			}
			if len(set) == 0 && p.Teams == nil {
				set["updated_at"] = now
				if err := tx.WithContext(ctx).Model(&userRow{}).Where("id = ?", id).Updates(set).Error; err != nil {
					return fmt.Errorf("update user %d: %w", id, err)
				}
				out, err = loadUser(ctx, tx, id)
				return err
			}
			before = after
		}
		set["updated_at"] = now
		if err := tx.WithContext(ctx).Model(&userRow{}).Where("id = ?", id).Updates(set).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return emailTaken(fmt.Sprint(set["email"]))
			}
			return fmt.Errorf("update user %d: %w", id, err)
		}
		if p.Teams != nil {
			if err := setTeams(ctx, tx, id, teams); err != nil {
				return err
			}
		}
		revoked := int64(0)
		if deactivate {
			if revoked, err = revokeAllOf(ctx, tx, id, now); err != nil {
				return err
			}
		}
		if out, err = loadUser(ctx, tx, id); err != nil {
			return err
		}
		action, detail := "user.update", ""
		switch {
		case deactivate:
			action, detail = "user.deactivate", fmt.Sprintf("%d tokens revoked", revoked)
		case reactivate:
			action, detail = "user.reactivate", "revoked tokens stay revoked"
		}
		return s.record(ctx, tx, Change{Action: action, ObjectType: "user", ObjectID: strconv.FormatInt(id, 10),
			Before: before, After: out, Detail: detail})
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// Deactivate deactivates user id and revokes all their tokens.
// ENOTFOUND, ECONFLICT (the last active admin).
func (s *UserStore) Deactivate(ctx context.Context, id int64) (User, error) {
	f := false
	return s.Update(ctx, id, UserPatch{Active: &f})
}

func (s *UserStore) keepAnAdmin(ctx context.Context, tx *gorm.DB, id int64) error {
	var n int64
	if err := tx.WithContext(ctx).Model(&userRow{}).Where("role = ? AND active AND id <> ?", string(RoleAdmin), id).Count(&n).Error; err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if n == 0 {
		return errs.Coded(errs.ECONFLICT, "last_admin", "user %d is the last active admin; make another admin first", id)
	}
	return nil
}

func revokeAllOf(ctx context.Context, tx *gorm.DB, userID int64, now time.Time) (int64, error) {
	res := tx.WithContext(ctx).Model(&tokenRow{}).Where("user_id = ? AND revoked_at IS NULL", userID).Update("revoked_at", now)
	if res.Error != nil {
		return 0, fmt.Errorf("revoke tokens of user %d: %w", userID, res.Error)
	}
	return res.RowsAffected, nil
}
