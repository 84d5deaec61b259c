package bot

import (
	"strings"

	"github.com/dialoq/dialoq/storage/redisstate"
)

// Update is the part of a Telegram update the bot reads. Decoding skips the rest,
// which matters: a pressed button's update carries the whole message, keyboard and
// all, and decoding it into a full Bot API type cost more than the dialogue step.
type Update struct {
	UpdateID      int                `json:"update_id"`
	Message       *Message           `json:"message,omitempty"`
	CallbackQuery *CallbackQuery     `json:"callback_query,omitempty"`
	MyChatMember  *ChatMemberUpdated `json:"my_chat_member,omitempty"`
}

// Message is the part of a Bot API Message the bot reads.
type Message struct {
	MessageID int    `json:"message_id"`
	From      *User  `json:"from,omitempty"`
	Chat      *Chat  `json:"chat,omitempty"`
	Text      string `json:"text,omitempty"`
}

// User is the part of a Bot API User the bot reads: no names.
type User struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

// Chat is the part of a Bot API Chat the bot reads.
type Chat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// CallbackQuery is the part of a Bot API CallbackQuery the bot reads.
type CallbackQuery struct {
	ID      string   `json:"id"`
	From    *User    `json:"from,omitempty"`
	Message *Message `json:"message,omitempty"`
	Data    string   `json:"data,omitempty"`
}

// ChatMemberUpdated is the part of a Bot API ChatMemberUpdated the bot reads.
type ChatMemberUpdated struct {
	Chat          Chat `json:"chat"`
	From          User `json:"from"`
	NewChatMember struct {
		Status string `json:"status"`
	} `json:"new_chat_member"`
}

type eventKind uint8

const (
	evText     eventKind = iota + 1
	evCommand            // "/name args"
	evOther              // a message without text: photo, sticker, voice…
	evCallback           // an inline button was pressed
	evMember             // the user blocked or unblocked the bot
)

func (k eventKind) String() string {
	switch k {
	case evText:
		return "text"
	case evCommand:
		return "command"
	case evOther:
		return "other_message"
	case evCallback:
		return "callback"
	case evMember:
		return "member"
	}
	return "unknown"
}

// event is the part of an update the bot acts on, with nothing personal kept beyond
// what the reply needs (no names, no usernames).
type event struct {
	kind       eventKind
	key        redisstate.Key
	updateID   int64
	private    bool
	clientLang string // Telegram's language_code of the sender

	text     string // evText
	cmd, arg string // evCommand; cmd lower case without "/" and "@bot"

	data    string // evCallback: raw callback data
	cb      callback
	cbOK    bool
	queryID string
	msgID   int // the message carrying the pressed button

	blocked bool // evMember

	reply *webhookReply // nil unless the update came by webhook
}

// parseUpdate extracts the event; false for updates the bot ignores (edits, channel
// posts, inline queries, messages from other bots).
func (b *Bot) parseUpdate(u Update) (event, bool) {
	ev := event{updateID: int64(u.UpdateID)}
	switch {
	case u.Message != nil && u.Message.From != nil && u.Message.Chat != nil:
		m := u.Message
		if m.From.IsBot {
			return ev, false
		}
		ev.key = redisstate.Key{ChatID: m.Chat.ID, UserID: m.From.ID}
		ev.private = m.Chat.Type == "private"
		ev.clientLang = m.From.LanguageCode
		switch cmd, arg, ok := b.parseCommand(m.Text); {
		case ok:
			ev.kind, ev.cmd, ev.arg = evCommand, cmd, arg
		case strings.TrimSpace(m.Text) != "":
			ev.kind, ev.text = evText, m.Text
		default:
			ev.kind = evOther
		}
		return ev, true
	case u.CallbackQuery != nil && u.CallbackQuery.From != nil:
		q := u.CallbackQuery
		ev.kind = evCallback
		ev.queryID = q.ID
		ev.data = q.Data
		ev.clientLang = q.From.LanguageCode
		ev.key = redisstate.Key{ChatID: q.From.ID, UserID: q.From.ID}
		ev.private = true
		if q.Message != nil && q.Message.Chat != nil {
			ev.key.ChatID = q.Message.Chat.ID
			ev.private = q.Message.Chat.Type == "private"
			ev.msgID = q.Message.MessageID
		}
		ev.cb, ev.cbOK = parseCallback(q.Data)
		return ev, true
	case u.MyChatMember != nil:
		mc := u.MyChatMember
		if mc.Chat.Type != "private" {
			return ev, false
		}
		ev.kind = evMember
		ev.key = redisstate.Key{ChatID: mc.Chat.ID, UserID: mc.From.ID}
		ev.private = true
		switch mc.NewChatMember.Status {
		case "kicked":
			ev.blocked = true
		case "member":
		default:
			return ev, false
		}
		return ev, true
	}
	return ev, false
}

// parseCommand splits "/name@bot args". A command addressed to another bot, or text
// that merely starts with a slash ("/ 5", "1/2"), is not a command.
func (b *Bot) parseCommand(text string) (cmd, arg string, ok bool) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "/") {
		return "", "", false
	}
	first, rest, _ := strings.Cut(text, " ")
	if i := strings.IndexAny(first, "\n\t"); i >= 0 {
		first, rest = first[:i], first[i+1:]+" "+rest
	}
	name := first[1:]
	if at := strings.IndexByte(name, '@'); at >= 0 {
		if target := name[at+1:]; target != "" && b.username != "" && !strings.EqualFold(target, b.username) {
			return "", "", false
		}
		name = name[:at]
	}
	if name == "" || len(name) > 32 {
		return "", "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", "", false
		}
	}
	return strings.ToLower(name), strings.TrimSpace(rest), true
}
