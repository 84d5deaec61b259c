package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/storage/central"
)

// privilegedCommands are the coordinators' commands. None is registered with
// setMyCommands: ordinary users should not see them in their menu.
var privilegedCommands = map[string]bool{
	"coord": true, "invite": true, "invites": true, "stats": true,
	"export": true, "remind": true, "broadcast": true,
}

// privUpdateTTL is how long a privileged update id is remembered, so that a
// redelivered /broadcast does not create a second job.
const privUpdateTTL = 24 * time.Hour

// coordReq is one privileged request being handled.
type coordReq struct {
	ev   event
	role role
	lang string
}

// privileged handles coordinator commands, coordinator invite links and the
// buttons of jobs. It reports false for everything else, and for a privileged
// command from someone without the role: that update then takes the ordinary
// path, which answers with the user menu, and the attempt is logged.
func (b *Bot) privileged(ctx context.Context, ev event) (bool, error) {
	if !ev.private {
		return false, nil
	}
	isJobButton := ev.kind == evCallback && strings.HasPrefix(ev.data, jobCallbackPrefix)
	isInvite := ev.kind == evCommand && ev.cmd == "start" && strings.HasPrefix(ev.arg, coordInvitePrefix)
	if !isJobButton && !isInvite && (ev.kind != evCommand || !privilegedCommands[ev.cmd]) {
		return false, nil
	}
	r, err := b.roleOf(ctx, ev.key.UserID)
	if err != nil {
		return true, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	lang := b.userLang(ctx, ev)
	if isInvite {
		return b.redeem(ctx, ev, lang)
	}
	if !r.ok() || (ev.cmd == "coord" && !r.admin) {
		b.log.Warn("bot: privileged command refused", "user", ev.key.UserID, "command", ev.cmd, "button", isJobButton)
		if isJobButton {
			b.answer(ctx, ev, "")
			return true, nil
		}
		return false, nil
	}
	fresh, err := b.rdb.SetNX(ctx, b.key("upd", strconv.FormatInt(ev.updateID, 10)), "1", privUpdateTTL).Result()
	if err != nil {
		return true, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if !fresh {
		b.answer(ctx, ev, "")
		return true, nil
	}
	q := coordReq{ev: ev, role: r, lang: lang}
	if isJobButton {
		err = b.jobButton(ctx, q)
	} else {
		err = b.coordCommand(ctx, q)
	}
	if err != nil {
		b.log.Warn("bot: coordinator command failed", "command", ev.cmd, "err", err)
		b.reply(ctx, q, esc(b.t(lang, "bot.coord.failed", nil)), nil)
	}
	return true, nil
}

// userLang is the language the user chose in their dialogue, else their client's.
func (b *Bot) userLang(ctx context.Context, ev event) string {
	if snap, err := b.store.Load(ctx, ev.key); err == nil {
		if env, err := decodeEnvelope(snap.Data); err == nil && env.Lang != "" && b.cat.Supported(env.Lang) {
			return env.Lang
		}
	}
	return b.clientLang(ev.clientLang)
}

func (b *Bot) reply(ctx context.Context, q coordReq, html string, kb keyboard) int {
	b.answer(ctx, q.ev, "")
	var id int
	parts := b.parts(q.lang, html)
	for i, p := range parts {
		var k keyboard
		if i == len(parts)-1 {
			k = kb
		}
		mid, err := b.tg.sendMessage(ctx, q.ev.key.ChatID, p, k, false)
		if err != nil {
			b.log.Warn("bot: coordinator reply failed", "code", apiCode(err), "err", err)
			return 0
		}
		id = mid
	}
	return id
}

func (b *Bot) replyText(ctx context.Context, q coordReq, id string, data map[string]any) {
	b.reply(ctx, q, esc(b.t(q.lang, id, data)), nil)
}

func (b *Bot) redeem(ctx context.Context, ev event, lang string) (bool, error) {
	q := coordReq{ev: ev, lang: lang}
	countries, ok, err := b.redeemCoordInvite(ctx, ev.key.UserID, strings.TrimPrefix(ev.arg, coordInvitePrefix))
	if err != nil {
		return true, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if !ok {
		b.log.Warn("bot: unknown or used coordinator invite", "user", ev.key.UserID)
		b.replyText(ctx, q, "bot.coord.invite_invalid", nil)
		return true, nil
	}
	b.log.Info("bot: coordinator added by invite", "user", ev.key.UserID, "countries", strings.Join(countries, ","))
	b.replyText(ctx, q, "bot.coord.welcome", map[string]any{"Countries": strings.Join(countries, ", ")})
	return true, nil
}

func (b *Bot) coordCommand(ctx context.Context, q coordReq) error {
	args := strings.Fields(q.ev.arg)
	switch q.ev.cmd {
	case "coord":
		return b.cmdCoord(ctx, q, args)
	case "invite":
		return b.cmdInvite(ctx, q, args)
	case "invites":
		return b.cmdInvites(ctx, q)
	case "stats":
		return b.cmdStats(ctx, q, args)
	case "export":
		return b.cmdExport(ctx, q, args)
	case "remind":
		return b.cmdRemind(ctx, q, args)
	case "broadcast":
		return b.cmdBroadcast(ctx, q)
	}
	return nil
}

// cmdCoord: /coord add <id> <countries…> | remove <id> | list | invite <countries…>.
func (b *Bot) cmdCoord(ctx context.Context, q coordReq, args []string) error {
	usage := func() error { b.replyText(ctx, q, "bot.coord.usage", nil); return nil }
	if len(args) == 0 {
		return usage()
	}
	switch strings.ToLower(args[0]) {
	case "add":
		if len(args) < 3 {
			return usage()
		}
		id, err := strconv.ParseInt(args[1], 10, 64)
		countries, ok := parseCountries(args[2:])
		if err != nil || id <= 0 || !ok {
			return usage()
		}
		if err := b.setCoordinator(ctx, id, countries); err != nil {
			return err
		}
		b.log.Info("bot: coordinator added", "admin", q.ev.key.UserID, "user", id, "countries", strings.Join(countries, ","))
		b.replyText(ctx, q, "bot.coord.added", map[string]any{"ID": id, "Countries": strings.Join(countries, ", ")})
	case "remove":
		if len(args) != 2 {
			return usage()
		}
		id, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return usage()
		}
		removed, err := b.removeCoordinator(ctx, id)
		if err != nil {
			return err
		}
		if removed {
			b.log.Info("bot: coordinator removed", "admin", q.ev.key.UserID, "user", id)
		}
		b.replyText(ctx, q, "bot.coord.removed", map[string]any{"ID": id})
	case "list":
		lines, err := b.coordinatorList(ctx)
		if err != nil {
			return err
		}
		if len(lines) == 0 {
			b.replyText(ctx, q, "bot.coord.none", nil)
			return nil
		}
		b.reply(ctx, q, paragraphs(bold(b.t(q.lang, "bot.coord.list", nil)), "<pre>"+esc(strings.Join(lines, "\n"))+"</pre>"), nil)
	case "invite":
		countries, ok := parseCountries(args[1:])
		if !ok {
			return usage()
		}
		tok, err := b.newCoordInvite(ctx, countries)
		if err != nil {
			return err
		}
		link := "https://t.me/" + b.username + "?start=" + coordInvitePrefix + tok
		b.replyText(ctx, q, "bot.coord.invite_link", map[string]any{
			"Link": link, "Countries": strings.Join(countries, ", "), "Hours": int(b.cfg.CoordInviteTTL.Hours()),
		})
	default:
		return usage()
	}
	return nil
}

// questionnaire reports whether flow is a questionnaire this bot runs.
func (b *Bot) questionnaire(flow string) bool {
	d, ok := b.set.Get(flow)
	return ok && d.Kind == flows.KindQuestionnaire
}

// cmdInvite: /invite <flow> <code> [country]. The country defaults to the code's
// first part ("AZ-ngo-042" → AZ) and must be within the coordinator's.
func (b *Bot) cmdInvite(ctx context.Context, q coordReq, args []string) error {
	if len(args) < 2 || len(args) > 3 || !b.questionnaire(args[0]) || !codeRe.MatchString(args[1]) {
		b.replyText(ctx, q, "bot.coord.invite_usage", nil)
		return nil
	}
	flow, code := args[0], args[1]
	country, _, _ := strings.Cut(code, "-")
	if len(args) == 3 {
		country = args[2]
	}
	country = strings.ToUpper(country)
	if !isCountry(country) || !q.role.has(country) {
		b.replyText(ctx, q, "bot.coord.not_your_country", map[string]any{"Countries": strings.Join(q.role.countries, ", ")})
		return nil
	}
	if f, c, ok := b.parseStartPayload(flow + "-" + code); !ok || f != flow || c != code {
		b.replyText(ctx, q, "bot.coord.invite_usage", nil)
		return nil
	}
	if err := b.rdb.HSet(ctx, b.inviteCodesKey(), flow+"-"+code, country).Err(); err != nil {
		return fmt.Errorf("bot: store invite code: %w", err)
	}
	link := "https://t.me/" + b.username + "?start=" + flow + "-" + code
	b.replyText(ctx, q, "bot.coord.respondent_link", map[string]any{"Link": link, "Code": code, "Country": country})
	return nil
}

// cmdInvites lists the invite codes of the coordinator's countries with how many
// dialogues each started and completed.
func (b *Bot) cmdInvites(ctx context.Context, q coordReq) error {
	codes, err := b.rdb.HGetAll(ctx, b.inviteCodesKey()).Result()
	if err != nil {
		return fmt.Errorf("bot: read invite codes: %w", err)
	}
	var names []string
	for name, country := range codes {
		if q.role.has(country) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		b.replyText(ctx, q, "bot.coord.no_invites", nil)
		return nil
	}
	slices.Sort(names)
	fields := make([]string, 0, 2*len(names))
	for _, n := range names {
		fields = append(fields, n+":s", n+":f")
	}
	counts, err := b.rdb.HMGet(ctx, b.inviteCountKey(), fields...).Result()
	if err != nil {
		return fmt.Errorf("bot: read invite counts: %w", err)
	}
	num := func(v any) string {
		if s, ok := v.(string); ok {
			return s
		}
		return "0"
	}
	rows := [][]string{{"code", "country", "started", "finished"}}
	for i, n := range names {
		rows = append(rows, []string{n, codes[n], num(counts[2*i]), num(counts[2*i+1])})
	}
	b.reply(ctx, q, paragraphs(bold(b.t(q.lang, "bot.coord.invites_title", nil)), "<pre>"+esc(table(rows))+"</pre>"), nil)
	return nil
}

// table lays rows out in fixed-width columns for a <pre> block.
func table(rows [][]string) string {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var sb strings.Builder
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				sb.WriteString("  ")
			}
			sb.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))))
		}
		sb.WriteString("\n")
	}
	return strings.TrimRight(sb.String(), "\n ")
}

