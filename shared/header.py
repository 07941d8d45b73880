"""Reading attributes of a header, standard or private: the one accessor every route uses.

Image headers (the MG, DX and Philips CT routes) and the CT images of a legacy Toshiba study
carry their values as plain attributes, and vendors bend them: Hologic sends standard
attributes as VR UN bytes, DRGEM writes decimals into IS fields, Kodak writes comma-separated
lists into CS/DS, some DX units put text in PatientSize, a PACS that stored a private FD
implicit-VR hands it back as 8 bytes of VR UN. `HeaderReader` reads one data set (or one
sequence item) by keyword or tag and turns every value that is present but unreadable into None
plus a warning naming the attribute, so one bad field never costs the report.

Private attributes are found by their private creator and the element's offset in the block the
creator reserved (PS3.5 7.8.1), never by a fixed tag number: the same creator's block is
(gggg,10xx) in one object and (gggg,11xx) in the next.

Pure: a pydicom Dataset in, plain values out.
"""
from __future__ import annotations

import math
import re
import struct
from typing import Optional, Union

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from shared.dicom import as_text, number as dicom_number

TagLike = Union[str, int, BaseTag]


def tag_name(tag: BaseTag) -> str:
    """'KVP (0018,0060)', or just the tag number for a private tag."""
    keyword = keyword_for_tag(tag)
    number = f"({tag.group:04X},{tag.element:04X})"
    return f"{keyword} {number}" if keyword else number


def private_tag(ds: Dataset, group: int, creator: str, offset: int, *,
                assume_first_block: bool = False) -> Optional[BaseTag]:
    """The tag of element `offset` (0x00-0xFF) in the private block that `creator` reserved in
    `group` (creator compared without regard to case or padding); None when no block of the
    group is the creator's.

    `assume_first_block`: when no creator element reserves any block of the group at all (an
    anonymiser dropped them, or a sequence item repeats the parent's private elements without
    their creators), take the conventional first block (gggg,10xx). Never when the group's blocks
    belong to other creators: the number then means something else."""
    found_any = False
    wanted = creator.strip().upper()
    for block in range(0x10, 0x100):
        creator_tag = Tag(group, block)
        if creator_tag not in ds:
            continue
        found_any = True
        owner = _text(ds, creator_tag)
        if owner is not None and owner.upper() == wanted:
            return Tag(group, (block << 8) | offset)
    if assume_first_block and not found_any:
        return Tag(group, 0x1000 | offset)
    return None


def _tag(key: TagLike) -> Optional[BaseTag]:
    if isinstance(key, str):
        t = tag_for_keyword(key)
        return Tag(t) if t is not None else None
    return Tag(key)


def _value(ds: Dataset, tag: BaseTag):
    """The element's value; a value pydicom cannot convert (a decimal in an IS field under
    strict validation) is taken as the raw bytes rather than lost."""
    try:
        return ds[tag].value
    except Exception:  # noqa: BLE001 - any decoding error of untrusted bytes
        return getattr(ds.get_item(tag), "value", None)


def _text(ds: Dataset, tag: BaseTag) -> Optional[str]:
    value = _value(ds, tag)
    return None if value is None else as_text(value) or None


def _to_float(value: Optional[str]) -> Optional[float]:
    if value is None or not value.strip():
        return None
    try:
        f = float(value)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


