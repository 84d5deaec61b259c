package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
)

// commands are registered with setMyCommands in this order; each has a description
// bot.cmd.<name> in every language.
var commands = []string{"start", "resume", "back", "skip", "cancel", "language", "help", "stop", "forget"}

// command handles "/name arg".
func (t *turn) command(cmd, arg string) {
	switch cmd {
	case "start":
		if arg == "" {
			if !t.env.state.Active() {
				t.note(esc(t.tx("bot.welcome", nil)))
			}
			t.showMenu()
			return
		}
		flow, code, ok := t.b.parseStartPayload(arg)
		if !ok {
			t.note(esc(t.tx("bot.start.unknown_link", nil)))
			t.showMenu()
			return
		}
		t.startFlow(flow, code)
	case "menu":
		t.showMenu()
	case "language", "lang":
		if l := strings.ToLower(arg); l != "" && t.b.cat.Supported(l) {
			t.setLang(l)
			return
		}
		t.languagePicker()
	case "resume":
		t.resume()
	case "back":
		t.render(t.step(flows.Input{Kind: flows.InBack}))
	case "skip":
		t.render(t.step(flows.Input{Kind: flows.InSkip}))
	case "cancel":
		t.render(t.step(flows.Input{Kind: flows.InCancel}))
	case "stop":
		t.setOptOut(true)
	case "help":
		help := esc(t.tx("bot.help", nil))
		if t.env.state.Active() {
			help = paragraphs(help, esc(t.tx("bot.help.active", nil)))
		}
		t.send(help, t.b.menuButton(t.lang()))
	case "forget":
		t.send(esc(t.tx("bot.forget.confirm", nil)), &inlineKeyboard{
			InlineKeyboard: [][]inlineButton{{
				button(t.tx("bot.forget.yes", nil), callback{kind: cbForgetYes}.String()),
				button(t.tx("bot.forget.no", nil), callback{kind: cbForgetNo}.String()),
			}},
		})
	default:
		t.note(esc(t.tx("bot.unknown_command", map[string]any{"Command": "/" + cmd})))
		t.showMenu()
	}
}

// codeRe is the organisation or campaign code a deep link may carry (the central
// store's rule, and within what a /start payload can hold).
var codeRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// parseStartPayload reads a deep link's payload: "flow" or "flow-CODE". Flow ids may
// contain "_" and even "-", so the longest prefix that names a flow wins.
func (b *Bot) parseStartPayload(p string) (flow, code string, ok bool) {
	if len(p) > 64 || strings.ContainsAny(p, " \t\n") {
		return "", "", false
	}
	if _, found := b.set.Get(p); found {
		return p, "", true
	}
	for i := len(p) - 1; i > 0; i-- {
		if p[i] != '-' {
			continue
		}
		if _, found := b.set.Get(p[:i]); found && codeRe.MatchString(p[i+1:]) {
			return p[:i], p[i+1:], true
		}
	}
	return "", "", false
}

// RegisterCommands sets the command menu for the default language and for every
// supported language, each in its own words.
func (b *Bot) RegisterCommands(ctx context.Context) error {
	langs := append([]string{""}, b.langs...)
	var errs []error
	for _, code := range langs {
		lang := code
		if lang == "" {
			lang = locales.Fallback
		}
		if code != "" && len(code) != 2 {
			continue // Telegram takes two-letter ISO 639-1 codes only
		}
		cmds := make([]tgbotapi.BotCommand, 0, len(commands))
		for _, c := range commands {
			desc := truncateUnits(b.t(lang, "bot.cmd."+c, nil), 256)
			cmds = append(cmds, tgbotapi.BotCommand{Command: c, Description: desc})
		}
		if _, err := b.tg.call(ctx, "setMyCommands", tgbotapi.SetMyCommandsConfig{Commands: cmds, LanguageCode: code}); err != nil {
			errs = append(errs, fmt.Errorf("set commands for %q: %w", code, err))
		}
	}
	return errors.Join(errs...)
}
