package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// telegram calls the Bot API. The calls made for every update (sendMessage, the
// edits, answerCallbackQuery, getUpdates) are JSON requests of its own that decode
// only the fields the bot reads; the rare ones (getMe, setMyCommands, sendDocument,
// the webhook settings) go through tgbotapi. It adds what the library lacks: a
// context per call, retries, and errors that never contain the token.
type telegram struct {
	api      *tgbotapi.BotAPI // a template: each call uses a copy bound to its context
	hc       *http.Client
	token    string
	endpoint string // "…/bot%s/%s"
	log      *slog.Logger
	sleep    func(context.Context, time.Duration) error
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

// floodError is a 429 handed back to the caller instead of slept out (see
// noFloodWait): an update's worker must not wait for one chat's limit.
type floodError struct {
	after time.Duration
	err   error
}

func (e *floodError) Error() string { return e.err.Error() }
func (e *floodError) Unwrap() error { return e.err }

// noFloodWait marks a call whose 429 is returned as a *floodError at once.
type noFloodWait bool

// call runs one tgbotapi method with the retry policy of do.
func (t *telegram) call(ctx context.Context, method string, c tgbotapi.Chattable) (*tgbotapi.APIResponse, error) {
	var resp *tgbotapi.APIResponse
	err := t.do(ctx, method, false, func() (err error) {
		resp, err = t.bound(ctx, t.hc).Request(c)
		return err
	})
	return resp, err
}

// raw calls a method by name, for parameters tgbotapi v5.5.1 does not know
// (setWebhook's secret_token).
func (t *telegram) raw(ctx context.Context, method string, p tgbotapi.Params) (*tgbotapi.APIResponse, error) {
	var resp *tgbotapi.APIResponse
	err := t.do(ctx, method, false, func() (err error) {
		resp, err = t.bound(ctx, t.hc).MakeRequest(method, p)
		return err
	})
	return resp, err
}

// post calls method with params as a JSON body, decoding the answer's result into
// result (nil: not decoded), with the retry policy of do.
func (t *telegram) post(ctx context.Context, method string, fw noFloodWait, params, result any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("telegram %s: encode: %w", method, err)
	}
	return t.do(ctx, method, fw, func() error { return t.once(ctx, t.hc, method, body, result) })
}

// maxAnswerBytes bounds a Bot API answer read into memory. The largest the bot
// asks for is a getUpdates of 100 updates.
const maxAnswerBytes = 16 << 20

