"""Study assembly (services/writer/assembly.py) on real per-object reports extracted from the corpus:
cumulative and continued CT RDSRs, For Presentation / For Processing mammography copies,
radiographic images, the Hologic tomosynthesis projection, and synthetic overlaps built by
copying real reports. The README rule "How a study is assembled" is what is checked, and that
the study comes out the same whichever order its objects arrive in."""
from __future__ import annotations

import itertools

import pydicom
import pytest

from services.extractors.routes import ROUTE_ALIASES, extract
from services.writer.assembly import assemble
from shared.dicom import DX_FOR_PRESENTATION, MG_FOR_PRESENTATION
from shared import routes
from shared.report import AccumulatedAgd, DoseReport, Source
from tests.conftest import CORPUS, assert_matches_expected, corpus_file, expected

MULTI = ["CT-RDSR-Siemens-Multi-1.dcm", "CT-RDSR-Siemens-Multi-2.dcm", "CT-RDSR-Siemens-Multi-3.dcm"]
CONTINUED = ["CT-RDSR-Siemens-Continued-1.dcm", "CT-RDSR-Siemens-Continued-2.dcm"]
SENO = ["MG-Im-GE_Seno_1_ForPresentation.dcm", "MG-Im-GE_Seno_1_ForProcessing.dcm",
        "MG-Im-GE_Seno_2_ForPresentation.dcm"]
XR220 = ["DX-Im-GE_XR220-1.dcm", "DX-Im-GE_XR220-2.dcm", "DX-Im-GE_XR220-3.dcm"]
DR7500 = ["DX-Im-Carestream_DR7500-1.dcm", "DX-Im-Carestream_DR7500-2.dcm"]

_extracted: dict[tuple[str, str], DoseReport] = {}


def report_of(name: str, route: str) -> DoseReport:
    """The object's own report, as its extractor makes it (read once, handed out as a copy)."""
    if (name, route) not in _extracted:
        _extracted[(name, route)] = extract(pydicom.dcmread(corpus_file(name)), route)
    return _extracted[(name, route)].model_copy(deep=True)


def reports(names: list[str], route: str) -> list[DoseReport]:
    return [report_of(n, route) for n in names]


def orders(items: list) -> list[list]:
    return [list(p) for p in itertools.permutations(items)]


def order_id(order) -> str:
    return ",".join(str(i) for i in order)


def dumped(report: DoseReport) -> dict:
    return report.model_dump(mode="json")


def as_other_object(report: DoseReport, sop_uid: str, **source_update) -> DoseReport:
    """The report as if another object (another SOP Instance UID) had carried it."""
    source = report.sources[0].model_copy(update={"sop_instance_uid": sop_uid, **source_update})
    return report.model_copy(update={"sources": [source]}, deep=True)


def with_image_event(report: DoseReport, section: str, sop_uid: str, sop_class: str, **event_update) -> DoseReport:
    """An image report copied as another image (image routes: event UID = SOP Instance UID)."""
    copy = as_other_object(report, sop_uid, sop_class_uid=sop_class)
    part = getattr(copy, section)
    event = part.events[0].model_copy(update={"irradiation_event_uid": sop_uid, **event_update})
    setattr(copy, section, part.model_copy(update={"events": [event]}))
    return copy


# --- cumulative CT RDSRs (Siemens "Multi") -----------------------------------------------------


@pytest.mark.parametrize("order", orders([0, 1, 2]), ids=order_id)
def test_siemens_cumulative_rdsrs_in_any_order_leave_the_fullest_report(order):
    # Given the three cumulative RDSRs of one study, each a superset of the one before
    parts = reports(MULTI, "rdsr")
    # When they arrive in this order
    study = assemble([parts[i] for i in order])
    # Then the study is Multi-3: its events in its document order, its total, its window
    multi3 = parts[2]
    assert [e.model_dump() for e in study.ct.events] == [e.model_dump() for e in multi3.ct.events]
    assert study.ct.total_dlp_mGycm == pytest.approx(236.09)
    assert study.ct.total_events == multi3.ct.total_events
    assert study.ct.start_of_xray_irradiation == multi3.ct.start_of_xray_irradiation
    assert study.ct.end_of_xray_irradiation == multi3.ct.end_of_xray_irradiation
    assert sorted(s.sop_instance_uid for s in study.sources) == sorted(p.sources[0].sop_instance_uid for p in parts)
    assert study.warnings == []
    assert_matches_expected(dumped(study), "CT-RDSR-Siemens-Multi")


