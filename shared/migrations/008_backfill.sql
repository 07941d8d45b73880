-- PACS backfill (`doseflow backfill`): every run, time slice, query, study, series and instance it
-- considered, with the decision and the reason, so a run can be audited and resumed.

-- A PACS node and its capability profile (probed once, then kept; configuration overrides it).
CREATE TABLE backfill_node (
    ae_title text NOT NULL,
    host text NOT NULL,
    port integer NOT NULL,
    profile jsonb NOT NULL,
    probed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ae_title, host, port)
);

CREATE TABLE backfill_run (
    id bigserial PRIMARY KEY,
    ae_title text NOT NULL,
    host text NOT NULL,
    port integer NOT NULL,
    date_from date NOT NULL,
    date_to date NOT NULL,
    modalities text[] NOT NULL,
    filters jsonb NOT NULL,
    dry_run boolean NOT NULL,
    status text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'interrupted', 'object_cap', 'failed')),
    reason text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    resumed_at timestamptz
);

-- A slice of the date range: a day, or part of one where the PACS capped its answers.
CREATE TABLE backfill_slice (
    run_id bigint NOT NULL REFERENCES backfill_run ON DELETE CASCADE,
    study_date date NOT NULL,
    time_from text NOT NULL,  -- HHMMSS
    time_to text NOT NULL,
    status text NOT NULL CHECK (status IN ('done', 'split', 'capped')),
    studies integer NOT NULL DEFAULT 0,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, study_date, time_from, time_to)
);

-- Every DIMSE request sent to the PACS: C-ECHO, C-FIND, C-MOVE (no patient identifiers).
CREATE TABLE backfill_request (
    id bigserial PRIMARY KEY,
    run_id bigint REFERENCES backfill_run ON DELETE CASCADE,
    command text NOT NULL,
    level text,
    keys jsonb NOT NULL,
    status integer,
    answers integer,
    completed integer,
    failed integer,
    warning integer,
    elapsed_ms integer NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backfill_request_run ON backfill_request (run_id, command);

CREATE TABLE backfill_study (
    run_id bigint NOT NULL REFERENCES backfill_run ON DELETE CASCADE,
    study_instance_uid text NOT NULL,
    study_date date,
    modalities text[],
    description text,
    decision text NOT NULL,
    reason text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    elapsed_ms integer,
    PRIMARY KEY (run_id, study_instance_uid)
);

CREATE TABLE backfill_series (
    run_id bigint NOT NULL REFERENCES backfill_run ON DELETE CASCADE,
    series_instance_uid text NOT NULL,
    study_instance_uid text NOT NULL,
    modality text,
    series_number integer,
    description text,
    station_name text,
    instances integer,
    sop_class_uid text,
    decision text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (run_id, series_instance_uid)
);

CREATE TABLE backfill_instance (
    run_id bigint NOT NULL REFERENCES backfill_run ON DELETE CASCADE,
    sop_instance_uid text NOT NULL,
    series_instance_uid text NOT NULL,
    study_instance_uid text NOT NULL,
    sop_class_uid text,
    instance_number integer,
    decision text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (run_id, sop_instance_uid)
);
CREATE INDEX backfill_instance_sop ON backfill_instance (sop_instance_uid, decision);
