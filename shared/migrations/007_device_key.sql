-- The study's device key (shared/device.py, README "Device identity"): exports and
-- `doseflow quality` group by it. 002 creates the column on a new database; this adds it to an
-- existing one. Studies stored before this migration get their key when next rebuilt, and the
-- quality report derives it from the stored report meanwhile.
ALTER TABLE study ADD COLUMN IF NOT EXISTS device_key text;
CREATE INDEX IF NOT EXISTS study_device_key ON study (device_key, study_date);
