"""A fast reader for an SR content tree: the bytes of a ContentSequence (0040,A730) walked once
into light `Item`s, each value decoded only when a reader asks for it.

Why: pydicom turns every content item into a Dataset of DataElements as it meets it, and that
machinery was ~80 % of extracting a dose report (issue 18: 170 ms for an RF report, most of it
pydicom building datasets and looking up attributes). The tree's structure (items, sequences,
element boundaries) is walked here with `struct`; each leaf's bytes are kept, and a value is
decoded by pydicom's own conversion (`convert_raw_data_element`: the same VR lookup, character
sets, DS/IS parsing, UN handling, the same exceptions) only when read. So a value reads exactly
as pydicom would give it, and what the extractors never ask for is never decoded.

The walk covers what dose reports are made of: little endian, explicit or implicit VR, defined
or undefined lengths, nested sequences. Anything else (big endian, a VR that is not two capital
letters, a sequence sent as UN, a character set declared inside an item, bytes cut short, nesting
beyond MAX_DEPTH) raises `NotSimple`, and the caller reads the tree through pydicom as before:
every malformed input keeps the behaviour (and the failure reason) pydicom gives it.

Pure: no I/O.
"""
from __future__ import annotations

import functools
import re
import struct
from typing import Any, Optional

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom import config
from pydicom.tag import Tag
from pydicom.uid import UID

