"""What a PACS backfill asks for and what it takes: pure decisions, no network, no database.

- the date range cut into slices (a day; halves of it where the PACS capped its answers);
- the PACS node (`AET@HOST:PORT`) and its capability profile;
- which studies and series pass the description and station filters;
- which objects of a study are dose objects (RDSR/ESR, MG/DX images where no RDSR exists, the
  Philips "Dose Info" capture, the legacy Toshiba/GE dose screens with one image per CT series);
- the one table of SOP classes and modalities that are never retrieved (PET/NM and other bulk
  data), and how a C-MOVE status is read.

doseflow/backfill/scu.py does the DICOM I/O, store.py the recording, run.py the sequence.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

from shared import codes, dicom

# --- the PACS node ---------------------------------------------------------------------------------

_NODE = re.compile(r"^([^@\s\\]{1,16})@([A-Za-z0-9.\-:\[\]]+):(\d{1,5})$")


@dataclass(frozen=True)
class Node:
    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_node(text: str) -> Node:
    """`AET@HOST:PORT`; raises ValueError with what is wrong."""
    m = _NODE.match(text.strip())
    if not m or not 0 < int(m.group(3)) < 65536:
        raise ValueError(f"not a PACS node {text!r}: write AET@HOST:PORT (e.g. PACS@10.0.0.5:104; "
                         "the AE title is at most 16 characters)")
    return Node(m.group(1), m.group(2).strip("[]"), int(m.group(3)))


def resolve_node(text: str, configured: Iterable[str]) -> Node:
    """`--pacs` is `AET@HOST:PORT` or the name of a node in DOSEFLOW_BACKFILL_NODES (`NAME=AET@HOST:PORT`)."""
    for entry in configured:
        name, sep, spec = entry.partition("=")
        if sep and name.strip().lower() == text.strip().lower():
            return parse_node(spec)
    if "@" not in text:
        names = [e.partition("=")[0].strip() for e in configured if "=" in e]
        raise ValueError(f"no PACS node named {text!r} in DOSEFLOW_BACKFILL_NODES"
                         + (f" (configured: {', '.join(names)})" if names else "") + "; or give AET@HOST:PORT")
    return parse_node(text)


# --- the capability profile ------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What this PACS answers. Probed once per node (scu.probe_profile) and stored; each field can
    be overridden in DOSEFLOW_BACKFILL_PROFILE. The backfill's choices follow it."""

    matches_modalities_in_study: bool = False  # a study query with ModalitiesInStudy=X returns only studies with X
    returns_modalities_in_study: bool = False
    series_sop_class: bool = False  # SOPClassUID at series level (not standard; Orthanc answers it)
    series_instance_count: bool = False  # NumberOfSeriesRelatedInstances
    series_station_name: bool = False
    series_description: bool = False
    image_level_in_sr: bool = True  # answers image-level queries in SR series
    image_sop_class: bool = False  # SOPClassUID at image level
    image_concept_name: bool = False  # ConceptNameCodeSequence at image level (SR document title)
    max_answers: int = 0  # the PACS returns at most this many answers to a query (0: unknown)

    @classmethod
    def from_dict(cls, data: dict) -> "Profile":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def overridden(self, overrides: dict[str, str]) -> "Profile":
        values = {}
        for key, raw in overrides.items():
            f = next((f for f in dataclasses.fields(self) if f.name == key), None)
            if f is None:
                raise ValueError(f"unknown profile key {key!r} in DOSEFLOW_BACKFILL_PROFILE; known: "
                                 + ", ".join(f.name for f in dataclasses.fields(self)))
            if f.type in ("int", int):
                values[key] = int(raw)
            elif raw.strip().lower() in ("1", "true", "yes", "on"):
                values[key] = True
            elif raw.strip().lower() in ("0", "false", "no", "off"):
                values[key] = False
            else:
                raise ValueError(f"profile key {key!r} takes true or false, not {raw!r}")
        return dataclasses.replace(self, **values)


