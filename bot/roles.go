package bot

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/storage/central"
)

// DefaultCoordInviteTTL is how long a coordinator invite link works.
const DefaultCoordInviteTTL = 72 * time.Hour

// Keys outside the dialogue shards. Each is used by single-key commands only, so
// they may live in any Redis Cluster slot. Coordinator ids and chat ids in segment
// sets are the only user ids kept outside dialogue states; /forget removes the
// latter.
func (b *Bot) key(parts ...string) string {
	return b.cfg.Prefix + ":" + strings.Join(parts, ":")
}

// role is who sent a privileged command.
type role struct {
	admin     bool
	countries []string // the coordinator's scope; every country for an admin
}

func (r role) ok() bool { return r.admin || len(r.countries) > 0 }

func (r role) has(country string) bool { return r.admin || slices.Contains(r.countries, country) }

// roleOf reads the role of a Telegram user: admins from configuration,
// coordinators from Redis.
func (b *Bot) roleOf(ctx context.Context, userID int64) (role, error) {
	if b.admins[userID] {
		return role{admin: true, countries: central.Countries()}, nil
	}
	v, err := b.rdb.HGet(ctx, b.key("coord"), strconv.FormatInt(userID, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return role{}, nil
	}
	if err != nil {
		return role{}, fmt.Errorf("bot: read role: %w", err)
	}
	return role{countries: splitCountries(v)}, nil
}

func splitCountries(v string) []string {
	var out []string
	for _, c := range strings.Split(v, ",") {
		if c = strings.ToUpper(strings.TrimSpace(c)); c != "" && isCountry(c) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func isCountry(c string) bool { return slices.Contains(central.Countries(), c) }

// parseCountries reads ISO codes given as separate words or comma lists; false
// when any is not one of the thirteen.
func parseCountries(args []string) ([]string, bool) {
	var out []string
	for _, a := range args {
		for _, c := range strings.Split(a, ",") {
			c = strings.ToUpper(strings.TrimSpace(c))
			if c == "" {
				continue
			}
			if !isCountry(c) {
				return nil, false
			}
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out, len(out) > 0
}

func (b *Bot) setCoordinator(ctx context.Context, userID int64, countries []string) error {
	if err := b.rdb.HSet(ctx, b.key("coord"), strconv.FormatInt(userID, 10), strings.Join(countries, ",")).Err(); err != nil {
		return fmt.Errorf("bot: set coordinator: %w", err)
	}
	return nil
}

func (b *Bot) removeCoordinator(ctx context.Context, userID int64) (bool, error) {
	n, err := b.rdb.HDel(ctx, b.key("coord"), strconv.FormatInt(userID, 10)).Result()
	if err != nil {
		return false, fmt.Errorf("bot: remove coordinator: %w", err)
	}
	return n > 0, nil
}

// coordinatorList is "id: AZ,GE" lines, sorted by id.
func (b *Bot) coordinatorList(ctx context.Context) ([]string, error) {
	m, err := b.rdb.HGetAll(ctx, b.key("coord")).Result()
	if err != nil {
		return nil, fmt.Errorf("bot: list coordinators: %w", err)
	}
	ids := make([]int64, 0, len(m))
	for k := range m {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	lines := make([]string, 0, len(ids))
	for _, id := range ids {
		lines = append(lines, fmt.Sprintf("%d: %s", id, m[strconv.FormatInt(id, 10)]))
	}
	return lines, nil
}

// coordInvitePrefix starts the /start payload of a coordinator invite. No flow id
// may be "co" (flow ids name questionnaires), so it cannot shadow a flow link.
const coordInvitePrefix = "co-"

// newCoordInvite stores a single-use token for countries and returns it.
func (b *Bot) newCoordInvite(ctx context.Context, countries []string) (string, error) {
	var raw [18]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("bot: invite token: %w", err)
	}
	// URL-safe base64 without padding: within a /start payload's A-Z a-z 0-9 _ -.
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := b.rdb.Set(ctx, b.key("coinv", tok), strings.Join(countries, ","), b.cfg.CoordInviteTTL).Err(); err != nil {
		return "", fmt.Errorf("bot: store invite: %w", err)
	}
	return tok, nil
}

// redeemCoordInvite makes userID a coordinator of the invite's countries (added to
// any they had). GETDEL makes the link single use even when two people press it at
// once.
func (b *Bot) redeemCoordInvite(ctx context.Context, userID int64, tok string) ([]string, bool, error) {
	if tok == "" || len(tok) > 64 || !codeRe.MatchString(tok) {
		return nil, false, nil
	}
	v, err := b.rdb.GetDel(ctx, b.key("coinv", tok)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("bot: redeem invite: %w", err)
	}
	r, err := b.roleOf(ctx, userID)
	if err != nil {
		return nil, false, err
	}
	countries := splitCountries(v)
	if !r.admin {
		for _, c := range r.countries {
			if !slices.Contains(countries, c) {
				countries = append(countries, c)
			}
		}
	}
	if err := b.setCoordinator(ctx, userID, countries); err != nil {
		return nil, false, err
	}
	return countries, true, nil
}
