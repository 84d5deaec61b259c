package telegramtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	notBlocked int32 = iota
	blockedByUser
	userDeactivated
)

// chat is one conversation. Each has its own lock so that traffic to
// thousands of users does not serialise on one mutex.
type chat struct {
	id    int64
	kind  string // "private", "group" or "supergroup"
	title string

	registered atomic.Bool // the bot may write here (user started it / group added)
	blocked    atomic.Int32

	mu      sync.Mutex
	user    User
	msgs    []*storedMsg // index i holds message_id i+1: IDs are dense per chat
	docs    []Document
	actions []string
	changed chan struct{} // closed on change; created lazily by waiters

	lastUpdateID int
	lastUpdateAt time.Time
}

// storedMsg is a message plus what the server needs to render it as JSON.
type storedMsg struct {
	Message
	entities []apiEntity     // of Text, or of Caption for files
	markup   json.RawMessage // canonical inline keyboard JSON; nil when none
	apiDoc   *apiDocument
	apiPhoto []apiPhotoSize
	extra    map[string]json.RawMessage // extra fields of injected user messages
}

func (c *chat) msg(id int) *storedMsg {
	if id < 1 || id > len(c.msgs) {
		return nil
	}
	return c.msgs[id-1]
}

// touch wakes waiters of this chat and of the whole server. c.mu must be held.
func (s *Server) touch(c *chat) {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	s.notify()
}

func (s *Server) lookupChat(id int64) *chat {
	s.chatsMu.RLock()
	c := s.chats[id]
	s.chatsMu.RUnlock()
	return c
}

func (s *Server) getOrCreateChat(id int64) *chat {
	if c := s.lookupChat(id); c != nil {
		return c
	}
	s.chatsMu.Lock()
	defer s.chatsMu.Unlock()
	if c := s.chats[id]; c != nil {
		return c
	}
	c := &chat{id: id, kind: "private"}
	switch {
	case id < -1000000000000:
		c.kind = "supergroup"
	case id < 0:
		c.kind = "group"
	}
	s.chats[id] = c
	return c
}

func (s *Server) userChat(u User) *chat {
	if u.ID <= 0 {
		panic(fmt.Sprintf("telegramtest: user ID must be positive, got %d", u.ID))
	}
	c := s.getOrCreateChat(u.ID)
	c.mu.Lock()
	c.user = u
	c.mu.Unlock()
	c.registered.Store(true)
	return c
}

func (c *chat) apiChat() apiChat {
	if c.kind == "private" {
		return apiChat{ID: c.id, Type: "private", FirstName: c.user.FirstName, LastName: c.user.LastName, Username: c.user.Username}
	}
	return apiChat{ID: c.id, Type: c.kind, Title: c.title}
}

// apiMsg renders a stored message. c.mu must be held.
func (s *Server) apiMsg(c *chat, m *storedMsg, withReply bool) apiMessage {
	am := apiMessage{
		MessageID:   m.ID,
		Chat:        c.apiChat(),
		Date:        m.Date.Unix(),
		Text:        m.Text,
		ReplyMarkup: m.markup,
		Document:    m.apiDoc,
		Photo:       m.apiPhoto,
	}
	if m.FromBot {
		bot := s.bot
		am.From = &bot
	} else {
		u := c.user.api()
		am.From = &u
	}
	if !m.EditDate.IsZero() {
		am.EditDate = m.EditDate.Unix()
	}
	if m.Document != nil {
		am.Caption = m.Caption
		am.CaptionEntities = m.entities
	} else {
		am.Entities = m.entities
	}
	if withReply && m.ReplyToMessageID != 0 {
		if r := c.msg(m.ReplyToMessageID); r != nil && !r.Deleted {
			rm := s.apiMsg(c, r, false)
			am.ReplyToMessage = &rm
		}
	}
	return am
}

func (s *Server) marshalMsg(c *chat, m *storedMsg) json.RawMessage {
	b, err := json.Marshal(s.apiMsg(c, m, true))
	if err != nil {
		panic(err) // only plain data; cannot happen
	}
	if len(m.extra) == 0 {
		return b
	}
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(b, &obj)
	for k, v := range m.extra {
		obj[k] = v
	}
	b, _ = json.Marshal(obj)
	return b
}

