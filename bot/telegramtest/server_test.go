package telegramtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoutingAndAuth(t *testing.T) {
	s := Start(t, Options{})
	tests := []struct {
		name, url string
		code      int
		desc      string
	}{
		{"wrong token", s.URL() + "/bot1:wrong/getMe", 401, "Unauthorized"},
		{"unknown method", s.MethodURL("sendTelepathy"), 404, "Not Found"},
		{"not a bot path", s.URL() + "/favicon.ico", 404, "Not Found"},
		{"no method", s.URL() + "/bot" + s.Token() + "/", 404, "Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tc.url, nil)
			wantError(t, doRequest(t, req), tc.code, tc.desc)
		})
	}
	// Method names are case-insensitive on Telegram.
	var me apiUser
	callQuery(t, s, "GETME", nil).decode(t, &me)
	if !me.IsBot || me.Username != "dialoq_test_bot" || me.ID != 123456789 {
		t.Fatalf("getMe = %+v", me)
	}
}

func TestParameterEncodings(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser(alice)
	kb := `{"inline_keyboard":[[{"text":"Yes","callback_data":"y"}]]}`
	id := fmt.Sprint(alice.ID)
	tests := []struct {
		name string
		call func() apiResult
	}{
		{"query", func() apiResult {
			return callQuery(t, s, "sendMessage", url.Values{"chat_id": {id}, "text": {"via query"}, "reply_markup": {kb}})
		}},
		{"form", func() apiResult {
			return callForm(t, s, "sendMessage", url.Values{"chat_id": {id}, "text": {"via form"}, "reply_markup": {kb}})
		}},
		{"multipart", func() apiResult {
			return callMultipart(t, s, "sendMessage", map[string]string{"chat_id": id, "text": "via multipart", "reply_markup": kb}, "", "", nil)
		}},
		{"json", func() apiResult {
			return callJSON(t, s, "sendMessage", map[string]any{"chat_id": alice.ID, "text": "via json", "reply_markup": json.RawMessage(kb)})
		}},
		{"json with markup as string", func() apiResult {
			return callJSON(t, s, "sendMessage", map[string]any{"chat_id": id, "text": "via json string", "reply_markup": kb})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m wireMessage
			tc.call().decode(t, &m)
			if !strings.HasPrefix(m.Text, "via ") || m.Chat.ID != alice.ID || m.Chat.Type != "private" || !m.From.IsBot {
				t.Fatalf("message = %+v", m)
			}
			if string(m.ReplyMarkup) != kb {
				t.Fatalf("reply_markup echoed as %s", m.ReplyMarkup)
			}
		})
	}
	// Message IDs are per chat and increasing.
	ms := s.Messages(alice.ID)
	for i, m := range ms {
		if m.ID != i+1 || len(m.Keyboard) != 1 || m.Keyboard[0][0].CallbackData != "y" {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
}

func TestSendMessageValidation(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser(alice)
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	tests := []struct {
		name  string
		chat  int64
		text  string
		extra map[string]any
		code  int
		desc  string // "" means success
	}{
		{"plain", alice.ID, "hello", nil, 0, ""},
		{"missing text", alice.ID, "", nil, 400, "Bad Request: message text is empty"},
		{"blank text", alice.ID, "  \n ", nil, 400, "Bad Request: message must be non-empty"},
		{"unknown chat", 999, "hi", nil, 400, "Bad Request: chat not found"},
		{"4096 ASCII", alice.ID, long("a", 4096), nil, 0, ""},
		{"4097 ASCII", alice.ID, long("a", 4097), nil, 400, "Bad Request: message is too long"},
		{"4096 Cyrillic (2 bytes each, 1 unit)", alice.ID, long("ж", 4096), nil, 0, ""},
		{"2048 emoji = 4096 units", alice.ID, long("😀", 2048), nil, 0, ""},
		{"2049 emoji = 4098 units", alice.ID, long("😀", 2049), nil, 400, "Bad Request: message is too long"},
		{"limit counted after HTML", alice.ID, "<b>" + long("a", 4096) + "</b>", map[string]any{"parse_mode": "HTML"}, 0, ""},
		{"entities decoded before counting", alice.ID, long("&amp;", 4096), map[string]any{"parse_mode": "HTML"}, 0, ""},
		{"unsupported parse_mode", alice.ID, "x", map[string]any{"parse_mode": "BBCode"}, 400, "Bad Request: unsupported parse_mode"},
		{"HTML ok", alice.ID, `<b>bold</b> <i>it</i> <a href="https://x.org/?a=1&amp;b=2">l</a> &lt;3 &#128512; &#x1F600;`, map[string]any{"parse_mode": "HTML"}, 0, ""},
		{"HTML all tags", alice.ID, `<strong>a</strong><em>b</em><u>c</u><ins>d</ins><s>e</s><strike>f</strike><del>g</del><code>h</code><pre><code class="language-go">i</code></pre><tg-spoiler>j</tg-spoiler><span class="tg-spoiler">k</span><blockquote>l</blockquote><blockquote expandable>m</blockquote><tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>`, map[string]any{"parse_mode": "html"}, 0, ""},
		{"HTML unknown tag", alice.ID, "<div>x</div>", map[string]any{"parse_mode": "HTML"}, 400, `Bad Request: can't parse entities: Unsupported start tag "div" at byte offset 0`},
		{"HTML bare <", alice.ID, "1 < 2", map[string]any{"parse_mode": "HTML"}, 400, `Bad Request: can't parse entities: Unsupported start tag "" at byte offset 2`},
		{"HTML bare &", alice.ID, "Tom & Jerry", map[string]any{"parse_mode": "HTML"}, 400, `Bad Request: can't parse entities: unescaped "&" at byte offset 4`},
		{"HTML unknown entity", alice.ID, "&nbsp;", map[string]any{"parse_mode": "HTML"}, 400, "Bad Request: can't parse entities: unescaped"},
		{"HTML unclosed", alice.ID, "<b>bold", map[string]any{"parse_mode": "HTML"}, 400, `Bad Request: can't parse entities: Can't find end tag corresponding to start tag "b"`},
		{"HTML mismatched", alice.ID, "<b><i>x</b></i>", map[string]any{"parse_mode": "HTML"}, 400, `Bad Request: can't parse entities: Unmatched end tag at byte offset 7, expected "</i>", found "</b>"`},
		{"HTML stray end", alice.ID, "x</b>", map[string]any{"parse_mode": "HTML"}, 400, "Bad Request: can't parse entities: Unexpected end tag at byte offset 1"},
		{"HTML unclosed start tag", alice.ID, "<b", map[string]any{"parse_mode": "HTML"}, 400, "Bad Request: can't parse entities: Unclosed start tag at byte offset 0"},
		{"HTML span without class", alice.ID, "<span>x</span>", map[string]any{"parse_mode": "HTML"}, 400, `Bad Request: can't parse entities: Tag "span" must have class "tg-spoiler"`},
		{"HTML empty after markup", alice.ID, "<b></b>", map[string]any{"parse_mode": "HTML"}, 400, "Bad Request: message must be non-empty"},
		{"HTML greater-than is fine", alice.ID, "2 > 1", map[string]any{"parse_mode": "HTML"}, 0, ""},
		{"MarkdownV2 ok", alice.ID, `*bold* _it_ __u__ ~s~ ||sp|| [l](https://x.org) ` + "`c`" + ` 1\.5\!`, map[string]any{"parse_mode": "MarkdownV2"}, 0, ""},
		{"MarkdownV2 unescaped dot", alice.ID, "Version 1.5", map[string]any{"parse_mode": "MarkdownV2"}, 400, `Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\'`},
		{"MarkdownV2 unclosed bold", alice.ID, "*bold", map[string]any{"parse_mode": "MarkdownV2"}, 400, "Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 0"},
		{"Markdown unclosed", alice.ID, "snake_case", map[string]any{"parse_mode": "Markdown"}, 400, "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 5"},
		{"callback_data 64 bytes", alice.ID, "kb", map[string]any{"reply_markup": keyboard([]map[string]any{cb("ok", long("д", 32))})}, 0, ""},
		{"callback_data 65 bytes", alice.ID, "kb", map[string]any{"reply_markup": keyboard([]map[string]any{cb("ok", long("x", 65))})}, 400, "Bad Request: BUTTON_DATA_INVALID"},
		{"callback_data 33 two-byte runes", alice.ID, "kb", map[string]any{"reply_markup": keyboard([]map[string]any{cb("ok", long("д", 33))})}, 400, "Bad Request: BUTTON_DATA_INVALID"},
		{"empty button text", alice.ID, "kb", map[string]any{"reply_markup": keyboard([]map[string]any{cb("", "x")})}, 400, "Bad Request: inline keyboard button text must be non-empty"},
		{"button without action", alice.ID, "kb", map[string]any{"reply_markup": keyboard([]map[string]any{{"text": "x"}})}, 400, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"},
		{"empty callback_data", alice.ID, "kb", map[string]any{"reply_markup": keyboard([]map[string]any{cb("x", "")})}, 400, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed"},
		{"bad URL button", alice.ID, "kb", map[string]any{"reply_markup": keyboard([]map[string]any{{"text": "x", "url": "javascript:alert(1)"}})}, 400, "Bad Request: BUTTON_URL_INVALID"},
		{"URL button", alice.ID, "kb", map[string]any{"reply_markup": keyboard([]map[string]any{{"text": "x", "url": "https://example.org"}})}, 0, ""},
		{"garbage markup", alice.ID, "kb", map[string]any{"reply_markup": "{nope"}, 400, "Bad Request: can't parse reply keyboard markup JSON object"},
		{"remove keyboard", alice.ID, "bye", map[string]any{"reply_markup": map[string]any{"remove_keyboard": true}}, 0, ""},
		{"force reply", alice.ID, "name?", map[string]any{"reply_markup": map[string]any{"force_reply": true}}, 0, ""},
		{"reply keyboard", alice.ID, "pick", map[string]any{"reply_markup": map[string]any{"keyboard": [][]map[string]any{{{"text": "A"}, {"text": "B"}}}}}, 0, ""},
		{"reply to missing", alice.ID, "re", map[string]any{"reply_to_message_id": 999}, 400, "Bad Request: message to be replied not found"},
		{"reply to missing allowed", alice.ID, "re", map[string]any{"reply_parameters": map[string]any{"message_id": 999, "allow_sending_without_reply": true}}, 0, ""},
		{"reply to existing", alice.ID, "re", map[string]any{"reply_to_message_id": 1}, 0, ""},
		{"link preview options", alice.ID, "https://x.org", map[string]any{"link_preview_options": map[string]any{"is_disabled": true}}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Messages(tc.chat))
			r := send(t, s, tc.chat, tc.text, tc.extra)
			if tc.desc != "" {
				wantError(t, r, tc.code, tc.desc)
				if after := len(s.Messages(tc.chat)); after != before {
					t.Fatalf("a rejected message was stored")
				}
				return
			}
			var m wireMessage
			r.decode(t, &m)
			if m.MessageID == 0 || m.Date == 0 || m.From.Username != "dialoq_test_bot" {
				t.Fatalf("bad message %+v", m)
			}
		})
	}
	last, _ := s.LastMessage(alice.ID)
	if !last.NoLinkPreview {
		t.Errorf("link_preview_options not recorded: %+v", last)
	}
	for _, m := range s.Messages(alice.ID) {
		switch m.RawText {
		case "pick":
			if len(m.ReplyKeyboard) != 1 || m.ReplyKeyboard[0][1] != "B" || m.Keyboard != nil {
				t.Errorf("reply keyboard = %+v", m)
			}
		case "bye":
			if !m.RemoveKeyboard {
				t.Errorf("remove_keyboard not recorded")
			}
		case "name?":
			if !m.ForceReply {
				t.Errorf("force_reply not recorded")
			}
		}
	}
}

func TestHTMLRendering(t *testing.T) {
	text, ents, err := parseHTML(`Hi <b>Ana 😀 <i>x</i></b> &lt;&amp;&gt; <a href="https://e.org/?q=1&amp;r=2">link</a> <pre><code class="language-go">go</code></pre>`)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hi Ana 😀 x <&> link go"; text != want {
		t.Fatalf("text = %q, want %q", text, want)
	}
	want := []apiEntity{
		{Type: "bold", Offset: 3, Length: 8}, // "Ana 😀 x": the emoji counts 2
		{Type: "italic", Offset: 10, Length: 1},
		{Type: "text_link", Offset: 16, Length: 4, URL: "https://e.org/?q=1&r=2"},
		{Type: "pre", Offset: 21, Length: 2, Language: "go"},
	}
	if fmt.Sprint(ents) != fmt.Sprint(want) {
		t.Fatalf("entities\n got %+v\nwant %+v", ents, want)
	}
}

func TestMarkdownV2Rendering(t *testing.T) {
	text, ents, err := parseMarkdownV2("*b _i_* \\*x [l](https://e.org/a\\)b) `c\\`d` ||s||\n>quote")
	if err != nil {
		t.Fatal(err)
	}
	if want := "b i *x l c`d s\nquote"; text != want {
		t.Fatalf("text = %q, want %q", text, want)
	}
	types := []string{}
	for _, e := range ents {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); got != "bold,italic,text_link,code,spoiler,blockquote" {
		t.Fatalf("entity types = %s (%+v)", got, ents)
	}
	if ents[2].URL != "https://e.org/a)b" {
		t.Fatalf("url = %q", ents[2].URL)
	}
}

func TestEditAndDelete(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser(alice)
	kb := keyboard([]map[string]any{cb("A", "a"), cb("B", "b")})
	var m wireMessage
	send(t, s, alice.ID, "Question?", map[string]any{"reply_markup": kb}).decode(t, &m)

	edit := func(fields map[string]any) apiResult {
		body := map[string]any{"chat_id": alice.ID, "message_id": m.MessageID}
		for k, v := range fields {
			body[k] = v
		}
		return callJSON(t, s, "editMessageText", body)
	}
	notModified := "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"

	wantError(t, edit(map[string]any{"text": "Question?", "reply_markup": kb}), 400, notModified)
	// The same meaning in different markup is still "not modified".
	wantError(t, edit(map[string]any{"text": "<i></i>Question?", "parse_mode": "HTML", "reply_markup": kb}), 400, notModified)

	var edited wireMessage
	edit(map[string]any{"text": "<b>Question?</b>", "parse_mode": "HTML", "reply_markup": kb}).decode(t, &edited)
	if edited.EditDate == 0 || edited.MessageID != m.MessageID || len(edited.Entities) != 1 {
		t.Fatalf("edited = %+v", edited)
	}
	// Editing without reply_markup removes the keyboard, as Telegram does,
	// so it is a modification even though the text is unchanged.
	var bare wireMessage
	edit(map[string]any{"text": "<b>Question?</b>", "parse_mode": "HTML"}).decode(t, &bare)
	if bare.ReplyMarkup != nil {
		t.Fatalf("keyboard survived: %s", bare.ReplyMarkup)
	}
	got, _ := s.LastMessage(alice.ID)
	if got.Keyboard != nil || got.Text != "Question?" || got.Edits != 2 || got.RawText != "<b>Question?</b>" {
		t.Fatalf("stored = %+v", got)
	}

	markup := func(kb any) apiResult {
		body := map[string]any{"chat_id": alice.ID, "message_id": m.MessageID}
		if kb != nil {
			body["reply_markup"] = kb
		}
		return callJSON(t, s, "editMessageReplyMarkup", body)
	}
	wantError(t, markup(nil), 400, notModified)
	markup(kb).decode(t, &edited)
	wantError(t, markup(kb), 400, notModified)
	wantError(t, markup(map[string]any{"remove_keyboard": true}), 400, "Bad Request: inline keyboard expected")

	for _, tc := range []struct {
		name, method string
		body         map[string]any
		desc         string
	}{
		{"edit unknown id", "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": 77, "text": "x"}, "Bad Request: message to edit not found"},
		{"edit without id", "editMessageText", map[string]any{"chat_id": alice.ID, "text": "x"}, "Bad Request: message identifier is not specified"},
		{"edit empty text", "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": m.MessageID, "text": ""}, "Bad Request: message text is empty"},
		{"edit unknown chat", "editMessageText", map[string]any{"chat_id": 5, "message_id": 1, "text": "x"}, "Bad Request: chat not found"},
		{"markup unknown id", "editMessageReplyMarkup", map[string]any{"chat_id": alice.ID, "message_id": 77}, "Bad Request: message to edit not found"},
		{"delete unknown", "deleteMessage", map[string]any{"chat_id": alice.ID, "message_id": 77}, "Bad Request: message to delete not found"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantError(t, callJSON(t, s, tc.method, tc.body), 400, tc.desc) })
	}

	// A user's message cannot be edited by the bot.
	s.SendText(alice, "my answer")
	wantError(t, callJSON(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": 2, "text": "x"}), 400, "Bad Request: message can't be edited")

	var ok bool
	callJSON(t, s, "deleteMessage", map[string]any{"chat_id": alice.ID, "message_id": m.MessageID}).decode(t, &ok)
	if !ok || len(s.Messages(alice.ID)) != 0 || len(s.History(alice.ID)) != 2 || !s.History(alice.ID)[0].Deleted {
		t.Fatalf("delete: ok=%v messages=%+v", ok, s.Messages(alice.ID))
	}
	wantError(t, edit(map[string]any{"text": "again"}), 400, "Bad Request: message to edit not found")
	wantError(t, callJSON(t, s, "deleteMessage", map[string]any{"chat_id": alice.ID, "message_id": m.MessageID}), 400, "Bad Request: message to delete not found")
}

func TestUserUpdatesAndGetUpdates(t *testing.T) {
	s := Start(t, Options{})
	u1 := s.SendText(alice, "/start@dialoq_test_bot hello")
	u2 := s.SendText(boris, "привет 😀 /help")
	if u2 != u1+1 || u1 == 1 {
		t.Fatalf("update ids %d %d", u1, u2)
	}
	var ups []wireUpdate
	callJSON(t, s, "getUpdates", map[string]any{}).decode(t, &ups)
	if len(ups) != 2 || ups[0].UpdateID != u1 || ups[1].UpdateID != u2 {
		t.Fatalf("updates = %+v", ups)
	}
	m := ups[0].Message
	if m.Text != "/start@dialoq_test_bot hello" || m.Chat.ID != alice.ID || m.From.ID != alice.ID || m.From.IsBot || m.MessageID != 1 {
		t.Fatalf("message = %+v", m)
	}
	if len(m.Entities) != 1 || m.Entities[0] != (apiEntity{Type: "bot_command", Offset: 0, Length: 22}) {
		t.Fatalf("entities = %+v", m.Entities)
	}
	if e := ups[1].Message.Entities; len(e) != 1 || e[0].Offset != 10 || e[0].Length != 5 {
		t.Fatalf("command after emoji: offsets are UTF-16: %+v", e)
	}

	// Without an offset the same updates come again: not confirmed yet.
	callJSON(t, s, "getUpdates", map[string]any{"limit": 1}).decode(t, &ups)
	if len(ups) != 1 || ups[0].UpdateID != u1 {
		t.Fatalf("limit 1: %+v", ups)
	}
	// offset confirms everything below it.
	callForm(t, s, "getUpdates", url.Values{"offset": {fmt.Sprint(u1 + 1)}}).decode(t, &ups)
	if len(ups) != 1 || ups[0].UpdateID != u2 {
		t.Fatalf("after offset: %+v", ups)
	}
	u3 := s.SendText(alice, "three")
	u4 := s.SendText(alice, "four")
	// A negative offset keeps only the last -offset updates.
	callJSON(t, s, "getUpdates", map[string]any{"offset": -1}).decode(t, &ups)
	if len(ups) != 1 || ups[0].UpdateID != u4 {
		t.Fatalf("offset -1: %+v (u3=%d)", ups, u3)
	}
	callJSON(t, s, "getUpdates", map[string]any{}).decode(t, &ups)
	if len(ups) != 1 || ups[0].UpdateID != u4 {
		t.Fatalf("older updates were not forgotten: %+v", ups)
	}
	callJSON(t, s, "getUpdates", map[string]any{"offset": u4 + 1}).decode(t, &ups)
	if len(ups) != 0 || s.Stats().Pending != 0 {
		t.Fatalf("all confirmed, got %+v pending %d", ups, s.Stats().Pending)
	}
	if at, ok := s.InjectedAt(u4); !ok || at.IsZero() {
		t.Fatalf("InjectedAt missing")
	}
}

func TestLongPollWakesUpOnUpdate(t *testing.T) {
	s := Start(t, Options{})
	ctx := testCtx(t)
	done := make(chan apiResult, 1)
	go func() { done <- callJSON(t, s, "getUpdates", map[string]any{"timeout": 50}) }()
	// Inject only once the poll is parked, so that the answer can only
	// have come from the wake-up (the poll itself would last 50s).
	if err := s.WaitFor(ctx, s.pollerParked); err != nil {
		t.Fatal(err)
	}
	id := s.SendText(alice, "wake up")
	select {
	case r := <-done:
		var ups []wireUpdate
		r.decode(t, &ups)
		if len(ups) != 1 || ups[0].UpdateID != id {
			t.Fatalf("got %+v", ups)
		}
	case <-ctx.Done():
		t.Fatal("long poll did not wake up")
	}
}

// pollerParked reports whether a getUpdates is waiting for updates.
func (s *Server) pollerParked() bool {
	s.updMu.Lock()
	defer s.updMu.Unlock()
	return s.poller != nil && s.pollWake != nil
}

func TestLongPollConflict(t *testing.T) {
	s := Start(t, Options{})
	ctx := testCtx(t)
	first := make(chan apiResult, 1)
	go func() { first <- callJSON(t, s, "getUpdates", map[string]any{"timeout": 50}) }()
	if err := s.WaitFor(ctx, s.pollerParked); err != nil {
		t.Fatal(err)
	}
	second := make(chan apiResult, 1)
	go func() { second <- callJSON(t, s, "getUpdates", map[string]any{"timeout": 50}) }()
	wantError(t, <-first, 409, "Conflict: terminated by other getUpdates request")
	s.SendText(alice, "for the survivor")
	var ups []wireUpdate
	(<-second).decode(t, &ups)
	if len(ups) != 1 {
		t.Fatalf("second poll got %+v", ups)
	}
}

func TestCallbackQueries(t *testing.T) {
	s := Start(t, Options{})
	s.SendText(alice, "/start")
	var m wireMessage
	send(t, s, alice.ID, "Pick", map[string]any{"reply_markup": keyboard([]map[string]any{cb("One", "q1:1"), cb("Two", "q1:2")}, []map[string]any{{"text": "site", "url": "https://example.org"}})}).decode(t, &m)

	if _, _, err := s.PressButton(alice, m.MessageID, "q1:3"); err == nil {
		t.Fatal("pressing a button that does not exist succeeded")
	}
	if _, _, err := s.PressButton(alice, 1, "q1:1"); err == nil {
		t.Fatal("pressing a button on the user's own message succeeded")
	}
	upd, qid, err := s.PressButtonText(alice, m.MessageID, "Two")
	if err != nil {
		t.Fatal(err)
	}
	var ups []wireUpdate
	callJSON(t, s, "getUpdates", map[string]any{"offset": upd}).decode(t, &ups)
	if len(ups) != 1 || ups[0].Callback == nil {
		t.Fatalf("updates = %+v", ups)
	}
	q := ups[0].Callback
	if q.ID != qid || q.Data != "q1:2" || q.From.ID != alice.ID || q.Message == nil || q.Message.MessageID != m.MessageID || q.Message.Text != "Pick" || q.Message.ReplyMarkup == nil {
		t.Fatalf("callback = %+v", q)
	}
	if got := s.UnansweredCallbacks(); len(got) != 1 || got[0] != qid {
		t.Fatalf("unanswered = %v", got)
	}
	tooOld := "Bad Request: query is too old and response timeout expired or query ID is invalid"
	wantError(t, callJSON(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": "123"}), 400, tooOld)
	wantError(t, callJSON(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": qid, "text": strings.Repeat("x", 201)}), 400, "Bad Request: MESSAGE_TOO_LONG")
	var ok bool
	callJSON(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": qid, "text": "Saved", "show_alert": true}).decode(t, &ok)
	wantError(t, callJSON(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": qid}), 400, tooOld)
	a, found := s.CallbackAnswer(qid)
	if !ok || !found || !a.Answered || a.Text != "Saved" || !a.ShowAlert || a.Data != "q1:2" || len(s.UnansweredCallbacks()) != 0 {
		t.Fatalf("answer = %+v", a)
	}
}

func TestBlockAndDeactivate(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser(alice)
	s.AddUser(boris)
	s.Block(alice.ID)
	s.Deactivate(boris.ID)
	wantError(t, send(t, s, alice.ID, "hi", nil), 403, "Forbidden: bot was blocked by the user")
	wantError(t, callJSON(t, s, "sendChatAction", map[string]any{"chat_id": alice.ID, "action": "typing"}), 403, "Forbidden: bot was blocked by the user")
	wantError(t, send(t, s, boris.ID, "hi", nil), 403, "Forbidden: user is deactivated")
	s.Unblock(alice.ID)
	if r := send(t, s, alice.ID, "welcome back", nil); !r.OK {
		t.Fatalf("after unblock: %+v", r)
	}
}

func TestInjectedFaults(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser(alice)
	s.InjectFault("sendMessage", TooManyRequests(7), 1)
	r := send(t, s, alice.ID, "x", nil)
	wantError(t, r, 429, "Too Many Requests: retry after 7")
	if r.Parameters == nil || r.Parameters.RetryAfter != 7 {
		t.Fatalf("retry_after missing: %+v", r)
	}
	if !send(t, s, alice.ID, "x", nil).OK {
		t.Fatal("fault outlived its count")
	}

	s.InjectFault("*", ServerError(500), 1)
	s.InjectFault("SENDMESSAGE", Forbidden(), 1) // specific wins over "*"
	wantError(t, send(t, s, alice.ID, "x", nil), 403, "Forbidden: bot was blocked by the user")
	wantError(t, callJSON(t, s, "getMe", nil), 500, "Internal Server Error")

	s.InjectFault("sendMessage", ServerError(502), 2)
	wantError(t, send(t, s, alice.ID, "x", nil), 502, "Bad Gateway")
	wantError(t, send(t, s, alice.ID, "x", nil), 502, "Bad Gateway")

	s.InjectFault("sendMessage", BadGatewayHTML(), 1)
	resp, err := http.Post(s.MethodURL("sendMessage"), "application/json", strings.NewReader(`{"chat_id":1001,"text":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("html fault: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	s.InjectFault("sendMessage", ConnectionReset(), 1)
	if _, err := http.Post(s.MethodURL("sendMessage"), "application/json", strings.NewReader(`{"chat_id":1001,"text":"x"}`)); err == nil {
		t.Fatal("dropped connection produced an answer")
	}

	s.InjectFault("sendMessage", Delay(time.Millisecond), 1)
	if !send(t, s, alice.ID, "slow but fine", nil).OK {
		t.Fatal("delay fault failed the call")
	}

	s.InjectFault("sendMessage", ServerError(500), 0) // until cleared
	for range 3 {
		wantError(t, send(t, s, alice.ID, "x", nil), 500, "Internal Server Error")
	}
	s.ClearFaults()
	if !send(t, s, alice.ID, "x", nil).OK {
		t.Fatal("ClearFaults did not clear")
	}
	if st := s.Stats(); st.Faults != 11 || st.Statuses[500] != 4 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestChaosIsReproducible(t *testing.T) {
	outcomes := func() (string, Stats) {
		s := Start(t, Options{})
		s.AddUser(alice)
		s.SetChaos(Chaos{Seed: 42, TooManyRequests: 0.2, RetryAfter: 3, ServerErrors: 0.1})
		var b strings.Builder
		for range 200 {
			r := send(t, s, alice.ID, "x", nil)
			fmt.Fprintf(&b, "%d,", r.Status)
			if r.Status == 429 && r.Parameters.RetryAfter != 3 {
				t.Fatalf("retry_after = %d", r.Parameters.RetryAfter)
			}
		}
		if callJSON(t, s, "getMe", nil).Status != 200 {
			t.Fatal("chaos hit an exempt method")
		}
		return b.String(), s.Stats()
	}
	a, st := outcomes()
	b, _ := outcomes()
	if a != b {
		t.Fatal("same seed, different outcomes")
	}
	if st.Statuses[429] == 0 || st.Statuses[500]+st.Statuses[502] == 0 || st.Statuses[200] < 100 {
		t.Fatalf("implausible distribution: %v", st.Statuses)
	}
}

func TestRateLimits(t *testing.T) {
	clock := newFakeClock()
	s := Start(t, Options{Clock: clock.Now, Limits: Limits{PerSecond: 3, PerChatPerSecond: 1, PerGroupPerMinute: 2}})
	s.AddUser(alice)
	s.AddUser(boris)
	s.AddUser(User{ID: 1003, FirstName: "C"})
	s.AddUser(User{ID: 1004, FirstName: "D"})
	s.AddGroup(-100, "survey admins")

	if !send(t, s, alice.ID, "1", nil).OK {
		t.Fatal("first send refused")
	}
	r := send(t, s, alice.ID, "2", nil)
	wantError(t, r, 429, "Too Many Requests: retry after 1")
	if r.Parameters.RetryAfter != 1 {
		t.Fatalf("retry_after = %d", r.Parameters.RetryAfter)
	}
	// Other chats still have room under the global limit of 3/s.
	if !send(t, s, boris.ID, "1", nil).OK || !send(t, s, 1003, "1", nil).OK {
		t.Fatal("other chats refused")
	}
	wantError(t, send(t, s, 1004, "1", nil), 429, "Too Many Requests")

	clock.Advance(time.Second)
	if !send(t, s, alice.ID, "2", nil).OK || !send(t, s, 1004, "1", nil).OK {
		t.Fatal("refused after the window passed")
	}

	// Group: 2 per minute; the third waits for the first to age out.
	clock.Advance(10 * time.Second)
	if !send(t, s, -100, "g1", nil).OK {
		t.Fatal("group send 1 refused")
	}
	clock.Advance(5 * time.Second)
	if !send(t, s, -100, "g2", nil).OK {
		t.Fatal("group send 2 refused")
	}
	clock.Advance(5 * time.Second)
	r = send(t, s, -100, "g3", nil)
	wantError(t, r, 429, "Too Many Requests: retry after 50")
	clock.Advance(50 * time.Second)
	if !send(t, s, -100, "g3", nil).OK {
		t.Fatal("group send refused after retry_after")
	}
	if got := s.Stats().RateLimited; got != 3 {
		t.Fatalf("RateLimited = %d", got)
	}
	// Dates come from the server clock.
	if m, _ := s.LastMessage(-100); !m.Date.Equal(clock.Now().Truncate(time.Second)) {
		t.Fatalf("date %v, clock %v", m.Date, clock.Now())
	}
}

func TestCommands(t *testing.T) {
	s := Start(t, Options{})
	set := func(body map[string]any) apiResult { return callJSON(t, s, "setMyCommands", body) }
	cmds := func(names ...string) []map[string]string {
		var out []map[string]string
		for _, n := range names {
			out = append(out, map[string]string{"command": n, "description": "about " + n})
		}
		return out
	}
	for _, r := range []apiResult{
		set(map[string]any{"commands": cmds("start", "help")}),
		set(map[string]any{"commands": cmds("start", "hilfe"), "language_code": "de"}),
		set(map[string]any{"commands": cmds("start", "survey"), "scope": map[string]any{"type": "all_private_chats"}, "language_code": "de"}),
		set(map[string]any{"commands": cmds("admin"), "scope": map[string]any{"type": "chat", "chat_id": boris.ID}}),
	} {
		if !r.OK {
			t.Fatalf("setMyCommands: %s", r.Description)
		}
	}
	wantError(t, set(map[string]any{"commands": cmds("Start")}), 400, "Bad Request: BOT_COMMAND_INVALID")
	wantError(t, set(map[string]any{"commands": []map[string]string{{"command": "x", "description": ""}}}), 400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
	wantError(t, set(map[string]any{"commands": cmds("x"), "language_code": "deu"}), 400, "Bad Request: invalid language code")

	var got []BotCommand
	callJSON(t, s, "getMyCommands", map[string]any{"language_code": "de"}).decode(t, &got)
	if len(got) != 2 || got[1].Command != "hilfe" {
		t.Fatalf("getMyCommands de = %+v", got)
	}
	callJSON(t, s, "getMyCommands", map[string]any{"language_code": "fr"}).decode(t, &got)
	if got == nil || len(got) != 0 {
		t.Fatalf("getMyCommands fr should be [] (no fallback), got %+v", got)
	}
	if c := s.Commands(""); len(c) != 2 || c[1].Command != "help" {
		t.Fatalf("Commands(\"\") = %+v", c)
	}
	if c := s.CommandsFor(User{ID: 5, LanguageCode: "de"}); c[1].Command != "survey" {
		t.Fatalf("German user sees %+v", c)
	}
	if c := s.CommandsFor(User{ID: 5, LanguageCode: "fr"}); c[1].Command != "help" {
		t.Fatalf("French user sees %+v", c)
	}
	if c := s.CommandsFor(boris); len(c) != 1 || c[0].Command != "admin" {
		t.Fatalf("Boris sees %+v", c)
	}
	callJSON(t, s, "deleteMyCommands", map[string]any{"language_code": "de"})
	if c := s.Commands("de"); c != nil {
		t.Fatalf("after delete: %+v", c)
	}
}

func pngBytes(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(1, 1, color.RGBA{255, 0, 0, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFiles(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser(alice)
	id := fmt.Sprint(alice.ID)
	csv := []byte("q,a\n1,yes\n")
	var m wireMessage
	callMultipart(t, s, "sendDocument", map[string]string{"chat_id": id, "caption": "<b>Report</b>", "parse_mode": "HTML"}, "document", "report.csv", csv).decode(t, &m)
	if m.Document == nil || m.Document.FileName != "report.csv" || m.Document.FileSize != len(csv) || m.Caption != "Report" || m.Document.MimeType != "text/csv; charset=utf-8" {
		t.Fatalf("document message = %+v %+v", m, m.Document)
	}
	// Re-sending by file_id reuses the file.
	var again wireMessage
	callJSON(t, s, "sendDocument", map[string]any{"chat_id": alice.ID, "document": m.Document.FileID}).decode(t, &again)
	if again.Document.FileID != m.Document.FileID {
		t.Fatalf("file_id not reused")
	}
	callMultipart(t, s, "sendPhoto", map[string]string{"chat_id": id}, "photo", "chart.png", pngBytes(t, 30, 20)).decode(t, &m)
	if len(m.Photo) != 1 || m.Photo[0].Width != 30 || m.Photo[0].Height != 20 {
		t.Fatalf("photo = %+v", m.Photo)
	}
	for _, tc := range []struct {
		name   string
		r      apiResult
		desc   string
		status int
	}{
		{"no file", callMultipart(t, s, "sendDocument", map[string]string{"chat_id": id}, "", "", nil), "Bad Request: there is no document in the request", 400},
		{"empty file", callMultipart(t, s, "sendDocument", map[string]string{"chat_id": id}, "document", "e.txt", nil), "Bad Request: file must be non-empty", 400},
		{"not an image", callMultipart(t, s, "sendPhoto", map[string]string{"chat_id": id}, "photo", "x.png", []byte("nope")), "Bad Request: IMAGE_PROCESS_FAILED", 400},
		{"unknown file_id", callJSON(t, s, "sendDocument", map[string]any{"chat_id": alice.ID, "document": "BQAC-nope"}), "Bad Request: wrong file identifier/HTTP URL specified", 400},
		{"photo by document id", callJSON(t, s, "sendPhoto", map[string]any{"chat_id": alice.ID, "photo": again.Document.FileID}), "Bad Request: wrong file identifier", 400},
		{"caption too long", callMultipart(t, s, "sendDocument", map[string]string{"chat_id": id, "caption": strings.Repeat("й", 1025)}, "document", "a.txt", csv), "Bad Request: message caption is too long", 400},
		{"unknown chat", callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "4242"}, "document", "a.txt", csv), "Bad Request: chat not found", 400},
	} {
		t.Run(tc.name, func(t *testing.T) { wantError(t, tc.r, tc.status, tc.desc) })
	}
	docs := s.Documents(alice.ID)
	if len(docs) != 3 || string(docs[0].Data) != string(csv) || docs[0].Caption != "Report" || docs[2].Kind != "photo" || docs[0].MessageID != 1 {
		t.Fatalf("documents = %+v", docs)
	}
	docs[0].Data[0] = 'X' // callers get copies
	if s.Documents(alice.ID)[0].Data[0] != 'q' {
		t.Fatal("Documents exposed internal bytes")
	}

	var ok bool
	callJSON(t, s, "sendChatAction", map[string]any{"chat_id": alice.ID, "action": "upload_document"}).decode(t, &ok)
	wantError(t, callJSON(t, s, "sendChatAction", map[string]any{"chat_id": alice.ID, "action": "dancing"}), 400, "Bad Request: wrong parameter action in request")
	if a := s.ChatActions(alice.ID); len(a) != 1 || a[0] != "upload_document" {
		t.Fatalf("actions = %v", a)
	}
}

func TestWaitMessagesAndLatency(t *testing.T) {
	var mu sync.Mutex
	var seen []Message
	clock := newFakeClock()
	s := Start(t, Options{Clock: clock.Now, OnSend: func(m Message) {
		mu.Lock()
		seen = append(seen, m)
		mu.Unlock()
	}})
	ctx := testCtx(t)
	upd := s.SendText(alice, "/start")
	clock.Advance(1500 * time.Millisecond)
	go func() {
		// A stand-in bot that answers the update.
		callJSON(t, s, "sendMessage", map[string]any{"chat_id": alice.ID, "text": "Welcome! Question 1?"})
	}()
	msgs, err := s.WaitMessages(ctx, alice.ID, LastContains("Question 1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].AfterUpdateID != upd || msgs[0].Latency != 1500*time.Millisecond {
		t.Fatalf("messages = %+v", msgs)
	}
	if at, _ := s.InjectedAt(upd); !msgs[0].SentAt.Equal(at.Add(msgs[0].Latency)) {
		t.Fatalf("SentAt %v, injected %v", msgs[0].SentAt, at)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].ID != msgs[0].ID {
		t.Fatalf("OnSend saw %+v", seen)
	}
	mu.Unlock()
	short, cancel := testCtxShort()
	defer cancel()
	if _, err := s.WaitMessages(short, alice.ID, HasMessages(5)); err == nil || !strings.Contains(err.Error(), "Question 1") {
		t.Fatalf("timeout error should describe the chat: %v", err)
	}
}

func TestCallLog(t *testing.T) {
	s := Start(t, Options{CallLogSize: 3})
	s.AddUser(alice)
	for i := range 5 {
		send(t, s, alice.ID, fmt.Sprint(i), nil)
	}
	callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "1001"}, "document", "r.csv", []byte("x"))
	log := s.CallLog()
	if len(log) != 3 || log[0].Params["text"] != "3" || log[2].Params["document"] != "<r.csv>" || log[2].Method != "sendDocument" {
		t.Fatalf("log = %+v", log)
	}
	if s.Calls("sendmessage") != 5 || s.Calls("sendDocument") != 1 {
		t.Fatalf("calls = %d", s.Calls("sendMessage"))
	}
}

func TestConcurrentSends(t *testing.T) {
	s := Start(t, Options{})
	const chats, perChat, workers = 40, 25, 16
	for i := range chats {
		s.AddUser(User{ID: int64(5000 + i), FirstName: "U"})
	}
	var wg sync.WaitGroup
	jobs := make(chan int64)
	for range workers {
		wg.Go(func() {
			for chatID := range jobs {
				r := send(t, s, chatID, "msg", map[string]any{"reply_markup": keyboard([]map[string]any{cb("x", "x")})})
				if !r.OK {
					t.Errorf("send: %s", r.Description)
				}
			}
		})
	}
	// Users keep talking while the bot writes.
	wg.Go(func() {
		for i := range chats * 5 {
			s.SendText(User{ID: int64(5000 + i%chats), FirstName: "U"}, "answer")
		}
	})
	for range perChat {
		for i := range chats {
			jobs <- int64(5000 + i)
		}
	}
	close(jobs)
	wg.Wait()
	for i := range chats {
		h := s.History(int64(5000 + i))
		if len(h) != perChat+5 {
			t.Fatalf("chat %d has %d messages", i, len(h))
		}
		for j, m := range h {
			if m.ID != j+1 {
				t.Fatalf("chat %d: message_id %d at position %d", i, m.ID, j)
			}
		}
	}
	if got := s.Calls("sendMessage"); got != chats*perChat {
		t.Fatalf("calls = %d", got)
	}
	var ups []wireUpdate
	callJSON(t, s, "getUpdates", map[string]any{}).decode(t, &ups)
	if len(ups) != 100 || s.Stats().Pending != chats*5 {
		t.Fatalf("got %d updates, pending %d", len(ups), s.Stats().Pending)
	}
}