// apiAnswer is the envelope of every Bot API answer, as far as the bot reads it.
type apiAnswer struct {
	OK          bool   `json:"ok"`
	Result      any    `json:"result"` // set to the caller's target before decoding
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// skipped takes a result nobody reads: JSON checks it, nothing is built from it.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// once makes one request. A refusal comes back as *tgbotapi.Error, like tgbotapi's,
// so that do treats both paths alike; an answer that is not the Bot API's JSON (an
// HTML error page from a proxy) is a plain, transient error.
func (t *telegram) once(ctx context.Context, hc *http.Client, method string, body []byte, result any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf(t.endpoint, t.token, method), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return err
	}
	if quickSuccess(data, result) {
		return nil
	}
	if result == nil {
		result = &skipped{}
	}
	ans := apiAnswer{Result: result}
	if err := json.Unmarshal(data, &ans); err != nil {
		return fmt.Errorf("unreadable answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if !ans.OK {
		return &tgbotapi.Error{Code: ans.ErrorCode, Message: ans.Description, ResponseParameters: tgbotapi.ResponseParameters{
			RetryAfter: ans.Parameters.RetryAfter, MigrateToChatID: ans.Parameters.MigrateToChatID,
		}}
	}
	return nil
}

// quickSuccess reads a success without a JSON decoder where it can. Telegram writes
// "ok" first and, in a Message, "message_id" first; most answers echo the whole
// message with its keyboard, which the bot does not read. Anything else is left
// to the decoder.
func quickSuccess(data []byte, result any) bool {
	switch r := result.(type) {
	case nil:
		return bytes.HasPrefix(data, []byte(`{"ok":true,`)) || bytes.Equal(data, []byte(`{"ok":true}`))
	case *sentMessage:
		rest, ok := bytes.CutPrefix(data, []byte(`{"ok":true,"result":{"message_id":`))
		if !ok {
			return false
		}
		n, ok := leadingInt(rest)
		r.MessageID = n
		return ok
	case *[]json.RawMessage:
		updates, ok := splitResult(data)
		*r = updates
		return ok
	}
	return false
}

// splitResult cuts the array of a getUpdates answer, {"ok":true,"result":[…]},
// into its elements without decoding them: most are updates the poll loop already
// has and only skips, and decoding the whole batch was most of what polling cost.
// The elements alias data and are not validated; the loop decodes the new ones,
// which validates them. Anything not in that shape (whitespace between the
// envelope's tokens included) is left to the decoder.
func splitResult(data []byte) ([]json.RawMessage, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"ok":true,"result":[`))
	if !ok {
		return nil, false
	}
	var out []json.RawMessage
	for i := 0; ; {
		i = skipSpace(rest, i)
		if i < len(rest) && rest[i] == ']' && len(out) == 0 {
			return out, closes(rest, i+1)
		}
		end, ok := objectEnd(rest, i)
		if !ok {
			return nil, false
		}
		out = append(out, rest[i:end:end])
		i = skipSpace(rest, end)
		switch {
		case i < len(rest) && rest[i] == ',':
			i++
		case i < len(rest) && rest[i] == ']':
			return out, closes(rest, i+1)
		default:
			return nil, false
		}
	}
}

// closes reports whether b[i:] is the envelope's closing brace, give or take space.
func closes(b []byte, i int) bool {
	i = skipSpace(b, i)
	return i < len(b) && b[i] == '}' && skipSpace(b, i+1) == len(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// objectEnd returns the index just past the JSON object that starts at b[i],
// following strings (and their escapes) and nesting, without checking the rest.
func objectEnd(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	depth, inString := 0, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped character, whatever it is
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return i + 1, c == '}'
			}
		}
	}
	return 0, false
}

// leadingInt reads the non-negative JSON number that starts b and ends at a ',' or
// '}' (a value in an object).
func leadingInt(b []byte) (int, bool) {
	n, i := 0, 0
	for ; i < len(b) && i < 15 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
	}
	if i == 0 || i == len(b) || b[i] != ',' && b[i] != '}' {
		return 0, false
	}
	return n, true
}

// do runs one API call with the retry policy:
//   - 429: wait retry_after, then retry (with noFloodWait: return a *floodError);
//   - 403: errBlocked;
//   - 400 "message is not modified": success (the message already shows this);
//   - other 4xx: returned at once, retrying cannot help;
//   - 5xx, network errors, unreadable answers (an HTML error page): retried with
//     backoff a few times.
func (t *telegram) do(ctx context.Context, method string, fw noFloodWait, attempt func() error) error {
	transient, flood := 0, 0
	for {
		err := attempt()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("telegram %s: %w", method, ctx.Err())
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
			wait = time.Duration(max(apiErr.RetryAfter, 1)) * time.Second
			if t.onFlood != nil {
				t.onFlood(wait)
			}
			if fw {
				return &floodError{after: wait, err: fmt.Errorf("telegram %s: %w", method, t.redact(err))}
			}
			if flood >= maxFloodAttempts {
				return fmt.Errorf("telegram %s: still rate limited after %d attempts: %w", method, flood, t.redact(err))
			}
			if wait > maxRetryAfter {
				return fmt.Errorf("telegram %s: retry_after %ds is too long: %w", method, apiErr.RetryAfter, t.redact(err))
			}
			t.log.Debug("telegram: rate limited", "method", method, "retry_after", wait)
		case isAPI && code == http.StatusForbidden:
			return fmt.Errorf("telegram %s: %w: %w", method, errBlocked, t.redact(err))
		case isAPI && code == http.StatusBadRequest && strings.Contains(apiErr.Message, "message is not modified"):
			return nil
		case isAPI && code >= 400 && code < 500:
			return fmt.Errorf("telegram %s: %w", method, t.redact(err))
		default: // 5xx, network, undecodable answer
			transient++
			if transient >= maxTransientAttempts {
				return fmt.Errorf("telegram %s: giving up after %d attempts: %w", method, transient, t.redact(err))
			}
			wait = backoff(t.retryMin, t.retryMax, transient)
			t.log.Debug("telegram: transient error, retrying", "method", method, "code", code, "retry_in", wait, "err", t.redact(err))
		}
		if err := t.sleep(ctx, wait); err != nil {
			return fmt.Errorf("telegram %s: %w", method, err)
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

// The sends the bot makes. Each returns errBlocked (wrapped) on a 403, and with
// noFloodWait a *floodError on a 429.

// textParams are sendMessage's and editMessageText's parameters.
type textParams struct {
	ChatID      int64    `json:"chat_id"`
	MessageID   int      `json:"message_id,omitempty"`
	Text        string   `json:"text"`
	ParseMode   string   `json:"parse_mode"`
	NoPreview   bool     `json:"disable_web_page_preview"`
	PaidBcast   bool     `json:"allow_paid_broadcast,omitempty"`
	ReplyMarkup keyboard `json:"reply_markup,omitempty"`
}

// sentMessage is the part of a sent Message the bot keeps.
type sentMessage struct {
	MessageID int `json:"message_id"`
}

func (t *telegram) sendMessage(ctx context.Context, chatID int64, text string, kb keyboard, fw noFloodWait) (int, error) {
	return t.send(ctx, textParams{ChatID: chatID, Text: text, ReplyMarkup: kb}, fw)
}

func (t *telegram) send(ctx context.Context, p textParams, fw noFloodWait) (int, error) {
	p.ParseMode, p.NoPreview = tgbotapi.ModeHTML, true
	var sent sentMessage
	if err := t.post(ctx, "sendMessage", fw, p, &sent); err != nil {
		return 0, err
	}
	return sent.MessageID, nil
}

// editText replaces a message's text; a nil kb removes its keyboard.
func (t *telegram) editText(ctx context.Context, chatID int64, msgID int, text string, kb keyboard, fw noFloodWait) error {
	p := textParams{ChatID: chatID, MessageID: msgID, Text: text, ParseMode: tgbotapi.ModeHTML, NoPreview: true, ReplyMarkup: kb}
	return t.post(ctx, "editMessageText", fw, p, nil)
}

func (t *telegram) editMarkup(ctx context.Context, chatID int64, msgID int, kb keyboard, fw noFloodWait) error {
	if kb == nil {
		kb = emptyKeyboard()
	}
	p := struct {
		ChatID      int64    `json:"chat_id"`
		MessageID   int      `json:"message_id"`
		ReplyMarkup keyboard `json:"reply_markup"`
	}{chatID, msgID, kb}
	return t.post(ctx, "editMessageReplyMarkup", fw, p, nil)
}

// callbackAnswer is answerCallbackQuery's parameters, also sent as a webhook reply.
type callbackAnswer struct {
	Method  string `json:"method,omitempty"` // only in a webhook reply
	QueryID string `json:"callback_query_id"`
	Text    string `json:"text,omitempty"`
}

func newCallbackAnswer(queryID, text string) callbackAnswer {
	return callbackAnswer{QueryID: queryID, Text: truncateUnits(text, maxCallbackUnits)}
}

func (t *telegram) answerCallback(ctx context.Context, queryID, text string, fw noFloodWait) error {
	return t.post(ctx, "answerCallbackQuery", fw, newCallbackAnswer(queryID, text), nil)
}
