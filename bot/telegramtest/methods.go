package telegramtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // sendPhoto decodes uploads like Telegram does
	_ "image/jpeg"
	_ "image/png"
	"mime"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

func (s *Server) methodTable() map[string]methodDef {
	defs := []methodDef{
		{"getMe", s.getMe},
		{"getUpdates", s.getUpdates},
		{"setWebhook", s.setWebhook},
		{"deleteWebhook", s.deleteWebhook},
		{"getWebhookInfo", s.getWebhookInfo},
		{"sendMessage", s.sendMessage},
		{"editMessageText", s.editMessageText},
		{"editMessageReplyMarkup", s.editMessageReplyMarkup},
		{"editMessageCaption", s.editMessageCaption},
		{"deleteMessage", s.deleteMessage},
		{"answerCallbackQuery", s.answerCallbackQuery},
		{"setMyCommands", s.setMyCommands},
		{"getMyCommands", s.getMyCommands},
		{"deleteMyCommands", s.deleteMyCommands},
		{"sendDocument", func(c *callCtx) (any, *apiError) { return s.sendFile(c, "document") }},
		{"sendPhoto", func(c *callCtx) (any, *apiError) { return s.sendFile(c, "photo") }},
		{"sendChatAction", s.sendChatAction},
		{"getChat", s.getChat},
	}
	m := make(map[string]methodDef, len(defs))
	for _, d := range defs {
		m[strings.ToLower(d.name)] = d
	}
	return m
}

func (s *Server) getMe(*callCtx) (any, *apiError) { return s.bot, nil }

// targetChat resolves chat_id for a method that acts on a chat.
func (s *Server) targetChat(p params) (*chat, *apiError) {
	v := strings.TrimSpace(p["chat_id"])
	if v == "" {
		return nil, badRequest("chat_id is empty")
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, badRequest("chat not found")
	}
	c := s.lookupChat(id)
	if c == nil || !c.registered.Load() {
		return nil, badRequest("chat not found")
	}
	switch c.blocked.Load() {
	case blockedByUser:
		return nil, forbidden("bot was blocked by the user")
	case userDeactivated:
		return nil, forbidden("user is deactivated")
	}
	return c, nil
}