// scopeFilter restricts a report to the coordinator's countries; an admin sees
// everything, unknown and other countries included.
func scopeFilter(r role, flow string) central.Filter {
	f := central.Filter{Flow: flow}
	if !r.admin {
		f.Countries = slices.Clone(r.countries)
	}
	return f
}

// cmdStats: /stats [flow] — Table 1 and Table 7 for the coordinator's countries.
func (b *Bot) cmdStats(ctx context.Context, q coordReq, args []string) error {
	if b.reports == nil {
		b.replyText(ctx, q, "bot.coord.no_reports", nil)
		return nil
	}
	flow := ""
	if len(args) > 0 {
		flow = args[0]
		if _, ok := b.set.Get(flow); !ok {
			b.replyText(ctx, q, "bot.coord.unknown_flow", map[string]any{"Flow": flow})
			return nil
		}
	}
	f := scopeFilter(q.role, flow)
	resp, err := b.reports.Responses(ctx, f)
	if err != nil {
		return fmt.Errorf("bot: stats: %w", err)
	}
	b.reply(ctx, q, "<pre>"+esc(central.RenderResponses(resp))+"</pre>", nil)
	needs, err := b.reports.TrainingNeeds(ctx, f, "training_needs")
	if err != nil {
		return fmt.Errorf("bot: training needs: %w", err)
	}
	b.reply(ctx, q, "<pre>"+esc(central.RenderNeeds(needs))+"</pre>", nil)
	return nil
}

