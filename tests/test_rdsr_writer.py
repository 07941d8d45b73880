"""doseflow's RDSR writer: a DoseReport's CT section written as an X-Ray Radiation Dose SR must
survive bytes, strict pydicom, DCMTK's dsrdump, and come back through doseflow's own rdsr
extractor as the same CT record."""
from __future__ import annotations

import io
import os
import shutil
import subprocess

import pydicom

from shared import device
import pytest
from pydicom.dataset import Dataset

from services.extractors.routes import extract
from shared import sr
from services.toshiba_builder.rdsr_writer import (
    PRIVATE_SCHEME,
    ct_rdsr_from_report,
    decimal_string,
    dicom_datetime,
    patient_age,
    uid_from,
)
from shared.report import Ct, CtEvent, CtSource, DoseCheck, DoseReport, Equipment, Patient, Study
from shared.codes import DCM, DERIVED_FROM_HUMAN_READABLE_REPORTS, SCT
from tests.conftest import CT_SR_CASES, acquisitions, expected, lookup, read

SOP_UID = uid_from("test", "rdsr_writer", "sop")


# Everything this module reads back is read as a strict reader would.
pytestmark = pytest.mark.usefixtures("strict_pydicom")


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def round_trip(ds: Dataset) -> Dataset:
    return pydicom.dcmread(io.BytesIO(to_bytes(ds)))


def full_report() -> DoseReport:
    """Every CT field filled, with the edge cases that matter: a 0, two sources, a region with
    no standard code, a meaning in unusual case, dose check with two named people."""
    return DoseReport(
        study=Study(study_instance_uid=uid_from("test", "study"), accession_number="ACC1",
                    study_date="2023-05-04", study_time="08:09:10", study_description="CT TEST",
                    requested_procedure="CT thorax", modality="CT", study_id="77",
                    operator_name="Op^One", performing_physician_name="Doc^A | Doc^B",
                    referring_physician_name="Ref^R"),
        patient=Patient(age_years=45, sex="O", size_m=1.65, weight_kg=70.5),
        equipment=Equipment(manufacturer="ACME", model="Scan 1", station_name="CT-A",
                            institution_name="Test Hospital", department="Rad",
                            serial_number="SN1", software_versions="V1\\V2",
                            device_observer_uid=uid_from("test", "device")),
        ct=Ct(total_dlp_mGycm=1234.56, total_events=3, total_effective_dose_mSv=18.2,
              start_of_xray_irradiation="2023-05-04T08:10:00.125000",
              end_of_xray_irradiation="2023-05-04T08:20:30",
              events=[
                  CtEvent(irradiation_event_uid=uid_from("test", "e1"), acquisition_protocol="Scout",
                          target_region="Chest", acquisition_type="Constant Angle Acquisition",
                          exposure_time_s=3.2, scanning_length_mm=400,
                          nominal_single_collimation_mm=0.6, nominal_total_collimation_mm=0.6,
                          number_of_xray_sources=1, ctdivol_mGy=0.0, ctdiw_phantom="body32",
                          dlp_mGycm=0.0, xray_modulation_type="NONE",
                          sources=[CtSource(id="A", kvp=120, max_tube_current_mA=35,
                                            tube_current_mA=35)]),
                  CtEvent(irradiation_event_uid=uid_from("test", "e2"),
                          acquisition_protocol="Dual source thorax", target_region="chest",
                          acquisition_type="spiral acquisition", exposure_time_s=1.5,
                          scanning_length_mm=301.5, nominal_single_collimation_mm=0.6,
                          nominal_total_collimation_mm=38.4, pitch_factor=3.2,
                          number_of_xray_sources=2, ctdivol_mGy=4.27, ctdiw_phantom="body32",
                          dlp_mGycm=134.56, effective_dose_mSv=2.1,
                          xray_modulation_type="XYZ_EC", comment="second event",
                          sources=[CtSource(id="A", kvp=100, max_tube_current_mA=500,
                                            tube_current_mA=212.5, exposure_time_per_rotation_s=0.28),
                                   CtSource(id="B", kvp=140, max_tube_current_mA=400,
                                            tube_current_mA=170, exposure_time_per_rotation_s=0.28)],
                          dose_check=DoseCheck(
                              dlp_alert_value_configured=True, ctdivol_alert_value_configured=False,
                              dlp_alert_value_mGycm=1000, accumulated_dlp_forward_estimate_mGycm=1100.5,
                              alert_reason_for_proceeding="Obese patient",
                              alert_person_name="Smith^Jane | Doe^John",
                              dlp_notification_value_configured=False,
                              ctdivol_notification_value_configured=True,
                              ctdivol_notification_value_mGy=50, ctdivol_forward_estimate_mGy=60.25,
                              notification_reason_for_proceeding="Clinical need",
                              notification_person_name="Smith^Jane")),
                  CtEvent(irradiation_event_uid=uid_from("test", "e3"), acquisition_protocol="Perfusion",
                          target_region="Left big toe region", acquisition_type="Stationary Acquisition",
                          exposure_time_s=30, ctdivol_mGy=180.25, ctdiw_phantom="head16",
                          dlp_mGycm=1100),
              ]),
    )


