"""Study assembly: the one stored report of a study, from the reports of all its objects.

The rule (DESIGN §3, stated in README "How a study is assembled"):
- an object is identified by SOPInstanceUID (the same object twice changes nothing), an event
  by Irradiation Event UID (image routes: the image's SOPInstanceUID);
- events are the union over the study's objects; for the same event the later object's values
  stand; events of one object keep document order; with several objects, events that carry a
  start time are ordered by it (stable, so ties keep arrival order);
- an image (not a secondary capture) whose acquisition date-time and dose (DAP, AGD) equal those
  of an event already in the study is the same exposure sent again (For Processing and For
  Presentation copies) and adds nothing;
- totals: an object whose events are all contained in another object's events (a cumulative
  report that was later re-sent fuller) has its totals replaced by the fuller object's; objects
  with disjoint events (a continued study, two devices, a dual report) add up, per plane for
  projection X-ray. Partly overlapping objects cannot be added without counting shared events
  twice, so their totals are recomputed from the union of events, and a warning says so;
- study, patient and equipment attributes: for each field, the first object that has a value,
  objects taken in order of their first irradiation time (then fewer events first, then arrival), with objects whose
  events another object supersedes taken last (they only fill gaps);
- the legacy CT builder's reports that carry no dose (its warnings beside a built RDSR, or the
  header fill of a study that has its own RDSR) describe the study as of one build: only the
  last to arrive counts, so a rebuild replaces the earlier build's warnings instead of adding to them;
- so that the result does not depend on which worker was faster, the same exposure sent as a
  For Presentation and a For Processing image is represented by the For Presentation copy.

Pure: reports in (arrival order), report out. The writer and `doseflow import` both call it.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

from shared import routes
from shared.report import (
    AccumulatedAgd,
    Ct,
    DoseReport,
    Equipment,
    Mammography,
    Patient,
    Projection,
    ProjectionPlane,
    Study,
)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
IMAGE_ROUTES = (routes.MG_IMAGE.name, routes.DX_IMAGE.name)
SECTIONS = ("ct", "projection", "mammography")


def assemble(reports: list[DoseReport]) -> DoseReport:
    """The study report from its objects' reports, given in arrival order."""
    if not reports:
        raise ValueError("a study needs at least one report")
    reports = _drop_earlier_build_notes(reports)
    kept = sorted(_drop_repeated_objects(reports), key=_primacy(reports))
    kept = _drop_repeated_exposures(kept)
    warnings: list[str] = []
    superseded = _superseded(kept)
    attribute_order = [r for i, r in enumerate(kept) if i not in superseded] + \
        [r for i, r in enumerate(kept) if i in superseded]
    merged = DoseReport(
        study=_first_fields(Study, [r.study for r in attribute_order]),
        patient=_first_fields(Patient, [r.patient for r in attribute_order]),
        equipment=_first_fields(Equipment, [r.equipment for r in attribute_order]),
        sources=[s for r in kept for s in r.sources],
    )
    for name in SECTIONS:
        holders = [r for r in kept if getattr(r, name) is not None]
        if holders:
            setattr(merged, name, _merge_section(name, holders, warnings))
    seen: set[str] = set()
    for w in [w for r in kept for w in r.warnings] + warnings:
        if w not in seen:
            seen.add(w)
            merged.warnings.append(w)
    return merged


def _is_build_note(report: DoseReport) -> bool:
    return bool(report.sources) and report.sources[0].route == routes.TOSHIBA.name and \
        all(getattr(report, name) is None for name in SECTIONS)


def _drop_earlier_build_notes(reports: list[DoseReport]) -> list[DoseReport]:
    notes = [i for i, r in enumerate(reports) if _is_build_note(r)]
    return [r for i, r in enumerate(reports) if i not in notes[:-1]]


def _drop_repeated_objects(reports: list[DoseReport]) -> list[DoseReport]:
    seen: set[str] = set()
    out = []
    for r in reports:
        key = r.sources[0].sop_instance_uid if r.sources else None
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        out.append(r)
    return out


FOR_PROCESSING = ("1.2.840.10008.5.1.4.1.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.2.1")


