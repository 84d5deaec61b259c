package telegramtest

import (
	"encoding/json"
	"slices"
	"time"
)

// The api* types mirror the Bot API's JSON objects. They are the server's
// own so that it does not depend on any client library's idea of the
// protocol; the tests check compatibility with tgbotapi separately.

type apiResponse struct {
	OK          bool           `json:"ok"`
	Result      any            `json:"result,omitempty"`
	ErrorCode   int            `json:"error_code,omitempty"`
	Description string         `json:"description,omitempty"`
	Parameters  *apiRespParams `json:"parameters,omitempty"`
}

type apiRespParams struct {
	RetryAfter      int   `json:"retry_after,omitempty"`
	MigrateToChatID int64 `json:"migrate_to_chat_id,omitempty"`
}

type apiUser struct {
	ID                      int64  `json:"id"`
	IsBot                   bool   `json:"is_bot"`
	FirstName               string `json:"first_name"`
	LastName                string `json:"last_name,omitempty"`
	Username                string `json:"username,omitempty"`
	LanguageCode            string `json:"language_code,omitempty"`
	CanJoinGroups           bool   `json:"can_join_groups,omitempty"`
	CanReadAllGroupMessages bool   `json:"can_read_all_group_messages,omitempty"`
	SupportsInlineQueries   bool   `json:"supports_inline_queries,omitempty"`
}

type apiChat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
}

type apiEntity struct {
	Type          string   `json:"type"`
	Offset        int      `json:"offset"`
	Length        int      `json:"length"`
	URL           string   `json:"url,omitempty"`
	User          *apiUser `json:"user,omitempty"`
	Language      string   `json:"language,omitempty"`
	CustomEmojiID string   `json:"custom_emoji_id,omitempty"`
}

type apiMessage struct {
	MessageID       int             `json:"message_id"`
	From            *apiUser        `json:"from,omitempty"`
	Chat            apiChat         `json:"chat"`
	Date            int64           `json:"date"`
	EditDate        int64           `json:"edit_date,omitempty"`
	ReplyToMessage  *apiMessage     `json:"reply_to_message,omitempty"`
	Text            string          `json:"text,omitempty"`
	Entities        []apiEntity     `json:"entities,omitempty"`
	Caption         string          `json:"caption,omitempty"`
	CaptionEntities []apiEntity     `json:"caption_entities,omitempty"`
	Document        *apiDocument    `json:"document,omitempty"`
	Photo           []apiPhotoSize  `json:"photo,omitempty"`
	ReplyMarkup     json.RawMessage `json:"reply_markup,omitempty"`
}

type apiDocument struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int    `json:"file_size,omitempty"`
}

type apiPhotoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int    `json:"file_size,omitempty"`
}

type apiCallbackQuery struct {
	ID           string          `json:"id"`
	From         apiUser         `json:"from"`
	Message      json.RawMessage `json:"message,omitempty"`
	ChatInstance string          `json:"chat_instance"`
	Data         string          `json:"data,omitempty"`
}

// apiInlineButton keeps the action fields as pointers/raw JSON so that the
// server can tell "absent" from "empty", as Telegram's validation does.
type apiInlineButton struct {
	Text                         *string         `json:"text"`
	URL                          *string         `json:"url,omitempty"`
	CallbackData                 *string         `json:"callback_data,omitempty"`
	SwitchInlineQuery            *string         `json:"switch_inline_query,omitempty"`
	SwitchInlineQueryCurrentChat *string         `json:"switch_inline_query_current_chat,omitempty"`
	LoginURL                     json.RawMessage `json:"login_url,omitempty"`
	WebApp                       json.RawMessage `json:"web_app,omitempty"`
	CallbackGame                 json.RawMessage `json:"callback_game,omitempty"`
	CopyText                     json.RawMessage `json:"copy_text,omitempty"`
	Pay                          bool            `json:"pay,omitempty"`
}

type apiInlineMarkup struct {
	InlineKeyboard [][]apiInlineButton `json:"inline_keyboard"`
}

type apiWebhookInfo struct {
	URL                  string   `json:"url"`
	HasCustomCertificate bool     `json:"has_custom_certificate"`
	PendingUpdateCount   int      `json:"pending_update_count"`
	LastErrorDate        int64    `json:"last_error_date,omitempty"`
	LastErrorMessage     string   `json:"last_error_message,omitempty"`
	MaxConnections       int      `json:"max_connections,omitempty"`
	AllowedUpdates       []string `json:"allowed_updates,omitempty"`
}

// User is a simulated Telegram user. For private chats the chat ID equals
// the user ID, as on Telegram.
type User struct {
	ID           int64
	FirstName    string
	LastName     string
	Username     string
	LanguageCode string
}

func (u User) api() apiUser {
	return apiUser{ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, Username: u.Username, LanguageCode: u.LanguageCode}
}

// Button is one inline keyboard button as the user sees it.
type Button struct {
	Text         string
	CallbackData string // empty for non-callback buttons
	URL          string
}

