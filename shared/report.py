"""The DoseReport: doseflow's normalized dose record (DESIGN §3).

Every extractor returns one of these per source object; the writer stores the
merged report of a study. Field names carry their units; an absent value is
``None`` and never 0. Units are converted once, by the extractors, at the edge.
"""
from __future__ import annotations
from shared.routes import RouteName

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

REPORT_SCHEMA = 1
# CtEvent.ssde_method of an SSDE the scanner reported (TID 10013, DCM 113930); doseflow never
# replaces such a value with one it computes.
REPORTED_SSDE = "reported by the scanner (DCM 113930)"
# CtEvent.water_equivalent_diameter_method of a Dw the scanner reported (DCM 113980); a Dw doseflow
# measures on the study's images (services/audit/water_equivalent.py) says how it was measured.
REPORTED_DW = "reported by the scanner (DCM 113980)"

Modality = Literal["CT", "RF", "DX", "CR", "PX", "MG", "XA", "NM"]
Route = RouteName  # one of shared/routes.py's names


class _Model(BaseModel):
    # extra="forbid": a misspelt field name in an extractor is a bug, not data.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Study(_Model):
    study_instance_uid: str
    accession_number: Optional[str] = None
    study_date: Optional[str] = None  # YYYY-MM-DD
    study_time: Optional[str] = None  # HH:MM:SS (fraction dropped)
    study_description: Optional[str] = None
    requested_procedure: Optional[str] = None
    procedure: Optional[str] = None
    modality: Optional[Modality] = None
    study_id: Optional[str] = None
    operator_name: Optional[str] = None
    performing_physician_name: Optional[str] = None
    referring_physician_name: Optional[str] = None
    comment: Optional[str] = None  # e.g. Philips Dose Info: description, protocol file, dose comments
    # doseflow's own, not the object's: the protocol mapping's category (services/audit/mapping.py)
    examination_category: Optional[str] = None


class Patient(_Model):
    age_years: Optional[float] = None
    sex: Optional[str] = None
    size_m: Optional[float] = None
    weight_kg: Optional[float] = None
    id_hash: Optional[str] = None  # keyed SHA-256 hex, only when configured
    name_hash: Optional[str] = None


class Equipment(_Model):
    manufacturer: Optional[str] = None
    model: Optional[str] = None
    station_name: Optional[str] = None
    institution_name: Optional[str] = None
    department: Optional[str] = None
    serial_number: Optional[str] = None
    software_versions: Optional[str] = None
    device_observer_uid: Optional[str] = None
    # One stable key per device from the identifiers above (shared/device.py, README "Device
    # identity"), set after every route; exports and `doseflow quality` group by it.
    device_key: Optional[str] = None


class Source(_Model):
    route: Route
    sop_class_uid: str
    sop_instance_uid: str


# --- CT ---------------------------------------------------------------------------------------


class CtSource(_Model):
    id: Optional[str] = None
    kvp: Optional[float] = None
    max_tube_current_mA: Optional[float] = None
    tube_current_mA: Optional[float] = None
    exposure_time_per_rotation_s: Optional[float] = None


class DoseCheck(_Model):
    """CT Dose Check alert/notification details (TID 10015)."""

    dlp_alert_value_configured: Optional[bool] = None
    ctdivol_alert_value_configured: Optional[bool] = None
    dlp_alert_value_mGycm: Optional[float] = None
    ctdivol_alert_value_mGy: Optional[float] = None
    accumulated_dlp_forward_estimate_mGycm: Optional[float] = None
    accumulated_ctdivol_forward_estimate_mGy: Optional[float] = None
    alert_reason_for_proceeding: Optional[str] = None
    alert_person_name: Optional[str] = None
    dlp_notification_value_configured: Optional[bool] = None
    ctdivol_notification_value_configured: Optional[bool] = None
    dlp_notification_value_mGycm: Optional[float] = None
    ctdivol_notification_value_mGy: Optional[float] = None
    dlp_forward_estimate_mGycm: Optional[float] = None
    ctdivol_forward_estimate_mGy: Optional[float] = None
    notification_reason_for_proceeding: Optional[str] = None
    notification_person_name: Optional[str] = None


