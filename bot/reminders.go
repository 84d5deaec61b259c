package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	// The zones of the thirteen countries must resolve on hosts without tzdata
	// (distroless and scratch images).
	_ "time/tzdata"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/storage/redisstate"
)

// Reminders configures the automatic reminders of unfinished questionnaires.
type Reminders struct {
	// Disabled turns automatic reminders off (/remind still works).
	Disabled bool
	// After are the idle times before each reminder: the first counts from the
	// user's last answer, each next one from the previous reminder; the last value
	// repeats. Default 48h, then 168h.
	After []time.Duration
	// Max is the number of reminders per unfinished questionnaire; default 3.
	Max int
	// QuietFrom and QuietTo are the local hours (0-23) between which nothing is sent,
	// in the user's country's time zone; default 21 and 9.
	QuietFrom, QuietTo int
	// Every is how often due reminders are looked for; default 5 minutes.
	Every time.Duration
}

func (r *Reminders) defaults() {
	if len(r.After) == 0 {
		r.After = []time.Duration{48 * time.Hour, 7 * 24 * time.Hour}
	}
	if r.Max <= 0 {
		r.Max = 3
	}
	if r.QuietFrom == 0 && r.QuietTo == 0 {
		r.QuietFrom, r.QuietTo = 21, 9
	}
	if r.Every <= 0 {
		r.Every = 5 * time.Minute
	}
}

// quiet reports whether local hour h is within the quiet hours (which may wrap
// around midnight).
func (r Reminders) quiet(h int) bool {
	if r.QuietFrom == r.QuietTo {
		return false
	}
	if r.QuietFrom < r.QuietTo {
		return h >= r.QuietFrom && h < r.QuietTo
	}
	return h >= r.QuietFrom || h < r.QuietTo
}

// countryZones are the time zones of the thirteen countries; for countries with
// several, the one of the capital (Kazakhstan has used one zone since 2024).
var countryZones = map[string]string{
	"AZ": "Asia/Baku", "BY": "Europe/Minsk", "GE": "Asia/Tbilisi", "IR": "Asia/Tehran",
	"KZ": "Asia/Almaty", "KG": "Asia/Bishkek", "MD": "Europe/Chisinau", "RU": "Europe/Moscow",
	"TJ": "Asia/Dushanbe", "TR": "Europe/Istanbul", "TM": "Asia/Ashgabat", "UA": "Europe/Kyiv",
	"UZ": "Asia/Tashkent",
}

// langCountries guesses a country from the language when the answers do not say.
var langCountries = map[string]string{
	"az": "AZ", "be": "BY", "ka": "GE", "fa": "IR", "kk": "KZ", "ky": "KG", "ro": "MD",
	"ru": "RU", "tg": "TJ", "tr": "TR", "tk": "TM", "uk": "UA", "uz": "UZ",
}

// defaultZone is for English speakers who did not name their country: Baku, where
// the training centre is, in the middle of the region's UTC+2…+5.
const defaultZone = "Asia/Baku"

// zoneOf is the time zone a user's reminders respect.
func zoneOf(country, lang string) *time.Location {
	name, ok := countryZones[country]
	if !ok {
		name, ok = countryZones[langCountries[lang]]
	}
	if !ok {
		name = defaultZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC // cannot happen with time/tzdata embedded
	}
	return loc
}

// The reminder record of a dialogue, "count:activity_ms:last_ms", is its own key
// in the dialogue's shard with the state's TTL. activity is the dialogue's
// UpdatedAt when the last reminder was sent: if the user answered since, it differs
// and the count starts again. Claiming a reminder is a compare-and-set of this
// record, so of several replicas scanning at once exactly one sends it, and it is
// sent at most once (a crash after the claim loses that reminder; the next one is
// still due later).
func (b *Bot) remindKey(k redisstate.Key) string {
	return strings.TrimSuffix(redisstate.StateKey(b.cfg.Prefix, b.store.Shard(k), k), ":st:"+k.String()) + ":rm:" + k.String()
}

type remindRecord struct {
	count          int
	activity, last int64 // unix ms
}

func parseRecord(s string) remindRecord {
	p := strings.Split(s, ":")
	if len(p) != 3 {
		return remindRecord{}
	}
	c, _ := strconv.Atoi(p[0])
	a, _ := strconv.ParseInt(p[1], 10, 64)
	l, _ := strconv.ParseInt(p[2], 10, 64)
	return remindRecord{count: c, activity: a, last: l}
}

func (r remindRecord) String() string {
	return fmt.Sprintf("%d:%d:%d", r.count, r.activity, r.last)
}

// claimRemindScript sets the record to ARGV[2] if it still holds ARGV[1] ("" for
// none). KEYS: record; ARGV: old, new, ttl ms.
var claimRemindScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// remindScanLimit bounds the idle dialogues read per shard and pass.
const remindScanLimit = 1000

