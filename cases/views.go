package cases

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// SavedView is a named filter of GET /cases that a person keeps: a queue
// of their own, shown as a tab in the console. A view belongs to the user
// who saved it; a shared view is listed for everyone who may read cases,
// but only its owner may delete it.
type SavedView struct {
	ID int64 `json:"id"`
	// Name is what the tab says (1–60 characters, unique per owner).
	Name string `json:"name"`
	// Filters are GET /cases query parameters (no limit or cursor), as
	// validated by ParseFilter.
	Filters map[string]string `json:"filters"`
	// Query is Filters as a query string, for GET /api/v1/cases?{query}.
	Query     string    `json:"query"`
	Shared    bool      `json:"shared"`
	OwnerID   int64     `json:"owner_id"`
	Owner     string    `json:"owner"`
	CreatedAt time.Time `json:"created_at"`
}

// Filter returns the view's list filter.
func (v SavedView) Filter() (Filter, error) {
	q, err := url.ParseQuery(v.Query)
	if err != nil {
		return Filter{}, fmt.Errorf("saved view %d: %w", v.ID, err)
	}
	return ParseFilter(q)
}

// Limits on saved views.
const (
	maxViewName     = 60
	MaxViewsPerUser = 50
)

// NewView is a request to save a view.
type NewView struct {
	Name    string
	Filters url.Values
	Shared  bool
}

// viewRow is a row of saved_views.
type viewRow struct {
	ID        int64 `gorm:"primaryKey"`
	OwnerID   int64
	OwnerName string
	Name      string
	Query     string
	Shared    bool
	CreatedAt time.Time
}

func (viewRow) TableName() string { return "saved_views" }

func (r viewRow) toView() SavedView {
	v := SavedView{ID: r.ID, Name: r.Name, Query: r.Query, Shared: r.Shared, OwnerID: r.OwnerID, Owner: r.OwnerName,
		CreatedAt: r.CreatedAt.UTC(), Filters: map[string]string{}}
	if q, err := url.ParseQuery(r.Query); err == nil {
		for k := range q {
			v.Filters[k] = q.Get(k)
		}
	}
	return v
}

// viewQuery validates filters exactly as GET /cases validates its query
// parameters (limit and cursor are not part of a view) and returns them as
// a canonical query string.
func viewQuery(filters url.Values) (string, error) {
	clean := url.Values{}
	for k, vs := range filters {
		if k == "limit" || k == "cursor" {
			return "", errs.Coded(errs.EINVALID, "invalid_parameter", "a view does not keep %q", k)
		}
		for _, v := range vs {
			if v != "" {
				clean.Add(k, v)
			}
		}
		if len(vs) > 1 {
			return "", errs.Coded(errs.EINVALID, "invalid_parameter", "query parameter %q given more than once", k)
		}
	}
	if _, err := ParseFilter(clean); err != nil {
		return "", err
	}
	return clean.Encode(), nil
}

func requirePerson(p auth.Principal) error {
	if p.UserID == 0 {
		return errs.Coded(errs.EFORBIDDEN, "forbidden", "saved views belong to a person; %s is not one", p.Actor())
	}
	return nil
}

// SaveView stores a view for p, audited. EINVALID for a bad name or a
// filter GET /cases would refuse (with that parameter's code), ECONFLICT
// (view_exists) when p already has a view of that name, EINVALID
// (too_many_views) past MaxViewsPerUser, EFORBIDDEN when p is not a person.
func (s *Service) SaveView(ctx context.Context, p auth.Principal, in NewView) (SavedView, error) {
	if err := requirePerson(p); err != nil {
		return SavedView{}, err
	}
	name, err := cleanName("name", in.Name, maxViewName)
	if err != nil {
		return SavedView{}, err
	}
	query, err := viewQuery(in.Filters)
	if err != nil {
		return SavedView{}, err
	}
	row := viewRow{OwnerID: p.UserID, OwnerName: p.Name, Name: name, Query: query, Shared: in.Shared, CreatedAt: s.clock.Now().UTC()}
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.WithContext(ctx).Model(&viewRow{}).Where("owner_id = ?", p.UserID).Count(&n).Error; err != nil {
			return fmt.Errorf("count saved views: %w", err)
		}
		if n >= MaxViewsPerUser {
			return errs.Coded(errs.EINVALID, "too_many_views", "you have %d saved views, the most one person may keep; delete one first", n)
		}
		if err := tx.WithContext(ctx).Create(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return errs.Coded(errs.ECONFLICT, "view_exists", "you already have a view called %q", name)
			}
			return fmt.Errorf("save view: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "view.create", ObjectType: "saved_view",
			ObjectID: strconv.FormatInt(row.ID, 10), After: audit.Marshal(row.toView())})
	})
	if err != nil {
		return SavedView{}, err
	}
	return row.toView(), nil
}

