-- Submissions as received. Column names and order match the SQLite
-- migration; only the types differ (timestamptz/boolean here).
CREATE TABLE submissions (
    id             TEXT        PRIMARY KEY,  -- lower-case canonical UUID
    flow           TEXT        NOT NULL,
    flow_version   INTEGER     NOT NULL,
    flow_hash      TEXT        NOT NULL,
    lang           TEXT        NOT NULL,
    country        TEXT        NOT NULL,     -- '' = unknown
    stakeholder    TEXT        NOT NULL,
    code           TEXT        NOT NULL DEFAULT '',
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ NOT NULL,
    complete       BOOLEAN     NOT NULL,
    answers_json   TEXT        NOT NULL,     -- the answers object as posted
    payload_sha256 TEXT        NOT NULL,     -- fingerprint for idempotent re-posts
    received_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX submissions_flow_finished ON submissions (flow, finished_at);
CREATE INDEX submissions_country_stakeholder ON submissions (country, stakeholder);

-- One row per answer so reports are plain GROUP BY queries that run the
-- same on both databases. Matrix answers "matrix/item" are split into
-- question and item; item is '' for ordinary questions.
CREATE TABLE submission_answers (
    submission_id TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    question      TEXT NOT NULL,
    item          TEXT NOT NULL DEFAULT '',
    value         TEXT NOT NULL,
    PRIMARY KEY (submission_id, question, item)
);

CREATE INDEX submission_answers_question ON submission_answers (question, item, value);
