package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
)

// session is one signed-in browser.
type session struct {
	ID         string // SHA-256 (hex) of the cookie's token
	UserID     int64
	CSRF       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

type sessionRow struct {
	ID         string
	UserID     int64
	CSRF       string `gorm:"column:csrf"`
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	IP         string `gorm:"column:ip"`
	UserAgent  string
}

func (sessionRow) TableName() string { return "console_sessions" }

type attemptRow struct {
	ID    int64
	Email string
	IP    string `gorm:"column:ip"`
	At    time.Time
}

func (attemptRow) TableName() string { return "login_attempts" }

// sessionStore keeps console sessions and failed sign-ins. It is the only
// code of the console that sees the database.
type sessionStore struct {
	db         *db.DB
	idle, max  time.Duration
	touchEvery time.Duration
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// create starts a session for userID at now and returns the cookie token
// (never stored) and the session. also, when set, runs in the same
// transaction (the sign-in's audit entry commits with its session).
func (s *sessionStore) create(ctx context.Context, userID int64, now time.Time, ip, userAgent string, also func(tx *gorm.DB) error) (string, session, error) {
	tok, err := randomHex(32)
	if err != nil {
		return "", session{}, err
	}
	csrf, err := randomHex(32)
	if err != nil {
		return "", session{}, err
	}
	if len(userAgent) > 400 {
		userAgent = userAgent[:400]
	}
	row := sessionRow{ID: hashToken(tok), UserID: userID, CSRF: csrf, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(s.max), IP: ip, UserAgent: userAgent}
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		if err := tx.WithContext(ctx).Create(&row).Error; err != nil {
			return fmt.Errorf("create console session for user %d: %w", userID, err)
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return "", session{}, err
	}
	return tok, row.session(), nil
}

func (r sessionRow) session() session {
	return session{ID: r.ID, UserID: r.UserID, CSRF: r.CSRF, CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt, ExpiresAt: r.ExpiresAt}
}

// errNoSession means the cookie names no live session.
var errNoSession = errors.New("no live console session")

// authenticate returns the live session of cookie token tok and its user
// as the API's principal. A session past its absolute or idle expiry is
// deleted; a deactivated user has no live session. touch records the use
// (a background poll does not keep a session alive).
func (s *sessionStore) authenticate(ctx context.Context, tok string, now time.Time, touch bool) (session, auth.Principal, error) {
	if tok == "" {
		return session{}, auth.Principal{}, errNoSession
	}
	type joined struct {
		ID         string
		UserID     int64
		CSRF       string `gorm:"column:csrf"`
		CreatedAt  time.Time
		LastSeenAt time.Time
		ExpiresAt  time.Time
		Name       string
		Role       string
		Active     bool
	}
	var rows []joined
	err := s.db.Read(ctx, func(g *gorm.DB) error {
		rows = rows[:0]
		return g.Raw(`SELECT s.id, s.user_id, s.csrf, s.created_at, s.last_seen_at, s.expires_at,
       u.display_name AS name, u.role, u.active
FROM console_sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = ?`, hashToken(tok)).Scan(&rows).Error
	})
	if err != nil {
		return session{}, auth.Principal{}, fmt.Errorf("read console session: %w", err)
	}
	if len(rows) == 0 {
		return session{}, auth.Principal{}, errNoSession
	}
	r := rows[0]
	if !r.Active || !now.Before(r.ExpiresAt) || now.Sub(r.LastSeenAt) >= s.idle {
		_ = s.delete(ctx, r.ID)
		return session{}, auth.Principal{}, errNoSession
	}
	if touch && now.Sub(r.LastSeenAt) >= s.touchEvery {
		if err := s.db.WithContext(ctx).Model(&sessionRow{}).Where("id = ?", r.ID).Update("last_seen_at", now).Error; err != nil {
			return session{}, auth.Principal{}, fmt.Errorf("touch console session: %w", err)
		}
		r.LastSeenAt = now
	}
	// The scope is read with the session on every request, so a change
	// applies to a signed-in user at once.
	var scope auth.Scope
	if err := s.db.Read(ctx, func(g *gorm.DB) error {
		var err error
		scope, err = auth.LoadScope(ctx, g, r.UserID)
		return err
	}); err != nil {
		return session{}, auth.Principal{}, fmt.Errorf("read scope of console user %d: %w", r.UserID, err)
	}
	p := auth.Principal{Kind: auth.ActorUser, UserID: r.UserID, Name: r.Name, Role: auth.Role(r.Role), Scope: scope}
	return session{ID: r.ID, UserID: r.UserID, CSRF: r.CSRF, CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt, ExpiresAt: r.ExpiresAt}, p, nil
}

// delete ends session id.
func (s *sessionStore) delete(ctx context.Context, id string) error {
	if err := s.db.WithContext(ctx).Where("id = ?", id).Delete(&sessionRow{}).Error; err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}

// failures counts failed sign-ins since since for email and for ip.
func (s *sessionStore) failures(ctx context.Context, email, ip string, since time.Time) (byEmail, byIP int64, err error) {
	err = s.db.Read(ctx, func(g *gorm.DB) error {
		if err := g.Model(&attemptRow{}).Where("email = ? AND at > ?", email, since).Count(&byEmail).Error; err != nil {
			return err
		}
		return g.Model(&attemptRow{}).Where("ip = ? AND at > ?", ip, since).Count(&byIP).Error
	})
	if err != nil {
		return 0, 0, fmt.Errorf("count failed sign-ins: %w", err)
	}
	return byEmail, byIP, nil
}

// recordFailure records a failed sign-in and forgets those older than
// before.
func (s *sessionStore) recordFailure(ctx context.Context, email, ip string, now, before time.Time) error {
	return s.db.Transact(ctx, func(tx *gorm.DB) error {
		if err := tx.WithContext(ctx).Create(&attemptRow{Email: email, IP: ip, At: now}).Error; err != nil {
			return fmt.Errorf("record failed sign-in: %w", err)
		}
		if err := tx.WithContext(ctx).Where("at < ?", before).Delete(&attemptRow{}).Error; err != nil {
			return fmt.Errorf("forget old failed sign-ins: %w", err)
		}
		return nil
	})
}

// clearFailures forgets email's failed sign-ins after a successful one.
func (s *sessionStore) clearFailures(ctx context.Context, email string) error {
	if err := s.db.WithContext(ctx).Where("email = ?", email).Delete(&attemptRow{}).Error; err != nil {
		return fmt.Errorf("clear failed sign-ins: %w", err)
	}
	return nil
}