// sharedWithin is the condition on other people's views that p may use:
// shared ones — none within a scope, as a shared view's filters may name a
// customer or object beyond it (README "Scoping").
func sharedWithin(p auth.Principal) string {
	if !p.Scope.Unrestricted() {
		return "FALSE"
	}
	return "shared"
}

// Views lists the views p may use: their own and everyone's shared ones,
// by name. EFORBIDDEN when p is not a person.
func (s *Service) Views(ctx context.Context, p auth.Principal) ([]SavedView, error) {
	if err := requirePerson(p); err != nil {
		return nil, err
	}
	var rows []viewRow
	if err := s.db.Gorm.WithContext(ctx).Where("owner_id = ? OR ("+sharedWithin(p)+")", p.UserID).Order("name, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list saved views: %w", err)
	}
	out := make([]SavedView, len(rows))
	for i, r := range rows {
		out[i] = r.toView()
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].OwnerID == p.UserID && out[j].OwnerID != p.UserID })
	return out, nil
}

// View returns view id if p may use it; ENOTFOUND otherwise (another
// person's unshared view is not found, not forbidden).
func (s *Service) View(ctx context.Context, p auth.Principal, id int64) (SavedView, error) {
	if err := requirePerson(p); err != nil {
		return SavedView{}, err
	}
	var r viewRow
	err := s.db.Gorm.WithContext(ctx).Where("id = ? AND (owner_id = ? OR ("+sharedWithin(p)+"))", id, p.UserID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return SavedView{}, errs.Coded(errs.ENOTFOUND, "not_found", "no saved view %d", id)
	}
	if err != nil {
		return SavedView{}, fmt.Errorf("get saved view %d: %w", id, err)
	}
	return r.toView(), nil
}

// DeleteView deletes p's view id, audited. ENOTFOUND when p does not own it
// (a view shared by someone else is theirs to delete).
func (s *Service) DeleteView(ctx context.Context, p auth.Principal, id int64) error {
	if err := requirePerson(p); err != nil {
		return err
	}
	return s.db.Transact(ctx, func(tx *gorm.DB) error {
		var r viewRow
		err := tx.WithContext(ctx).Where("id = ? AND owner_id = ?", id, p.UserID).Take(&r).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errs.Coded(errs.ENOTFOUND, "not_found", "no saved view %d of yours", id)
		}
		if err != nil {
			return fmt.Errorf("get saved view %d: %w", id, err)
		}
		if err := tx.WithContext(ctx).Where("id = ?", id).Delete(&viewRow{}).Error; err != nil {
			return fmt.Errorf("delete saved view %d: %w", id, err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "view.delete", ObjectType: "saved_view",
			ObjectID: strconv.FormatInt(id, 10), Before: audit.Marshal(r.toView())})
	})
}

// RegisterViews adds the saved-view routes to g, the authenticated /api/v1
// group, with the permission of reading cases:
//
//	GET    /views        the caller's views and everyone's shared ones   cases:read
//	POST   /views        save a view {"name", "filters", "shared"}      cases:read
//	DELETE /views/:id    delete one of the caller's views              cases:read
func (s *Service) RegisterViews(g *echo.Group) {
	read := auth.Require(auth.PermCasesRead)
	g.GET("/views", s.handleViews, read)
	g.POST("/views", s.handleSaveView, read)
	g.DELETE("/views/:id", s.handleDeleteView, read)
}

func (s *Service) handleViews(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	vs, err := s.Views(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"data": vs})
}

// viewRequest is the body of POST /views.
type viewRequest struct {
	Name    string            `json:"name"`
	Filters map[string]string `json:"filters"`
	Shared  bool              `json:"shared"`
}

func (s *Service) handleSaveView(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var req viewRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	f := url.Values{}
	for k, v := range req.Filters {
		f.Set(k, v)
	}
	v, err := s.SaveView(c.Request().Context(), p, NewView{Name: req.Name, Filters: f, Shared: req.Shared})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, v)
}

func (s *Service) handleDeleteView(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return errs.Coded(errs.ENOTFOUND, "not_found", "no saved view %q", c.Param("id"))
	}
	if err := s.DeleteView(c.Request().Context(), p, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Values returns f as GET /cases query parameters (the inverse of
// ParseFilter; the default sort is left out), for links and saved views.
func (f Filter) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("kind", string(f.Kind))
	set("state", f.State)
	set("status", string(f.Status))
	set("assignee", f.Assignee)
	set("team", string(f.Team))
	set("priority", string(f.Priority))
	set("business_line", f.BusinessLine)
	set("customer", f.Customer)
	set("subject", f.Subject)
	if f.NeedsAttention != nil {
		v.Set("needs_attention", strconv.FormatBool(*f.NeedsAttention))
	}
	set("sla", string(f.SLA))
	if !f.CreatedAfter.IsZero() {
		v.Set("created_after", f.CreatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if !f.CreatedBefore.IsZero() {
		v.Set("created_before", f.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	if f.Sort != "" && f.Sort != SortCreatedDesc {
		v.Set("sort", string(f.Sort))
	}
	return v
}