// AddUser registers a private chat as if the user had started the bot
// earlier, without producing an update. Broadcast tests use it to create
// many recipients cheaply. Sending to a chat nobody registered fails with
// "chat not found", as it would on Telegram.
func (s *Server) AddUser(u User) { s.userChat(u) }

// AddGroup registers a group chat (negative ID; below -10^12 it is a
// supergroup) that the bot is a member of.
func (s *Server) AddGroup(chatID int64, title string) {
	if chatID >= 0 {
		panic(fmt.Sprintf("telegramtest: group chat IDs are negative, got %d", chatID))
	}
	c := s.getOrCreateChat(chatID)
	c.mu.Lock()
	c.title = title
	c.mu.Unlock()
	c.registered.Store(true)
}

// Block makes every call addressed to the user's chat fail with 403
// "Forbidden: bot was blocked by the user" until Unblock. No my_chat_member
// update is produced; use InjectUpdate if the bot should see one.
func (s *Server) Block(userID int64) { s.getOrCreateChat(userID).blocked.Store(blockedByUser) }

// Deactivate makes calls to the user's chat fail with 403 "Forbidden: user
// is deactivated" (a deleted account).
func (s *Server) Deactivate(userID int64) { s.getOrCreateChat(userID).blocked.Store(userDeactivated) }

// Unblock undoes Block and Deactivate.
func (s *Server) Unblock(userID int64) { s.getOrCreateChat(userID).blocked.Store(notBlocked) }

// SendText injects a private text message from the user and returns its
// update ID. Commands ("/start", "/lang@bot de") get bot_command entities
// the way Telegram marks them.
func (s *Server) SendText(u User, text string) (updateID int) {
	return s.SendMessageWith(u, text, nil)
}

// SendMessageWith injects a private message whose JSON gets extra fields
// merged in, for message kinds without a helper, e.g.
// {"contact": {"phone_number": "+49...", "first_name": "A", "user_id": 1}}.
// text may be empty for such messages.
func (s *Server) SendMessageWith(u User, text string, extra map[string]any) (updateID int) {
	c := s.userChat(u)
	now := s.now()
	m := &storedMsg{Message: Message{ChatID: c.id, Text: text, RawText: text, Date: now.Truncate(time.Second), SentAt: now}}
	m.entities = commandEntities(text)
	m.Entities = publicEntities(m.entities)
	for k, v := range extra {
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("telegramtest: extra field %q: %v", k, err))
		}
		if m.extra == nil {
			m.extra = make(map[string]json.RawMessage)
		}
		m.extra[k] = b
	}
	// The chat lock is held across enqueue so that a chat's updates enter
	// the queue in message_id order even when a test injects concurrently.
	c.mu.Lock()
	defer c.mu.Unlock()
	m.ID = len(c.msgs) + 1
	c.msgs = append(c.msgs, m)
	id := s.enqueue(c.id, "message", s.marshalMsg(c, m), now)
	c.lastUpdateID, c.lastUpdateAt = id, now
	s.touch(c)
	return id
}