class CtEvent(_Model):
    irradiation_event_uid: Optional[str] = None
    datetime_started: Optional[str] = None  # only Philips Dose Info supplies one
    acquisition_protocol: Optional[str] = None
    target_region: Optional[str] = None
    acquisition_type: Optional[str] = None
    exposure_time_s: Optional[float] = None
    scanning_length_mm: Optional[float] = None
    nominal_single_collimation_mm: Optional[float] = None
    nominal_total_collimation_mm: Optional[float] = None
    pitch_factor: Optional[float] = None
    number_of_xray_sources: Optional[float] = None
    ctdivol_mGy: Optional[float] = None
    ctdiw_phantom: Optional[Literal["head16", "body32"]] = None
    dlp_mGycm: Optional[float] = None
    effective_dose_mSv: Optional[float] = None
    xray_modulation_type: Optional[str] = None
    comment: Optional[str] = None
    sources: list[CtSource] = Field(default_factory=list)
    dose_check: Optional[DoseCheck] = None
    # Size-specific dose estimate (AAPM 204) and water-equivalent diameter (AAPM 220): read from the
    # RDSR when the scanner reports them, else SSDE computed from Dw; ssde_method says which.
    ssde_mGy: Optional[float] = None
    water_equivalent_diameter_mm: Optional[float] = None
    water_equivalent_diameter_method: Optional[str] = None  # REPORTED_DW, or how doseflow measured it
    ssde_method: Optional[str] = None
    ssde_reason: Optional[str] = None  # why ssde_mGy is null
    # doseflow's population estimate k x DLP (services/audit), apart from the scanner's effective_dose_mSv
    effective_dose_estimate_mSv: Optional[float] = None
    effective_dose_estimate_reason: Optional[str] = None  # why it is null


class Ct(_Model):
    total_dlp_mGycm: Optional[float] = None
    total_events: Optional[int] = None
    total_effective_dose_mSv: Optional[float] = None
    start_of_xray_irradiation: Optional[str] = None
    end_of_xray_irradiation: Optional[str] = None
    events: list[CtEvent] = Field(default_factory=list)
    # doseflow's own values (services/audit), each with what it was computed with; the scanner's
    # total_effective_dose_mSv stays as read.
    effective_dose_estimate_mSv: Optional[float] = None  # population estimate: sum of k x DLP per event
    effective_dose_estimate_method: Optional[str] = None  # e.g. "k-factor AAPM96 (ICRP 60) v2008"
    effective_dose_estimate_reason: Optional[str] = None  # why the estimate is null
    drl_set: Optional[str] = None  # e.g. "UK-2024 v2024-11-20"
    drl_id: Optional[str] = None  # the DRL row compared with, e.g. "UK-CT-08"
    drl_ratio_ctdivol: Optional[float] = None  # largest non-localizer CTDIvol / the row's CTDIvol
    drl_ratio_dlp: Optional[float] = None  # total DLP / the row's DLP
    drl_reason: Optional[str] = None  # why a ratio is null


# --- Projection X-ray (RF, XA, DX, CR, PX) ---------------------------------------------------


Plane = Literal["single", "A", "B", "all"]


class ProjectionPlane(_Model):
    plane: Plane
    dap_total_Gym2: Optional[float] = None
    dose_rp_total_Gy: Optional[float] = None
    fluoro_dap_total_Gym2: Optional[float] = None
    fluoro_dose_rp_total_Gy: Optional[float] = None
    total_fluoro_time_s: Optional[float] = None
    acquisition_dap_total_Gym2: Optional[float] = None
    acquisition_dose_rp_total_Gy: Optional[float] = None
    total_acquisition_time_s: Optional[float] = None
    total_radiographic_frames: Optional[int] = None
    reference_point_definition: Optional[str] = None


class Filter(_Model):
    type: Optional[str] = None
    material: Optional[str] = None
    thickness_min_mm: Optional[float] = None
    thickness_max_mm: Optional[float] = None


