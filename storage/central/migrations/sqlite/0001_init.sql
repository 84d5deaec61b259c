-- Same tables and columns as the PostgreSQL migration. SQLite has no
-- timestamp type: times are fixed-width UTC text
-- ("2006-01-02T15:04:05.000000Z") so that text comparison is time order.
CREATE TABLE submissions (
    id             TEXT    PRIMARY KEY NOT NULL,
    flow           TEXT    NOT NULL,
    flow_version   INTEGER NOT NULL,
    flow_hash      TEXT    NOT NULL,
    lang           TEXT    NOT NULL,
    country        TEXT    NOT NULL,
    stakeholder    TEXT    NOT NULL,
    code           TEXT    NOT NULL DEFAULT '',
    started_at     TEXT    NOT NULL,
    finished_at    TEXT    NOT NULL,
    complete       BOOLEAN NOT NULL,
    answers_json   TEXT    NOT NULL,
    payload_sha256 TEXT    NOT NULL,
    received_at    TEXT    NOT NULL
);

CREATE INDEX submissions_flow_finished ON submissions (flow, finished_at);
CREATE INDEX submissions_country_stakeholder ON submissions (country, stakeholder);

CREATE TABLE submission_answers (
    submission_id TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    question      TEXT NOT NULL,
    item          TEXT NOT NULL DEFAULT '',
    value         TEXT NOT NULL,
    PRIMARY KEY (submission_id, question, item)
);

CREATE INDEX submission_answers_question ON submission_answers (question, item, value);
