-- The Toshiba builder never blocks on one study. A study whose build hit a deployment fault
-- (OCR engine missing, output folder not writable, broker away) waits `retry_after` with a
-- backoff that grows with `attempts`, while other quiet studies are built; a study failed for a
-- reason of its own (dose page gone or unreadable, no summary) is `failed` and waits for a new
-- object or a replay.
ALTER TABLE toshiba_study
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN retry_after timestamptz;
