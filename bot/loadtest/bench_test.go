package loadtest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// driver feeds one user's updates to Bot.HandleUpdate directly: it injects them into
// the fake Telegram, fetches them with getUpdates as the poller would, and keeps a
// mirror of the dialogue to know which button to press next.
type driver struct {
	tb  testing.TB
	b   *bot.Bot
	srv *telegramtest.Server
	api *tgbotapi.BotAPI
	u   telegramtest.User
	eng *flows.Engine
	st  flows.State
	out flows.Output
	rtt *cmdCounter
}

func newDriver(tb testing.TB) *driver {
	tb.Helper()
	set, err := flows.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := locales.Embedded()
	if err != nil {
		tb.Fatal(err)
	}
	srv := telegramtest.Start(tb, telegramtest.Options{CallLogSize: -1})
	rdb, prefix := redistest.Client(tb)
	rtt := newCmdCounter()
	rdb.AddHook(rtt)
	eng := flows.NewEngine(set, cat)
	b, err := bot.New(context.Background(), bot.Config{
		Token: srv.Token(), Endpoint: srv.Endpoint(), Redis: rdb, Prefix: prefix,
		Engine: eng, Catalog: cat, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	api, err := tgbotapi.NewBotAPIWithAPIEndpoint(srv.Token(), srv.Endpoint())
	if err != nil {
		tb.Fatal(err)
	}
	return &driver{tb: tb, b: b, srv: srv, api: api, eng: eng, rtt: rtt,
		u: telegramtest.User{ID: 4242, FirstName: "B", LanguageCode: "ru"}}
}

// fetch gets update id as the poller would (confirming everything before it).
func (d *driver) fetch(id int) bot.Update {
	ups, err := d.api.GetUpdates(tgbotapi.UpdateConfig{Offset: id, Limit: 1})
	if err != nil || len(ups) != 1 || ups[0].UpdateID != id {
		d.tb.Fatalf("getUpdates %d: %v %v", id, ups, err)
	}
	data, err := json.Marshal(ups[0])
	if err != nil {
		d.tb.Fatal(err)
	}
	var up bot.Update
	if err := json.Unmarshal(data, &up); err != nil {
		d.tb.Fatal(err)
	}
	return up
}

func (d *driver) handle(up bot.Update) {
	if err := d.b.HandleUpdate(context.Background(), up); err != nil {
		d.tb.Fatal(err)
	}
}

// pressUpdate injects a press on the newest bot message with a keyboard.
func (d *driver) pressUpdate(data string, in flows.Input) bot.Update {
	var msg telegramtest.Message
	ms := d.srv.Messages(d.u.ID)
	for i := len(ms) - 1; i >= 0; i-- {
		if len(ms[i].Keyboard) > 0 {
			msg = ms[i]
			break
		}
	}
	id, _, err := d.srv.PressButton(d.u, msg.ID, data)
	if err != nil {
		d.tb.Fatal(err)
	}
	d.st, d.out = d.eng.Step(d.st, in)
	return d.fetch(id)
}

func (d *driver) textUpdate(text string, in *flows.Input) bot.Update {
	id := d.srv.SendText(d.u, text)
	if in != nil {
		d.st, d.out = d.eng.Step(d.st, *in)
	}
	return d.fetch(id)
}

// until opens the CSO questionnaire and answers it up to the prompt for key.
func (d *driver) until(key string) {
	start := flows.Input{Kind: flows.InStart, Flow: flowID, Lang: "ru"}
	d.handle(d.textUpdate("/start "+flowID, &start))
	for range 200 {
		p := d.out.Prompt
		if p == nil {
			d.tb.Fatalf("questionnaire ended before %s", key)
		}
		if p.Key == key {
			return
		}
		tok := strconv.Itoa(p.Token)
		switch {
		case p.Multi:
			in := flows.Input{Kind: flows.InText, Text: "1"}
			d.handle(d.textUpdate("1", &in))
		case len(p.Options) > 0:
			i := 0
			for j, o := range p.Options {
				if o.ID == "yes" {
					i = j
				}
			}
			d.handle(d.pressUpdate("c:"+tok+":"+strconv.Itoa(i), flows.Input{Kind: flows.InChoose, Option: p.Options[i].ID, Token: p.Token}))
		case p.Type == flows.TypeInteger:
			in := flows.Input{Kind: flows.InText, Text: "2001"}
			d.handle(d.textUpdate("2001", &in))
		default:
			in := flows.Input{Kind: flows.InText, Text: "Ответ"}
			d.handle(d.textUpdate("Ответ", &in))
		}
		if d.out.Error != "" {
			d.tb.Fatalf("%s refused: %s", p.Key, d.out.Error)
		}
	}
	d.tb.Fatalf("never reached %s", key)
}

// BenchmarkHandleUpdate is one update end to end through Bot.HandleUpdate: state
// Load and Commit on the real Redis, the engine step, rendering, and the Bot API
// calls (answerCallbackQuery, an edit, sendMessage) answered by the fake Telegram in
// this process, whose work is therefore in the time and allocations too. Injecting
// and fetching the update is not timed.
//
//	update=button: a press on the training-needs matrix, alternately an answer (the
//	               next item follows) and Back (the item is asked again)
//	update=typed:  a typed number for the staff question, alternately with /back
func BenchmarkHandleUpdate(b *testing.B) {
	b.Run("update=button", func(b *testing.B) {
		d := newDriver(b)
		d.until("training_needs/t01")
		before := d.rtt.snapshot()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			p := d.out.Prompt
			tok := strconv.Itoa(p.Token)
			var up bot.Update
			if i%2 == 0 {
				up = d.pressUpdate("c:"+tok+":2", flows.Input{Kind: flows.InChoose, Option: p.Options[2].ID, Token: p.Token})
			} else {
				up = d.pressUpdate("b:"+tok, flows.Input{Kind: flows.InBack, Token: p.Token})
			}
			b.StartTimer()
			d.handle(up)
		}
		b.StopTimer()
		after := d.rtt.snapshot().sub(before)
		b.ReportMetric(float64(after.hot)/float64(b.N), "redis-rtt/op")
	})
	b.Run("update=typed", func(b *testing.B) {
		d := newDriver(b)
		d.until("staff")
		before := d.rtt.snapshot()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			var up bot.Update
			if i%2 == 0 {
				in := flows.Input{Kind: flows.InText, Text: "42"}
				up = d.textUpdate("42", &in)
			} else {
				in := flows.Input{Kind: flows.InBack}
				up = d.textUpdate("/back", &in)
			}
			b.StartTimer()
			d.handle(up)
		}
		b.StopTimer()
		after := d.rtt.snapshot().sub(before)
		b.ReportMetric(float64(after.hot)/float64(b.N), "redis-rtt/op")
	})
}