// Remind sends the automatic reminders that are due and returns how many it sent.
// Run calls it every Reminders.Every.
func (b *Bot) Remind(ctx context.Context) (int, error) {
	rc := b.cfg.Reminders
	now := b.now()
	cutoff := now.Add(-rc.After[0])
	sent := 0
	for shard := range b.cfg.Shards {
		ms, err := b.rdb.ZRangeByScore(ctx, redisstate.ActiveKey(b.cfg.Prefix, shard), &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(cutoff.UnixMilli(), 10), Count: remindScanLimit,
		}).Result()
		if err != nil {
			return sent, fmt.Errorf("bot: remind scan: %w", err)
		}
		for _, m := range ms {
			k, ok := parseKey(m)
			if !ok || k.ChatID != k.UserID {
				continue
			}
			ok, err := b.remindOne(ctx, k, now)
			if err != nil {
				if ctx.Err() != nil {
					return sent, ctx.Err()
				}
				b.log.Warn("bot: reminder failed", "err", scrub(err, k))
				continue
			}
			if ok {
				sent++
			}
		}
	}
	return sent, nil
}

// due returns when the next reminder of a dialogue idle since activity is due,
// and false when it has had all of them.
func (r Reminders) due(rec remindRecord, activity time.Time) (time.Time, bool) {
	if rec.activity != activity.UnixMilli() {
		rec = remindRecord{} // the user answered since the last reminder
	}
	if rec.count >= r.Max {
		return time.Time{}, false
	}
	if rec.count == 0 {
		return activity.Add(r.After[0]), true
	}
	gap := r.After[min(rec.count, len(r.After)-1)]
	return time.UnixMilli(rec.last).Add(gap), true
}

func (b *Bot) remindOne(ctx context.Context, k redisstate.Key, now time.Time) (bool, error) {
	snap, err := b.store.Load(ctx, k)
	if err != nil || !snap.Exists {
		return false, err
	}
	env, err := decodeEnvelope(snap.Data)
	if err != nil || !env.state.Active() || env.OptOut || env.Inactive {
		return false, nil
	}
	d, ok := b.set.Get(env.state.Flow)
	if !ok || d.Kind != flows.KindQuestionnaire {
		return false, nil // info sessions are not chased
	}
	rkey := b.remindKey(k)
	raw, err := b.rdb.Get(ctx, rkey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("bot: read reminder record: %w", err)
	}
	rec := parseRecord(raw)
	at, ok := b.cfg.Reminders.due(rec, snap.UpdatedAt)
	if !ok || now.Before(at) {
		return false, nil
	}
	country := ""
	if d.CountryField != "" {
		country = env.state.Answers[d.CountryField]
	}
	if b.cfg.Reminders.quiet(now.In(zoneOf(country, env.Lang)).Hour()) {
		return false, nil // the next pass after the night sends it
	}
	next := remindRecord{count: 1, activity: snap.UpdatedAt.UnixMilli(), last: now.UnixMilli()}
	if rec.activity == next.activity {
		next.count = rec.count + 1
	}
	ttl := b.cfg.StateTTL
	if ttl <= 0 {
		ttl = redisstate.DefaultTTL
	}
	claimed, err := claimRemindScript.Run(ctx, b.rdb, []string{rkey}, raw, next.String(), ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("bot: claim reminder: %w", err)
	}
	if claimed == 0 {
		return false, nil // another replica sent it
	}
	html, kb := b.reminderMessage(env.Lang, d.ID)
	if _, err := b.snd.sendMessage(ctx, k.ChatID, html, kb); err != nil {
		if isBlocked(err) {
			b.markInactive(ctx, k)
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// runReminders sends due reminders every Reminders.Every until ctx ends.
func (b *Bot) runReminders(ctx context.Context) {
	for {
		n, err := b.Remind(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			b.log.Warn("bot: reminders failed", "err", err)
		case n > 0:
			b.log.Info("bot: reminders sent", "count", n)
		}
		if b.sleep(ctx, backoffJitter(b.cfg.Reminders.Every)) != nil {
			return
		}
	}
}

// setOptOut is /stop and the buttons of reminders: no more reminders and
// broadcasts, or again. Opting out is explicit both ways: neither /start nor
// answering a questionnaire undoes it.
func (t *turn) setOptOut(off bool) {
	t.env.OptOut = off
	if off {
		t.out.idx.optOut = 1
		t.send(esc(t.tx("bot.remind.stopped", nil)), &inlineKeyboard{
			InlineKeyboard: [][]inlineButton{
				{button(t.tx("bot.remind.button_on", nil), callback{kind: cbOptIn}.String())},
			}})
		return
	}
	t.out.idx.optOut = -1
	t.send(esc(t.tx("bot.remind.resumed", nil)), t.b.menuButton(t.lang()))
}
