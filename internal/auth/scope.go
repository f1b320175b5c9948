package auth

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/errs"
)

// Scope limits what a user may see and touch to cases of some teams and/or
// business lines (issue 12, README "Scoping"). An empty dimension is
// unrestricted; an empty Scope is today's behaviour: everything.
//
// The rule, the one place it is written:
//
//	a case is in scope when (no Teams or case.team ∈ Teams) AND
//	(no BusinessLines or case.business_line ∈ BusinessLines) — a case
//	with no business line is out once BusinessLines is set;
//	a customer is in scope when at least one of their cases is;
//	a mirrored object (subscription, invoice, charge, refund, dispute,
//	fraud warning) is in scope when its customer is.
//
// The SQL forms below live here, beside the rule, because every domain
// package (cases, billing, actions, disputes, web) must apply the same one
// and internal/auth is what they all may import.
type Scope struct {
	Teams         []string `json:"teams"`
	BusinessLines []string `json:"business_lines"`
}

// Unrestricted reports whether s limits nothing.
func (s Scope) Unrestricted() bool { return len(s.Teams) == 0 && len(s.BusinessLines) == 0 }

// AllowsCase reports whether a case of team and business line bl (nil:
// none) is in scope.
func (s Scope) AllowsCase(team string, bl *string) bool {
	if len(s.Teams) > 0 && !slices.Contains(s.Teams, team) {
		return false
	}
	if len(s.BusinessLines) > 0 && (bl == nil || !slices.Contains(s.BusinessLines, *bl)) {
		return false
	}
	return true
}

// CaseSQL returns a condition on the cases row aliased alias ("" for the
// bare table) that holds for in-scope cases, and its arguments; "" when s
// is unrestricted.
func (s Scope) CaseSQL(alias string) (string, []any) {
	if s.Unrestricted() {
		return "", nil
	}
	col := func(c string) string {
		if alias == "" {
			return c
		}
		return alias + "." + c
	}
	var conds []string
	var args []any
	if len(s.Teams) > 0 {
		conds = append(conds, col("team")+" IN ?")
		args = append(args, s.Teams)
	}
	if len(s.BusinessLines) > 0 {
		conds = append(conds, col("business_line")+" IN ?") // NULL is never IN: out
		args = append(args, s.BusinessLines)
	}
	return "(" + strings.Join(conds, " AND ") + ")", args
}

// CustomerSQL returns a condition that holds when the customer id in
// column (e.g. "billing_customers.id") has at least one in-scope case, and
// its arguments; "" when s is unrestricted.
func (s Scope) CustomerSQL(column string) (string, []any) {
	c, args := s.CaseSQL("scope_c")
	if c == "" {
		return "", nil
	}
	return "EXISTS (SELECT 1 FROM cases scope_c WHERE scope_c.customer_id = " + column + " AND " + c + ")", args
}

// Covers reports whether every case in scope o is also in scope s: s is
// at least as wide as o. A scoped admin may only hand out scopes their
// own covers.
func (s Scope) Covers(o Scope) bool {
	sub := func(mine, theirs []string) bool {
		if len(mine) == 0 {
			return true
		}
		if len(theirs) == 0 {
			return false
		}
		for _, v := range theirs {
			if !slices.Contains(mine, v) {
				return false
			}
		}
		return true
	}
	return sub(s.Teams, o.Teams) && sub(s.BusinessLines, o.BusinessLines)
}

// String is the scope for audit details and the CLI: "teams=a,b
// business_lines=x" or "unrestricted".
func (s Scope) String() string {
	if s.Unrestricted() {
		return "unrestricted"
	}
	var parts []string
	if len(s.Teams) > 0 {
		parts = append(parts, "teams="+strings.Join(s.Teams, ","))
	}
	if len(s.BusinessLines) > 0 {
		parts = append(parts, "business_lines="+strings.Join(s.BusinessLines, ","))
	}
	return strings.Join(parts, " ")
}

// ScopeOf returns the scope of the request's principal in ctx; none (all)
// for a context without one — the webhook worker, sweepers, the CLI.
func ScopeOf(ctx context.Context) Scope {
	p, _ := FromContext(ctx)
	return p.Scope
}

// businessLinePattern matches the business lines a scope may name: the
// case's business_line is free text up to 100 characters, without
// control characters.
var businessLinePattern = regexp.MustCompile(`^[^\x00-\x1f\x7f]{1,100}$`)

// MaxScopeValues bounds each dimension of a scope.
const MaxScopeValues = 50

