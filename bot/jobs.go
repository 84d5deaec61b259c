package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/storage/redisstate"
)

// A job is a broadcast or a manual reminder round: a hash with its text and
// counters, a set of recipients still to do ("todo") and a hash of recipients being
// worked on ("inflight": chat id → "c" claimed, "s" sending). All three share one
// hash tag, so every script below touches a single Redis Cluster slot.
//
// Delivery is at most once. A recipient is claimed (todo → inflight "c"), marked
// "s" right before its sendMessage and removed from inflight with its result right
// after. A runner that stops normally (its context ends) lets the send in flight
// finish and puts every claimed recipient back, so nobody is skipped and nobody gets
// two messages. A runner that crashes leaves "c" and "s" entries; the next runner
// puts the "c" ones back (nothing was sent to them) and counts the "s" ones as
// uncertain without sending again: Telegram has no idempotency key, so the only way
// to never send twice is to give up the at most Concurrency recipients whose send
// may or may not have happened. For a broadcast to migrants, a duplicate is worse
// than one missed message; the coordinator sees the uncertain count.
const (
	jobBroadcast = "broadcast"
	jobRemind    = "remind"

	jobDraft     = "draft"
	jobQueued    = "queued"
	jobDone      = "done"
	jobCancelled = "cancelled"

	jobBatch = 100
	// jobDraftTTL is how long an unconfirmed job waits for its button.
	jobDraftTTL = time.Hour
	// jobKeep is how long a finished job's record stays for its counters.
	jobKeep = 7 * 24 * time.Hour
	// jobLeaseTTL bounds how long a crashed runner blocks the others.
	jobLeaseTTL = 2 * time.Minute
	// progressEvery is how often the progress message is edited.
	progressEvery = 3 * time.Second
	// jobPoll is how often a replica looks for confirmed jobs.
	jobPoll = 2 * time.Second
	// sendTimeout bounds one send that must finish although the runner is stopping.
	sendTimeout = 30 * time.Second
)

// job is the hash of a job.
type job struct {
	ID       string
	Kind     string
	State    string
	Owner    int64  // the coordinator's chat, for the progress message
	Lang     string // the coordinator's language
	Text     string // broadcast: the HTML sent
	Flow     string // remind: the questionnaire
	Progress int    // id of the progress message
	Total    int
	Sent     int
	Skipped  int // opted out, blocked, no longer due
	Failed   int // refused by Telegram
	Unsure   int // a runner crashed during the send
}

func (j job) processed() int { return j.Sent + j.Skipped + j.Failed + j.Unsure }

func (b *Bot) jobBase(id string) string { return b.cfg.Prefix + ":{j" + id + "}" }
func (b *Bot) jobKey(id string) string  { return b.jobBase(id) + ":job" }
func (b *Bot) todoKey(id string) string { return b.jobBase(id) + ":todo" }
func (b *Bot) flyKey(id string) string  { return b.jobBase(id) + ":inflight" }
func (b *Bot) jobsKey() string          { return b.key("jobs") }
func (b *Bot) leaseKey() string         { return b.key("jobs", "lease") }

func newJobID() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// createJob stores a draft job and its recipients.
func (b *Bot) createJob(ctx context.Context, j job, recipients []int64) (job, error) {
	j.ID = newJobID()
	j.State = jobDraft
	j.Total = len(recipients)
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, b.jobKey(j.ID), map[string]any{
			"kind": j.Kind, "state": j.State, "owner": j.Owner, "lang": j.Lang,
			"text": j.Text, "flow": j.Flow, "total": j.Total,
			"sent": 0, "skipped": 0, "failed": 0, "unsure": 0,
		})
		for i := 0; i < len(recipients); i += 1000 {
			chunk := recipients[i:min(i+1000, len(recipients))]
			ms := make([]any, len(chunk))
			for k, c := range chunk {
				ms[k] = chatString(c)
			}
			p.SAdd(ctx, b.todoKey(j.ID), ms...)
		}
		p.Expire(ctx, b.jobKey(j.ID), jobDraftTTL)
		p.Expire(ctx, b.todoKey(j.ID), jobDraftTTL)
		return nil
	})
	if err != nil {
		return j, fmt.Errorf("bot: create job: %w", err)
	}
	return j, nil
}

