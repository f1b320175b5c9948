package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/errs"
)

// DefaultPasswordLinkTTL is how long a one-time password link works.
const DefaultPasswordLinkTTL = 24 * time.Hour

// PasswordLink is a one-time link that lets one user set their console
// password. Only the SHA-256 of its token is stored.
type PasswordLink struct {
	ID        int64
	UserID    int64
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

type passwordLinkRow struct {
	ID              int64
	TokenHash       string
	UserID          int64
	CreatedBy       string
	CreatedByUserID *int64
	CreatedAt       time.Time
	ExpiresAt       time.Time
	UsedAt          *time.Time
}

func (passwordLinkRow) TableName() string { return "password_links" }

func (r passwordLinkRow) link() PasswordLink {
	return PasswordLink{ID: r.ID, UserID: r.UserID, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), UsedAt: r.UsedAt}
}

// CreatePasswordLink makes a one-time password link for user id that works
// for ttl (DefaultPasswordLinkTTL when 0) and returns its token, which is
// never stored and cannot be shown again. The actor in ctx is recorded as
// its maker, and the creation audited. ENOTFOUND, EINVALID (user_inactive,
// no_email: a user without an email cannot sign in).
func (s *UserStore) CreatePasswordLink(ctx context.Context, id int64, ttl time.Duration) (string, PasswordLink, error) {
	if ttl <= 0 {
		ttl = DefaultPasswordLinkTTL
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", PasswordLink{}, fmt.Errorf("generate password link: %w", err)
	}
	tok := hex.EncodeToString(b)
	var out PasswordLink
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		u, err := getUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if !u.Active {
			return errs.Coded(errs.EINVALID, "user_inactive", "user %d is deactivated; reactivate them first", id)
		}
		if u.Email == nil {
			return errs.Coded(errs.EINVALID, "no_email", "user %d has no email to sign in with; set one first", id)
		}
		now := s.clock.Now()
		row := passwordLinkRow{TokenHash: hashToken(tok), UserID: id, CreatedBy: "system", CreatedAt: now, ExpiresAt: now.Add(ttl)}
		if p, ok := FromContext(ctx); ok {
			row.CreatedBy = p.Actor()
			if p.ActorKind() == ActorUser && p.UserID != 0 {
				uid := p.UserID
				row.CreatedByUserID = &uid
			}
		}
		if err := tx.WithContext(ctx).Create(&row).Error; err != nil {
			return fmt.Errorf("store password link for user %d: %w", id, err)
		}
		out = row.link()
		return s.record(ctx, tx, Change{Action: "user.password_link.create", ObjectType: "user", ObjectID: strconv.FormatInt(id, 10),
			After:  map[string]any{"link_id": row.ID, "expires_at": out.ExpiresAt},
			Detail: fmt.Sprintf("one-time password link %d for %s, valid until %s", row.ID, *u.Email, out.ExpiresAt.Format(time.RFC3339))})
	})
	if err != nil {
		return "", PasswordLink{}, err
	}
	return tok, out, nil
}

// errLink is the refusal of a link that is unknown, spent or expired.
func errLink(code, msg string) error { return errs.Coded(errs.EINVALID, code, "%s", msg) }

// PasswordLinkUser returns the user a live link (token tok) is for, so the
// page can say whose password is being set. EINVALID (link_unknown,
// link_used, link_expired, user_inactive).
func (s *UserStore) PasswordLinkUser(ctx context.Context, tok string) (User, error) {
	var u User
	err := s.db.Read(ctx, func(g *gorm.DB) error {
		r, err := s.liveLink(ctx, g, tok, s.clock.Now())
		if err != nil {
			return err
		}
		u, err = loadUser(ctx, g, r.UserID)
		return err
	})
	if err != nil {
		return User{}, err
	}
	if !u.Active {
		return User{}, errs.Coded(errs.EINVALID, "user_inactive", "this account is deactivated; ask an admin")
	}
	return u, nil
}

func (s *UserStore) liveLink(ctx context.Context, g *gorm.DB, tok string, now time.Time) (passwordLinkRow, error) {
	var r passwordLinkRow
	err := g.WithContext(ctx).Where("token_hash = ?", hashToken(tok)).Take(&r).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound) || tok == "":
		return r, errLink("link_unknown", "this password link is not valid; ask an admin for a new one")
	case err != nil:
		return r, fmt.Errorf("read password link: %w", err)
	case r.UsedAt != nil:
		return r, errLink("link_used", "this password link has already been used; ask an admin for a new one")
	case !now.Before(r.ExpiresAt):
		return r, errLink("link_expired", "this password link has expired; ask an admin for a new one")
	}
	return r, nil
}

// UsePasswordLink sets the console password of the link's user to pw (the
// rules of ValidatePassword) and spends the link, with every other unused
// link of that user, in one transaction; it also ends all the user's
// console sessions, since whoever held the old password may hold one. The
// use is audited as the user's own. A password that breaks the rules
// leaves the link usable. EINVALID (password_too_short, password_too_long,
// link_unknown, link_used, link_expired, user_inactive).
func (s *UserStore) UsePasswordLink(ctx context.Context, tok, pw string) (User, error) {
	if err := ValidatePassword(pw); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	var out User
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		now := s.clock.Now()
		r, err := s.liveLink(ctx, tx, tok, now)
		if err != nil {
			return err
		}
		// The guarded update makes the link single-use under concurrency:
		// of two simultaneous uses only one changes the row.
		res := tx.WithContext(ctx).Model(&passwordLinkRow{}).Where("id = ? AND used_at IS NULL AND expires_at > ?", r.ID, now).Update("used_at", now)
		if res.Error != nil {
			return fmt.Errorf("spend password link %d: %w", r.ID, res.Error)
		}
		if res.RowsAffected == 0 {
			return errLink("link_used", "this password link has already been used; ask an admin for a new one")
		}
		u, err := loadUser(ctx, tx, r.UserID)
		if err != nil {
			return err
		}
		if !u.Active {
			return errs.Coded(errs.EINVALID, "user_inactive", "this account is deactivated; ask an admin")
		}
		if err := tx.WithContext(ctx).Model(&passwordLinkRow{}).Where("user_id = ? AND used_at IS NULL", u.ID).Update("used_at", now).Error; err != nil {
			return fmt.Errorf("spend other password links of user %d: %w", u.ID, err)
		}
		if err := tx.WithContext(ctx).Model(&userRow{}).Where("id = ?", u.ID).
			Updates(map[string]any{"password_hash": string(hash), "updated_at": now}).Error; err != nil {
			return fmt.Errorf("set password of user %d: %w", u.ID, err)
		}
		ended, err := endSessions(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		out = u
		self := WithPrincipal(ctx, Principal{Kind: ActorUser, UserID: u.ID, Name: u.DisplayName, Role: u.Role})
		return s.record(self, tx, Change{Action: "user.password_link.use", ObjectType: "user", ObjectID: strconv.FormatInt(u.ID, 10),
			Detail: fmt.Sprintf("console password set through one-time link %d; %d console sessions ended", r.ID, ended)})
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// endSessions deletes every console session of user id. The sessions
// table is the console's, but a password change must end them in the
// transaction that makes it.
func endSessions(ctx context.Context, tx *gorm.DB, id int64) (int64, error) {
	res := tx.WithContext(ctx).Exec("DELETE FROM console_sessions WHERE user_id = ?", id)
	if res.Error != nil {
		return 0, fmt.Errorf("end console sessions of user %d: %w", id, res.Error)
	}
	return res.RowsAffected, nil
}
