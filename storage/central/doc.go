// Package central is dialoq's central submission store and its HTTP service.
//
// Submissions (one finished or abandoned dialogue each, without anything that
// identifies a person) arrive exactly once: Put is idempotent on the
// client-generated id, so the bot's outbox can retry freely. The same code
// runs on PostgreSQL (pgx through database/sql) and on an embedded SQLite file
// (modernc.org/sqlite, pure Go); see Open.
//
// On top of the store sit the coordinator's views, shaped like the tables of
// the IOM needs assessment: Responses (Table 1, responses per country and
// stakeholder type) and TrainingNeeds (Summary Table 7, the priority matrix),
// with fixed-width text renderers for the bot, and streaming CSV, XLSX and
// JSONL exports. NewServer exposes all of it over HTTP and NewClient posts to
// it.
package central