func (b *Bot) loadJob(ctx context.Context, id string) (job, bool, error) {
	m, err := b.rdb.HGetAll(ctx, b.jobKey(id)).Result()
	if err != nil {
		return job{}, false, fmt.Errorf("bot: load job: %w", err)
	}
	if len(m) == 0 {
		return job{}, false, nil
	}
	n := func(k string) int { v, _ := strconv.Atoi(m[k]); return v }
	owner, _ := strconv.ParseInt(m["owner"], 10, 64)
	return job{ID: id, Kind: m["kind"], State: m["state"], Owner: owner, Lang: m["lang"], Text: m["text"],
		Flow: m["flow"], Progress: n("progress"), Total: n("total"), Sent: n("sent"), Skipped: n("skipped"),
		Failed: n("failed"), Unsure: n("unsure")}, true, nil
}

// confirmScript turns a draft into a queued job, once.
var confirmScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'draft' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'progress', ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
return 1
`)

// queueJob confirms a draft and lists it for the runner.
func (b *Bot) queueJob(ctx context.Context, id string, progressMsg int, now time.Time) (bool, error) {
	ok, err := confirmScript.Run(ctx, b.rdb, []string{b.jobKey(id), b.todoKey(id)}, progressMsg).Int()
	if err != nil {
		return false, fmt.Errorf("bot: queue job: %w", err)
	}
	if ok == 0 {
		return false, nil
	}
	if err := b.rdb.ZAdd(ctx, b.jobsKey(), redis.Z{Score: float64(now.UnixMilli()), Member: id}).Err(); err != nil {
		return false, fmt.Errorf("bot: list job: %w", err)
	}
	return true, nil
}

// cancelJob stops a draft or running job; what was sent stays sent.
func (b *Bot) cancelJob(ctx context.Context, id string) error {
	if err := b.rdb.HSet(ctx, b.jobKey(id), "state", jobCancelled).Err(); err != nil {
		return fmt.Errorf("bot: cancel job: %w", err)
	}
	return nil
}

// recoverScript repairs what a crashed runner left in flight (see the top of this
// file). KEYS: inflight, todo, job.
var recoverScript = redis.NewScript(`
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i+1] == 'c' then
    redis.call('SADD', KEYS[2], all[i])
  else
    redis.call('HINCRBY', KEYS[3], 'unsure', 1)
  end
end
redis.call('DEL', KEYS[1])
return #all / 2
`)

// claimScript moves up to ARGV[1] recipients from todo to inflight as claimed.
var claimScript = redis.NewScript(`
local ms = redis.call('SPOP', KEYS[1], ARGV[1])
for _, m in ipairs(ms) do redis.call('HSET', KEYS[2], m, 'c') end
return ms
`)

// markScript records that the send to ARGV[1] starts now.
var markScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'c' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 's')
return 1
`)

// doneScript records results: ARGV pairs of member, counter.
var doneScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[2], ARGV[i+1], 1)
  end
end
return 1
`)

// releaseScript puts claimed recipients back (the runner is stopping).
var releaseScript = redis.NewScript(`
for _, m in ipairs(ARGV) do
  if redis.call('HGET', KEYS[1], m) == 'c' then
    redis.call('HDEL', KEYS[1], m)
    redis.call('SADD', KEYS[2], m)
  end