def written(report: DoseReport, **kwargs) -> Dataset:
    return round_trip(ct_rdsr_from_report(report, sop_instance_uid=SOP_UID, **kwargs))


# --- the round trip through doseflow's own extractor -----------------------------------------------


def test_every_ct_field_comes_back_through_the_rdsr_extractor_unchanged():
    # Given a report with every CT field, When it is written, read strictly and extracted
    report = full_report()
    back = extract(written(report), "rdsr")
    # Then the CT section is the same, with nothing to warn about
    assert back.ct == report.ct
    assert back.warnings == []


def test_study_patient_and_equipment_come_back_through_the_rdsr_extractor():
    report = full_report()
    back = extract(written(report), "rdsr")
    assert back.study == report.study
    # the device key is derived after every route (shared/device.py), not written into the object
    assert back.equipment.model_copy(update={"device_key": None}) == report.equipment
    assert back.equipment.device_key == device.key_of(back)
    assert back.patient == report.patient
    assert [s.sop_instance_uid for s in back.sources] == [SOP_UID]


@pytest.mark.parametrize("case", CT_SR_CASES)
def test_real_vendor_ct_reports_survive_a_rewrite(case):
    # Given the report doseflow reads from a real vendor object
    original = extract(read(f"{case}.dcm"), "rdsr")
    # When it is written by doseflow and read back
    back = extract(written(original), "rdsr").model_dump(mode="json")
    # Then every CT value the corpus expects of the vendor object is in the rewritten one
    exp = expected(case)
    tol = exp.get("tolerance_rel", 1e-4)
    for path, want in exp["expect"].items():
        if not path.startswith("ct."):
            continue
        got = lookup(back, path)
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=tol), path
        else:
            assert got == want, path
    assert back["ct"] == original.model_dump(mode="json")["ct"]


def test_a_zero_is_written_as_zero_and_comes_back_as_zero():
    ds = written(full_report())
    dose = sr.find(acquisitions(ds)[0], DCM("113829"))
    assert sr.measured(sr.find(dose, DCM("113830"))) == (0.0, "mGy", None)
    assert extract(ds, "rdsr").ct.events[0].ctdivol_mGy == 0.0


def test_absent_values_write_no_content_item_and_come_back_as_none():
    # The third event has no protocol parameters but exposure time, no sources, no effective dose
    ds = written(full_report())
    third = acquisitions(ds)[2]
    params = sr.find(third, DCM("113822"))
    assert [sr.concept_name(c) for c in sr.children(params)] == [DCM("113824")]
    assert sr.find(sr.find(third, DCM("113829")), DCM("113839")) is None
    assert sr.find(third, DCM("113842")) is None and sr.find(third, DCM("121106")) is None
    event = extract(ds, "rdsr").ct.events[2]
    assert event.pitch_factor is None and event.scanning_length_mm is None
    assert event.sources == [] and event.effective_dose_mSv is None