class HeaderReader:
    """Reads attributes of one dataset or sequence item; every present-but-unreadable value
    gives None and one entry in `warnings`. `where` prefixes the warnings of a sequence item."""

    def __init__(self, ds: Dataset, warnings: list[str], where: str = ""):
        self.ds = ds
        self.warnings = warnings
        self.where = where

    # -- raw access ---------------------------------------------------------------------------

    def raw(self, key: TagLike) -> Optional[str]:
        """The value as text, multi-values joined with '\\'; None when absent or empty.

        VR UN values (Hologic projections, private tags) come as bytes and are decoded here; a
        value pydicom cannot convert is read from its raw bytes rather than lost."""
        tag = _tag(key)
        if tag is None or tag not in self.ds:
            return None
        return _text(self.ds, tag)

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.where}{message}" if self.where else message)

    def label(self, key: TagLike) -> str:
        tag = _tag(key)
        return tag_name(tag) if tag is not None else str(key)

    # -- typed values -------------------------------------------------------------------------

    def text(self, key: TagLike) -> Optional[str]:
        return self.raw(key)

    def number(self, key: TagLike, *, label: Optional[str] = None) -> Optional[float]:
        """A numeric attribute (DS, IS, FD, US, or any of these sent as UN); its first value if
        multi-valued. Text that is not a number gives None and a warning."""
        value = self.raw(key)
        if value is None:
            return None
        first = re.split(r"[\\,]", value)[0].strip()
        result = _to_float(first)
        if result is None:
            self.warn(f"{label or self.label(key)}: {value!r} is not a number; left empty")
        return result

    def numbers(self, key: TagLike) -> list[Optional[float]]:
        """Every value of a numeric attribute, split at '\\' or at ',' (old Kodak/Carestream
        write the list as comma-separated text)."""
        value = self.raw(key)
        if value is None:
            return []
        out = []
        for part in re.split(r"[\\,]", value):
            f = _to_float(part.strip())
            if f is None and part.strip():
                self.warn(f"{self.label(key)}: {part.strip()!r} is not a number; left empty")
            out.append(f)
        return out

    def terms(self, key: TagLike) -> list[str]:
        """Every value of a CS attribute, split at '\\' or ',' (Kodak DR 7500 writes
        'ALUMINUM,COPPER'), upper case, empty values dropped."""
        value = self.raw(key)
        if value is None:
            return []
        return [p.strip().upper() for p in re.split(r"[\\,]", value) if p.strip()]

    def double(self, key: TagLike, *, label: Optional[str] = None) -> Optional[float]:
        """An FD value. A private FD that a PACS stored implicit-VR arrives as VR UN bytes: the
        8-byte little-endian double as written. Bytes of another length, or a value that is
        not a number, give None and a warning."""
        tag = _tag(key)
        if tag is None or tag not in self.ds:
            return None
        value = _value(self.ds, tag)
        name = label or self.label(key)
        if isinstance(value, (bytes, bytearray)):
            if len(value) == 8:
                result = struct.unpack("<d", bytes(value))[0]
                return result if math.isfinite(result) else None
            self.warn(f"{name}: {len(value)} bytes where an 8-byte double belongs")
            return None
        result = dicom_number(value)
        if result is None and value not in (None, ""):
            self.warn(f"{name}: not a number: {str(value)[:40]!r}")
        return result

    # -- private attributes -------------------------------------------------------------------

    def private_tag(self, group: int, creator: str, offset: int, *,
                    assume_first_block: bool = False) -> Optional[BaseTag]:
        """See `private_tag` above."""
        return private_tag(self.ds, group, creator, offset, assume_first_block=assume_first_block)

    def private_number(self, group: int, creator: str, offset: int, label: str, *,
                       assume_first_block: bool = False) -> Optional[float]:
        tag = self.private_tag(group, creator, offset, assume_first_block=assume_first_block)
        if tag is None:
            return None
        return self.number(tag, label=f"{label} ({group:04X},{tag.element:04X}) [{creator}]")

    def private_text(self, group: int, creator: str, offset: int, *,
                     assume_first_block: bool = False) -> Optional[str]:
        tag = self.private_tag(group, creator, offset, assume_first_block=assume_first_block)
        return None if tag is None else self.raw(tag)

    def private_double(self, group: int, creator: str, offset: int, label: str) -> Optional[float]:
        tag = self.private_tag(group, creator, offset)
        return None if tag is None else self.double(tag, label=label)
