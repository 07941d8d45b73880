-- The Toshiba builder's per-study state: it survives a restart, and several builder processes
-- build each study once (a study is claimed with FOR UPDATE SKIP LOCKED).
CREATE TABLE toshiba_study (
    study_instance_uid text PRIMARY KEY,
    status text NOT NULL DEFAULT 'collecting'
        CHECK (status IN ('collecting', 'built', 'skipped', 'failed')),
    reason text,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    built_at timestamptz,
    built_sop_instance_uids text[] NOT NULL DEFAULT '{}',
    builds integer NOT NULL DEFAULT 0
);
CREATE INDEX toshiba_study_due ON toshiba_study (status, last_seen);

-- What the builder keeps of each object: kind, study header, per-acquisition header sample.
CREATE TABLE toshiba_object (
    sop_instance_uid text PRIMARY KEY,
    study_instance_uid text NOT NULL REFERENCES toshiba_study ON DELETE CASCADE,
    path text NOT NULL,
    kind text NOT NULL,
    collected jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX toshiba_object_study ON toshiba_object (study_instance_uid);