def test_a_cumulative_rdsr_arriving_after_the_fuller_one_adds_nothing():
    multi1, _, multi3 = reports(MULTI, "rdsr")
    study = assemble([multi3, multi1])
    assert len(study.ct.events) == 3
    assert study.ct.total_dlp_mGycm == pytest.approx(236.09)  # not 236.09 + Multi-1's total


# --- continued CT study (Siemens "Continued") --------------------------------------------------


@pytest.mark.parametrize("order", orders([0, 1]), ids=order_id)
def test_continued_rdsrs_with_disjoint_events_add_up(order):
    # Given the two RDSRs of a study the scanner continued in a second report
    parts = reports(CONTINUED, "rdsr")
    first, second = parts
    # When they arrive in either order
    study = assemble([parts[i] for i in order])
    # Then the study holds all four events and the sum of both totals
    assert len(study.ct.events) == 4
    assert first.ct.total_dlp_mGycm == pytest.approx(60.17)
    assert second.ct.total_dlp_mGycm == pytest.approx(56.44)
    assert study.ct.total_dlp_mGycm == pytest.approx(60.17 + 56.44)
    assert study.ct.total_events == first.ct.total_events + second.ct.total_events
    # and the irradiation window spans both reports
    assert study.ct.start_of_xray_irradiation == first.ct.start_of_xray_irradiation
    assert study.ct.end_of_xray_irradiation == second.ct.end_of_xray_irradiation
    assert len(study.sources) == 2
    assert_matches_expected(dumped(study), "CT-RDSR-Siemens-Continued")


# --- mammography images: For Presentation and For Processing copies ---------------------------


@pytest.mark.parametrize("order", orders([0, 1, 2]), ids=order_id)
def test_ge_seno_processing_copy_of_an_exposure_adds_nothing_in_any_order(order):
    # Given two exposures, the first sent as For Presentation and For Processing images
    parts = reports(SENO, "mg_image")
    presentation, processing, second = parts
    assert processing.mammography.events[0].datetime_started == presentation.mammography.events[0].datetime_started
    # When the three images arrive in this order
    study = assemble([parts[i] for i in order])
    # Then there are two events, the duplicated exposure represented by the For Presentation copy
    events = study.mammography.events
    assert [e.irradiation_event_uid for e in events] == [presentation.sources[0].sop_instance_uid,
                                                        second.sources[0].sop_instance_uid]
    # the left AGD accumulates the two exposures once each (0.547 + 1.409 mGy)
    assert study.mammography.accumulated_agd_mGy.left == pytest.approx(0.547 + 1.409)
    assert study.mammography.accumulated_agd_mGy.right is None
    # and the study time is the first exposure's image's, whichever arrived first
    assert study.study.study_time == "13:21:35"
    assert_matches_expected(dumped(study), "MG-Im-GE_Seno")


# --- radiographic images -----------------------------------------------------------------------


@pytest.mark.parametrize("order", orders([0, 1, 2]), ids=order_id)
def test_ge_xr220_images_make_one_study_ordered_by_acquisition_time(order):
    parts = reports(XR220, "dx_image")
    study = assemble([parts[i] for i in order])
    assert [e.irradiation_event_uid for e in study.projection.events] == [p.sources[0].sop_instance_uid for p in parts]
    assert study.projection.planes[0].dap_total_Gym2 == pytest.approx((0.41 + 0.82 + 2.05) * 1e-5)
    assert study.projection.planes[0].total_radiographic_frames == 3
    assert_matches_expected(dumped(study), "DX-Im-GE_XR220")


