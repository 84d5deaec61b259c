package telegramtest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

func newAPI(t *testing.T, s *Server) *tgbotapi.BotAPI {
	t.Helper()
	api, err := tgbotapi.NewBotAPIWithAPIEndpoint(s.Token(), s.Endpoint())
	if err != nil {
		t.Fatalf("NewBotAPIWithAPIEndpoint: %v", err)
	}
	return api
}

func TestTgbotapiCompatibility(t *testing.T) {
	s := Start(t, Options{BotUsername: "survey_bot"})
	api := newAPI(t, s)
	if api.Self.UserName != "survey_bot" || !api.Self.IsBot {
		t.Fatalf("Self = %+v", api.Self)
	}

	s.SendText(alice, "/start")
	s.SendText(alice, "hello")
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
	if err != nil || len(ups) != 2 {
		t.Fatalf("GetUpdates: %v %+v", err, ups)
	}
	if !ups[0].Message.IsCommand() || ups[0].Message.Command() != "start" || ups[0].Message.From.LanguageCode != "en" || ups[0].Message.Chat.ID != alice.ID {
		t.Fatalf("update 0 = %+v", ups[0].Message)
	}
	s.SendText(alice, "third")
	ups, err = api.GetUpdates(tgbotapi.UpdateConfig{Offset: ups[1].UpdateID + 1, Timeout: 1})
	if err != nil || len(ups) != 1 || ups[0].Message.Text != "third" {
		t.Fatalf("GetUpdates with offset: %v %+v", err, ups)
	}

	msg := tgbotapi.NewMessage(alice.ID, "Do you like <b>Go</b>?")
	msg.ParseMode = tgbotapi.ModeHTML
	msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData("Yes", "q1:yes"),
		tgbotapi.NewInlineKeyboardButtonData("No", "q1:no"),
	), tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonURL("Docs", "https://go.dev")))
	sent, err := api.Send(msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sent.Text != "Do you like Go?" || len(sent.Entities) != 1 || !sent.Entities[0].IsBold() || sent.From.UserName != "survey_bot" ||
		sent.ReplyMarkup == nil || *sent.ReplyMarkup.InlineKeyboard[0][1].CallbackData != "q1:no" || *sent.ReplyMarkup.InlineKeyboard[1][0].URL != "https://go.dev" {
		t.Fatalf("sent = %+v", sent)
	}

	_, qid, err := s.PressButton(alice, sent.MessageID, "q1:yes")
	if err != nil {
		t.Fatal(err)
	}
	ups, err = api.GetUpdates(tgbotapi.UpdateConfig{Offset: ups[0].UpdateID + 1, Timeout: 1})
	if err != nil || len(ups) != 1 || ups[0].CallbackQuery == nil {
		t.Fatalf("callback update: %v %+v", err, ups)
	}
	q := ups[0].CallbackQuery
	if q.ID != qid || q.Data != "q1:yes" || q.Message.MessageID != sent.MessageID || q.From.ID != alice.ID || q.Message.ReplyMarkup == nil {
		t.Fatalf("callback = %+v", q)
	}
	if _, err := api.Request(tgbotapi.NewCallback(q.ID, "Saved")); err != nil {
		t.Fatalf("answer: %v", err)
	}
	if _, err := api.Request(tgbotapi.NewCallback(q.ID, "again")); err == nil || !strings.Contains(err.Error(), "query is too old") {
		t.Fatalf("second answer: %v", err)
	}

	edited, err := api.Send(tgbotapi.NewEditMessageText(alice.ID, sent.MessageID, "Do you like Go? — Yes"))
	if err != nil || edited.Text != "Do you like Go? — Yes" || edited.EditDate == 0 || edited.ReplyMarkup != nil {
		t.Fatalf("edit: %v %+v", err, edited)
	}
	if _, err := api.Send(tgbotapi.NewEditMessageText(alice.ID, sent.MessageID, "Do you like Go? — Yes")); err == nil || !strings.Contains(err.Error(), "message is not modified") {
		t.Fatalf("unchanged edit: %v", err)
	}
	kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("Undo", "q1:undo")))
	if _, err := api.Send(tgbotapi.NewEditMessageReplyMarkup(alice.ID, sent.MessageID, kb)); err != nil {
		t.Fatalf("edit markup: %v", err)
	}
	if m, _ := s.LastMessage(alice.ID); m.Keyboard[0][0].CallbackData != "q1:undo" {
		t.Fatalf("keyboard = %+v", m.Keyboard)
	}

	doc, err := api.Send(tgbotapi.NewDocument(alice.ID, tgbotapi.FileBytes{Name: "answers.xlsx", Bytes: []byte("PK\x03\x04fake")}))
	if err != nil || doc.Document == nil || doc.Document.FileName != "answers.xlsx" || doc.Document.FileSize != 8 {
		t.Fatalf("document: %v %+v", err, doc.Document)
	}
	if _, err := api.Send(tgbotapi.NewDocument(alice.ID, tgbotapi.FileID(doc.Document.FileID))); err != nil {
		t.Fatalf("document by file_id: %v", err)
	}
	photo, err := api.Send(tgbotapi.NewPhoto(alice.ID, tgbotapi.FileBytes{Name: "chart.png", Bytes: pngBytes(t, 4, 3)}))
	if err != nil || len(photo.Photo) != 1 || photo.Photo[0].Width != 4 {
		t.Fatalf("photo: %v %+v", err, photo.Photo)
	}
	if d := s.Documents(alice.ID); len(d) != 3 || string(d[0].Data) != "PK\x03\x04fake" || d[0].MimeType != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Fatalf("documents = %+v", d)
	}

	if _, err := api.Request(tgbotapi.NewChatAction(alice.ID, tgbotapi.ChatTyping)); err != nil {
		t.Fatalf("chat action: %v", err)
	}
	if _, err := api.Request(tgbotapi.NewDeleteMessage(alice.ID, photo.MessageID)); err != nil {
		t.Fatalf("delete: %v", err)
	}

	cmds := []tgbotapi.BotCommand{{Command: "start", Description: "Start the survey"}, {Command: "lang", Description: "Change language"}}
	if _, err := api.Request(tgbotapi.NewSetMyCommands(cmds...)); err != nil {
		t.Fatalf("setMyCommands: %v", err)
	}
	de := []tgbotapi.BotCommand{{Command: "start", Description: "Umfrage starten"}}
	if _, err := api.Request(tgbotapi.NewSetMyCommandsWithScopeAndLanguage(tgbotapi.NewBotCommandScopeAllPrivateChats(), "de", de...)); err != nil {
		t.Fatalf("setMyCommands de: %v", err)
	}
	got, err := api.GetMyCommandsWithConfig(tgbotapi.NewGetMyCommandsWithScopeAndLanguage(tgbotapi.NewBotCommandScopeAllPrivateChats(), "de"))
	if err != nil || len(got) != 1 || got[0].Description != "Umfrage starten" {
		t.Fatalf("getMyCommands: %v %+v", err, got)
	}
	if all, _ := api.GetMyCommands(); len(all) != 2 {
		t.Fatalf("default commands = %+v", all)
	}
	if _, err := api.Request(tgbotapi.NewDeleteMyCommands()); err != nil || s.Commands("") != nil {
		t.Fatalf("deleteMyCommands: %v %+v", err, s.Commands(""))
	}
}