def test_an_event_with_no_parameters_or_dose_has_neither_container():
    report = DoseReport(study=Study(study_instance_uid="1.2.3", study_date="2020-01-01",
                                    study_time="10:00:00"),
                        ct=Ct(events=[CtEvent(irradiation_event_uid="1.2.3.4")]))
    ds = written(report)
    assert [sr.concept_name(c) for c in sr.children(acquisitions(ds)[0])] == [DCM("113769")]
    back = extract(ds, "rdsr")
    assert back.ct.events == report.ct.events
    assert back.ct.total_dlp_mGycm is None and back.ct.total_events is None


# --- coded values ----------------------------------------------------------------------------------


def code_item(item: Dataset) -> tuple[str, str, str]:
    c = item.ConceptCodeSequence[0]
    return c.CodingSchemeDesignator, c.CodeValue, c.CodeMeaning


def test_standard_acquisition_types_and_regions_get_their_ps3_16_codes():
    first, second, third = acquisitions(written(full_report()))
    assert code_item(sr.find(first, DCM("113820"))) == ("DCM", "113805", "Constant Angle Acquisition")
    assert code_item(sr.find(first, DCM("123014"))) == ("SCT", "816094009", "Chest")
    assert code_item(sr.find(third, DCM("113820"))) == ("DCM", "113806", "Stationary Acquisition")
    # Matched without regard to case, and the meaning is kept exactly as the report holds it
    assert code_item(sr.find(second, DCM("113820"))) == ("SCT", "116152004", "spiral acquisition")
    assert code_item(sr.find(second, DCM("123014"))) == ("SCT", "816094009", "chest")


def test_a_meaning_without_a_standard_code_gets_a_private_code_and_keeps_its_meaning():
    ds = written(full_report())
    scheme, value, meaning = code_item(sr.find(acquisitions(ds)[2], DCM("123014")))
    assert (scheme, meaning) == (PRIVATE_SCHEME, "Left big toe region")
    assert value.startswith("DF") and len(value) <= 16
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == PRIVATE_SCHEME
    assert extract(ds, "rdsr").ct.events[2].target_region == "Left big toe region"


def test_an_object_with_only_standard_codes_declares_no_private_scheme():
    report = full_report()
    report.ct.events = report.ct.events[:2]
    assert "CodingSchemeIdentificationSequence" not in written(report)


def test_phantoms_are_the_iec_head_and_body_codes():
    first, _, third = acquisitions(written(full_report()))
    assert code_item(sr.find(sr.find(first, DCM("113829")), DCM("113835")))[:2] == ("DCM", "113691")
    assert code_item(sr.find(sr.find(third, DCM("113829")), DCM("113835")))[:2] == ("DCM", "113690")


def test_dose_check_yes_and_no_are_sct_codes():
    dose = sr.find(acquisitions(written(full_report()))[1], DCM("113829"))
    alert = sr.find(dose, DCM("113900"))
    assert sr.coded_value(sr.find(alert, DCM("113901"))) == SCT("373066001")
    assert sr.coded_value(sr.find(alert, DCM("113902"))) == SCT("373067005")
    assert [str(p.PersonName) for p in sr.find_all(alert, DCM("113870"))] == ["Smith^Jane", "Doe^John"]


