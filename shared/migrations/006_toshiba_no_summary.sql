-- A legacy CT study with images but no dose summary page ends `no_summary`: its objects are
-- recorded ignored with a reason naming the study (no dead letters), and a dose page arriving
-- later re-opens it like any new object.
ALTER TABLE toshiba_study DROP CONSTRAINT IF EXISTS toshiba_study_status_check;
ALTER TABLE toshiba_study ADD CONSTRAINT toshiba_study_status_check
    CHECK (status IN ('collecting', 'built', 'skipped', 'no_summary', 'failed'));
