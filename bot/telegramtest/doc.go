// Package telegramtest is a fake Telegram Bot API server for dialoq's tests.
//
// The bot's production code talks to Telegram through tgbotapi (or plain
// HTTP). Tests point the same code at a Server instead: it listens on
// 127.0.0.1, speaks the Bot API's wire format (query string, form,
// multipart and JSON requests; {"ok":...,"result":...} answers; the real
// error codes and descriptions), and keeps everything the bot did so a test
// can look at the conversation as a user would see it.
//
// The server is deliberately strict where Telegram is strict, because the
// point is to make bot bugs visible before production does: empty or
// over-long texts, malformed HTML, oversized callback_data, edits that
// change nothing, answering a callback twice, writing to a user who blocked
// the bot. Where Telegram is lenient but its documentation is not (a bare
// "&" in HTML text), the server follows the documentation and rejects it.
//
// A test plays the users' side with SendText and PressButton, and waits for
// the bot's side with WaitMessages/WaitMessage/WaitFor, which are woken by
// state changes rather than by sleeping. Faults (InjectFault, SetChaos),
// blocking (Block) and rate limits (Options.Limits) let fault-tolerance and
// throttling code be exercised deterministically; Options.Clock replaces
// the clock used for dates and rate limits.
//
// Typical use:
//
//	srv := telegramtest.Start(t, telegramtest.Options{})
//	api, _ := tgbotapi.NewBotAPIWithAPIEndpoint(srv.Token(), srv.Endpoint())
//	go runBot(ctx, api)
//	alice := telegramtest.User{ID: 1001, FirstName: "Alice", LanguageCode: "de"}
//	srv.SendText(alice, "/start")
//	msgs, err := srv.WaitMessages(ctx, alice.ID, telegramtest.HasMessages(1))
//
// Where the fake knowingly differs from Telegram:
//   - Chats must be known before the bot can write to them: a user who
//     sent something (SendText, PressButton) or was added with AddUser, or
//     a group added with AddGroup. Others get "chat not found".
//   - Webhook URLs may be plain HTTP on any port (httptest servers); the
//     retry backoff is milliseconds, not minutes.
//   - Callback queries never expire; update IDs start at 100001.
//   - Only the methods dialoq uses are implemented (getMe, getUpdates,
//     setWebhook, deleteWebhook, getWebhookInfo, sendMessage,
//     editMessageText, editMessageReplyMarkup, editMessageCaption,
//     deleteMessage, answerCallbackQuery, setMyCommands, getMyCommands,
//     deleteMyCommands, sendDocument, sendPhoto, sendChatAction, getChat);
//     any other answers 404 "Not Found", so an unexpected call is visible.
//
// The server holds no global state; any number of servers may run in
// parallel tests.
package telegramtest
