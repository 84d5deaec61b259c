// Package loadtest drives a real dialoq bot with simulated Telegram users and measures
// what it costs: updates per second, reply latency, Redis commands and memory per
// dialogue, allocations and resident memory. It also injects faults (killed bot
// processes, a restarted Redis, an unreachable central store, a flaky Telegram,
// duplicated webhook deliveries) and checks afterwards that every questionnaire a
// user completed is in the central store exactly once, with every answer the user
// gave.
//
// # Users
//
// Each simulated user talks to the fake Bot API server (bot/telegramtest) the way a
// person does: it opens the CSO questionnaire by a deep link or from the menu, reads
// the keyboard the bot sent and presses its buttons (toggles and Done for multiple
// choice), and types numbers and text where a question asks for them, in a language
// picked at random among the supported ones, with a think time between actions. It
// keeps a mirror of its dialogue, stepping its own flows.Engine with exactly the inputs
// it sends, so the answers the bot must have stored are known without asking the bot.
// Every answer is checked on the mirror before it is sent, so users only give valid
// answers and every action has one expected reply.
//
// A user whose expected reply does not come within Config.ReplyTimeout does what a
// person would: it taps the same button again (button presses carry the prompt's
// token, so a repeated press cannot answer twice) and, if that brings nothing either,
// sends /resume and compares the question the bot shows with its mirror before and
// after its last action. That tells whether the action was applied (its reply was
// lost, e.g. the process died between commit and send) or not (it is sent again).
//
// # Bots
//
// Bots run in this process (bot.Bot values sharing Redis) or as `dialoq bot`
// processes (Config.Exec). In webhook mode with several replicas a small round-robin
// balancer stands in front of them. Submissions go to the embedded SQLite store in a
// temporary directory, to a PostgreSQL schema made for the run, or through a
// `dialoq central` process when that is to be stopped and restarted.
//
// Everything listens on 127.0.0.1; every loop is bounded by a count or a deadline.
package loadtest
