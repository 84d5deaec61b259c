package bot

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/redisstate"
)

// The user index: per segment, a set of private chat ids, for broadcasts. A chat is
// added to "all" at its first contact and to its country, stakeholder type and flow
// when it completes a flow. Two more sets hold the chats that opted out (/stop) and
// those that blocked the bot. They outlive the dialogue state (which expires after
// StateTTL), so a broadcast still reaches people who answered months ago; /forget
// removes the chat from every one of them.
const segAll = "all"

func (b *Bot) segKey(seg string) string { return b.key("u", seg) }

func (b *Bot) optOutKey() string  { return b.key("u", "optout") }
func (b *Bot) blockedKey() string { return b.key("u", "blocked") }

// inviteCountKey counts per "flow-code" dialogues started (":s") and completed
// (":f").
func (b *Bot) inviteCountKey() string { return b.key("inv", "n") }
func (b *Bot) inviteCodesKey() string { return b.key("inv", "codes") }

// indexChange is what a committed update changes in the index and counters.
type indexChange struct {
	segs         []string // segments the chat joins
	optOut       int8     // +1 opted out, -1 opted in again
	unblocked    bool     // wrote again after blocking the bot
	codeStarted  string   // "flow-code" started
	codeFinished string   // "flow-code" completed
}

func (c indexChange) empty() bool {
	return len(c.segs) == 0 && c.optOut == 0 && !c.unblocked && c.codeStarted == "" && c.codeFinished == ""
}

// afterCommit applies an update's index changes. They are not atomic with the
// commit (the commit script is redisstate's and knows nothing of segments): a crash
// in between loses one index entry or one invite count, which the next contact (for
// "all") or nothing (for a counter) repairs. The dedup of update ids happens in the
// commit, so a redelivered update never counts twice.
func (b *Bot) afterCommit(ctx context.Context, k redisstate.Key, c indexChange) {
	if c.empty() {
		return
	}
	chat := chatString(k.ChatID)
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range c.segs {
			p.SAdd(ctx, b.segKey(s), chat)
		}
		switch c.optOut {
		case 1:
			p.SAdd(ctx, b.optOutKey(), chat)
		case -1:
			p.SRem(ctx, b.optOutKey(), chat)
		}
		if c.unblocked {
			p.SRem(ctx, b.blockedKey(), chat)
		}
		if c.codeStarted != "" {
			p.HIncrBy(ctx, b.inviteCountKey(), c.codeStarted+":s", 1)
		}
		if c.codeFinished != "" {
			p.HIncrBy(ctx, b.inviteCountKey(), c.codeFinished+":f", 1)
		}
		return nil
	})
	if err != nil {
		b.log.Warn("bot: user index not updated", "err", err)
	}
}

// allSegments lists every segment set a chat can be in.
func (b *Bot) allSegments() []string {
	segs := []string{segAll, "optout", "blocked", "c:" + central.CountryOther}
	for _, c := range central.Countries() {
		segs = append(segs, "c:"+c)
	}
	for _, s := range central.Stakeholders() {
		segs = append(segs, "s:"+s)
	}
	for _, d := range b.set.All() {
		segs = append(segs, "f:"+d.ID)
	}
	return segs
}

// forgetIndex removes a chat from every segment set and drops its reminder record.
func (b *Bot) forgetIndex(ctx context.Context, k redisstate.Key) error {
	chat := chatString(k.ChatID)
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range b.allSegments() {
			p.SRem(ctx, b.segKey(s), chat)
		}
		p.Del(ctx, b.remindKey(k))
		return nil
	})
	if err != nil {
		return fmt.Errorf("bot: forget index: %w", err)
	}
	return nil
}

// completionSegments are the segments a completed flow puts its chat into; "all"
// too, for users whose first contact predates the index.
func completionSegments(flow, country, stakeholder string) []string {
	segs := []string{segAll, "f:" + flow}
	if stakeholder != "" {
		segs = append(segs, "s:"+stakeholder)
	}
	if country != "" && (isCountry(country) || country == central.CountryOther) {
		segs = append(segs, "c:"+country)
	}
	return segs
}
