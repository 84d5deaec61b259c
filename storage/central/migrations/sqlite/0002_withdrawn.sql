-- Submissions a respondent withdrew (/forget). The id stays so that a copy still
-- queued in an outbox, delivered after the withdrawal, is not stored again.
CREATE TABLE withdrawn (
    id           TEXT PRIMARY KEY NOT NULL,
    withdrawn_at TEXT NOT NULL
);
