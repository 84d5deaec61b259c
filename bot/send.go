package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// errBlocked is a 403 from Telegram: the user blocked the bot (or deleted the
// account). Nothing more is sent to them.
var errBlocked = errors.New("bot: user blocked the bot")

// Retry limits for one Telegram call.
const (
	maxTransientAttempts = 4 // network errors and 5xx
	maxFloodAttempts     = 5 // 429s
	// maxRetryAfter caps how long one call waits on a 429; a longer flood ban is
	// better logged than held by a worker (and a webhook's Telegram timeout).
	maxRetryAfter = 60 * time.Second
)

// telegram calls the Bot API through tgbotapi, adding what the library lacks: a
// context per call, retries, and errors that never contain the token.
type telegram struct {
	api   *tgbotapi.BotAPI // a template: each call uses a copy bound to its context
	hc    *http.Client
	token string
	log   *slog.Logger
	sleep func(context.Context, time.Duration) error
	// retryMin and retryMax bound the backoff between transient failures.
	retryMin, retryMax time.Duration
	m                  *metrics
	// onFlood, when set, hears every 429's retry_after (the throttled sender pauses
	// all its sends for it).
	onFlood func(time.Duration)
}

// ctxDoer binds a context to tgbotapi's requests, which it builds without one.
type ctxDoer struct {
	ctx context.Context
	hc  *http.Client
}

func (d ctxDoer) Do(req *http.Request) (*http.Response, error) {
	return d.hc.Do(req.WithContext(d.ctx))
}

// bound returns a copy of the API client whose requests run under ctx with hc.
func (t *telegram) bound(ctx context.Context, hc *http.Client) *tgbotapi.BotAPI {
	api := *t.api
	api.Client = ctxDoer{ctx: ctx, hc: hc}
	return &api
}

// redacted hides the token, which net/http puts into every error as part of the URL.
type redacted struct {
	err   error
	token string
}

func (r *redacted) Error() string {
	msg := r.err.Error()
	if r.token != "" {
		msg = strings.ReplaceAll(msg, r.token, "<token>")
	}
	return msg
}

func (r *redacted) Unwrap() error { return r.err }

func (t *telegram) redact(err error) error {
	if err == nil {
		return nil
	}
	return &redacted{err: err, token: t.token}
}

// call runs one API method with the retry policy:
//   - 429: wait retry_after, then retry;
//   - 403: errBlocked;
//   - 400 "message is not modified": success (the message already shows this);
//   - other 4xx: returned at once, retrying cannot help;
//   - 5xx, network errors, unreadable answers (an HTML error page): retried with
//     backoff a few times.
func (t *telegram) call(ctx context.Context, method string, c tgbotapi.Chattable) (*tgbotapi.APIResponse, error) {
	return t.do(ctx, method, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) { return api.Request(c) })
}

// raw calls a method by name, for parameters tgbotapi v5.5.1 does not know
// (setWebhook's secret_token).
func (t *telegram) raw(ctx context.Context, method string, p tgbotapi.Params) (*tgbotapi.APIResponse, error) {
	return t.do(ctx, method, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) { return api.MakeRequest(method, p) })
}

