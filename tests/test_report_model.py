"""The DoseReport model's own checks."""
from shared.report import Ct, CtEvent, DoseReport, Projection, ProjectionEvent, Study


def test_a_negative_dose_is_stored_as_absent_with_a_warning_naming_the_field():
    report = DoseReport(study=Study(study_instance_uid="1.2.3"),
                        ct=Ct(total_dlp_mGycm=-5.0, events=[CtEvent(dlp_mGycm=-1.0, ctdivol_mGy=3.0)]))
    assert report.ct.total_dlp_mGycm is None
    assert report.ct.events[0].dlp_mGycm is None
    assert report.ct.events[0].ctdivol_mGy == 3.0
    assert any("ct.events[0].dlp_mGycm" in w and "negative" in w for w in report.warnings)


def test_angles_table_positions_and_deviation_index_may_be_negative():
    report = DoseReport(study=Study(study_instance_uid="1.2.3"), projection=Projection(events=[ProjectionEvent(
        table_height_mm=-20.0, table_lateral_mm=-3.0, positioner_primary_angle_deg=-30.0, deviation_index=-1.5)]))
    event = report.projection.events[0]
    assert (event.table_height_mm, event.table_lateral_mm, event.positioner_primary_angle_deg,
            event.deviation_index) == (-20.0, -3.0, -30.0, -1.5)
    assert report.warnings == []


def test_zero_stays_zero():
    report = DoseReport(study=Study(study_instance_uid="1.2.3"), ct=Ct(events=[CtEvent(ctdivol_mGy=0.0)]))
    assert report.ct.events[0].ctdivol_mGy == 0.0
    assert report.warnings == []