// Entity is a formatting entity of a message, offsets in UTF-16 code units.
type Entity struct {
	Type          string
	Offset        int
	Length        int
	URL           string
	Language      string
	CustomEmojiID string
}

// Document is a file the bot sent (sendDocument or sendPhoto).
type Document struct {
	ChatID    int64
	MessageID int
	Kind      string // "document" or "photo"
	FileID    string
	FileName  string
	MimeType  string
	Size      int
	Data      []byte // uploaded bytes; nil when the bot sent a URL or file_id of a URL
	URL       string // set when the bot sent the file by URL
	Width     int    // photos only
	Height    int    // photos only
	Caption   string
}

func (d Document) clone() Document {
	d.Data = slices.Clone(d.Data)
	return d
}

// Message is a message in a chat as it stands now, after edits.
type Message struct {
	ID        int
	ChatID    int64
	FromBot   bool
	Text      string // what the user sees: markup removed, HTML entities decoded
	RawText   string // exactly what the bot sent, before parse_mode processing
	ParseMode string
	Entities  []Entity

	Keyboard       [][]Button // inline keyboard; nil when there is none
	ReplyKeyboard  [][]string // custom reply keyboard, if the message set one
	RemoveKeyboard bool       // the message carried reply_markup remove_keyboard
	ForceReply     bool       // the message carried reply_markup force_reply

	ReplyToMessageID    int
	Document            *Document // sendDocument/sendPhoto messages
	Caption             string
	NoLinkPreview       bool
	DisableNotification bool

	Date     time.Time // second precision, as in the API
	EditDate time.Time // zero when never edited
	Edits    int
	Deleted  bool // only visible through History

	// SentAt is the server-clock time the message was accepted (or last
	// edited). AfterUpdateID is the newest update injected into this chat
	// before that moment and Latency the time since its injection; a load
	// test uses them to measure reaction time without its own bookkeeping.
	SentAt        time.Time
	AfterUpdateID int
	Latency       time.Duration
}

// Buttons returns the inline keyboard flattened row by row.
func (m Message) Buttons() []Button {
	var out []Button
	for _, row := range m.Keyboard {
		out = append(out, row...)
	}
	return out
}

// FindButton returns the inline button with the given label.
func (m Message) FindButton(text string) (Button, bool) {
	for _, row := range m.Keyboard {
		for _, b := range row {
			if b.Text == text {
				return b, true
			}
		}
	}
	return Button{}, false
}

func (m Message) clone() Message {
	m.Entities = slices.Clone(m.Entities)
	if m.Keyboard != nil {
		kb := make([][]Button, len(m.Keyboard))
		for i, row := range m.Keyboard {
			kb[i] = slices.Clone(row)
		}
		m.Keyboard = kb
	}
	if m.ReplyKeyboard != nil {
		kb := make([][]string, len(m.ReplyKeyboard))
		for i, row := range m.ReplyKeyboard {
			kb[i] = slices.Clone(row)
		}
		m.ReplyKeyboard = kb
	}
	if m.Document != nil {
		d := m.Document.clone()
		m.Document = &d
	}
	return m
}

// BotCommand is one entry of the bot's command menu.
type BotCommand struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}

// CommandScope is a BotCommandScope; the zero value is the default scope.
type CommandScope struct {
	Type   string `json:"type"`
	ChatID int64  `json:"chat_id,omitempty"`
	UserID int64  `json:"user_id,omitempty"`
}

// CallbackAnswer is what the bot answered to a callback query.
type CallbackAnswer struct {
	QueryID   string
	ChatID    int64
	MessageID int
	Data      string
	Answered  bool
	Text      string
	ShowAlert bool
	URL       string
	CacheTime int
	At        time.Time
}

// Call is one API request as the server saw it.
type Call struct {
	Method      string            // canonical name, e.g. "sendMessage"
	Params      map[string]string // uploaded files appear as "<file name>"
	Status      int               // HTTP status answered
	Description string            // error description; empty on success
	At          time.Time         // server clock
	// WebhookReply marks a call the bot made in its answer to a webhook
	// delivery rather than by a request of its own.
	WebhookReply bool
}

// Delivery is one attempt to POST an update to the webhook.
type Delivery struct {
	UpdateID int
	Attempt  int // 1-based, per update; DeliverTwice's second copy counts too
	Status   int // HTTP status, 0 when the request itself failed
	Err      string
	At       time.Time
}

// Stats are aggregate counters, mainly for load tests.
type Stats struct {
	Calls       map[string]int // per canonical method name
	Statuses    map[int]int    // HTTP status → count
	RateLimited int            // 429s produced by Options.Limits
	Faults      int            // answers replaced by injected faults or chaos
	Updates     int            // updates injected
	Delivered   int            // updates delivered to the webhook (DeliverTwice counts once)
	Pending     int            // updates not yet confirmed/delivered
}