end
return 1
`)

// leaseScript takes or renews the runner lease. KEYS: lease; ARGV: owner, ttl ms.
var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

func (b *Bot) holdLease(ctx context.Context, owner string) (bool, error) {
	ok, err := leaseScript.Run(ctx, b.rdb, []string{b.leaseKey()}, owner, jobLeaseTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("bot: job lease: %w", err)
	}
	return ok == 1, nil
}

// runJobs runs queued jobs, one at a time and on one replica at a time (the lease),
// so that all throttled sends of the bot share one limiter.
func (b *Bot) runJobs(ctx context.Context, every time.Duration) {
	owner := newJobID()
	for ctx.Err() == nil {
		if err := b.runNextJob(ctx, owner); err != nil && ctx.Err() == nil {
			b.log.Warn("bot: job runner", "err", err)
		}
		if b.sleep(ctx, backoffJitter(every)) != nil {
			return
		}
	}
}

// runNextJob runs queued jobs while it holds the lease and there are any.
func (b *Bot) runNextJob(ctx context.Context, owner string) error {
	for {
		ok, err := b.holdLease(ctx, owner)
		if err != nil || !ok {
			return err
		}
		ids, err := b.rdb.ZRange(ctx, b.jobsKey(), 0, 0).Result()
		if err != nil {
			return fmt.Errorf("bot: list jobs: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if err := b.runJob(ctx, ids[0], func() { _, _ = b.holdLease(ctx, owner) }); err != nil {
			return err
		}
	}
}

// runJob sends a queued job to its remaining recipients. It returns nil when the
// job is finished or cancelled, ctx.Err() when stopped (the job stays queued).
// renew is called between batches (to keep the runner lease).
func (b *Bot) runJob(ctx context.Context, id string, renew func()) error {
	j, ok, err := b.loadJob(ctx, id)
	if err != nil {
		return err
	}
	if !ok || j.State != jobQueued {
		return b.finishJob(ctx, j, id)
	}
	if err := recoverScript.Run(ctx, b.rdb, []string{b.flyKey(id), b.todoKey(id), b.jobKey(id)}).Err(); err != nil {
		return fmt.Errorf("bot: recover job: %w", err)
	}
	lastProgress := time.Time{}
	for {
		if renew != nil {
			renew()
		}
		state, err := b.rdb.HGet(ctx, b.jobKey(id), "state").Result()
		if err != nil {
			return fmt.Errorf("bot: job state: %w", err)
		}
		if state != jobQueued {
			j.State = state
			return b.finishJob(ctx, j, id)
		}
		ms, err := claimScript.Run(ctx, b.rdb, []string{b.todoKey(id), b.flyKey(id)}, jobBatch).StringSlice()
		if err != nil {
			return fmt.Errorf("bot: claim recipients: %w", err)
		}
		if len(ms) == 0 {
			return b.finishJob(ctx, j, id)
		}
		if err := b.sendBatch(ctx, j, ms); err != nil {
			return err
		}
		if now := b.now(); now.Sub(lastProgress) >= progressEvery {
			lastProgress = now
			b.showProgress(ctx, id, false)
		}
	}
}

// recipient is one chat of a batch and what to send it; html "" skips it.
type recipient struct {
	chat int64
	m    string
	html string
	kb   keyboard
}

// sendBatch sends to claimed recipients, Concurrency at a time.
func (b *Bot) sendBatch(ctx context.Context, j job, ms []string) error {
	rs, err := b.prepare(ctx, j, ms)
	if err != nil {
		_ = releaseScript.Run(context.WithoutCancel(ctx), b.rdb, []string{b.flyKey(j.ID), b.todoKey(j.ID)}, toAny(ms)...).Err()
		return err
	}
	var skipped []any
	for _, r := range rs {
		if r.html == "" {
			skipped = append(skipped, r.m, "skipped")
		}
	}
	if len(skipped) > 0 {
		if err := doneScript.Run(ctx, b.rdb, []string{b.flyKey(j.ID), b.jobKey(j.ID)}, skipped...).Err(); err != nil {
			return fmt.Errorf("bot: record skipped: %w", err)
		}
	}
	sem := make(chan struct{}, b.cfg.Throttle.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unsent []any
	for _, r := range rs {
		if r.html == "" {
			continue
		}
		if ctx.Err() != nil {
			mu.Lock()
			unsent = append(unsent, r.m)
			mu.Unlock()
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if !b.sendOne(ctx, j, r) {
				mu.Lock()
				unsent = append(unsent, r.m)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(unsent) > 0 {
		// Stopping: the claimed recipients go back for the next runner.
		if err := releaseScript.Run(context.WithoutCancel(ctx), b.rdb, []string{b.flyKey(j.ID), b.todoKey(j.ID)}, unsent...).Err(); err != nil {
			return fmt.Errorf("bot: release recipients: %w", err)
		}
	}
	return ctx.Err()
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// sendOne sends to one recipient; false when it was not attempted (stopping).
func (b *Bot) sendOne(ctx context.Context, j job, r recipient) bool {
	if err := b.snd.wait(ctx, r.chat); err != nil {
		return false
	}
	keys := []string{b.flyKey(j.ID), b.jobKey(j.ID)}
	// From here on the send completes even if ctx ends: a runner being stopped
	// must know whether this recipient got the message.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	if err := markScript.Run(sctx, b.rdb, []string{b.flyKey(j.ID)}, r.m).Err(); err != nil {
		b.log.Warn("bot: mark sending", "job", j.ID, "err", err)
		return false
	}
	_, err := b.snd.send(sctx, r.chat, r.html, r.kb)
	result := "sent"
	switch {
	case isBlocked(err):
		result = "skipped"
		b.markInactive(sctx, redisstate.Key{ChatID: r.chat, UserID: r.chat})
	case err != nil:
		result = "failed"
		b.log.Debug("bot: job send failed", "job", j.ID, "code", apiCode(err), "err", err)
	}
	if err := doneScript.Run(sctx, b.rdb, keys, r.m, result).Err(); err != nil {
		// The recipient stays "sending": the next runner counts it as unsure.
		b.log.Warn("bot: record send", "job", j.ID, "err", err)
	}
	return true
}

// prepare decides per recipient what to send: opted-out and blocked chats get
// nothing; reminders only go to those still in the questionnaire.
func (b *Bot) prepare(ctx context.Context, j job, ms []string) ([]recipient, error) {
	rs := make([]recipient, 0, len(ms))
	for _, m := range ms {
		c, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			rs = append(rs, recipient{m: m}) // not a chat id: skipped
			continue
		}
		rs = append(rs, recipient{chat: c, m: m})
	}
	pipe := b.rdb.Pipeline()
	out := pipe.SMIsMember(ctx, b.optOutKey(), toAny(ms)...)
	blocked := pipe.SMIsMember(ctx, b.blockedKey(), toAny(ms)...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("bot: recipient filter: %w", err)
	}
	for i := range rs {
		if rs[i].chat == 0 || out.Val()[i] || blocked.Val()[i] {
			continue
		}
		switch j.Kind {
		case jobBroadcast:
			rs[i].html = j.Text
		case jobRemind:
			k := redisstate.Key{ChatID: rs[i].chat, UserID: rs[i].chat}
			snap, err := b.store.Load(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("bot: recipient state: %w", scrub(err, k))
			}
			env, err := decodeEnvelope(snap.Data)
			if err != nil || !snap.Exists || env.OptOut || env.Inactive || env.state.Flow != j.Flow {
				continue
			}
			rs[i].html, rs[i].kb = b.reminderMessage(env.Lang, j.Flow)
		}
	}
	return rs, nil
}

// finishJob marks a job finished, drops it from the queue and shows the result.
func (b *Bot) finishJob(ctx context.Context, j job, id string) error {
	if j.State == jobQueued {
		if err := b.rdb.HSet(ctx, b.jobKey(id), "state", jobDone).Err(); err != nil {
			return fmt.Errorf("bot: finish job: %w", err)
		}
	}
	if err := b.rdb.ZRem(ctx, b.jobsKey(), id).Err(); err != nil {
		return fmt.Errorf("bot: unlist job: %w", err)
	}
	for _, k := range []string{b.jobKey(id), b.todoKey(id), b.flyKey(id)} {
		b.rdb.Expire(ctx, k, jobKeep)
	}
	if j.ID != "" {
		b.showProgress(ctx, id, true)
	}
	return nil
}

// showProgress edits the coordinator's progress message: "sent N of M", with a
// cancel button while the job runs.
func (b *Bot) showProgress(ctx context.Context, id string, final bool) {
	j, ok, err := b.loadJob(ctx, id)
	if err != nil || !ok || j.Progress == 0 {
		return
	}
	data := map[string]any{"Done": j.processed(), "Total": j.Total, "Sent": j.Sent,
		"Skipped": j.Skipped, "Failed": j.Failed, "Unsure": j.Unsure}
	text := b.t(j.Lang, "bot.broadcast.progress", data)
	var kb keyboard
	switch {
	case j.State == jobCancelled:
		text = paragraphs(esc(text), esc(b.t(j.Lang, "bot.broadcast.cancelled", nil)))
	case final:
		text = paragraphs(esc(text), esc(b.t(j.Lang, "bot.broadcast.finished", data)))
	default:
		text = esc(text)
		kb = jobKeyboard(b.t(j.Lang, "bot.broadcast.cancel", nil), jobCancelAction, id)
	}
	if err := b.snd.editText(ctx, j.Owner, j.Progress, text, kb); err != nil && ctx.Err() == nil {
		b.log.Debug("bot: progress edit", "job", id, "err", err)
	}
}