# --- units -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, concept, unit", [
    ((), "113811/113812", "{events}"),
    ((), "113811/113813", "mGy.cm"),
    ((), "113811/113814", "mSv"),
    ((1,), "113822/113824", "s"),
    ((1,), "113822/113825", "mm"),
    ((1,), "113822/113826", "mm"),
    ((1,), "113822/113827", "mm"),
    ((1,), "113822/113828", "{ratio}"),
    ((1,), "113822/113823", "{X-Ray sources}"),
    ((1,), "113822/113831/113733", "kV"),
    ((1,), "113822/113831/113833", "mA"),
    ((1,), "113822/113831/113734", "mA"),
    ((1,), "113822/113831/113834", "s"),
    ((1,), "113829/113830", "mGy"),
    ((1,), "113829/113838", "mGy.cm"),
    ((1,), "113829/113839", "mSv"),
])
def test_each_measurement_carries_its_ucum_unit(path, concept, unit):
    ds = written(full_report())
    node = acquisitions(ds)[path[0]] if path else ds
    for code in concept.split("/"):
        node = sr.find(node, DCM(code))
    units = node.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
    assert (units.CodingSchemeDesignator, units.CodeValue) == ("UCUM", unit)


# --- the object around the content -----------------------------------------------------------------


def test_the_object_is_an_xray_radiation_dose_sr_with_the_ct_template():
    raw = to_bytes(ct_rdsr_from_report(full_report(), sop_instance_uid=SOP_UID))
    ds = pydicom.dcmread(io.BytesIO(raw))
    assert raw[128:132] == b"DICM"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.88.67"
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == SOP_UID
    assert ds.Modality == "SR"
    assert sr.concept_name(ds) == DCM("113701")
    template = ds.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "10011")
    assert sr.coded_value(sr.find(ds, DCM("121058"))) == SCT("77477000")
    assert sr.uid(sr.find(ds, DCM("121012"))) == full_report().equipment.device_observer_uid


def test_the_same_report_gives_the_same_bytes():
    one = to_bytes(ct_rdsr_from_report(full_report(), sop_instance_uid=SOP_UID))
    two = to_bytes(ct_rdsr_from_report(full_report(), sop_instance_uid=SOP_UID))
    assert one == two


def test_patient_name_and_id_are_empty_unless_given():
    report = full_report()
    report.patient.id_hash = "ab" * 32
    report.patient.name_hash = "cd" * 32
    plain = written(report)
    assert str(plain.PatientName) == "" and plain.PatientID == ""
    assert ("ab" * 32).encode() not in to_bytes(plain)
    given = written(report, patient_identity=("Doe^Jane", "P123"))
    assert (str(given.PatientName), given.PatientID) == ("Doe^Jane", "P123")


def test_the_source_of_dose_information_is_written_only_when_given():
    assert sr.find(written(full_report()), DCM("113854")) is None
    ds = written(full_report(), dose_source=DERIVED_FROM_HUMAN_READABLE_REPORTS)
    assert sr.coded_value(sr.find(ds, DCM("113854"))) == DCM("113868")


def test_content_date_comes_from_the_caller_else_the_end_of_irradiation():
    assert (written(full_report()).ContentDate, written(full_report()).ContentTime) == ("20230504", "082030")
    ds = written(full_report(), content_datetime="2023-06-01T12:13:14")
    assert (ds.ContentDate, ds.ContentTime) == ("20230601", "121314")


def test_a_report_with_no_date_at_all_needs_a_content_datetime():
    report = DoseReport(study=Study(study_instance_uid="1.2.3"), ct=Ct())
    with pytest.raises(ValueError, match="content_datetime"):
        ct_rdsr_from_report(report, sop_instance_uid=SOP_UID)


def test_a_report_without_ct_is_refused():
    with pytest.raises(ValueError, match="no CT section"):
        ct_rdsr_from_report(DoseReport(study=Study(study_instance_uid="1.2.3")),
                            sop_instance_uid=SOP_UID)


def test_a_malformed_event_uid_is_refused_naming_the_content_item():
    report = full_report()
    report.ct.events[1].irradiation_event_uid = "1.2.abc"
    with pytest.raises(ValueError,
                       match=r"content item 'Irradiation Event UID': UID \(0040,A124\).*1\.2\.abc"):
        ct_rdsr_from_report(report, sop_instance_uid=SOP_UID)