@pytest.mark.parametrize("order", orders([0, 1]), ids=order_id)
def test_carestream_dr7500_images_make_one_study_ordered_by_acquisition_time(order):
    parts = reports(DR7500, "dx_image")
    study = assemble([parts[i] for i in order])
    assert len(study.projection.planes) == 1
    assert study.projection.planes[0].total_radiographic_frames == 2
    assert_matches_expected(dumped(study), "DX-Im-Carestream_DR7500")


@pytest.mark.parametrize("order", orders([0, 1]), ids=order_id)
def test_two_images_with_the_same_start_time_but_different_dap_are_both_kept(order):
    # Given two radiographic images whose start times are equal (e.g. both fell back to the study
    # time) but whose doses differ: two exposures, not one sent twice
    image = report_of("DX-Im-GE_XR220-1.dcm", "dx_image")
    other = with_image_event(image, "projection", "1.2.826.0.1.3680043.10.543.1", image.sources[0].sop_class_uid,
                             dap_Gym2=9.9e-6)
    assert other.projection.events[0].datetime_started == image.projection.events[0].datetime_started
    other.projection.planes = [other.projection.planes[0].model_copy(update={"dap_total_Gym2": 9.9e-6})]
    parts = [image, other]
    # When they are assembled
    study = assemble([parts[i] for i in order])
    # Then both count
    assert len(study.projection.events) == 2
    assert study.projection.planes[0].dap_total_Gym2 == pytest.approx(4.1e-6 + 9.9e-6)
    assert study.projection.planes[0].total_radiographic_frames == 2


@pytest.mark.parametrize("order", orders([0, 1]), ids=order_id)
def test_dx_presentation_and_processing_copies_of_one_exposure_count_once(order):
    # Given the XR220 For Processing image and a For Presentation copy of the same exposure
    processing = report_of("DX-Im-GE_XR220-1.dcm", "dx_image")
    presentation = with_image_event(processing, "projection", "1.2.826.0.1.3680043.10.543.2", DX_FOR_PRESENTATION)
    parts = [processing, presentation]
    study = assemble([parts[i] for i in order])
    # Then one event, represented by the For Presentation copy, and the DAP once
    assert [e.irradiation_event_uid for e in study.projection.events] == ["1.2.826.0.1.3680043.10.543.2"]
    assert study.projection.planes[0].dap_total_Gym2 == pytest.approx(4.1e-6)
    assert study.projection.planes[0].total_radiographic_frames == 1


# --- the same object twice ---------------------------------------------------------------------


@pytest.mark.parametrize("name,route", [
    ("CT-RDSR-Siemens-Multi-3.dcm", "rdsr"),
    ("RF-RDSR-Philips_Allura.dcm", "rdsr"),
    ("DX-Im-GE_XR220-2.dcm", "dx_image"),
    ("MG-Im-GE_Seno_1_ForPresentation.dcm", "mg_image"),
    ("CT-SC-Philips_Brilliance16P.dcm", "ct_philips"),
])
def test_the_same_object_twice_is_the_same_as_once(name, route):
    once = assemble([report_of(name, route)])
    assert dumped(assemble([report_of(name, route), report_of(name, route)])) == dumped(once)
    same = report_of(name, route)
    assert dumped(assemble([same, same])) == dumped(once)


def test_a_single_object_is_its_own_study_report():
    report = report_of("CT-RDSR-Siemens-Multi-3.dcm", "rdsr")
    assert dumped(assemble([report])) == dumped(report)


def test_assembly_does_not_change_the_objects_reports():
    parts = reports(MULTI, "rdsr") + reports(CONTINUED, "rdsr")
    before = [dumped(p) for p in parts]
    assemble(parts)
    assert [dumped(p) for p in parts] == before


def test_no_reports_is_an_error_not_an_empty_study():
    with pytest.raises(ValueError):
        assemble([])


# --- partly overlapping objects ----------------------------------------------------------------


def partly_overlapping() -> tuple[DoseReport, DoseReport]:
    """Multi-3 (events e0 e1 e2), and another object of the study with e1 e2 and a new e3."""
    full = report_of("CT-RDSR-Siemens-Multi-3.dcm", "rdsr")
    other = as_other_object(full, "1.2.826.0.1.3680043.10.543.3")
    e1, e2 = other.ct.events[1], other.ct.events[2]
    e3 = e2.model_copy(update={"irradiation_event_uid": "1.2.826.0.1.3680043.10.543.4", "dlp_mGycm": 10.0})
    other.ct = other.ct.model_copy(update={
        "events": [e1, e2, e3], "total_events": 3,
        "total_dlp_mGycm": e1.dlp_mGycm + e2.dlp_mGycm + e3.dlp_mGycm})
    return full, other


