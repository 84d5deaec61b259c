package bot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// maxUpdateBytes bounds a webhook body. Telegram's updates are a few KB; a text
// message is at most 4096 characters, so 1 MiB leaves room for anything legitimate.
const maxUpdateBytes = 1 << 20

const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

// WebhookHandler receives updates POSTed by Telegram. A request without the secret
// gets 401 and is not read. The answer is 200 only once the update is committed (and
// its messages sent); while the store is down it is 503, so Telegram delivers the
// update again later.
func (b *Bot) WebhookHandler() http.Handler {
	secret := []byte(b.cfg.WebhookSecret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		got := []byte(r.Header.Get(secretHeader))
		if len(secret) == 0 || subtle.ConstantTimeCompare(got, secret) != 1 {
			b.m.webhook.WithLabelValues("secret").Inc()
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var u Update
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUpdateBytes))
		if err := dec.Decode(&u); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				b.m.webhook.WithLabelValues("too_large").Inc()
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			b.m.webhook.WithLabelValues("malformed").Inc()
			http.Error(w, "malformed update", http.StatusBadRequest)
			return
		}
		// Telegram may give up on the request; the update is finished anyway, so
		// that what was committed is also said.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), b.cfg.HandleTimeout)
		defer cancel()
		var reply webhookReply
		if err := b.handle(ctx, u, &reply); err != nil {
			if errors.Is(err, ErrStorage) {
				b.TellTryAgain(ctx, u)
				b.log.Warn("bot: store unavailable; Telegram will redeliver", "update_id", u.UpdateID, "err", err)
			}
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(b.cfg.RetryMin.Seconds()))))
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		reply.write(w)
	})
}

// webhookReply is the one Bot API call a webhook response may carry. The bot uses
// it for answerCallbackQuery: one request less per button press, and its outcome is
// of no interest (Telegram does not report it).
type webhookReply struct {
	answer *callbackAnswer
}

// take puts the answer to a callback query into the reply, if there is a reply
// and it is still free.
func (r *webhookReply) take(queryID, text string) bool {
	if r == nil || r.answer != nil {
		return false
	}
	a := newCallbackAnswer(queryID, text)
	a.Method = "answerCallbackQuery"
	r.answer = &a
	return true
}

// write answers the webhook request: 200, with the call if there is one.
func (r *webhookReply) write(w http.ResponseWriter) {
	if r.answer == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	body, err := json.Marshal(r.answer)
	if err != nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// SetWebhook registers url with Telegram, with the secret every delivery must carry.
// tgbotapi v5.5.1 has no secret_token field, hence the raw request.
func (b *Bot) SetWebhook(ctx context.Context, url string) error {
	p := tgbotapi.Params{}
	p["url"] = url
	p["secret_token"] = b.cfg.WebhookSecret
	if err := p.AddInterface("allowed_updates", allowedUpdates); err != nil {
		return fmt.Errorf("bot: setWebhook: %w", err)
	}
	if _, err := b.tg.raw(ctx, "setWebhook", p); err != nil {
		return fmt.Errorf("bot: setWebhook: %w", err)
	}
	return nil
}

// validSecret follows Telegram's rule for secret_token.
func validSecret(s string) bool {
	if len(s) < 1 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// DeriveWebhookSecret makes a webhook secret from the bot token, for deployments
// that set none: every replica derives the same one, and it reveals nothing about
// the token.
func DeriveWebhookSecret(token string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("dialoq webhook secret v1"))
	return hex.EncodeToString(mac.Sum(nil))
}