def _primacy(arrival: list[DoseReport]):
    """Sort key: the object's first irradiation time (event start, or a CT report's start of
    X-ray irradiation), For Presentation before For Processing, fewer events before more, then
    arrival."""
    position = {id(r): i for i, r in enumerate(arrival)}

    def key(r: DoseReport):
        times = [e.datetime_started for name in SECTIONS
                 if getattr(r, name) is not None for e in getattr(r, name).events if e.datetime_started]
        if r.ct is not None and r.ct.start_of_xray_irradiation:
            times.append(r.ct.start_of_xray_irradiation)
        processing = bool(r.sources) and r.sources[0].sop_class_uid in FOR_PROCESSING
        # Cumulative reports share a start time; the fuller one is the later one, whichever
        # worker delivered it first.
        return (min(times) if times else "~", processing, len(r.event_uids()), position[id(r)])

    return key


def _all_event_keys(ri: int, r: DoseReport) -> frozenset:
    return frozenset(_event_key(ri, ei, e) for name in SECTIONS if getattr(r, name) is not None
                     for ei, e in enumerate(getattr(r, name).events))


def _superseded(reports: list[DoseReport]) -> set[int]:
    sets = [_all_event_keys(i, r) for i, r in enumerate(reports)]
    return set(range(len(reports))) - set(_maximal(sets))


def _is_image(report: DoseReport) -> bool:
    return bool(report.sources) and report.sources[0].route in IMAGE_ROUTES


def _is_secondary_capture_image(report: DoseReport) -> bool:
    # Hologic's tomosynthesis projection SC shares the 2D image's acquisition time but is its
    # own exposure, so secondary captures are exempt from the same-time test, both ways.
    return _is_image(report) and report.sources[0].sop_class_uid == SECONDARY_CAPTURE


def _is_plain_image(report: DoseReport) -> bool:
    return _is_image(report) and not _is_secondary_capture_image(report)


def _exposure_key(name: str, event) -> tuple:
    # The same exposure sent twice has the same start time and the same dose; two exposures
    # whose start times both fell back to the study time still differ in dose.
    return (name, event.datetime_started, getattr(event, "dap_Gym2", None), getattr(event, "agd_mGy", None))


def _drop_repeated_exposures(reports: list[DoseReport]) -> list[DoseReport]:
    seen: set[tuple] = set()
    out = []
    for r in reports:
        mine = {_exposure_key(name, e) for name in ("projection", "mammography")
                if getattr(r, name) is not None
                for e in getattr(r, name).events if e.datetime_started}
        if _is_plain_image(r) and mine and mine <= seen:
            continue
        # Neither is a 2D image a copy of a secondary capture that happens to match it: were
        # the SC's exposures seen, the 2D image would be dropped only when the SC came first.
        if not _is_secondary_capture_image(r):
            seen |= mine
        out.append(r)
    return out


def _first_fields(model, parts: list):
    values = {}
    for part in parts:
        for field, value in part:
            if value is not None and field not in values:
                values[field] = value
    return model(**values)


# --- sections ---------------------------------------------------------------------------------


def _event_key(report_index: int, event_index: int, event) -> str:
    return event.irradiation_event_uid or f"#{report_index}.{event_index}"


def _merge_section(name: str, holders: list[DoseReport], warnings: list[str]):
    sections = [getattr(r, name) for r in holders]
    # Union of events: position of first appearance, values of the last.
    events: dict[str, object] = {}
    for ri, section in enumerate(sections):
        for ei, event in enumerate(section.events):
            events[_event_key(ri, ei, event)] = event
    ordered = list(events.values())
    if len(holders) > 1 and any(getattr(e, "datetime_started", None) for e in ordered):
        ordered.sort(key=lambda e: (e.datetime_started is None, e.datetime_started or ""))

    key_sets = [frozenset(_event_key(ri, ei, e) for ei, e in enumerate(s.events))
                for ri, s in enumerate(sections)]
    maximal = _maximal(key_sets)
    disjoint = all(key_sets[a].isdisjoint(key_sets[b]) for i, a in enumerate(maximal) for b in maximal[i + 1:])
    totalling = [sections[i] for i in maximal]
    if not disjoint:
        warnings.append(f"{name}: objects of this study share some but not all events; totals were "
                        "recomputed from the union of events instead of adding the objects' totals")
    elif len(totalling) > 1 and name == "ct":
        # An added total that some objects do not state covers only the objects that do.
        for total in ("total_dlp_mGycm", "total_effective_dose_mSv"):
            stated = [getattr(s, total) is not None for s in totalling]
            if any(stated) and not all(stated):
                warnings.append(f"ct.{total}: {stated.count(False)} of the study's {len(stated)} reports state "
                                "no total; the stored total adds up the reports that do")

    if name == "ct":
        return _merge_ct(totalling, ordered, disjoint)
    if name == "projection":
        return _merge_projection(totalling, ordered, disjoint)
    return _merge_mammography(totalling, ordered, disjoint)


