package bot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/redisstate"
)

// Job buttons: "j:go:<id>" sends a previewed job, "j:no:<id>" discards it,
// "j:x:<id>" cancels a running one. They are handled before any dialogue state is
// loaded, and only for the job's owner or an admin.
const (
	jobCallbackPrefix = "j:"
	jobGoAction       = "go"
	jobDiscardAction  = "no"
	jobCancelAction   = "x"
)

func jobKeyboard(label, action, id string) keyboard {
	return &inlineKeyboard{InlineKeyboard: [][]inlineButton{{
		button(label, jobCallbackPrefix+action+":"+id),
	}}}
}

// maxBroadcastUnits keeps a broadcast within one message.
const maxBroadcastUnits = 3500

// cmdBroadcast: "/broadcast <segment> <text…>", the text on the same line or the
// next ones. Segments: a country (AZ), a stakeholder type (cso), an info session
// or questionnaire id (its users), or "all". A coordinator reaches only chats of
// their countries.
func (b *Bot) cmdBroadcast(ctx context.Context, q coordReq) error {
	arg := strings.TrimSpace(q.ev.arg)
	seg, text, _ := strings.Cut(arg, " ")
	if i := strings.IndexAny(seg, "\n\t"); i >= 0 {
		seg, text = seg[:i], seg[i+1:]+" "+text
	}
	text = strings.TrimSpace(text)
	if seg == "" || text == "" || visibleUnits(esc(text)) > maxBroadcastUnits {
		b.replyText(ctx, q, "bot.broadcast.usage", nil)
		return nil
	}
	set, ok := b.segmentSet(seg)
	if !ok {
		b.replyText(ctx, q, "bot.broadcast.usage", nil)
		return nil
	}
	if strings.HasPrefix(set, "c:") && !q.role.has(strings.TrimPrefix(set, "c:")) {
		b.replyText(ctx, q, "bot.coord.not_your_country", map[string]any{"Countries": strings.Join(q.role.countries, ", ")})
		return nil
	}
	recipients, err := b.segmentMembers(ctx, set, q.role)
	if err != nil {
		return err
	}
	j, err := b.createJob(ctx, job{Kind: jobBroadcast, Owner: q.ev.key.ChatID, Lang: q.lang, Text: esc(text)}, recipients)
	if err != nil {
		return err
	}
	preview := paragraphs(
		bold(b.t(q.lang, "bot.broadcast.preview", map[string]any{"Segment": seg, "Count": len(recipients)})),
		esc(text))
	b.reply(ctx, q, preview, b.confirmKeyboard(q.lang, j.ID))
	return nil
}

func (b *Bot) confirmKeyboard(lang, id string) keyboard {
	return &inlineKeyboard{InlineKeyboard: [][]inlineButton{{
		button(b.t(lang, "bot.broadcast.send", nil), jobCallbackPrefix+jobGoAction+":"+id),
		button(b.t(lang, "bot.broadcast.discard", nil), jobCallbackPrefix+jobDiscardAction+":"+id),
	}}}
}

// segmentSet maps what a coordinator types to a segment set name.
func (b *Bot) segmentSet(seg string) (string, bool) {
	switch l := strings.ToLower(seg); {
	case l == "all" || l == "everyone":
		return segAll, true
	case isCountry(strings.ToUpper(seg)):
		return "c:" + strings.ToUpper(seg), true
	case slices.Contains(central.Stakeholders(), l):
		return "s:" + l, true
	default:
		if _, ok := b.set.Get(seg); ok {
			return "f:" + seg, true
		}
	}
	return "", false
}