// PressButton injects a callback_query as if the user pressed the inline
// button carrying data under the given bot message. It fails when the
// message does not exist (any more) or has no such button, because a real
// user could not press it either.
func (s *Server) PressButton(u User, messageID int, data string) (updateID int, queryID string, err error) {
	c := s.lookupChat(u.ID)
	if c == nil {
		return 0, "", fmt.Errorf("telegramtest: no chat with user %d", u.ID)
	}
	s.userChat(u) // refresh the user's profile (language may have changed)
	now := s.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msg(messageID)
	switch {
	case m == nil || m.Deleted:
		return 0, "", fmt.Errorf("telegramtest: message %d not found in chat %d", messageID, c.id)
	case !m.FromBot:
		return 0, "", fmt.Errorf("telegramtest: message %d in chat %d is not from the bot", messageID, c.id)
	}
	found := false
	for _, b := range m.Buttons() {
		if b.CallbackData == data && b.URL == "" {
			found = true
			break
		}
	}
	if !found {
		return 0, "", fmt.Errorf("telegramtest: message %d in chat %d has no button with callback_data %q (keyboard %v)", messageID, c.id, data, m.Keyboard)
	}
	s.cbMu.Lock()
	qid := strconv.FormatUint(uint64(s.bot.ID)<<24+s.nextQuery, 10)
	s.nextQuery++
	s.callbacks[qid] = &CallbackAnswer{QueryID: qid, ChatID: c.id, MessageID: messageID, Data: data}
	s.unanswered[qid] = struct{}{}
	s.cbMu.Unlock()
	body, _ := json.Marshal(apiCallbackQuery{
		ID:           qid,
		From:         u.api(),
		Message:      s.marshalMsg(c, m),
		ChatInstance: strconv.FormatInt(c.id*7919+s.bot.ID, 10),
		Data:         data,
	})
	id := s.enqueue(c.id, "callback_query", body, now)
	c.lastUpdateID, c.lastUpdateAt = id, now
	s.touch(c)
	return id, qid, nil
}

// PressButtonText is PressButton by the button's label.
func (s *Server) PressButtonText(u User, messageID int, label string) (updateID int, queryID string, err error) {
	c := s.lookupChat(u.ID)
	if c == nil {
		return 0, "", fmt.Errorf("telegramtest: no chat with user %d", u.ID)
	}
	c.mu.Lock()
	var data string
	var found bool
	if m := c.msg(messageID); m != nil && !m.Deleted {
		var b Button
		b, found = m.FindButton(label)
		data = b.CallbackData
		found = found && b.URL == ""
	}
	c.mu.Unlock()
	if !found {
		return 0, "", fmt.Errorf("telegramtest: message %d in chat %d has no callback button labelled %q", messageID, u.ID, label)
	}
	return s.PressButton(u, messageID, data)
}

// Messages returns the bot's messages in the chat as they stand now
// (edited in place, deleted ones left out), oldest first. The result is a
// deep copy.
func (s *Server) Messages(chatID int64) []Message {
	c := s.lookupChat(chatID)
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.botMessages()
}

func (c *chat) botMessages() []Message {
	var out []Message
	for _, m := range c.msgs {
		if m.FromBot && !m.Deleted {
			out = append(out, m.clone())
		}
	}
	return out
}

// LastMessage returns the newest visible bot message in the chat.
func (s *Server) LastMessage(chatID int64) (Message, bool) {
	c := s.lookupChat(chatID)
	if c == nil {
		return Message{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.msgs) - 1; i >= 0; i-- {
		if m := c.msgs[i]; m.FromBot && !m.Deleted {
			return m.clone(), true
		}
	}
	return Message{}, false
}

// History returns every message of the chat, the user's and deleted ones
// included, in message_id order: the full transcript.
func (s *Server) History(chatID int64) []Message {
	c := s.lookupChat(chatID)
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Message, len(c.msgs))
	for i, m := range c.msgs {
		out[i] = m.clone()
	}
	return out
}

// errClosed is returned by waits when the server shuts down.
var errClosed = errors.New("telegramtest: server closed")

// WaitMessages blocks until pred accepts the chat's current bot messages
// (as Messages returns them) or ctx is done, and returns the messages pred
// accepted. It is woken by changes to that chat only, so thousands of
// concurrent waiters stay cheap.
func (s *Server) WaitMessages(ctx context.Context, chatID int64, pred func([]Message) bool) ([]Message, error) {
	c := s.getOrCreateChat(chatID)
	for {
		c.mu.Lock()
		snap := c.botMessages()
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		if pred(snap) {
			return snap, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return snap, fmt.Errorf("telegramtest: waiting for messages in chat %d: %w (have %d: %s)", chatID, ctx.Err(), len(snap), summary(snap))
		case <-s.closed:
			return snap, errClosed
		}
	}
}