func TestTgbotapiErrors(t *testing.T) {
	s := Start(t, Options{})
	api := newAPI(t, s)
	s.AddUser(alice)

	var tgErr *tgbotapi.Error
	s.InjectFault("sendMessage", TooManyRequests(5), 1)
	_, err := api.Send(tgbotapi.NewMessage(alice.ID, "x"))
	if !errors.As(err, &tgErr) || tgErr.Code != 429 || tgErr.RetryAfter != 5 {
		t.Fatalf("429: %#v", err)
	}
	s.Block(alice.ID)
	_, err = api.Send(tgbotapi.NewMessage(alice.ID, "x"))
	if !errors.As(err, &tgErr) || tgErr.Code != 403 || tgErr.Message != "Forbidden: bot was blocked by the user" {
		t.Fatalf("403: %#v", err)
	}
	s.Unblock(alice.ID)
	bad := tgbotapi.NewMessage(alice.ID, "a <3 b")
	bad.ParseMode = tgbotapi.ModeHTML
	if _, err = api.Send(bad); !errors.As(err, &tgErr) || tgErr.Code != 400 || !strings.HasPrefix(tgErr.Message, "Bad Request: can't parse entities") {
		t.Fatalf("html: %#v", err)
	}
	long := tgbotapi.NewMessage(alice.ID, strings.Repeat("👍", 2049))
	if _, err = api.Send(long); err == nil || err.Error() != "Bad Request: message is too long" {
		t.Fatalf("too long: %v", err)
	}
	data := strings.Repeat("x", 65)
	kb := tgbotapi.NewMessage(alice.ID, "kb")
	kb.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("x", data)))
	if _, err = api.Send(kb); err == nil || err.Error() != "Bad Request: BUTTON_DATA_INVALID" {
		t.Fatalf("callback data: %v", err)
	}
	s.InjectFault("sendMessage", BadGatewayHTML(), 1)
	if _, err = api.Send(tgbotapi.NewMessage(alice.ID, "x")); err == nil || errors.As(err, &tgErr) {
		t.Fatalf("HTML 502 should be a decode error, got %#v", err)
	}
	s.InjectFault("sendDocument", ServerError(500), 1)
	if _, err = api.Send(tgbotapi.NewDocument(alice.ID, tgbotapi.FileBytes{Name: "a.txt", Bytes: []byte("a")})); err == nil || err.Error() != "Internal Server Error" {
		t.Fatalf("multipart 500: %v", err)
	}
	if _, err := tgbotapi.NewBotAPIWithAPIEndpoint("1:wrong", s.Endpoint()); err == nil || err.Error() != "Unauthorized" {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestTgbotapiWebhook(t *testing.T) {
	s := Start(t, Options{})
	api := newAPI(t, s)
	ctx := testCtx(t)
	// The bot answers straight from its webhook handler, which tgbotapi
	// supports with WriteToHTTPResponse.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := api.HandleUpdate(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		tgbotapi.WriteToHTTPResponse(w, tgbotapi.NewMessage(u.Message.Chat.ID, "echo: "+u.Message.Text))
	}))
	defer hook.Close()
	wh, _ := tgbotapi.NewWebhook(hook.URL)
	wh.MaxConnections = 3
	if _, err := api.Request(wh); err != nil {
		t.Fatalf("setWebhook: %v", err)
	}
	info, err := api.GetWebhookInfo()
	if err != nil || !info.IsSet() || info.URL != hook.URL || info.MaxConnections != 3 {
		t.Fatalf("info: %v %+v", err, info)
	}
	if _, err := api.GetUpdates(tgbotapi.UpdateConfig{}); err == nil || !strings.HasPrefix(err.Error(), "Conflict: can't use getUpdates") {
		t.Fatalf("getUpdates with webhook: %v", err)
	}
	s.SendText(alice, "ping")
	if _, err := s.WaitMessages(ctx, alice.ID, LastContains("echo: ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Request(tgbotapi.DeleteWebhookConfig{DropPendingUpdates: true}); err != nil {
		t.Fatalf("deleteWebhook: %v", err)
	}
}

