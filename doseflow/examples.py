"""The bundled example objects: small synthetic CT dose reports, written by doseflow's own RDSR
writer, so that a first `doseflow import examples/` has something real to store.

Everything here is made up: the patients, the "DOSEFLOW EXAMPLE" scanner and hospital, the
values (plausible for the protocols named, not measured). UIDs are derived from fixed names, so
regenerating gives byte-identical files:

    python -m doseflow.examples examples/

The committed files must equal what this module writes (tests/test_examples.py checks it).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple, Optional

import pydicom

from services.toshiba_builder.rdsr_writer import ct_rdsr_from_report, uid_from
from shared.codes import AUTOMATED_DATA_COLLECTION
from shared.report import Ct, CtEvent, CtSource, DoseCheck, DoseReport, Equipment, Patient, Study

# Every example UID lies under this root (a name-based UUID OID, PS3.5 B.2), derived from a fixed
# name: nothing here depends on the clock or on chance.
ROOT = uid_from("examples")


def example_uid(*arcs: int) -> str:
    return ".".join([ROOT, *(str(a) for a in arcs)])


class Example(NamedTuple):
    filename: str
    report: DoseReport
    sop_instance_uid: str
    series_instance_uid: str
    patient_identity: tuple[str, str]


SCANNER = Equipment(
    manufacturer="DOSEFLOW EXAMPLE",
    model="Synthetic CT 64",
    station_name="EXAMPLE-CT1",
    institution_name="DOSEFLOW EXAMPLE HOSPITAL",
    department="Radiology (synthetic)",
    serial_number="EXAMPLE-0001",
    software_versions="1.0",
    device_observer_uid=example_uid(9, 1),
)


def _study(number: int, *, date: str, time: str, description: str, requested: str,
           accession: str) -> Study:
    return Study(
        study_instance_uid=example_uid(number),
        accession_number=accession,
        study_date=date,
        study_time=time,
        study_description=description,
        requested_procedure=requested,
        modality="CT",
        study_id=str(number),
        operator_name="EXAMPLE^Operator",
        performing_physician_name="EXAMPLE^Radiologist",
        referring_physician_name="EXAMPLE^Referrer",
    )


def _scout(event_uid: str, *, region: str, length_mm: float, ctdivol: float, dlp: float,
           phantom: str) -> CtEvent:
    """A localiser: the tube parked, table moving (Constant Angle)."""
    return CtEvent(
        irradiation_event_uid=event_uid,
        acquisition_protocol="Topogram",
        target_region=region,
        acquisition_type="Constant Angle Acquisition",
        exposure_time_s=round(length_mm / 100.0 * 0.85, 2),
        scanning_length_mm=length_mm,
        nominal_single_collimation_mm=0.6,
        nominal_total_collimation_mm=0.6,
        number_of_xray_sources=1,
        ctdivol_mGy=ctdivol,
        ctdiw_phantom=phantom,
        dlp_mGycm=dlp,
        xray_modulation_type="NONE",
        sources=[CtSource(id="A", kvp=120, max_tube_current_mA=35, tube_current_mA=35)],
    )


def head() -> Example:
    """A routine head CT: localiser and one fixed-current spiral."""
    n = 1
    events = [
        _scout(example_uid(n, 4, 1), region="Head", length_mm=256, ctdivol=0.11, dlp=2.8,
               phantom="head16"),
        CtEvent(
            irradiation_event_uid=example_uid(n, 4, 2),
            acquisition_protocol="Routine Head",
            target_region="Head",
            acquisition_type="Spiral Acquisition",
            exposure_time_s=7.6,
            scanning_length_mm=162,
            nominal_single_collimation_mm=0.6,
            nominal_total_collimation_mm=38.4,
            pitch_factor=0.55,
            number_of_xray_sources=1,
            ctdivol_mGy=48.7,
            ctdiw_phantom="head16",
            dlp_mGycm=842.5,
            xray_modulation_type="NONE",
            sources=[CtSource(id="A", kvp=120, max_tube_current_mA=280, tube_current_mA=280,
                              exposure_time_per_rotation_s=1.0)],
        ),
    ]
    report = DoseReport(
        study=_study(n, date="2024-01-15", time="10:02:11", description="EXAMPLE CT HEAD",
                     requested="CT head without contrast", accession="EXAMPLE0001"),
        patient=Patient(age_years=54, sex="F", weight_kg=63),
        equipment=SCANNER,
        ct=Ct(total_dlp_mGycm=845.3, total_events=2,
              start_of_xray_irradiation="2024-01-15T10:03:02",
              end_of_xray_irradiation="2024-01-15T10:04:47",
              events=events),
    )
    return Example("ct-head.dcm", report, example_uid(n, 3, 1), example_uid(n, 2, 1),
                   ("EXAMPLE^Head", "DOSEFLOW-EX-1"))


def chest_abdomen_pelvis() -> Example:
    """A staging CT: localiser, arterial chest, portal-venous abdomen and pelvis. Tube current
    modulated, effective doses reported, dose check configured."""
    n = 2
    check = DoseCheck(
        dlp_alert_value_configured=True, ctdivol_alert_value_configured=True,
        dlp_alert_value_mGycm=2000, ctdivol_alert_value_mGy=80,
        dlp_notification_value_configured=True, ctdivol_notification_value_configured=True,
        dlp_notification_value_mGycm=1000, ctdivol_notification_value_mGy=50,
    )
    events = [
        _scout(example_uid(n, 4, 1), region="Chest, Abdomen and Pelvis", length_mm=650,
               ctdivol=0.14, dlp=11.5, phantom="body32"),
        CtEvent(
            irradiation_event_uid=example_uid(n, 4, 2),
            acquisition_protocol="Thorax arterial",
            target_region="Chest",
            acquisition_type="Spiral Acquisition",
            exposure_time_s=3.6,
            scanning_length_mm=330,
            nominal_single_collimation_mm=0.6,
            nominal_total_collimation_mm=38.4,
            pitch_factor=1.2,
            number_of_xray_sources=1,
            ctdivol_mGy=6.8,
            ctdiw_phantom="body32",
            dlp_mGycm=245.3,
            effective_dose_mSv=3.43,
            xray_modulation_type="ANGULAR+LONGITUDINAL",
            sources=[CtSource(id="A", kvp=100, max_tube_current_mA=320, tube_current_mA=145,
                              exposure_time_per_rotation_s=0.5)],
            dose_check=check,
        ),
        CtEvent(
            irradiation_event_uid=example_uid(n, 4, 3),
            acquisition_protocol="Abdomen-Pelvis portal venous",
            target_region="Abdomen and Pelvis",
            acquisition_type="Spiral Acquisition",
            exposure_time_s=7.9,
            scanning_length_mm=440,
            nominal_single_collimation_mm=0.6,
            nominal_total_collimation_mm=38.4,
            pitch_factor=0.9,
            number_of_xray_sources=1,
            ctdivol_mGy=9.1,
            ctdiw_phantom="body32",
            dlp_mGycm=412.7,
            effective_dose_mSv=6.19,
            xray_modulation_type="ANGULAR+LONGITUDINAL",
            comment="Synthetic example event: values are plausible, not measured",
            sources=[CtSource(id="A", kvp=120, max_tube_current_mA=400, tube_current_mA=180,
                              exposure_time_per_rotation_s=0.5)],
            dose_check=check,
        ),
    ]
    report = DoseReport(
        study=_study(n, date="2024-01-16", time="14:30:00",
                     description="EXAMPLE CT CHEST ABDOMEN PELVIS",
                     requested="CT chest, abdomen and pelvis with contrast", accession="EXAMPLE0002"),
        patient=Patient(age_years=67, sex="M", size_m=1.78, weight_kg=82),
        equipment=SCANNER,
        ct=Ct(total_dlp_mGycm=669.5, total_events=3, total_effective_dose_mSv=9.62,
              start_of_xray_irradiation="2024-01-16T14:31:05",
              end_of_xray_irradiation="2024-01-16T14:34:40",
              events=events),
    )
    return Example("ct-chest-abdomen-pelvis.dcm", report, example_uid(n, 3, 1),
                   example_uid(n, 2, 1), ("EXAMPLE^Staging", "DOSEFLOW-EX-2"))


def continued() -> list[Example]:
    """One abdomen study sent as two dose reports with disjoint events, as scanners do when an
    examination is continued after the first report was closed (here: a delayed phase). Each
    report's totals cover its own events; stored together they add up."""
    n = 3
    study = _study(n, date="2024-01-17", time="09:12:40", description="EXAMPLE CT ABDOMEN",
                   requested="CT abdomen with delayed phase", accession="EXAMPLE0003")
    patient = Patient(age_years=38, sex="F", weight_kg=71)
    identity = ("EXAMPLE^Continued", "DOSEFLOW-EX-3")
    first_events = [
        _scout(example_uid(n, 4, 1), region="Abdomen", length_mm=450, ctdivol=0.13, dlp=6.9,
               phantom="body32"),
        CtEvent(
            irradiation_event_uid=example_uid(n, 4, 2),
            acquisition_protocol="Abdomen portal venous",
            target_region="Abdomen",
            acquisition_type="Spiral Acquisition",
            exposure_time_s=5.2,
            scanning_length_mm=290,
            nominal_single_collimation_mm=0.6,
            nominal_total_collimation_mm=38.4,
            pitch_factor=0.9,
            number_of_xray_sources=1,
            ctdivol_mGy=8.6,
            ctdiw_phantom="body32",
            dlp_mGycm=268.4,
            xray_modulation_type="ANGULAR+LONGITUDINAL",
            sources=[CtSource(id="A", kvp=120, max_tube_current_mA=380, tube_current_mA=170,
                              exposure_time_per_rotation_s=0.5)],
        ),
    ]
    second_events = [
        CtEvent(
            irradiation_event_uid=example_uid(n, 4, 3),
            acquisition_protocol="Abdomen delayed",
            target_region="Abdomen",
            acquisition_type="Spiral Acquisition",
            exposure_time_s=3.1,
            scanning_length_mm=180,
            nominal_single_collimation_mm=0.6,
            nominal_total_collimation_mm=38.4,
            pitch_factor=0.9,
            number_of_xray_sources=1,
            ctdivol_mGy=8.2,
            ctdiw_phantom="body32",
            dlp_mGycm=164.9,
            xray_modulation_type="ANGULAR+LONGITUDINAL",
            sources=[CtSource(id="A", kvp=120, max_tube_current_mA=380, tube_current_mA=162,
                              exposure_time_per_rotation_s=0.5)],
        ),
    ]
    first = DoseReport(study=study, patient=patient, equipment=SCANNER, ct=Ct(
        total_dlp_mGycm=275.3, total_events=2,
        start_of_xray_irradiation="2024-01-17T09:13:30",
        end_of_xray_irradiation="2024-01-17T09:15:02",
        events=first_events))
    second = DoseReport(study=study, patient=patient, equipment=SCANNER, ct=Ct(
        total_dlp_mGycm=164.9, total_events=1,
        start_of_xray_irradiation="2024-01-17T09:31:48",
        end_of_xray_irradiation="2024-01-17T09:31:52",
        events=second_events))
    return [
        Example("ct-continued-1.dcm", first, example_uid(n, 3, 1), example_uid(n, 2, 1), identity),
        Example("ct-continued-2.dcm", second, example_uid(n, 3, 2), example_uid(n, 2, 2), identity),
    ]


def examples() -> list[Example]:
    return [head(), chest_abdomen_pelvis(), *continued()]


def write_examples(folder) -> list[Path]:
    """Write every example object into `folder` (created if missing); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for example in examples():
        ds = ct_rdsr_from_report(example.report, sop_instance_uid=example.sop_instance_uid,
                                 series_instance_uid=example.series_instance_uid,
                                 patient_identity=example.patient_identity,
                                 dose_source=AUTOMATED_DATA_COLLECTION)
        path = folder / example.filename
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m doseflow.examples FOLDER", file=sys.stderr)
        return 2
    for path in write_examples(args[0]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