def _maximal(key_sets: list[frozenset]) -> list[int]:
    """Indexes of the objects whose events are not contained in a later or fuller object's.
    Of equal sets the later object wins."""
    out = []
    for i, s in enumerate(key_sets):
        covered = any(
            (s < t) or (s == t and j > i)
            for j, t in enumerate(key_sets) if j != i
        )
        if not covered:
            out.append(i)
    return out


def _sum(values: Iterable[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _extreme(values: Iterable[Optional[str]], pick: Callable) -> Optional[str]:
    present = [v for v in values if v]
    return pick(present) if present else None


def _merge_ct(sections: list[Ct], events: list, disjoint: bool) -> Ct:
    if len(sections) == 1:
        base = sections[0]
        return base.model_copy(update={"events": events})
    if disjoint:
        total_dlp = _sum(s.total_dlp_mGycm for s in sections)
        total_events = _sum(s.total_events for s in sections)
        total_effective = _sum(s.total_effective_dose_mSv for s in sections)
    else:
        total_dlp = _sum(e.dlp_mGycm for e in events)
        total_events = len(events)
        total_effective = _sum(e.effective_dose_mSv for e in events)
    return Ct(
        total_dlp_mGycm=total_dlp,
        total_events=int(total_events) if total_events is not None else None,
        total_effective_dose_mSv=total_effective,
        start_of_xray_irradiation=_extreme((s.start_of_xray_irradiation for s in sections), min),
        end_of_xray_irradiation=_extreme((s.end_of_xray_irradiation for s in sections), max),
        events=events,
    )


_PLANE_SUMS = ("dap_total_Gym2", "dose_rp_total_Gy", "fluoro_dap_total_Gym2", "fluoro_dose_rp_total_Gy",
               "total_fluoro_time_s", "acquisition_dap_total_Gym2", "acquisition_dose_rp_total_Gy",
               "total_acquisition_time_s", "total_radiographic_frames")


def _merge_projection(sections: list[Projection], events: list, disjoint: bool) -> Projection:
    if len(sections) == 1:
        return sections[0].model_copy(update={"events": events})
    if not disjoint:
        return Projection(planes=_planes_from_events(sections, events), events=events)
    by_plane: dict[str, list[ProjectionPlane]] = {}
    for s in sections:
        for p in s.planes:
            by_plane.setdefault(p.plane, []).append(p)
    planes = []
    for plane, rows in by_plane.items():
        values = {f: _sum(getattr(r, f) for r in rows) for f in _PLANE_SUMS}
        if values["total_radiographic_frames"] is not None:
            values["total_radiographic_frames"] = int(values["total_radiographic_frames"])
        ref = next((r.reference_point_definition for r in rows if r.reference_point_definition), None)
        planes.append(ProjectionPlane(plane=plane, reference_point_definition=ref, **values))
    return Projection(planes=planes, events=events)


def _planes_from_events(sections: list[Projection], events: list) -> list[ProjectionPlane]:
    """Plane totals recomputed from events (partly overlapping objects): only what events carry."""
    planes = []
    names = list(dict.fromkeys(p.plane for s in sections for p in s.planes))
    for plane in names:
        mine = [e for e in events if (e.plane or "single") == plane or plane == "all"]
        ref = next((p.reference_point_definition for s in sections for p in s.planes
                    if p.plane == plane and p.reference_point_definition), None)
        planes.append(ProjectionPlane(
            plane=plane,
            dap_total_Gym2=_sum(e.dap_Gym2 for e in mine),
            dose_rp_total_Gy=_sum(e.dose_rp_Gy for e in mine),
            reference_point_definition=ref,
        ))
    return planes


def _merge_mammography(sections: list[Mammography], events: list, disjoint: bool) -> Mammography:
    if len(sections) == 1:
        return sections[0].model_copy(update={"events": events})
    if disjoint:
        agd = AccumulatedAgd(**{side: _sum(getattr(s.accumulated_agd_mGy, side) for s in sections)
                                for side in ("left", "right", "both")})
    else:
        side_of = {"L": "left", "R": "right", "B": "both"}
        agd = AccumulatedAgd(**{side: _sum(e.agd_mGy for e in events if side_of.get(e.laterality) == side)
                                for side in ("left", "right", "both")})
    return Mammography(accumulated_agd_mGy=agd, events=events)