@pytest.mark.parametrize("order", orders([0, 1]), ids=order_id)
def test_partly_overlapping_objects_take_totals_from_the_union_of_events_with_a_warning(order):
    # Given two objects of one study that share two of their events
    parts = partly_overlapping()
    # When they are assembled
    study = assemble([parts[i] for i in order])
    # Then the shared events count once, and so do their doses
    assert len(study.ct.events) == 4
    assert study.ct.total_events == 4
    assert study.ct.total_dlp_mGycm == pytest.approx(7.46 + 69.81 + 158.82 + 10.0)
    # (adding the objects' totals would have counted 69.81 + 158.82 twice)
    assert study.ct.total_dlp_mGycm != pytest.approx(parts[0].ct.total_dlp_mGycm + parts[1].ct.total_dlp_mGycm)
    assert any("share some but not all events" in w for w in study.warnings)


def test_partly_overlapping_objects_without_event_doses_have_no_total_rather_than_zero():
    full, other = partly_overlapping()
    for part in (full, other):
        part.ct = part.ct.model_copy(update={
            "events": [e.model_copy(update={"dlp_mGycm": None}) for e in part.ct.events]})
    study = assemble([full, other])
    assert study.ct.total_dlp_mGycm is None


# --- secondary captures ------------------------------------------------------------------------


@pytest.mark.parametrize("same_dose", [False, True], ids=["other_dose", "same_dose"])
@pytest.mark.parametrize("order", orders([0, 1]), ids=order_id)
def test_hologic_projection_sc_is_kept_when_it_shares_a_time_with_a_2d_image(order, same_dose):
    # Given Hologic's tomosynthesis projection (a secondary capture) and a 2D image of the same
    # breast acquired at the same time
    projection = report_of("MG-Im-Hologic-PropProj.dcm", "mg_image")
    assert projection.sources[0].sop_class_uid == "1.2.840.10008.5.1.4.1.1.7"
    agd = projection.mammography.events[0].agd_mGy
    image = with_image_event(projection, "mammography", "1.2.826.0.1.3680043.10.543.5", MG_FOR_PRESENTATION,
                             **({} if same_dose else {"agd_mGy": 1.23}))
    image.mammography.accumulated_agd_mGy.right = image.mammography.events[0].agd_mGy
    parts = [projection, image]
    # When both are assembled, in either order
    study = assemble([parts[i] for i in order])
    # Then both exposures count: the secondary capture is not a copy of the 2D image
    assert sorted(e.irradiation_event_uid for e in study.mammography.events) == sorted(
        [projection.sources[0].sop_instance_uid, "1.2.826.0.1.3680043.10.543.5"])
    assert study.mammography.accumulated_agd_mGy.right == pytest.approx(agd + image.mammography.events[0].agd_mGy)


# --- absent is None ----------------------------------------------------------------------------


def test_adding_objects_whose_ct_totals_are_absent_keeps_them_absent():
    parts = reports(CONTINUED, "rdsr")
    for part in parts:
        part.ct = part.ct.model_copy(update={"total_dlp_mGycm": None, "total_events": None,
                                             "total_effective_dose_mSv": None})
    study = assemble(parts)
    assert study.ct.total_dlp_mGycm is None
    assert study.ct.total_events is None
    assert study.ct.total_effective_dose_mSv is None


def test_adding_images_without_dap_keeps_the_plane_total_absent():
    parts = reports(XR220, "dx_image")
    for part in parts:
        part.projection = part.projection.model_copy(update={
            "events": [e.model_copy(update={"dap_Gym2": None}) for e in part.projection.events],
            "planes": [p.model_copy(update={"dap_total_Gym2": None}) for p in part.projection.planes]})
    study = assemble(parts)
    assert study.projection.planes[0].dap_total_Gym2 is None
    assert study.projection.planes[0].dose_rp_total_Gy is None
    assert study.projection.planes[0].total_radiographic_frames == 3


