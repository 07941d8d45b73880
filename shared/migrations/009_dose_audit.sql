-- doseflow's own dose indices (services/audit): examination category, effective-dose estimate,
-- SSDE and water-equivalent diameter, DRL ratios, each with what it was computed with or why it is
-- null. 002 (generated from the report model) already has them on a new database; IF NOT EXISTS
-- adds them to one made before. Existing studies get values with `doseflow audit --remap`.
ALTER TABLE study
    ADD COLUMN IF NOT EXISTS examination_category text,
    ADD COLUMN IF NOT EXISTS ct_effective_dose_estimate_msv double precision,
    ADD COLUMN IF NOT EXISTS ct_effective_dose_estimate_method text,
    ADD COLUMN IF NOT EXISTS ct_effective_dose_estimate_reason text,
    ADD COLUMN IF NOT EXISTS ct_drl_set text,
    ADD COLUMN IF NOT EXISTS ct_drl_id text,
    ADD COLUMN IF NOT EXISTS ct_drl_ratio_ctdivol double precision,
    ADD COLUMN IF NOT EXISTS ct_drl_ratio_dlp double precision,
    ADD COLUMN IF NOT EXISTS ct_drl_reason text;

ALTER TABLE ct_event
    ADD COLUMN IF NOT EXISTS ssde_mgy double precision,
    ADD COLUMN IF NOT EXISTS water_equivalent_diameter_mm double precision,
    ADD COLUMN IF NOT EXISTS ssde_method text,
    ADD COLUMN IF NOT EXISTS ssde_reason text,
    ADD COLUMN IF NOT EXISTS effective_dose_estimate_msv double precision,
    ADD COLUMN IF NOT EXISTS effective_dose_estimate_reason text;
