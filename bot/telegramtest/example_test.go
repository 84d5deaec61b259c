package telegramtest_test

import (
	"context"
	"fmt"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/dialoq/dialoq/bot/telegramtest"
)

// A bot under test talks to the fake server through tgbotapi, unchanged;
// the test plays the user and inspects what the user would see.
func Example() {
	srv := telegramtest.New(telegramtest.Options{})
	defer srv.Close()
	api, err := tgbotapi.NewBotAPIWithAPIEndpoint(srv.Token(), srv.Endpoint())
	if err != nil {
		panic(err)
	}

	// The bot: one long-poll round that answers /start with a question.
	go func() {
		ups, _ := api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
		for _, u := range ups {
			m := tgbotapi.NewMessage(u.Message.Chat.ID, "Ready for <b>3</b> questions?")
			m.ParseMode = tgbotapi.ModeHTML
			m.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
				tgbotapi.NewInlineKeyboardButtonData("Go!", "begin")))
			api.Send(m)
		}
	}()

	// The test.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice := telegramtest.User{ID: 1001, FirstName: "Alice", LanguageCode: "en"}
	srv.SendText(alice, "/start")
	msgs, err := srv.WaitMessages(ctx, alice.ID, telegramtest.HasMessages(1))
	if err != nil {
		panic(err)
	}
	fmt.Println(msgs[0].Text, msgs[0].Buttons())
	_, queryID, err := srv.PressButton(alice, msgs[0].ID, "begin")
	fmt.Println(queryID != "", err, srv.UnansweredCallbacks()[0] == queryID)
	// Output:
	// Ready for 3 questions? [{Go! begin }]
	// true <nil> true
}