// segmentMembers lists a segment's chats, within a coordinator's countries.
func (b *Bot) segmentMembers(ctx context.Context, set string, r role) ([]int64, error) {
	ms, err := b.rdb.SMembers(ctx, b.segKey(set)).Result()
	if err != nil {
		return nil, fmt.Errorf("bot: read segment: %w", err)
	}
	var allowed map[string]bool
	if !r.admin && !strings.HasPrefix(set, "c:") {
		allowed = map[string]bool{}
		for _, c := range r.countries {
			cs, err := b.rdb.SMembers(ctx, b.segKey("c:"+c)).Result()
			if err != nil {
				return nil, fmt.Errorf("bot: read segment: %w", err)
			}
			for _, m := range cs {
				allowed[m] = true
			}
		}
	}
	out := make([]int64, 0, len(ms))
	for _, m := range ms {
		if allowed != nil && !allowed[m] {
			continue
		}
		if id, err := strconv.ParseInt(m, 10, 64); err == nil && id > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// cmdRemind: /remind <flow> [country] — a preview of the reminder, how many it
// would reach, and a button to send it.
func (b *Bot) cmdRemind(ctx context.Context, q coordReq, args []string) error {
	if len(args) == 0 || len(args) > 2 || !b.questionnaire(args[0]) {
		b.replyText(ctx, q, "bot.remind.usage", nil)
		return nil
	}
	flow, country := args[0], ""
	if len(args) == 2 {
		country = strings.ToUpper(args[1])
		if !isCountry(country) || !q.role.has(country) {
			b.replyText(ctx, q, "bot.coord.not_your_country", map[string]any{"Countries": strings.Join(q.role.countries, ", ")})
			return nil
		}
	}
	recipients, err := b.unfinished(ctx, flow, func(c string) bool {
		if country != "" {
			return c == country
		}
		return q.role.admin || (c != "" && q.role.has(c))
	})
	if err != nil {
		return err
	}
	j, err := b.createJob(ctx, job{Kind: jobRemind, Owner: q.ev.key.ChatID, Lang: q.lang, Flow: flow}, recipients)
	if err != nil {
		return err
	}
	sample, _ := b.reminderMessage(q.lang, flow)
	preview := paragraphs(bold(b.t(q.lang, "bot.remind.preview", map[string]any{"Count": len(recipients)})), sample)
	b.reply(ctx, q, preview, b.confirmKeyboard(q.lang, j.ID))
	return nil
}

// unfinished lists the private chats with flow open, not opted out, whose country
// (from their answers; "" when not given yet) passes keep.
func (b *Bot) unfinished(ctx context.Context, flow string, keep func(country string) bool) ([]int64, error) {
	d, _ := b.set.Get(flow)
	var out []int64
	for shard := range b.cfg.Shards {
		ms, err := b.rdb.ZRange(ctx, redisstate.ActiveKey(b.cfg.Prefix, shard), 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("bot: read active dialogues: %w", err)
		}
		for _, m := range ms {
			k, ok := parseKey(m)
			if !ok || k.ChatID != k.UserID {
				continue
			}
			snap, err := b.store.Load(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("bot: read dialogue: %w", scrub(err, k))
			}
			env, err := decodeEnvelope(snap.Data)
			if err != nil || env.state.Flow != flow || env.OptOut || env.Inactive {
				continue
			}
			country := ""
			if d != nil && d.CountryField != "" {
				country = env.state.Answers[d.CountryField]
			}
			if keep(country) {
				out = append(out, k.ChatID)
			}
		}
	}
	return out, nil
}

func parseKey(m string) (redisstate.Key, bool) {
	c, u, ok := strings.Cut(m, ":")
	if !ok {
		return redisstate.Key{}, false
	}
	chat, err1 := strconv.ParseInt(c, 10, 64)
	user, err2 := strconv.ParseInt(u, 10, 64)
	return redisstate.Key{ChatID: chat, UserID: user}, err1 == nil && err2 == nil
}

// jobButton handles the buttons under a job's preview and progress.
func (b *Bot) jobButton(ctx context.Context, q coordReq) error {
	action, id, _ := strings.Cut(strings.TrimPrefix(q.ev.data, jobCallbackPrefix), ":")
	j, ok, err := b.loadJob(ctx, id)
	if err != nil {
		return err
	}
	if !ok || (j.Owner != q.ev.key.ChatID && !q.role.admin) {
		b.answer(ctx, q.ev, b.t(q.lang, "bot.broadcast.gone", nil))
		return nil
	}
	switch action {
	case jobGoAction:
		queued, err := b.queueJob(ctx, id, q.ev.msgID, b.now())
		if err != nil {
			return err
		}
		b.answer(ctx, q.ev, "")
		if queued {
			b.showProgress(ctx, id, false)
		}
	case jobDiscardAction:
		if j.State == jobDraft {
			if err := b.cancelJob(ctx, id); err != nil {
				return err
			}
		}
		b.answer(ctx, q.ev, "")
		if err := b.tg.editText(ctx, q.ev.key.ChatID, q.ev.msgID, esc(b.t(q.lang, "bot.broadcast.discarded", nil)), nil, false); err != nil {
			b.log.Debug("bot: edit discarded job", "err", err)
		}
	case jobCancelAction:
		if err := b.cancelJob(ctx, id); err != nil {
			return err
		}
		b.answer(ctx, q.ev, b.t(q.lang, "bot.broadcast.cancelled", nil))
	default:
		b.answer(ctx, q.ev, "")
	}
	return nil
}

// reminderMessage is the reminder of an unfinished questionnaire, with Resume and
// "no more reminders" buttons.
func (b *Bot) reminderMessage(lang, flow string) (string, keyboard) {
	title := b.t(lang, flow+".title", nil)
	html := esc(b.t(lang, "bot.remind.text", map[string]any{"Title": title}))
	kb := &inlineKeyboard{InlineKeyboard: [][]inlineButton{
		{button(b.t(lang, "bot.button.continue", nil), callback{kind: cbResume}.String())},
		{button(b.t(lang, "bot.remind.button_off", nil), callback{kind: cbOptOut}.String())},
	}}
	return html, kb
}