func (t *telegram) do(ctx context.Context, method string, fn func(*tgbotapi.BotAPI) (*tgbotapi.APIResponse, error)) (*tgbotapi.APIResponse, error) {
	api := t.bound(ctx, t.hc)
	transient, flood := 0, 0
	for {
		resp, err := fn(api)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("telegram %s: %w", method, ctx.Err())
		}
		var apiErr *tgbotapi.Error
		isAPI := errors.As(err, &apiErr)
		code := 0
		if isAPI {
			code = apiErr.Code
		}
		t.m.telegramError(method, code)
		var wait time.Duration
		switch {
		case isAPI && code == http.StatusTooManyRequests:
			flood++
			if flood >= maxFloodAttempts {
				return nil, fmt.Errorf("telegram %s: still rate limited after %d attempts: %w", method, flood, t.redact(err))
			}
			wait = time.Duration(max(apiErr.RetryAfter, 1)) * time.Second
			if wait > maxRetryAfter {
				return nil, fmt.Errorf("telegram %s: retry_after %ds is too long: %w", method, apiErr.RetryAfter, t.redact(err))
			}
			t.log.Debug("telegram: rate limited", "method", method, "retry_after", wait)
			if t.onFlood != nil {
				t.onFlood(wait)
			}
		case isAPI && code == http.StatusForbidden:
			return nil, fmt.Errorf("telegram %s: %w: %w", method, errBlocked, t.redact(err))
		case isAPI && code == http.StatusBadRequest && strings.Contains(apiErr.Message, "message is not modified"):
			return resp, nil
		case isAPI && code >= 400 && code < 500:
			return nil, fmt.Errorf("telegram %s: %w", method, t.redact(err))
		default: // 5xx, network, undecodable answer
			transient++
			if transient >= maxTransientAttempts {
				return nil, fmt.Errorf("telegram %s: giving up after %d attempts: %w", method, transient, t.redact(err))
			}
			wait = backoff(t.retryMin, t.retryMax, transient)
			t.log.Debug("telegram: transient error, retrying", "method", method, "code", code, "retry_in", wait, "err", t.redact(err))
		}
		if err := t.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("telegram %s: %w", method, err)
		}
	}
}

// apiCode returns the Telegram error code in err, or 0.
func apiCode(err error) int {
	var apiErr *tgbotapi.Error
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return 0
}

// backoff is exponential with full jitter: uniform in [min/2, min(max, min·2^(n-1))],
// so replicas retrying against the same recovering service spread out.
func backoff(lo, hi time.Duration, n int) time.Duration {
	ceil := lo
	for i := 1; i < n && ceil < hi; i++ {
		ceil *= 2
	}
	ceil = min(ceil, hi)
	floor := lo / 2
	if ceil <= floor {
		return ceil
	}
	return floor + rand.N(ceil-floor+1)
}

// The sends the bot makes. Each returns errBlocked (wrapped) on a 403.

func (t *telegram) sendMessage(ctx context.Context, chatID int64, text string, kb keyboard) (int, error) {
	msg := tgbotapi.NewMessage(chatID, text)
	msg.ParseMode = tgbotapi.ModeHTML
	msg.DisableWebPagePreview = true
	if kb != nil {
		msg.ReplyMarkup = kb
	}
	resp, err := t.call(ctx, "sendMessage", msg)
	if err != nil {
		return 0, err
	}
	var sent struct {
		MessageID int `json:"message_id"`
	}
	if resp != nil && len(resp.Result) > 0 {
		_ = json.Unmarshal(resp.Result, &sent)
	}
	return sent.MessageID, nil
}

func (t *telegram) editText(ctx context.Context, chatID int64, msgID int, text string, kb keyboard) error {
	edit := tgbotapi.NewEditMessageText(chatID, msgID, text)
	edit.ParseMode = tgbotapi.ModeHTML
	edit.DisableWebPagePreview = true
	edit.ReplyMarkup = kb
	_, err := t.call(ctx, "editMessageText", edit)
	return err
}

func (t *telegram) editMarkup(ctx context.Context, chatID int64, msgID int, kb keyboard) error {
	if kb == nil {
		kb = emptyKeyboard()
	}
	_, err := t.call(ctx, "editMessageReplyMarkup", tgbotapi.NewEditMessageReplyMarkup(chatID, msgID, *kb))
	return err
}

func (t *telegram) answerCallback(ctx context.Context, queryID, text string) error {
	cb := tgbotapi.NewCallback(queryID, truncateUnits(text, maxCallbackUnits))
	_, err := t.call(ctx, "answerCallbackQuery", cb)
	return err
}