CONTENT_SEQUENCE = 0x0040A730
SPECIFIC_CHARACTER_SET = 0x00080005
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"))
_VRS = {code.encode(): (code, code.encode() in LONG_VRS) for code in (
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV").split()}
# pydicom gives up at Python's recursion limit; the fallback path reports that as it always did.
MAX_DEPTH = 64

_HH = struct.Struct("<HH").unpack_from
_EXPLICIT = struct.Struct("<HH2sH").unpack_from  # group, element, VR, short length
_I = struct.Struct("<I").unpack_from
_MISSING = object()


class NotSimple(Exception):
    """The bytes are outside what this walk reads: read them through pydicom instead."""


@functools.lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> Optional[str]:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


@functools.lru_cache(maxsize=1024)
def _tag(keyword: str) -> Optional[int]:
    return tag_for_keyword(keyword)


class Item:
    """One item of a sequence: its elements' raw bytes (or, for sequences, their items), and
    the values already decoded. Reads like a pydicom Dataset for `get(keyword)`."""

    __slots__ = ("_elements", "_decoded", "_encoding", "_implicit")

    def __init__(self, elements: dict, encoding, implicit: bool):
        self._elements = elements  # tag -> (vr str or None, bytes) or (None, list[Item]) for a sequence
        self._decoded: dict[int, Any] = {}
        self._encoding = encoding
        self._implicit = implicit

    def get(self, key, default=None):
        """The value of the element named by keyword (or tag int), decoded as pydicom decodes
        it; `default` when absent. A value that cannot be decoded raises, as in pydicom."""
        tag = _tag(key) if isinstance(key, str) else int(key)
        if tag is None:
            return default
        value = self._decoded.get(tag, _MISSING)
        if value is not _MISSING:
            return value
        element = self._elements.get(tag)
        if element is None:
            return default
        vr, raw = element
        if isinstance(raw, list):
            value = raw
        elif (plain := _plain_text(tag, vr, raw, self._encoding)) is not None:
            value = plain
        else:
            value = convert_raw_data_element(
                RawDataElement(Tag(tag), vr, len(raw), raw, 0, self._implicit, True),
                encoding=self._encoding).value
        self._decoded[tag] = value
        return value

    def __contains__(self, key) -> bool:
        tag = _tag(key) if isinstance(key, str) else int(key)
        return tag in self._elements

    def __repr__(self) -> str:
        return f"<sr_tree.Item {len(self._elements)} elements>"


# Character sets in which printable ASCII means itself (pydicom's Python codec names): the
# ISO 8859 family and UTF-8. Not Shift JIS (ISO_IR 13 reads 0x5C as a yen sign).
_ASCII_SAFE = frozenset(("iso8859", "latin_1", "iso8859_2", "iso8859_3", "iso8859_4", "iso_ir_126", "iso_ir_127",
                         "iso_ir_138", "iso_ir_144", "iso_ir_148", "iso_ir_166", "iso8859_15", "UTF8", "utf_8"))
# Printable ASCII without the value delimiter, then any trailing padding (space or NUL).
_PLAIN = re.compile(rb"[\x20-\x5b\x5d-\x7e]*[ \x00]*")
_PLAIN_VRS = frozenset(("CS", "SH", "LO", "UI"))


def _plain_text(tag: int, vr: Optional[str], raw: bytes, encoding) -> Optional[str]:
    """The value pydicom would give a CS, SH, LO or UI element holding one plain ASCII value
    (code values, schemes, meanings, value and relationship types, UIDs: most of what a
    report reads), without building a DataElement; None for anything else, which pydicom
    converts. pydicom's result for these bytes is the text less trailing spaces and NULs (a UI
    as a UID); its validation only warns unless it is set to raise, so then it is left to it."""
    if vr is None:
        vr = _dictionary_vr(tag)
    if vr not in _PLAIN_VRS or config.settings.reading_validation_mode == config.RAISE \
            or not _PLAIN.fullmatch(raw):
        return None
    # pydicom decodes bytes without an escape (which _PLAIN refuses) with the first encoding
    # only, also under ISO 2022 code extensions (Philips: '\\ISO 2022 IR 87').
    first = encoding if isinstance(encoding, str) else (encoding[0] if encoding else "iso8859")
    if first not in _ASCII_SAFE:
        return None
    text = raw.decode("ascii").rstrip(" \x00")
    return UID(text) if vr == "UI" else text


def read_sequence(data: bytes, *, implicit: bool, encoding) -> list[Item]:
    """The items of a sequence value `data` (defined length, little endian)."""
    items, _ = _sequence(bytes(data), 0, len(data), implicit, encoding, 0)
    return items


def read_undefined_sequence(data: bytes, *, implicit: bool, encoding) -> tuple[list[Item], int]:
    """The items of an undefined-length sequence whose value starts at `data`'s first byte, and
    the length of the value including its sequence delimiter (where the next element starts)."""
    return _sequence(bytes(data), 0, None, implicit, encoding, 0)


def _sequence(buf: bytes, pos: int, end: Optional[int], implicit: bool, encoding, depth: int):
    """Items from `pos` up to `end`, or up to the sequence delimiter when `end` is None.
    Returns (items, position after the sequence)."""
    if depth > MAX_DEPTH:
        raise NotSimple("nested too deeply")
    limit = len(buf) if end is None else end
    items: list[Item] = []
    while True:
        if pos == end:
            return items, pos
        if pos + 8 > limit:
            raise NotSimple("cut short")
        group, element = _HH(buf, pos)
        tag = group << 16 | element
        length = _I(buf, pos + 4)[0]
        pos += 8
        if tag == SEQUENCE_END:
            if end is not None:
                raise NotSimple("sequence delimiter in a defined-length sequence")
            return items, pos
        if tag != ITEM:
            raise NotSimple(f"{tag:08X} where an item belongs")
        if length == UNDEFINED:
            elements, pos = _dataset(buf, pos, None, implicit, encoding, depth + 1)
        else:
            if pos + length > limit:
                raise NotSimple("cut short")
            elements, after = _dataset(buf, pos, pos + length, implicit, encoding, depth + 1)
            pos = after
        items.append(Item(elements, encoding, implicit))


def _dataset(buf: bytes, pos: int, end: Optional[int], implicit: bool, encoding, depth: int):
    """The elements of one item, from `pos` up to `end` or its item delimiter."""
    limit = len(buf) if end is None else end
    elements: dict = {}
    while True:
        if pos == end:
            return elements, pos
        if pos + 8 > limit:
            raise NotSimple("cut short")
        group, elem, code, short = _EXPLICIT(buf, pos)
        tag = group << 16 | elem
        if tag == ITEM_END:
            if end is not None:
                raise NotSimple("item delimiter in a defined-length item")
            return elements, pos + 8
        if implicit:
            vr = None
            length = _I(buf, pos + 4)[0]
            pos += 8
            is_sequence = not (group & 1) and _dictionary_vr(tag) == "SQ"
        else:
            known = _VRS.get(code)
            if known is None:
                raise NotSimple("not an explicit VR pydicom knows")
            vr, long = known
            if long:
                if pos + 12 > limit:
                    raise NotSimple("cut short")
                length = _I(buf, pos + 8)[0]
                pos += 12
            else:
                length = short
                pos += 8
            is_sequence = vr == "SQ"
            if vr == "UN" and (length == UNDEFINED or _dictionary_vr(tag) == "SQ"):
                raise NotSimple("a sequence sent as UN")
        if tag == SPECIFIC_CHARACTER_SET:
            raise NotSimple("a character set declared inside an item")
        if length == UNDEFINED:
            if not is_sequence:
                raise NotSimple("undefined length outside a sequence")
            items, pos = _sequence(buf, pos, None, implicit, encoding, depth)
            elements[tag] = (None, items)
            continue
        after = pos + length
        if after > limit:
            raise NotSimple("cut short")
        if is_sequence:
            elements[tag] = (None, _sequence(buf, pos, after, implicit, encoding, depth)[0])
        else:
            elements[tag] = (vr, buf[pos:after])
        pos = after
