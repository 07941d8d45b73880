-- High-dose alerts (services/alerts/) and their notifications' outbox (services/notifier/).
-- An alert is kept once per (study, rule, rule version, level); it is never deleted when its
-- study is rebuilt (no foreign key to study, whose rows are replaced on every update).
CREATE TABLE alert (
    id bigserial PRIMARY KEY,
    study_instance_uid text NOT NULL,
    rule_id text NOT NULL,
    rule_version integer NOT NULL,
    level text NOT NULL CHECK (level IN ('notice', 'warning', 'critical')),
    title text NOT NULL,
    source text NOT NULL,
    details jsonb NOT NULL,
    raised_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_by text,
    acknowledged_at timestamptz,
    UNIQUE (study_instance_uid, rule_id, rule_version, level)
);

-- The outbox: one row per alert, recipient and channel, written in the alert's transaction and
-- delivered by the notifier (at least once; receivers drop repeats by idempotency_key).
CREATE TABLE notification (
    id bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alert ON DELETE CASCADE,
    subscription text NOT NULL,
    channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
    address text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX notification_due ON notification (next_attempt_at) WHERE status = 'pending';

-- Per-patient rules read the patient's other studies by pseudonym.
CREATE INDEX study_patient_id_hash ON study (patient_id_hash) WHERE patient_id_hash IS NOT NULL;
