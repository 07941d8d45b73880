"""One stable key per X-ray device, from the identifiers its objects carry.

Objects name their device in several ways, none reliable alone: the serial number is the
hardware's own but some systems leave it empty or write a placeholder ("SN000000", "1");
the Device Observer UID (RDSRs only) should be fixed per device, but some systems mint a new
one per study (a GE OEC Fluorostar writes its StudyInstanceUID there); station names are set
by whoever installed the system and are shared across rooms. So the key takes the first rule
that has usable identifiers:

1. ``serial:<manufacturer>|<model>|<serial>`` — a usable serial number (with its maker and
   model, since serials are unique only within a product line). Stable across software
   upgrades, station renames and routes (the RDSR and the images of one device agree).
2. ``uid:<device observer uid>`` — a Device Observer UID that is not one of the object's own
   instance UIDs: a UID equal to, or built on, the study's or the object's SOP Instance UID
   identifies the study, not the device (the drifting case), and is passed over. It tells
   apart rooms that share a station name.
3. ``station:<manufacturer>|<model>|<station>|<institution>|<department>`` — what is left;
   rooms with the same station name in the same department and no serial or UID cannot be
   told apart (the quality report shows the count of distinct UIDs under such a key).

Values are compared case-insensitively with runs of white space collapsed, because the same
device writes "SIEMENS" in one object and "Siemens" in another. Pure: a report in, a string out.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from shared.report import DoseReport, Equipment

# Serial numbers that stand for "none": placeholders, not hardware.
PLACEHOLDER_SERIALS = {"unknown", "none", "null", "na", "nil", "serial", "serialnumber", "sn", "default", "test"}
MIN_SERIAL_CHARACTERS = 3  # "1" or "0" is a counter, not a serial number


def normalized(value: Optional[str]) -> str:
    return re.sub(r"\s+", " ", value or "").strip().casefold()


def usable_serial(serial: Optional[str]) -> bool:
    letters_digits = re.sub(r"[^0-9a-z]", "", normalized(serial))
    if len(letters_digits) < MIN_SERIAL_CHARACTERS or letters_digits in PLACEHOLDER_SERIALS:
        return False
    digits = letters_digits.removeprefix("sn")
    return not (digits and set(digits) == {"0"})  # 0000, SN000000


def usable_observer_uid(uid: Optional[str], own_uids: Iterable[str]) -> bool:
    """False when the UID is absent or is (or extends) one of the object's own instance UIDs."""
    if not uid:
        return False
    return not any(own and (uid == own or uid.startswith(own + ".")) for own in own_uids)


def device_key(equipment: Equipment, own_uids: Iterable[str] = ()) -> str:
    """The device key of `equipment` (see the module docstring); `own_uids` are the study's and
    the objects' instance UIDs, which a Device Observer UID must not repeat."""
    e = equipment
    if usable_serial(e.serial_number):
        return "serial:" + "|".join(normalized(v) for v in (e.manufacturer, e.model, e.serial_number))
    if usable_observer_uid(e.device_observer_uid, own_uids):
        return "uid:" + e.device_observer_uid.strip()
    return "station:" + "|".join(normalized(v) for v in (e.manufacturer, e.model, e.station_name,
                                                          e.institution_name, e.department))


def key_of(report: DoseReport) -> str:
    own = [report.study.study_instance_uid] + [s.sop_instance_uid for s in report.sources]
    return device_key(report.equipment, own)


def label(equipment: Equipment) -> str:
    """A short human name for tables: manufacturer, model and station name as written."""
    parts = [equipment.manufacturer, equipment.model, equipment.station_name]
    return " ".join(p.strip() for p in parts if p and p.strip()) or "(no identification)"
