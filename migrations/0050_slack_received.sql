-- The Slack requests that reached Nightshift lately, to know one Slack sends again after a
-- restart (audit28 M1: a Socket Mode envelope re-sent after a kill -9 ran `/agent credit`
-- twice; the memory of envelope ids was the process's). A row is written, durably, BEFORE
-- the command, click or form runs, and its acknowledgement's payload after: a re-send of
-- an answered one gets the same answer; a re-send of one never answered (the process
-- ended in between) is not run again. `key` is `envelope:<envelope_id>`: Socket Mode
-- envelopes only (HTTP mode records nothing: Slack re-sends no command or click there).
-- `answer` is the acknowledgement's JSON payload ('null': an empty one); NULL while not
-- answered.
-- Times in Unix seconds. Kept an hour or two (bot/retention.py): Slack re-sends within
-- minutes.
CREATE TABLE slack_received (
    key          TEXT PRIMARY KEY,
    received_at  REAL NOT NULL,
    answered_at  REAL,
    answer       TEXT
) WITHOUT ROWID;
CREATE INDEX slack_received_by_time ON slack_received (received_at);