func (s *Server) getChat(c *callCtx) (any, *apiError) {
	ch, aerr := s.targetChat(c.p)
	if aerr != nil {
		return nil, aerr
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.apiChat(), nil
}

// replyTarget reads reply_to_message_id or the newer reply_parameters.
func replyTarget(p params) (id int, allowWithout bool) {
	id, _ = p.int("reply_to_message_id")
	allowWithout = p.bool("allow_sending_without_reply")
	if rp := p["reply_parameters"]; rp != "" {
		var v struct {
			MessageID                int  `json:"message_id"`
			AllowSendingWithoutReply bool `json:"allow_sending_without_reply"`
		}
		if json.Unmarshal([]byte(rp), &v) == nil {
			id, allowWithout = v.MessageID, v.AllowSendingWithoutReply
		}
	}
	return id, allowWithout
}

func noLinkPreview(p params) bool {
	if p.bool("disable_web_page_preview") {
		return true
	}
	if lp := p["link_preview_options"]; lp != "" {
		var v struct {
			IsDisabled bool `json:"is_disabled"`
		}
		if json.Unmarshal([]byte(lp), &v) == nil {
			return v.IsDisabled
		}
	}
	return false
}

func (s *Server) sendMessage(c *callCtx) (any, *apiError) {
	ch, aerr := s.targetChat(c.p)
	if aerr != nil {
		return nil, aerr
	}
	raw := c.p["text"]
	if raw == "" {
		return nil, badRequest("message text is empty")
	}
	f, mk, aerr := messageContent(c, raw, false)
	if aerr != nil {
		return nil, aerr
	}
	m := &storedMsg{Message: Message{
		Text: f.text, RawText: raw, ParseMode: c.p["parse_mode"], Entities: publicEntities(f.entities),
		NoLinkPreview: noLinkPreview(c.p), DisableNotification: c.p.bool("disable_notification"),
	}, entities: f.entities}
	applyMarkup(m, mk)
	replyTo, allowWithout := replyTarget(c.p)
	return s.storeBotMessage(ch, m, replyTo, allowWithout)
}

func applyMarkup(m *storedMsg, mk markup) {
	m.markup = mk.inline
	m.Keyboard = mk.keyboard
	m.ReplyKeyboard = mk.reply
	m.RemoveKeyboard = mk.remove
	m.ForceReply = mk.forceReply
}

// storeBotMessage assigns the message its ID and stores it, subject to the
// reply target existing and the rate limits.
func (s *Server) storeBotMessage(ch *chat, m *storedMsg, replyTo int, allowWithout bool) (any, *apiError) {
	ch.mu.Lock()
	if replyTo != 0 {
		if t := ch.msg(replyTo); t == nil || t.Deleted {
			if !allowWithout {
				ch.mu.Unlock()
				return nil, badRequest("message to be replied not found")
			}
			replyTo = 0
		}
	}
	if aerr := s.checkLimits(ch.id); aerr != nil {
		ch.mu.Unlock()
		return nil, aerr
	}
	now := s.now()
	m.ID = len(ch.msgs) + 1
	m.ChatID = ch.id
	m.FromBot = true
	m.ReplyToMessageID = replyTo
	m.Date = now.Truncate(time.Second)
	s.stamp(ch, m, now)
	ch.msgs = append(ch.msgs, m)
	if m.Document != nil {
		m.Document.MessageID = m.ID
		m.Document.ChatID = ch.id
		ch.docs = append(ch.docs, *m.Document)
	}
	return s.publish(ch, m), nil
}

// stamp records when the bot produced or changed m, relative to the last
// update the chat's user caused. ch.mu must be held.
func (s *Server) stamp(ch *chat, m *storedMsg, now time.Time) {
	m.SentAt = now
	m.AfterUpdateID = ch.lastUpdateID
	m.Latency = 0
	if ch.lastUpdateID != 0 {
		m.Latency = now.Sub(ch.lastUpdateAt)
	}
}

// editTarget finds the bot message an edit method addresses. On success
// ch.mu is held and the caller must unlock it.
func (s *Server) editTarget(p params) (*chat, *storedMsg, *apiError) {
	if p["inline_message_id"] != "" && p["chat_id"] == "" {
		return nil, nil, badRequest("message to edit not found")
	}
	ch, aerr := s.targetChat(p)
	if aerr != nil {
		return nil, nil, aerr
	}
	id, ok := p.int("message_id")
	if !ok {
		return nil, nil, badRequest("message identifier is not specified")
	}
	ch.mu.Lock()
	m := ch.msg(id)
	switch {
	case m == nil || m.Deleted:
		ch.mu.Unlock()
		return nil, nil, badRequest("message to edit not found")
	case !m.FromBot:
		ch.mu.Unlock()
		return nil, nil, badRequest("message can't be edited")
	}
	return ch, m, nil
}

const notModified = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"

// publish answers a stored or edited message and tells OnSend, which runs after
// ch.mu (held on entry) is released so that it may call back into the server.
func (s *Server) publish(ch *chat, m *storedMsg) any {
	res := s.apiMsg(ch, m, true)
	var pub Message
	if s.opts.OnSend != nil {
		pub = m.clone()
	}
	s.touch(ch)
	ch.mu.Unlock()
	if s.opts.OnSend != nil {
		s.opts.OnSend(pub)
	}
	return res
}

// finishEdit stamps and publishes an edit. ch.mu is held and released here.
func (s *Server) finishEdit(ch *chat, m *storedMsg) (any, *apiError) {
	now := s.now()
	m.Edits++
	m.EditDate = now.Truncate(time.Second)
	if m.EditDate.Equal(m.Date) {
		m.EditDate = m.Date.Add(time.Second) // edit_date is never equal to date on Telegram
	}
	s.stamp(ch, m, now)
	return s.publish(ch, m), nil
}

func (s *Server) editMessageText(c *callCtx) (any, *apiError) {
	raw := c.p["text"]
	if raw == "" {
		if _, aerr := s.targetChat(c.p); aerr != nil {
			return nil, aerr
		}
		return nil, badRequest("message text is empty")
	}
	f, mk, aerr := messageContent(c, raw, true)
	if aerr != nil {
		return nil, aerr
	}
	ch, m, aerr := s.editTarget(c.p)
	if aerr != nil {
		return nil, aerr
	}
	if m.Document != nil {
		ch.mu.Unlock()
		return nil, badRequest("there is no text in the message to edit")
	}
	// Without reply_markup Telegram removes the inline keyboard, so the
	// comparison is against "no keyboard" then.
	if m.Text == f.text && slices.Equal(m.entities, f.entities) && sameMarkup(m.markup, mk.inline) {
		ch.mu.Unlock()
		return nil, badRequest(notModified)
	}
	m.Text, m.RawText, m.ParseMode = f.text, raw, c.p["parse_mode"]
	m.entities, m.Entities = f.entities, publicEntities(f.entities)
	m.markup, m.Keyboard = mk.inline, mk.keyboard
	m.NoLinkPreview = noLinkPreview(c.p)
	return s.finishEdit(ch, m)
}

func (s *Server) editMessageReplyMarkup(c *callCtx) (any, *apiError) {
	mk, aerr := parseReplyMarkup(c.p["reply_markup"], true)
	if aerr != nil {
		return nil, aerr
	}
	ch, m, aerr := s.editTarget(c.p)
	if aerr != nil {
		return nil, aerr
	}
	if sameMarkup(m.markup, mk.inline) {
		ch.mu.Unlock()
		return nil, badRequest(notModified)
	}
	m.markup, m.Keyboard = mk.inline, mk.keyboard
	return s.finishEdit(ch, m)
}

func (s *Server) editMessageCaption(c *callCtx) (any, *apiError) {
	f, aerr := formatText(c.p["caption"], c.p["parse_mode"], c.p["caption_entities"], 1024, "message caption is too long")
	if aerr != nil {
		return nil, aerr
	}
	mk, aerr := parseReplyMarkup(c.p["reply_markup"], true)
	if aerr != nil {
		return nil, aerr
	}
	ch, m, aerr := s.editTarget(c.p)
	if aerr != nil {
		return nil, aerr
	}
	if m.Document == nil {
		ch.mu.Unlock()
		return nil, badRequest("there is no caption in the message to edit")
	}
	if m.Caption == f.text && slices.Equal(m.entities, f.entities) && sameMarkup(m.markup, mk.inline) {
		ch.mu.Unlock()
		return nil, badRequest(notModified)
	}
	m.Caption, m.entities, m.Entities = f.text, f.entities, publicEntities(f.entities)
	d := *m.Document
	d.Caption = f.text
	m.Document = &d
	m.markup, m.Keyboard = mk.inline, mk.keyboard
	return s.finishEdit(ch, m)
}

func (s *Server) deleteMessage(c *callCtx) (any, *apiError) {
	ch, aerr := s.targetChat(c.p)
	if aerr != nil {
		return nil, aerr
	}
	id, ok := c.p.int("message_id")
	if !ok {
		return nil, badRequest("message identifier is not specified")
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	m := ch.msg(id)
	if m == nil || m.Deleted {
		return nil, badRequest("message to delete not found")
	}
	m.Deleted = true
	s.touch(ch)
	return true, nil
}

func (s *Server) answerCallbackQuery(c *callCtx) (any, *apiError) {
	id := c.p["callback_query_id"]
	text := c.p["text"]
	if UTF16Len(text) > 200 {
		return nil, badRequest("MESSAGE_TOO_LONG")
	}
	cache, _ := c.p.int("cache_time")
	s.cbMu.Lock()
	a := s.callbacks[id]
	if a == nil || a.Answered {
		s.cbMu.Unlock()
		return nil, badRequest("query is too old and response timeout expired or query ID is invalid")
	}
	a.Answered = true
	a.Text, a.ShowAlert, a.URL, a.CacheTime, a.At = text, c.p.bool("show_alert"), c.p["url"], cache, s.now()
	delete(s.unanswered, id)
	s.cbMu.Unlock()
	s.notify()
	return true, nil
}

var chatActions = map[string]bool{
	"typing": true, "upload_photo": true, "record_video": true, "upload_video": true,
	"record_voice": true, "upload_voice": true, "upload_document": true, "choose_sticker": true,
	"find_location": true, "record_video_note": true, "upload_video_note": true,
}

func (s *Server) sendChatAction(c *callCtx) (any, *apiError) {
	ch, aerr := s.targetChat(c.p)
	if aerr != nil {
		return nil, aerr
	}
	action := c.p["action"]
	if !chatActions[action] {
		return nil, badRequest("wrong parameter action in request")
	}
	ch.mu.Lock()
	ch.actions = append(ch.actions, action)
	s.touch(ch)
	ch.mu.Unlock()
	return true, nil
}

// sendFile implements sendDocument and sendPhoto; kind is also the name of
// the parameter carrying the file.
func (s *Server) sendFile(c *callCtx, kind string) (any, *apiError) {
	ch, aerr := s.targetChat(c.p)
	if aerr != nil {
		return nil, aerr
	}
	doc, aerr := s.resolveFile(c, kind)
	if aerr != nil {
		return nil, aerr
	}
	f, aerr := formatText(c.p["caption"], c.p["parse_mode"], c.p["caption_entities"], 1024, "message caption is too long")
	if aerr != nil {
		return nil, aerr
	}
	mk, aerr := parseReplyMarkup(c.p["reply_markup"], false)
	if aerr != nil {
		return nil, aerr
	}
	doc.Caption = f.text
	m := &storedMsg{Message: Message{
		Caption: f.text, ParseMode: c.p["parse_mode"], Entities: publicEntities(f.entities),
		Document: doc, DisableNotification: c.p.bool("disable_notification"),
	}, entities: f.entities}
	if kind == "photo" {
		m.apiPhoto = []apiPhotoSize{{FileID: doc.FileID, FileUniqueID: uniqueID(doc.FileID), Width: doc.Width, Height: doc.Height, FileSize: doc.Size}}
	} else {
		m.apiDoc = &apiDocument{FileID: doc.FileID, FileUniqueID: uniqueID(doc.FileID), FileName: doc.FileName, MimeType: doc.MimeType, FileSize: doc.Size}
	}
	applyMarkup(m, mk)
	replyTo, allowWithout := replyTarget(c.p)
	return s.storeBotMessage(ch, m, replyTo, allowWithout)
}

func uniqueID(fileID string) string { return "AQAD" + strings.TrimLeft(fileID[4:], "-") }

var urlRe = regexp.MustCompile(`^https?://[^\s/]+`)

// resolveFile accepts an upload, an attach:// reference, a file_id this
// server issued, or an HTTP URL, like Telegram.
func (s *Server) resolveFile(c *callCtx, kind string) (*Document, *apiError) {
	up := c.files[kind]
	if up == nil {
		v := strings.TrimSpace(c.p[kind])
		switch {
		case v == "":
			return nil, badRequest("there is no %s in the request", kind)
		case strings.HasPrefix(v, "attach://"):
			up = c.files[strings.TrimPrefix(v, "attach://")]
			if up == nil {
				return nil, badRequest("wrong file identifier/HTTP URL specified")
			}
		case urlRe.MatchString(v):
			d := &Document{Kind: kind, URL: v, FileName: path.Base(v), MimeType: mime.TypeByExtension(path.Ext(v))}
			s.registerFile(d)
			return d, nil
		default:
			s.filesMu.Lock()
			known := s.files[v]
			s.filesMu.Unlock()
			if known == nil {
				return nil, badRequest("wrong file identifier/HTTP URL specified")
			}
			if known.Kind != kind {
				return nil, badRequest("wrong file identifier/HTTP URL specified: wrong file type")
			}
			d := *known // same file_id: Telegram reuses it
			return &d, nil
		}
	}
	if len(up.data) == 0 {
		return nil, badRequest("file must be non-empty")
	}
	d := &Document{Kind: kind, FileName: up.filename, Size: len(up.data), Data: up.data, MimeType: up.contentType}
	if d.MimeType == "" || d.MimeType == "application/octet-stream" {
		if t := mime.TypeByExtension(path.Ext(up.filename)); t != "" {
			d.MimeType = t
		}
	}
	if kind == "photo" {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(up.data))
		if err != nil {
			return nil, badRequest("IMAGE_PROCESS_FAILED")
		}
		d.Width, d.Height = cfg.Width, cfg.Height
	}
	s.registerFile(d)
	return d, nil
}

func (s *Server) registerFile(d *Document) {
	s.filesMu.Lock()
	s.nextFile++
	prefix := "BQAC"
	if d.Kind == "photo" {
		prefix = "AgAC"
	}
	d.FileID = fmt.Sprintf("%s-%08d-%d", prefix, s.nextFile, s.bot.ID)
	stored := *d
	s.files[d.FileID] = &stored
	s.filesMu.Unlock()
}

type cmdKey struct {
	scope CommandScope
	lang  string
}

var (
	commandRe  = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	langCodeRe = regexp.MustCompile(`^[a-z]{2}$`)
	scopeTypes = map[string]bool{"default": true, "all_private_chats": true, "all_group_chats": true,
		"all_chat_administrators": true, "chat": true, "chat_administrators": true, "chat_member": true}
)

func commandKey(p params) (cmdKey, *apiError) {
	var k cmdKey
	k.lang = p["language_code"]
	if k.lang != "" && !langCodeRe.MatchString(k.lang) {
		return k, badRequest("invalid language code specified")
	}
	if raw := p["scope"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &k.scope); err != nil {
			return k, badRequest("can't parse BotCommandScope JSON object")
		}
	}
	k.scope = normScope(k.scope)
	if !scopeTypes[k.scope.Type] {
		return k, badRequest("unsupported bot command scope type")
	}
	return k, nil
}

