package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/errs"
)

// MinPasswordLength is the fewest characters a console password may have.
const MinPasswordLength = 12

// maxPasswordBytes is bcrypt's limit: it ignores everything past 72 bytes,
// so longer passwords are refused rather than silently truncated.
const maxPasswordBytes = 72

// bcryptCost is the work factor of stored hashes (bcrypt's default, 10:
// about 50 ms a check).
const bcryptCost = bcrypt.DefaultCost

// dummyHash is compared against when there is no user to check, so an
// unknown email takes as long as a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("recourse-no-such-user"), bcryptCost)
	return h
})

// ValidatePassword returns EINVALID (password_too_short, password_too_long)
// unless pw is acceptable as a console password.
func ValidatePassword(pw string) error {
	if utf8.RuneCountInString(pw) < MinPasswordLength {
		return errs.Coded(errs.EINVALID, "password_too_short", "a password must have at least %d characters", MinPasswordLength)
	}
	if len(pw) > maxPasswordBytes {
		return errs.Coded(errs.EINVALID, "password_too_long", "a password may have at most %d bytes", maxPasswordBytes)
	}
	return nil
}

// SetPassword sets user id's console password (stored as a bcrypt hash),
// audited without the hash, and ends all their console sessions. ENOTFOUND, EINVALID (see ValidatePassword).
func (s *UserStore) SetPassword(ctx context.Context, id int64, pw string) error {
	if err := ValidatePassword(pw); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if err != nil {
		return fmt.Errorf("hash password of user %d: %w", id, err)
	}
	return s.db.Transact(ctx, func(tx *gorm.DB) error {
		if _, err := getUser(ctx, tx, id); err != nil {
			return err
		}
		if err := tx.WithContext(ctx).Model(&userRow{}).Where("id = ?", id).
			Updates(map[string]any{"password_hash": string(hash), "updated_at": s.clock.Now()}).Error; err != nil {
			return fmt.Errorf("set password of user %d: %w", id, err)
		}
		if _, err := endSessions(ctx, tx, id); err != nil {
			return err
		}
		return s.record(ctx, tx, Change{Action: "user.password", ObjectType: "user", ObjectID: strconv.FormatInt(id, 10),
			Detail: "console password set"})
	})
}

// CheckPassword returns the principal of the active user with email whose
// console password is pw. EUNAUTHORIZED for an unknown email, a user with
// no password, a deactivated user or a wrong password (one message for
// all, so the answer does not tell which); EUNAVAILABLE when the database
// cannot be read.
func (s *UserStore) CheckPassword(ctx context.Context, email, pw string) (Principal, error) {
	wrong := errs.Coded(errs.EUNAUTHORIZED, "wrong_credentials", "Wrong email or password")
	type row struct {
		ID           int64
		DisplayName  string
		Role         string
		Active       bool
		PasswordHash *string
	}
	var r row
	found := false
	clean := strings.ToLower(strings.TrimSpace(email))
	if clean != "" && len(pw) <= maxPasswordBytes {
		err := s.db.Read(ctx, func(g *gorm.DB) error {
			var rows []row
			if err := g.Table("users").Select("id, display_name, role, active, password_hash").
				Where("email = ?", clean).Limit(1).Scan(&rows).Error; err != nil {
				return err
			}
			found = len(rows) == 1
			if found {
				r = rows[0]
			}
			return nil
		})
		if err != nil {
			return Principal{}, errs.Wrap(errs.EUNAVAILABLE, err, "cannot check the password right now")
		}
	}
	if !found || r.PasswordHash == nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw))
		return Principal{}, wrong
	}
	if err := bcrypt.CompareHashAndPassword([]byte(*r.PasswordHash), []byte(pw)); err != nil {
		if !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return Principal{}, fmt.Errorf("check password of user %d: %w", r.ID, err)
		}
		return Principal{}, wrong
	}
	if !r.Active {
		return Principal{}, wrong
	}
	return Principal{Kind: ActorUser, UserID: r.ID, Name: r.DisplayName, Role: Role(r.Role)}, nil
}