// questionnaireBot is a tiny bot in the shape dialoq's will have: it asks
// one question with inline buttons, records the answer, edits the question
// and sends a report. It exists to show the server driving a real
// tgbotapi update loop end to end.
func questionnaireBot(t *testing.T, api *tgbotapi.BotAPI, updates tgbotapi.UpdatesChannel, wg *sync.WaitGroup) {
	defer wg.Done()
	questions := map[string]string{"en": "How are you?", "de": "Wie geht's?"}
	for u := range updates {
		switch {
		case u.Message != nil && u.Message.Command() == "start":
			q := questions[u.Message.From.LanguageCode]
			m := tgbotapi.NewMessage(u.Message.Chat.ID, q)
			m.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
				tgbotapi.NewInlineKeyboardButtonData("👍", "q:good"),
				tgbotapi.NewInlineKeyboardButtonData("👎", "q:bad"),
			))
			if _, err := api.Send(m); err != nil {
				t.Errorf("send question: %v", err)
			}
		case u.CallbackQuery != nil:
			q := u.CallbackQuery
			if _, err := api.Request(tgbotapi.NewCallback(q.ID, "")); err != nil {
				t.Errorf("answer: %v", err)
			}
			chat := q.Message.Chat.ID
			edit := tgbotapi.NewEditMessageText(chat, q.Message.MessageID, q.Message.Text+" <i>"+strings.TrimPrefix(q.Data, "q:")+"</i>")
			edit.ParseMode = tgbotapi.ModeHTML
			if _, err := api.Send(edit); err != nil {
				t.Errorf("edit: %v", err)
			}
			report := fmt.Sprintf("user,answer\n%d,%s\n", q.From.ID, q.Data)
			if _, err := api.Send(tgbotapi.NewDocument(chat, tgbotapi.FileBytes{Name: "report.csv", Bytes: []byte(report)})); err != nil {
				t.Errorf("report: %v", err)
			}
		}
	}
}

func TestEndToEndQuestionnaire(t *testing.T) {
	s := Start(t, Options{})
	api := newAPI(t, s)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go questionnaireBot(t, api, api.GetUpdatesChan(tgbotapi.UpdateConfig{Timeout: 30}), &wg)
	t.Cleanup(func() {
		api.StopReceivingUpdates()
		s.Close() // releases the pending long poll so the loop can see the stop
		wg.Wait()
	})

	users := []User{alice, {ID: 2002, FirstName: "Dora", LanguageCode: "de"}}
	for _, u := range users {
		s.SendText(u, "/start")
	}
	for _, u := range users {
		q, err := s.WaitMessage(ctx, u.ID, func(m Message) bool { return len(m.Keyboard) == 1 })
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"en": "How are you?", "de": "Wie geht's?"}[u.LanguageCode]; q.Text != want {
			t.Fatalf("%s got %q", u.FirstName, q.Text)
		}
		if _, _, err := s.PressButtonText(u, q.ID, "👍"); err != nil {
			t.Fatal(err)
		}
		msgs, err := s.WaitMessages(ctx, u.ID, func(ms []Message) bool { return len(ms) == 2 && ms[0].Edits == 1 })
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(msgs[0].Text, " good") || msgs[0].Keyboard != nil || msgs[1].Document == nil || msgs[1].Document.FileName != "report.csv" {
			t.Fatalf("%s: %+v", u.FirstName, msgs)
		}
		if got := string(s.Documents(u.ID)[0].Data); got != fmt.Sprintf("user,answer\n%d,q:good\n", u.ID) {
			t.Fatalf("report = %q", got)
		}
	}
	if err := s.WaitFor(ctx, func() bool { return len(s.UnansweredCallbacks()) == 0 }); err != nil {
		t.Fatal(err)
	}
}