func normScope(sc CommandScope) CommandScope {
	if sc.Type == "" {
		sc.Type = "default"
	}
	switch sc.Type {
	case "chat", "chat_administrators":
		sc.UserID = 0
	case "chat_member":
	default:
		sc.ChatID, sc.UserID = 0, 0
	}
	return sc
}

func (s *Server) setMyCommands(c *callCtx) (any, *apiError) {
	raw, ok := c.p["commands"]
	if !ok {
		return nil, badRequest("parameter \"commands\" is required")
	}
	var cmds []BotCommand
	if err := json.Unmarshal([]byte(raw), &cmds); err != nil {
		return nil, badRequest("can't parse commands JSON object")
	}
	if len(cmds) > 100 {
		return nil, badRequest("BOT_COMMANDS_TOO_MUCH")
	}
	for _, cmd := range cmds {
		if !commandRe.MatchString(cmd.Command) {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if n := UTF16Len(strings.TrimSpace(cmd.Description)); n < 1 || n > 256 {
			return nil, badRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	k, aerr := commandKey(c.p)
	if aerr != nil {
		return nil, aerr
	}
	s.cmdMu.Lock()
	if len(cmds) == 0 {
		delete(s.commands, k)
	} else {
		s.commands[k] = cmds
	}
	s.cmdMu.Unlock()
	return true, nil
}

func (s *Server) getMyCommands(c *callCtx) (any, *apiError) {
	k, aerr := commandKey(c.p)
	if aerr != nil {
		return nil, aerr
	}
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	return append([]BotCommand{}, s.commands[k]...), nil
}

func (s *Server) deleteMyCommands(c *callCtx) (any, *apiError) {
	k, aerr := commandKey(c.p)
	if aerr != nil {
		return nil, aerr
	}
	s.cmdMu.Lock()
	delete(s.commands, k)
	s.cmdMu.Unlock()
	return true, nil
}

// Commands returns the default-scope command list for a language code
// ("" for the language-independent list), exactly as stored.
func (s *Server) Commands(languageCode string) []BotCommand {
	return s.ScopedCommands(CommandScope{}, languageCode)
}

// ScopedCommands returns the command list stored for a scope and language.
func (s *Server) ScopedCommands(scope CommandScope, languageCode string) []BotCommand {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	return slices.Clone(s.commands[cmdKey{normScope(scope), languageCode}])
}

// CommandsFor resolves the menu the user's client would show in the private
// chat: the most specific scope that has commands wins, and within a scope
// the user's language before the language-independent list.
func (s *Server) CommandsFor(u User) []BotCommand {
	scopes := []CommandScope{{Type: "chat", ChatID: u.ID}, {Type: "all_private_chats"}, {Type: "default"}}
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	for _, sc := range scopes {
		for _, lang := range []string{u.LanguageCode, ""} {
			if cmds := s.commands[cmdKey{sc, lang}]; len(cmds) > 0 {
				return slices.Clone(cmds)
			}
		}
	}
	return nil
}

// messageContent checks a message's text and keyboard the way sendMessage and
// editMessageText both do; an edit may only carry an inline keyboard.
func messageContent(c *callCtx, raw string, inlineOnly bool) (formatted, markup, *apiError) {
	f, aerr := formatText(raw, c.p["parse_mode"], c.p["entities"], 4096, "message is too long")
	if aerr != nil {
		return formatted{}, markup{}, aerr
	}
	if isBlank(f.text) {
		return formatted{}, markup{}, badRequest("message must be non-empty")
	}
	mk, aerr := parseReplyMarkup(c.p["reply_markup"], inlineOnly)
	if aerr != nil {
		return formatted{}, markup{}, aerr
	}
	return f, mk, nil
}
