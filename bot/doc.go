// Package bot is dialoq's Telegram channel: it turns Telegram updates into inputs of
// the flow engine, keeps each dialogue's state in Redis (storage/redisstate) and
// renders the engine's output as HTML messages with inline keyboards.
//
// # One update, one commit
//
// Every update is handled as Load + a pure step + Commit (two Redis round trips).
// Everything the update causes in Redis — the new state, a finished questionnaire's
// submission in the outbox, the activity index — is written by that one atomic Commit;
// messages to Telegram are sent only after it succeeded, so a crash can repeat a
// message but never show the user something that was not stored. The update_id
// watermark in Redis drops redelivered updates, and the version check serialises two
// replicas (or two quick presses) working on the same dialogue.
//
// # Transports
//
// Poll runs a long-polling loop with a fixed pool of workers keyed by chat, so one
// chat's updates stay in order while different chats proceed in parallel; the offset
// only moves past updates that were fully processed. WebhookHandler answers 200 only
// after the update is committed, so Telegram redelivers what failed. Run wires either
// transport to an HTTP server (webhook, /healthz, /metrics), the outbox delivery worker
// and the sweeper that posts abandoned dialogues as partial submissions.
//
// # Privacy
//
// Submissions carry no Telegram id or name. Logs carry no names, usernames or message
// texts; chat ids appear at debug level only. /forget deletes the dialogue state, the
// only thing stored under the user's id.
package bot