// cleanScope trims, deduplicates and sorts s, refusing unknown teams
// (known nil: any team pattern) and bad business lines (EINVALID).
func cleanScope(s Scope, known []string) (Scope, error) {
	clean := func(vs []string, ok func(string) bool, what string) ([]string, error) {
		seen := map[string]bool{}
		out := []string{}
		for _, v := range vs {
			v = strings.TrimSpace(v)
			if !ok(v) {
				return nil, errs.Coded(errs.EINVALID, "invalid_scope", "%s %q is not one a scope can name", what, v)
			}
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		if len(out) > MaxScopeValues {
			return nil, errs.Coded(errs.EINVALID, "invalid_scope", "a scope names at most %d %ss", MaxScopeValues, what)
		}
		sort.Strings(out)
		return out, nil
	}
	knownTeam := func(t string) bool {
		if known == nil {
			return teamPattern.MatchString(t)
		}
		return slices.Contains(known, t)
	}
	teams, err := clean(s.Teams, knownTeam, "team")
	if err != nil {
		if e, ok := errs.As(err); ok && known != nil {
			return Scope{}, errs.Coded(errs.EINVALID, "invalid_scope", "%s; teams are %s", e.Message, strings.Join(known, ", "))
		}
		return Scope{}, err
	}
	bls, err := clean(s.BusinessLines, businessLinePattern.MatchString, "business line")
	if err != nil {
		return Scope{}, err
	}
	return Scope{Teams: teams, BusinessLines: bls}, nil
}

type scopeRow struct {
	UserID    int64
	Dimension string
	Value     string
}

func (scopeRow) TableName() string { return "user_scopes" }

const (
	dimTeam         = "team"
	dimBusinessLine = "business_line"
)

// LoadScope reads user id's scope through g. It is read on every request
// (tokens and console sessions alike), so a change applies at once.
func LoadScope(ctx context.Context, g *gorm.DB, userID int64) (Scope, error) {
	m, err := scopesOf(ctx, g, []int64{userID})
	if err != nil {
		return Scope{}, err
	}
	return m[userID], nil
}

func scopesOf(ctx context.Context, g *gorm.DB, ids []int64) (map[int64]Scope, error) {
	out := map[int64]Scope{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []scopeRow
	if err := g.WithContext(ctx).Where("user_id IN ?", ids).Order("user_id, dimension, value").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read user scopes: %w", err)
	}
	for _, r := range rows {
		s := out[r.UserID]
		switch r.Dimension {
		case dimTeam:
			s.Teams = append(s.Teams, r.Value)
		case dimBusinessLine:
			s.BusinessLines = append(s.BusinessLines, r.Value)
		}
		out[r.UserID] = s
	}
	return out, nil
}

func setScope(ctx context.Context, tx *gorm.DB, id int64, s Scope) error {
	if err := tx.WithContext(ctx).Where("user_id = ?", id).Delete(&scopeRow{}).Error; err != nil {
		return fmt.Errorf("clear scope of user %d: %w", id, err)
	}
	for dim, vs := range map[string][]string{dimTeam: s.Teams, dimBusinessLine: s.BusinessLines} {
		for _, v := range vs {
			if err := tx.WithContext(ctx).Create(&scopeRow{UserID: id, Dimension: dim, Value: v}).Error; err != nil {
				return fmt.Errorf("add %s %s to the scope of user %d: %w", dim, v, id, err)
			}
		}
	}
	return nil
}

// Unscoped returns EFORBIDDEN (scope_restricted) when p is limited by a
// scope, else nil: Require applies it to the permissions UnscopedOnly
// lists.
func Unscoped(p Principal) error {
	if !p.Scope.Unrestricted() {
		return errs.Coded(errs.EFORBIDDEN, "scope_restricted", "your access is limited to %s; this is not available within a scope", p.Scope)
	}
	return nil
}

// CustomerVisible reports whether customer id is in the scope of ctx's
// principal (at least one of their cases is), reading through g; always
// true for an unrestricted caller.
func CustomerVisible(ctx context.Context, g *gorm.DB, id string) (bool, error) {
	cond, args := ScopeOf(ctx).CustomerSQL("?")
	if cond == "" {
		return true, nil
	}
	var n int64
	if err := g.WithContext(ctx).Raw("SELECT COUNT(*) WHERE "+cond, append([]any{id}, args...)...).Scan(&n).Error; err != nil {
		return false, fmt.Errorf("check the scope of customer %s: %w", id, err)
	}
	return n > 0, nil
}