def profile_overrides(entries: Iterable[str], node: Node, name: Optional[str] = None) -> dict[str, str]:
    """DOSEFLOW_BACKFILL_PROFILE entries `key=value` (every node) or `NODE.key=value`, where NODE
    is a configured node name or the node's AE title."""
    out = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep:
            raise ValueError(f"DOSEFLOW_BACKFILL_PROFILE entry {entry!r} is not key=value")
        scope, dot, key = key.strip().rpartition(".")
        if dot and scope.lower() not in {node.ae_title.lower(), (name or "").lower()}:
            continue
        out[key] = value.strip()
    return out


# --- modalities ------------------------------------------------------------------------------------

# `--modality` groups and the Modality codes each stands for.
MODALITY_GROUPS: dict[str, tuple[str, ...]] = {
    "CT": ("CT",),
    "MG": ("MG",),
    "DX": ("DX", "CR", "PX"),
    "RF": ("RF", "XA"),
}
# Series of these modalities carry no pixels of their own; a study made only of them (an RDSR sent
# alone, say) may hold a dose report of any modality.
DOCUMENT_MODALITIES = {"SR", "KO", "PR", "DOC", "OT", ""}


def parse_modalities(text: Optional[str]) -> tuple[str, ...]:
    if not text:
        return tuple(MODALITY_GROUPS)
    groups = tuple(dict.fromkeys(m.strip().upper() for m in text.split(",") if m.strip()))
    unknown = [g for g in groups if g not in MODALITY_GROUPS]
    if unknown or not groups:
        what = ", ".join(unknown) if unknown else repr(text)
        raise ValueError(f"unknown modality {what}: choose from {', '.join(MODALITY_GROUPS)}")
    return groups


def modality_codes(groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(code for g in groups for code in MODALITY_GROUPS[g])


def study_query_modalities(groups: Iterable[str], profile: Profile) -> tuple[Optional[str], ...]:
    """The ModalitiesInStudy values to query per slice, one C-FIND each (never a multi-value list:
    PACSes read those differently). A PACS that returns ModalitiesInStudy gets one query per slice
    (None), its answers filtered here, which costs no series query either; one that matches on it
    without returning it, one query per modality (and SR, for reports sent alone); one that does
    neither, one query per slice, the study's modalities then taken from its series."""
    if profile.returns_modalities_in_study or not profile.matches_modalities_in_study:
        return (None,)
    return modality_codes(groups) + ("SR",)


def wanted_study(modalities: Iterable[str], groups: Iterable[str]) -> bool:
    """A study with a requested modality, or one holding only documents (an RDSR sent alone)."""
    mods = {m.strip().upper() for m in modalities}
    return bool(mods & set(modality_codes(groups))) or (bool(mods) and mods <= DOCUMENT_MODALITIES)


# --- slices ----------------------------------------------------------------------------------------

DAY = ("000000", "235959")
MIN_SLICE_S = 60  # a minute still capped cannot be split further: the slice is recorded capped


@dataclass(frozen=True, order=True)
class Slice:
    study_date: dt.date
    time_from: str = DAY[0]  # HHMMSS
    time_to: str = DAY[1]

    @property
    def whole_day(self) -> bool:
        return (self.time_from, self.time_to) == DAY

    def study_time(self) -> str:
        """The StudyTime matching key: empty (universal) for a whole day, else a range."""
        return "" if self.whole_day else f"{self.time_from}-{self.time_to}"

    def __str__(self) -> str:
        day = self.study_date.isoformat()
        return day if self.whole_day else f"{day} {self.time_from[:2]}:{self.time_from[2:4]}:{self.time_from[4:]}" \
                                          f"-{self.time_to[:2]}:{self.time_to[2:4]}:{self.time_to[4:]}"


def day_slices(date_from: dt.date, date_to: dt.date) -> list[Slice]:
    if date_to < date_from:
        raise ValueError(f"--to {date_to} is before --from {date_from}")
    return [Slice(date_from + dt.timedelta(days=i)) for i in range((date_to - date_from).days + 1)]


def _seconds(hhmmss: str) -> int:
    return int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:6])