class ProjectionEvent(_Model):
    irradiation_event_uid: Optional[str] = None
    plane: Optional[Plane] = None
    datetime_started: Optional[str] = None
    event_type: Optional[str] = None
    acquisition_protocol: Optional[str] = None
    anatomy: Optional[str] = None
    laterality: Optional[str] = None
    image_view: Optional[str] = None
    dap_Gym2: Optional[float] = None
    dose_rp_Gy: Optional[float] = None
    entrance_exposure_at_rp_mGy: Optional[float] = None
    kvp: Optional[float] = None
    tube_current_mA: Optional[float] = None
    exposure_time_ms: Optional[float] = None
    exposure_uAs: Optional[float] = None
    pulse_width_ms: Optional[float] = None
    number_of_pulses: Optional[float] = None
    pulse_rate_per_s: Optional[float] = None
    irradiation_duration_s: Optional[float] = None
    fluoro_mode: Optional[str] = None
    filters: list[Filter] = Field(default_factory=list)
    positioner_primary_angle_deg: Optional[float] = None
    positioner_secondary_angle_deg: Optional[float] = None
    distance_source_to_detector_mm: Optional[float] = None
    distance_source_to_isocenter_mm: Optional[float] = None
    table_longitudinal_mm: Optional[float] = None
    table_lateral_mm: Optional[float] = None
    table_height_mm: Optional[float] = None
    collimated_field_area_m2: Optional[float] = None
    collimated_field_height_mm: Optional[float] = None
    collimated_field_width_mm: Optional[float] = None
    exposure_index: Optional[float] = None
    target_exposure_index: Optional[float] = None
    deviation_index: Optional[float] = None
    comment: Optional[str] = None


class Projection(_Model):
    planes: list[ProjectionPlane] = Field(default_factory=list)
    events: list[ProjectionEvent] = Field(default_factory=list)


# --- Mammography -----------------------------------------------------------------------------


class AccumulatedAgd(_Model):
    left: Optional[float] = None
    right: Optional[float] = None
    both: Optional[float] = None


class MammographyEvent(_Model):
    irradiation_event_uid: Optional[str] = None
    datetime_started: Optional[str] = None
    laterality: Optional[Literal["L", "R", "B"]] = None
    view: Optional[str] = None
    acquisition_protocol: Optional[str] = None
    agd_mGy: Optional[float] = None
    entrance_exposure_at_rp_mGy: Optional[float] = None
    kvp: Optional[float] = None
    tube_current_mA: Optional[float] = None
    exposure_time_ms: Optional[float] = None
    exposure_uAs: Optional[float] = None
    compression_thickness_mm: Optional[float] = None
    compression_force_N: Optional[float] = None
    anode_target: Optional[str] = None
    filter_material: Optional[str] = None
    half_value_layer_mm: Optional[float] = None
    target_region: Optional[str] = None


class Mammography(_Model):
    accumulated_agd_mGy: AccumulatedAgd = Field(default_factory=AccumulatedAgd)
    events: list[MammographyEvent] = Field(default_factory=list)


# --- The report -------------------------------------------------------------------------------


class DoseReport(_Model):
    schema_version: int = REPORT_SCHEMA
    study: Study
    patient: Patient = Field(default_factory=Patient)
    equipment: Equipment = Field(default_factory=Equipment)
    sources: list[Source] = Field(default_factory=list)
    ct: Optional[Ct] = None
    projection: Optional[Projection] = None
    mammography: Optional[Mammography] = None
    # Values that could not be read, said in words (field, tag or concept, why): the study is
    # stored with what was readable, and the warning stays with it.
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_negative_quantities(self) -> "DoseReport":
        """A dose, time, voltage, current, mass or size below zero is not physical: it is
        stored as absent, with a warning naming the field (angles, table positions and the
        deviation index may be negative and are left alone)."""
        for path, owner, name, value in _walk(self, ""):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0 \
                    and name.endswith(NON_NEGATIVE_SUFFIXES):
                object.__setattr__(owner, name, None)
                self.warnings.append(f"{path}: {value} is negative, which is not physical; stored as absent")
        return self

    def event_uids(self) -> list[str]:
        """Irradiation event UIDs of every section, in document order."""
        uids: list[str] = []
        for section in (self.ct, self.projection, self.mammography):
            if section is not None:
                uids.extend(e.irradiation_event_uid for e in section.events if e.irradiation_event_uid)
        return uids


NON_NEGATIVE_SUFFIXES = ("_mGy", "_Gy", "_Gym2", "_mGycm", "_mSv", "kvp", "_mA", "_uAs", "_ms", "_s", "_N",
                         "_m2", "_kg", "_m", "_years", "thickness_min_mm", "thickness_max_mm",
                         "collimation_mm", "scanning_length_mm", "pitch_factor", "_per_s",
                         "number_of_pulses", "compression_thickness_mm", "distance_source_to_detector_mm",
                         "distance_source_to_isocenter_mm", "collimated_field_height_mm",
                         "collimated_field_width_mm", "half_value_layer_mm", "total_events",
                         "total_radiographic_frames", "number_of_xray_sources")


def _walk(model: BaseModel, prefix: str):
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _walk(value, path + ".")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _walk(item, f"{path}[{i}].")
        else:
            yield path, model, name, value
