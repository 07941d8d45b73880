-- Every object that entered doseflow, keyed by the path it was ingested from, and how it ended.
CREATE TABLE object_ledger (
    path text PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('stored', 'ignored', 'failed')),
    stage text NOT NULL,
    reason text,
    route text,
    sop_instance_uid text,
    study_instance_uid text,
    first_seen timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX object_ledger_status ON object_ledger (status);
CREATE INDEX object_ledger_sop ON object_ledger (sop_instance_uid);

-- One row per DICOM object that contributed to a study, with its own report; the study's stored
-- report is assembled from these (shared/assembly.py), in arrival order.
CREATE TABLE source_object (
    sop_instance_uid text PRIMARY KEY,
    study_instance_uid text NOT NULL,
    route text NOT NULL,
    sop_class_uid text NOT NULL,
    path text,
    arrival bigserial NOT NULL,
    report jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX source_object_study ON source_object (study_instance_uid, arrival);