def test_a_target_region_too_long_for_a_code_meaning_is_refused():
    report = full_report()
    report.ct.events[0].target_region = "x" * 65
    with pytest.raises(ValueError, match=r"content item 'Target Region': CodeMeaning \(0008,0104\)"):
        ct_rdsr_from_report(report, sop_instance_uid=SOP_UID)


def test_a_station_name_too_long_for_its_attribute_is_refused():
    report = full_report()
    report.equipment.station_name = "S" * 17
    with pytest.raises(ValueError, match=r"StationName \(0008,1010\)"):
        ct_rdsr_from_report(report, sop_instance_uid=SOP_UID)


def test_a_backslash_in_a_text_item_is_text_not_a_value_separator():
    report = full_report()
    report.ct.events[0].comment = "kernel B30f\\smooth"
    assert extract(written(report), "rdsr").ct.events[0].comment == "kernel B30f\\smooth"


def test_latin_text_declares_latin1_and_other_text_utf8():
    report = full_report()
    report.ct.events[0].acquisition_protocol = "Thorax nativ Ärzte"
    ds = written(report)
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    assert extract(ds, "rdsr").ct.events[0].acquisition_protocol == "Thorax nativ Ärzte"
    report.ct.events[0].acquisition_protocol = "胸部 CT"
    ds = written(report)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert extract(ds, "rdsr").ct.events[0].acquisition_protocol == "胸部 CT"
    assert "SpecificCharacterSet" not in written(full_report())


# --- value formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [(120.0, "120"), (0.0, "0"), (0.6, "0.6"), (1234.56, "1234.56"),
                                         (-2.5, "-2.5"), (1e-07, "1e-07")])
def test_numbers_are_written_as_the_shortest_decimal_string(value, text):
    assert decimal_string(value) == text


def test_a_number_too_long_for_a_decimal_string_is_rounded_to_16_characters():
    text = decimal_string(1 / 3)
    assert len(text) <= 16 and float(text) == pytest.approx(1 / 3, rel=1e-13)


@pytest.mark.parametrize("years, age", [(45, "045Y"), (45.9, "045Y"), (2, "002Y"), (1.5, "018M"),
                                        (0.25, "003M"), (0.05, "002W")])
def test_patient_age_is_an_age_string_in_completed_units(years, age):
    assert patient_age(years) == age


def test_iso_date_times_become_dicom_date_times_keeping_the_fraction():
    assert dicom_datetime("2023-05-04T08:10:00.125000") == "20230504081000.125000"
    assert dicom_datetime("2023-05-04T08:10:00") == "20230504081000"
    assert dicom_datetime("2023-05-04T08:10:00+01:00") == "20230504081000+0100"
    with pytest.raises(ValueError):
        dicom_datetime("2023-02-30T00:00:00")


# --- DCMTK -----------------------------------------------------------------------------------------


def dsrdump_or_skip() -> str:
    path = shutil.which("dsrdump")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("dsrdump (dcmtk) is not installed in CI")
        pytest.skip("dsrdump (dcmtk) not installed")
    return path


@pytest.mark.parametrize("protocol", ["Thorax", "Thorax nativ Ärzte"])
def test_dcmtk_reads_the_object_without_errors_or_warnings(tmp_path, protocol):
    dsrdump = dsrdump_or_skip()
    report = full_report()
    report.ct.events[1].acquisition_protocol = protocol
    path = tmp_path / "rdsr.dcm"
    pydicom.dcmwrite(path, ct_rdsr_from_report(report, sop_instance_uid=SOP_UID,
                                               patient_identity=("Doe^Jane", "P1")),
                     enforce_file_format=True)
    run = subprocess.run([dsrdump, str(path)], capture_output=True, text=True, errors="replace",
                         timeout=60)
    assert run.returncode == 0, run.stderr
    problems = [line for line in (run.stdout + run.stderr).splitlines()
                if line.startswith(("W:", "E:", "F:"))]
    assert problems == []
    assert '"Mean CTDIvol")="4.27" (mGy,UCUM,"mGy")' in run.stdout