// maxExportBytes is Telegram's upload limit for sendDocument.
const maxExportBytes = 50 << 20

// cmdExport: /export <flow> [csv|xlsx] — the file, labelled in the coordinator's
// language, as a document.
func (b *Bot) cmdExport(ctx context.Context, q coordReq, args []string) error {
	if b.reports == nil {
		b.replyText(ctx, q, "bot.coord.no_reports", nil)
		return nil
	}
	if len(args) == 0 || len(args) > 2 {
		b.replyText(ctx, q, "bot.coord.export_usage", nil)
		return nil
	}
	flow, format := args[0], "xlsx"
	if len(args) == 2 {
		format = strings.ToLower(args[1])
	}
	if _, ok := b.set.Get(flow); !ok || (format != "csv" && format != "xlsx") {
		b.replyText(ctx, q, "bot.coord.export_usage", nil)
		return nil
	}
	var buf bytes.Buffer
	if err := b.reports.Export(ctx, &buf, flow, format, q.lang, scopeFilter(q.role, flow)); err != nil {
		return fmt.Errorf("bot: export: %w", err)
	}
	if buf.Len() > maxExportBytes {
		return errors.New("bot: export larger than Telegram's 50 MB")
	}
	name := fmt.Sprintf("%s-%s.%s", flow, b.now().UTC().Format("20060102"), format)
	doc := tgbotapi.NewDocument(q.ev.key.ChatID, tgbotapi.FileBytes{Name: name, Bytes: buf.Bytes()})
	b.answer(ctx, q.ev, "")
	if _, err := b.tg.call(ctx, "sendDocument", doc); err != nil {
		return fmt.Errorf("bot: send export: %w", err)
	}
	return nil
}
