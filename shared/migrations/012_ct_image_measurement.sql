-- Water-equivalent diameter of sampled CT axial images (AAPM 220), one row per image, kept per
-- study whether or not its dose report has arrived: the study's events take their Dw (and so
-- their SSDE) from these rows each time the study is rebuilt, in whichever order RDSR and
-- images come. No foreign key to study: the images may come first.
CREATE TABLE ct_image_measurement (
    sop_instance_uid text PRIMARY KEY,
    study_instance_uid text NOT NULL,
    series_instance_uid text,
    irradiation_event_uid text,
    z_mm double precision,
    dw_mm double precision NOT NULL CHECK (dw_mm > 0),
    area_mm2 double precision NOT NULL,
    mean_hu double precision NOT NULL,
    edge_share double precision NOT NULL,
    measure_ms double precision NOT NULL,
    path text NOT NULL,
    measured_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ct_image_measurement_study ON ct_image_measurement (study_instance_uid);

-- Where an event's Dw comes from: the scanner (DCM 113980) or doseflow's image measurement.
ALTER TABLE ct_event ADD COLUMN IF NOT EXISTS water_equivalent_diameter_method text;