def _hhmmss(seconds: int) -> str:
    return f"{seconds // 3600:02d}{seconds % 3600 // 60:02d}{seconds % 60:02d}"


def split(s: Slice) -> Optional[tuple[Slice, Slice]]:
    """Two halves of a capped slice, or None when it is a minute or less (cannot be split)."""
    start, end = _seconds(s.time_from), _seconds(s.time_to)
    if end - start < MIN_SLICE_S:
        return None
    mid = (start + end) // 2
    return (Slice(s.study_date, s.time_from, _hhmmss(mid)), Slice(s.study_date, _hhmmss(mid + 1), s.time_to))


def capped(answers: int, final_status: Optional[int], profile: Profile) -> bool:
    """Whether a C-FIND's answer may be incomplete: the PACS stopped it (Cancel 0xFE00, Out of
    resources 0xA700, or a failure after some answers), or it returned exactly the cap (or
    more). Such a slice is split, never taken as complete."""
    if profile.max_answers and answers >= profile.max_answers:
        return True
    return final_status is not None and final_status != 0x0000 and (final_status in (0xFE00, 0xA700) or answers > 0)


# --- filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Case-insensitive substring terms. A missing value passes (a PACS that does not return the
    attribute must not empty the run); an empty term is dropped (it would match everything)."""

    description_include: tuple[str, ...] = ()
    description_exclude: tuple[str, ...] = ()
    station_include: tuple[str, ...] = ()
    station_exclude: tuple[str, ...] = ()

    @staticmethod
    def terms(text: Optional[str]) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in (text or "").split(",") if t.strip())

    def as_dict(self) -> dict:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Filters":
        return cls(**{k: tuple(v) for k, v in data.items()})


def _refused(value: Optional[str], include: tuple[str, ...], exclude: tuple[str, ...], what: str) -> Optional[str]:
    if not value:
        return None
    v = value.lower()
    if include and not any(t in v for t in include):
        return f"{what} {value!r} matches no include term"
    hit = next((t for t in exclude if t in v), None)
    if hit:
        return f"{what} {value!r} matches exclude term {hit!r}"
    return None


def description_refused(description: Optional[str], f: Filters) -> Optional[str]:
    return _refused(description, f.description_include, f.description_exclude, "study description")


def station_refused(station: Optional[str], f: Filters) -> Optional[str]:
    return _refused(station, f.station_include, f.station_exclude, "station name")


# --- never retrieved -------------------------------------------------------------------------------

# The one table of what a backfill never retrieves, whatever else a rule says: nuclear medicine and
# PET (raw data by the thousand, OpenREM #412), and other bulk objects with no dose data doseflow
# reads. Keyed by SOP Class UID, or by Modality for a PACS that returns no SOP class.
NEVER_RETRIEVED: dict[tuple[str, str], str] = {
    ("sop_class", "1.2.840.10008.5.1.4.1.1.66"): "Raw Data",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.128"): "PET Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.128.1"): "Legacy Converted Enhanced PET Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.130"): "Enhanced PET Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.20"): "Nuclear Medicine Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.66.1"): "Spatial Registration",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.66.3"): "Deformable Spatial Registration",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.66.4"): "Segmentation",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.13.1.3"): "Breast Tomosynthesis Image (reconstructed volume)",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.13.1.1"): "X-Ray 3D Angiographic Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.13.1.2"): "X-Ray 3D Craniofacial Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.12.1"): "X-Ray Angiographic Image (cine)",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.12.2"): "X-Ray Radiofluoroscopic Image (cine)",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.4"): "MR Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.4.1"): "Enhanced MR Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.6.1"): "Ultrasound Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.3.1"): "Ultrasound Multi-frame Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.77.1.6"): "VL Whole Slide Microscopy Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.481.1"): "RT Image",
    ("sop_class", "1.2.840.10008.5.1.4.1.1.481.2"): "RT Dose",
    ("modality", "PT"): "PET series",
    ("modality", "NM"): "nuclear medicine series",
    ("modality", "MR"): "MR series",
    ("modality", "US"): "ultrasound series",
    ("modality", "RTIMAGE"): "RT image series",
    ("modality", "RTDOSE"): "RT dose series",
    ("modality", "SEG"): "segmentation series",
    ("modality", "REG"): "registration series",
    ("modality", "SM"): "slide microscopy series",
}


def never_retrieved(*, sop_class: Optional[str] = None, modality: Optional[str] = None) -> Optional[str]:
    """The reason this object or series is never retrieved, or None."""
    if sop_class and ("sop_class", sop_class) in NEVER_RETRIEVED:
        return f"never retrieved: {NEVER_RETRIEVED[('sop_class', sop_class)]} ({sop_class}) is bulk data with no dose record"
    if modality and ("modality", modality.upper()) in NEVER_RETRIEVED:
        return f"never retrieved: {NEVER_RETRIEVED[('modality', modality.upper())]} (bulk data with no dose record)"
    return None


# --- choosing the dose objects ---------------------------------------------------------------------

# Decisions recorded for studies, series and instances.
RETRIEVE = "retrieve"  # chosen; becomes retrieved or failed once moved (would_retrieve in a dry run)
HELD = "held"  # skipped: the ledger (or an earlier backfill) already holds it
FILTERED = "filtered"  # skipped by a description or station filter
NOT_DOSE = "not_dose"  # skipped: not a dose object (or another object of the study carries the dose)
EXCLUDED = "excluded"  # never retrieved (bulk table)
UNSUPPORTED = "unsupported"  # the PACS's answers do not let us tell; the reason says what is missing

# The document titles of dose SRs, as (CodeValue, CodingSchemeDesignator): the order the C-FIND
# answers are read in (scu._concept).
DOSE_SR_CONCEPTS = {(c.value, c.scheme) for c in (codes.X_RAY_RADIATION_DOSE_REPORT, codes.SIEMENS_RADIATION_SUMMARY)}
MG_DX_IMAGE_CLASSES = {dicom.MG_FOR_PRESENTATION, dicom.MG_FOR_PROCESSING, dicom.CR_IMAGE,
                       dicom.DX_FOR_PRESENTATION, dicom.DX_FOR_PROCESSING}
FOR_PROCESSING = {dicom.MG_FOR_PROCESSING: dicom.MG_FOR_PRESENTATION,
                  dicom.DX_FOR_PROCESSING: dicom.DX_FOR_PRESENTATION}
CT_IMAGE_CLASSES = {dicom.CT_IMAGE, dicom.ENHANCED_CT_IMAGE}
# Legacy dose screens at query time: a description naming the dose page (Toshiba "Dose Summary",
# GE "Dose Report"), or PixelMed's series numbers for Toshiba screens (spec toshiba.md 2.2).
DOSE_SCREEN_WORDS = ("dose", "summary")
DOSE_SCREEN_SERIES_NUMBERS = {1000, 9000}


@dataclass
class Series:
    uid: str
    modality: str = ""
    number: Optional[int] = None
    description: Optional[str] = None
    station: Optional[str] = None
    instance_count: Optional[int] = None
    sop_class: Optional[str] = None


@dataclass
class Instance:
    uid: str
    sop_class: Optional[str] = None
    number: Optional[int] = None
    concept: Optional[tuple[str, str]] = None  # (CodeValue, CodingSchemeDesignator) of an SR's title


@dataclass
class SeriesChoice:
    """How a series is treated. `inspect`: 'all' or 'first' instances to query at image level
    before deciding (None: decided on the series answer alone); `take`: which instances are dose
    objects once known ('all', 'first', 'dose_sr'), or 'whole' for a series moved without knowing
    its instances."""
    decision: str
    reason: str
    inspect: Optional[str] = None
    take: Optional[str] = None


def is_sr(series: Series) -> bool:
    return series.modality.upper() == "SR"


def dose_sr_verdict(inst: Instance, profile: Profile) -> tuple[bool, str]:
    """Whether an instance of an SR series is a dose report: by SOP class, confirmed by the
    document title (concept name) where the PACS answers it."""
    if not profile.image_sop_class or not inst.sop_class:
        return True, "SR of unknown class (the PACS returns no SOPClassUID): retrieved for the classifier to decide"
    if inst.sop_class == dicom.XRAY_RADIATION_DOSE_SR:
        if profile.image_concept_name and inst.concept and inst.concept not in DOSE_SR_CONCEPTS:
            return False, f"X-Ray Radiation Dose SR titled {inst.concept[1]} {inst.concept[0]}, not a dose report"
        return True, "X-Ray Radiation Dose SR"
    if inst.sop_class == dicom.ENHANCED_SR:
        if not profile.image_concept_name or inst.concept is None:
            return True, "Enhanced SR (title not answered by the PACS): retrieved for the classifier to decide"
        if inst.concept in DOSE_SR_CONCEPTS:
            return True, f"Enhanced SR dose report ({inst.concept[1]} {inst.concept[0]})"
        return False, f"Enhanced SR titled {inst.concept[1]} {inst.concept[0]}, not a dose report"
    return False, f"SR of class {inst.sop_class}, not a dose report"


def triage(series: list[Series], groups: Iterable[str], filters: Filters, profile: Profile) -> dict[str, SeriesChoice]:
    """First pass over a study's series: filters and the bulk table; SR series are inspected
    (all instances) to find the dose reports; the others wait for `choose` (None)."""
    out: dict[str, SeriesChoice] = {}
    for s in series:
        excluded = never_retrieved(sop_class=s.sop_class if profile.series_sop_class else None, modality=s.modality)
        refused = station_refused(s.station, filters)
        if excluded:
            out[s.uid] = SeriesChoice(EXCLUDED, excluded)
        elif refused:
            out[s.uid] = SeriesChoice(FILTERED, refused)
        elif is_sr(s):
            if profile.image_level_in_sr:
                out[s.uid] = SeriesChoice(RETRIEVE, "SR series: dose reports by SOP class and title",
                                          inspect="all", take="dose_sr")
            else:
                out[s.uid] = SeriesChoice(RETRIEVE, "SR series retrieved whole: the PACS answers no image-level "
                                          "query in SR series", take="whole")
    return out


def choose(series: list[Series], first: dict[str, SeriesChoice], dose_sr_found: bool,
           groups: Iterable[str], profile: Profile) -> dict[str, SeriesChoice]:
    """Second pass, once the SR series were inspected: where the study has a dose report, every
    other series is skipped; otherwise the image fallbacks of the requested modalities."""
    groups = set(groups)
    out = dict(first)
    pending = [s for s in series if s.uid not in out]
    if dose_sr_found:
        for s in pending:
            out[s.uid] = SeriesChoice(NOT_DOSE, "the study has a dose SR, which carries the dose")
        return out
    mods = {s.modality.upper() for s in series}
    ct_pending = [s for s in pending if s.modality.upper() == "CT"]
    philips = [s for s in ct_pending if (s.description or "").strip().lower() == "dose info"]
    screens = [s for s in ct_pending if s not in philips and _dose_screen_hint(s)]
    for s in pending:
        m = s.modality.upper()
        if m in ("MG",) and "MG" in groups or m in ("DX", "CR", "PX") and "DX" in groups:
            out[s.uid] = SeriesChoice(RETRIEVE, f"{m} images: no dose SR in the study, so each image's header "
                                      "carries the dose", inspect="all", take="all")
        elif m == "CT" and "CT" in groups:
            if philips:
                out[s.uid] = (SeriesChoice(RETRIEVE, "Philips \"Dose Info\" series", inspect="all", take="all")
                              if s in philips else
                              SeriesChoice(NOT_DOSE, "the study has a Philips \"Dose Info\" series"))
            elif screens:
                out[s.uid] = (SeriesChoice(RETRIEVE, "legacy CT dose-screen series (" + _dose_screen_hint(s) + ")",
                                           inspect="all", take="all")
                              if s in screens else
                              SeriesChoice(RETRIEVE, "legacy CT study: one image of each series for the "
                                           "acquisition parameters", inspect="first", take="first_ct_image"))
            elif not profile.series_description:
                out[s.uid] = SeriesChoice(UNSUPPORTED, "CT study without dose SR whose series the PACS does not "
                                          "describe (no SeriesDescription): no dose screen can be told")
            else:
                out[s.uid] = SeriesChoice(NOT_DOSE, "CT study without dose SR, Philips \"Dose Info\" or dose-screen series")
        elif m in ("RF", "XA"):
            out[s.uid] = SeriesChoice(NOT_DOSE, f"{m} images carry no dose record doseflow reads; only a dose SR does")
        elif not (mods & set(modality_codes(groups))) and m not in DOCUMENT_MODALITIES:
            out[s.uid] = SeriesChoice(NOT_DOSE, f"modality {m or '(none)'} not requested")
        else:
            out[s.uid] = SeriesChoice(NOT_DOSE, f"{m or 'unknown modality'} series: not a dose object")
    return out


def _dose_screen_hint(s: Series) -> str:
    desc = (s.description or "").lower()
    word = next((w for w in DOSE_SCREEN_WORDS if w in desc), None)
    if word:
        return f"description {s.description!r}"
    if s.number in DOSE_SCREEN_SERIES_NUMBERS:
        return f"series number {s.number}"
    return ""


def instances_to_take(choice: SeriesChoice, instances: list[Instance], profile: Profile,
                      study_classes: set[str]) -> list[tuple[Instance, str, str]]:
    """(instance, decision, reason) for every instance of an inspected series. `study_classes`:
    the SOP classes seen in the study's inspected instances (For Processing images are skipped
    where the For Presentation copy exists: it represents the same exposure)."""
    out = []
    ordered = sorted(instances, key=lambda i: (i.number is None, i.number if i.number is not None else 0, i.uid))
    for k, inst in enumerate(ordered):
        excluded = never_retrieved(sop_class=inst.sop_class)
        if excluded:
            out.append((inst, EXCLUDED, excluded))
            continue
        if choice.take == "dose_sr":
            ok, why = dose_sr_verdict(inst, profile)
            out.append((inst, RETRIEVE if ok else NOT_DOSE, why))
        elif choice.take == "first_ct_image":
            if inst.sop_class and inst.sop_class not in CT_IMAGE_CLASSES:
                out.append((inst, NOT_DOSE, f"not a CT image ({inst.sop_class}) in a legacy CT study"))
            elif k == 0:
                out.append((inst, RETRIEVE, "first image of the series: acquisition parameters for the legacy CT study"))
            else:
                out.append((inst, NOT_DOSE, "legacy CT study: one image per series is enough"))
        elif inst.sop_class in FOR_PROCESSING and FOR_PROCESSING[inst.sop_class] in study_classes:
            out.append((inst, NOT_DOSE, "For Processing image: the study's For Presentation images carry the same exposures"))
        else:
            out.append((inst, RETRIEVE, choice.reason))
    return out


# --- the move --------------------------------------------------------------------------------------

SUCCESS, PARTIAL = 0x0000, 0xB000
DESTINATION_UNKNOWN = 0xA801
UNABLE_TO_PROCESS = 0xC000
PENDING = (0xFF00, 0xFF01)


@dataclass
class MoveResult:
    status: Optional[int]  # None: no answer (timeout, abort)
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)


def destination_refused(result: MoveResult, any_success_yet: bool) -> bool:
    """Whether a C-MOVE failure means the PACS refuses our destination: 0xA801 always; 0xC000
    with nothing sent on the first move of the run (Orthanc answers an unknown destination so)."""
    if result.status == DESTINATION_UNKNOWN:
        return True
    return result.status == UNABLE_TO_PROCESS and result.completed == 0 and not any_success_yet


def status_text(status: Optional[int]) -> str:
    if status is None:
        return "no answer (timeout or association aborted)"
    from pynetdicom.status import QR_MOVE_SERVICE_CLASS_STATUS

    name = QR_MOVE_SERVICE_CLASS_STATUS.get(status, ("", ""))
    return f"0x{status:04X} {name[0]}{': ' + name[1] if name[1] else ''}".strip()
