-- Ages stored before doseflow rounded them (days / 365.25 at full precision) give the birth date
-- back from the study date. Round what is stored already to 0.1 year, as new reports are
-- (DOSEFLOW_AGE_PRECISION_YEARS=1 applies to new reports only).
UPDATE study SET patient_age_years = round(patient_age_years::numeric, 1)
 WHERE patient_age_years IS NOT NULL AND patient_age_years <> round(patient_age_years::numeric, 1);
UPDATE study SET report = jsonb_set(report, '{patient,age_years}',
                                    to_jsonb(round((report #>> '{patient,age_years}')::numeric, 1)))
 WHERE jsonb_typeof(report #> '{patient,age_years}') = 'number';
UPDATE source_object SET report = jsonb_set(report, '{patient,age_years}',
                                            to_jsonb(round((report #>> '{patient,age_years}')::numeric, 1)))
 WHERE jsonb_typeof(report #> '{patient,age_years}') = 'number';