def test_adding_mammography_images_without_agd_keeps_the_accumulated_agd_absent():
    parts = reports(["MG-Im-GE_Seno_1_ForPresentation.dcm", "MG-Im-GE_Seno_2_ForPresentation.dcm"], "mg_image")
    for part in parts:
        part.mammography = part.mammography.model_copy(update={
            "events": [e.model_copy(update={"agd_mGy": None}) for e in part.mammography.events],
            "accumulated_agd_mGy": AccumulatedAgd()})
    study = assemble(parts)
    assert study.mammography.accumulated_agd_mGy.model_dump() == {"left": None, "right": None, "both": None}


def test_a_total_present_as_zero_stays_zero():
    parts = reports(CONTINUED, "rdsr")
    for part in parts:
        part.ct = part.ct.model_copy(update={"total_effective_dose_mSv": 0.0})
    assert assemble(parts).ct.total_effective_dose_mSv == 0.0


# --- arrival order does not matter -------------------------------------------------------------


def multi_file_cases() -> list[str]:
    """Every corpus case assembled from several objects by the extractor routes (the Toshiba
    cases are built by the Toshiba builder first, not assembled object by object)."""
    import json

    cases = []
    for path in sorted((CORPUS / "expected").glob("*.json")):
        case = json.loads(path.read_text())
        if len(case["files"]) > 1 and case["route"] != "toshiba":
            cases.append(case["case"])
    return cases


@pytest.mark.parametrize("case", multi_file_cases() or ["corpus-missing"])
def test_a_multi_object_study_does_not_depend_on_arrival_order(case):
    if case == "corpus-missing":
        corpus_file("expected")
    spec = expected(case)
    parts = reports(spec["files"], ROUTE_ALIASES[spec["route"]])
    first = dumped(assemble(parts))
    for order in orders(list(range(len(parts))))[1:]:
        assert dumped(assemble([parts[i] for i in order])) == first, f"{case}: order {order} differs"
    assert_matches_expected(first, case)


def test_a_continued_study_whose_second_report_states_no_total_warns_that_the_sum_is_partial():
    first, second = reports(["CT-RDSR-Siemens-Continued-1.dcm", "CT-RDSR-Siemens-Continued-2.dcm"], "rdsr")
    second = second.model_copy(update={"ct": second.ct.model_copy(update={"total_dlp_mGycm": None})})
    study = assemble([first, second])
    assert study.ct.total_dlp_mGycm == pytest.approx(first.ct.total_dlp_mGycm)
    assert any("ct.total_dlp_mGycm" in w and "state no total" in w for w in study.warnings)


def test_a_legacy_study_rebuilt_keeps_only_the_last_builds_warnings():
    # The Toshiba builder stores its warnings beside the built RDSR as a report with no dose. A study
    # rebuilt (an image arrived late) brings a new warnings report: the earlier one's warnings go.
    rdsr = report_of(MULTI[0], "rdsr")
    uid = rdsr.study.study_instance_uid

    def notes(sop: str, warnings: list[str]) -> DoseReport:
        return DoseReport(study=rdsr.study.model_copy(), warnings=warnings,
                          sources=[Source(route=routes.TOSHIBA.name, sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
                                          sop_instance_uid=sop)])

    stale = "dose screen row 2 (Helical): no CT image with the same Toshiba CTDIvol; event left unenriched"
    first, rebuilt = notes(f"{uid}.1", [stale]), notes(f"{uid}.2", [])
    assert stale in assemble([rdsr, first]).warnings
    study = assemble([rdsr, first, rebuilt])
    assert stale not in study.warnings and study.warnings == assemble([rdsr]).warnings
    assert [s.sop_instance_uid for s in study.sources] == [rdsr.sources[0].sop_instance_uid, f"{uid}.2"]
    # a later build that warns again is what the study says
    assert assemble([rdsr, rebuilt, notes(f"{uid}.3", ["new"])]).warnings[-1:] == ["new"]