// WaitMessage waits until some bot message in the chat satisfies pred and
// returns the newest such message.
func (s *Server) WaitMessage(ctx context.Context, chatID int64, pred func(Message) bool) (Message, error) {
	var found Message
	_, err := s.WaitMessages(ctx, chatID, func(ms []Message) bool {
		for i := len(ms) - 1; i >= 0; i-- {
			if pred(ms[i]) {
				found = ms[i]
				return true
			}
		}
		return false
	})
	return found, err
}

// HasMessages is a WaitMessages predicate: at least n bot messages.
func HasMessages(n int) func([]Message) bool {
	return func(ms []Message) bool { return len(ms) >= n }
}

// LastContains is a WaitMessages predicate: the newest bot message's text
// or caption contains substr.
func LastContains(substr string) func([]Message) bool {
	return func(ms []Message) bool {
		if len(ms) == 0 {
			return false
		}
		last := ms[len(ms)-1]
		return strings.Contains(last.Text, substr) || strings.Contains(last.Caption, substr)
	}
}

func summary(ms []Message) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString(" | ")
		}
		t := m.Text
		if m.Document != nil {
			t = "[" + m.Document.Kind + " " + m.Document.FileName + "] " + m.Caption
		}
		if len(t) > 60 {
			t = t[:60] + "…"
		}
		fmt.Fprintf(&b, "#%d %q", m.ID, t)
	}
	return b.String()
}

// Documents returns the files the bot sent to the chat, oldest first,
// including ones whose message was later deleted.
func (s *Server) Documents(chatID int64) []Document {
	c := s.lookupChat(chatID)
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Document, len(c.docs))
	for i, d := range c.docs {
		out[i] = d.clone()
	}
	return out
}

// ChatActions returns the actions (e.g. "typing") sent to the chat.
func (s *Server) ChatActions(chatID int64) []string {
	c := s.lookupChat(chatID)
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.actions...)
}

// CallbackAnswer returns what the bot answered to a callback query.
func (s *Server) CallbackAnswer(queryID string) (CallbackAnswer, bool) {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	a, ok := s.callbacks[queryID]
	if !ok {
		return CallbackAnswer{}, false
	}
	return *a, true
}

// UnansweredCallbacks lists callback queries the bot has not answered yet;
// Telegram clients show a spinner until it does, so a finished test should
// normally find none.
func (s *Server) UnansweredCallbacks() []string {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	out := make([]string, 0, len(s.unanswered))
	for id := range s.unanswered {
		out = append(out, id)
	}
	return out
}

// commandEntities marks "/command" and "/command@bot" tokens that start the
// text or follow whitespace, like Telegram's clients do.
func commandEntities(text string) []apiEntity {
	var out []apiEntity
	off16 := 0
	prevSpace := true
	for i := 0; i < len(text); {
		r, size := decodeRune(text[i:])
		if r == '/' && prevSpace {
			j := i + 1
			for j < len(text) && isCmdChar(text[j]) {
				j++
			}
			if j > i+1 {
				if j < len(text) && text[j] == '@' {
					k := j + 1
					for k < len(text) && isCmdChar(text[k]) {
						k++
					}
					if k > j+1 {
						j = k
					}
				}
				if j == len(text) || !isWordByte(text[j]) {
					out = append(out, apiEntity{Type: "bot_command", Offset: off16, Length: j - i})
				}
				off16 += j - i // command characters are ASCII
				i = j
				prevSpace = false
				continue
			}
		}
		prevSpace = r == ' ' || r == '\n' || r == '\t' || r == '\r'
		off16 += utf16Len(r)
		i += size
	}
	return out
}

func isCmdChar(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func isWordByte(b byte) bool { return isCmdChar(b) || b == '/' }

func publicEntities(es []apiEntity) []Entity {
	if len(es) == 0 {
		return nil
	}
	out := make([]Entity, len(es))
	for i, e := range es {
		out[i] = Entity{Type: e.Type, Offset: e.Offset, Length: e.Length, URL: e.URL, Language: e.Language, CustomEmojiID: e.CustomEmojiID}
	}
	return out
}
