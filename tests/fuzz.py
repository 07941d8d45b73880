"""Seeded, pydicom-level mutations of corpus objects for the fuzz tests (issue 7: "bad input
cannot hurt").

`mutate(source, seed, out_dir)` reads one corpus object, applies one mutation (sometimes two)
chosen by a random generator seeded with the source's name and `seed`, writes the mutant to a
file in `out_dir` and returns a `Mutant` that says what was done — so any mutant a test
reports can be rebuilt from its source name and seed alone.

Mutations work on the Dataset where pydicom lets them and on raw bytes where it does not
(a value pydicom would refuse to hold, an element written under a wrong VR, a transfer syntax
that lies about the encoding, a cut-off file). Elements are picked by a random walk down the
content tree rather than by enumerating every element: enumerating converts every value,
which costs seconds on the big RF reports and would dominate the fuzz run.

A library for tests, no tests of its own. Corpus files are read in place, never copied.
"""
from __future__ import annotations

import contextlib
import copy
import io
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from tests.conftest import CORPUS

# Tags of the SR content tree the mutations aim at.
CONTENT_SEQUENCE = Tag(0x0040, 0xA730)
CONCEPT_NAME = Tag(0x0040, 0xA043)
CONCEPT_CODE = Tag(0x0040, 0xA168)
MEASURED_VALUE = Tag(0x0040, 0xA300)
NUMERIC_VALUE = Tag(0x0040, 0xA30A)
UNITS = Tag(0x0040, 0x08EA)
SPECIFIC_CHARACTER_SET = Tag(0x0008, 0x0005)

STRING_VRS = ("DS", "IS", "DA", "TM", "DT", "UI", "CS", "PN", "LO", "SH", "AS", "ST", "LT", "UT")
NUMBER_VRS = ("DS", "IS", "FD", "FL", "US", "UL", "SS", "SL")
SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.88.67",  # X-Ray Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.68",  # Radiopharmaceutical Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.1",  # CR Image
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2",  # MG For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # MG For Processing
    "1.2.3.4.5",
    "",
)
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.3.4",
    None,  # no TransferSyntaxUID at all
)
# Heads of NUM and CONTAINER concepts the extractors look for, for made-up content items.
CONCEPTS = (("DCM", "113811", "CT Accumulated Dose Data"), ("DCM", "113819", "CT Acquisition"),
            ("DCM", "113706", "Irradiation Event X-Ray Data"), ("DCM", "113702", "Accumulated X-Ray Dose Data"),
            ("DCM", "113830", "Mean CTDIvol"), ("DCM", "113838", "DLP"), ("DCM", "122130", "Dose Area Product"),
            ("99FUZZ", "X1", "Made-up concept"))


@dataclass(frozen=True)
class Mutant:
    path: Path
    source: str  # corpus-relative name of the object it was made from
    seed: int
    mutation: str  # what was done, in words

    def __str__(self) -> str:
        return f"{self.source} seed={self.seed}: {self.mutation}"


def corpus_objects(corpus: Path = CORPUS) -> list[Path]:
    """Every DICOM object of the corpus (sub-folders included), in a stable order."""
    return sorted(p for p in corpus.rglob("*.dcm") if "expected" not in p.parts)


_SOURCES: dict[Path, bytes] = {}


def _load(source: Path) -> Dataset:
    """A fresh Dataset of `source` (bytes read once per process)."""
    if source not in _SOURCES:
        _SOURCES[source] = source.read_bytes()
    return pydicom.dcmread(io.BytesIO(_SOURCES[source]))


# --- walking the tree -----------------------------------------------------------------------


def _vr(elem) -> str:
    vr = getattr(elem, "VR", None)
    if vr and len(vr) == 2:
        return vr
    try:
        vr = dictionary_VR(elem.tag)
    except KeyError:
        return "UN"
    return vr if len(vr) == 2 else vr[:2]  # ambiguous 'US or SS' -> 'US'


def _name(tag) -> str:
    return keyword_for_tag(tag) or f"({tag.group:04X},{tag.element:04X})"


def _items(ds: Dataset, tag) -> list[Dataset]:
    """The items of a sequence element, or [] when it is absent, raw garbage or not a sequence."""
    if tag not in ds:
        return []
    try:
        elem = ds[tag]
    except Exception:
        return []
    if elem.VR != "SQ" or not isinstance(elem.value, Sequence):
        return []
    return [item for item in elem.value if isinstance(item, Dataset)]


def _concept(item: Dataset) -> str:
    try:
        code = _items(item, CONCEPT_NAME)[0]
        return f" {code.get('CodingSchemeDesignator', '?')} {code.get('CodeValue', '?')}"
    except Exception:
        return ""


def _walk(ds: Dataset, rng: random.Random, *, go_on: float = 0.75) -> list[tuple[Dataset, str]]:
    """A random path down the tree: (dataset, where) from the root to a random depth, taking
    the SR content tree (ContentSequence) more often than other sequences."""
    path = [(ds, "")]
    current = ds
    while rng.random() < go_on:
        sequences = [t for t in current.keys() if _vr(current.get_item(t)) == "SQ"]
        if not sequences:
            break
        tag = CONTENT_SEQUENCE if CONTENT_SEQUENCE in sequences and rng.random() < 0.7 else rng.choice(sequences)
        items = _items(current, tag)
        if not items:
            break
        i = rng.randrange(len(items))
        current = items[i]
        path.append((current, f"{path[-1][1]}{_name(tag)}[{i}]{_concept(current)} > "))
    return path


def _pick_element(ds: Dataset, rng: random.Random, want: Callable[[object], bool] = lambda e: True,
                  tries: int = 8) -> Optional[tuple[Dataset, object, str]]:
    """(dataset holding it, element, where) of a random element matching `want`, or None."""
    for _ in range(tries):
        path = _walk(ds, rng)
        # Deeper datasets are likelier: the content tree is where the extractors work hardest.
        for container, where in sorted(path, key=lambda p: -rng.random() * (1 + len(p[1]))):
            tags = [t for t in container.keys() if want(container.get_item(t))]
            if tags:
                tag = rng.choice(tags)
                elem = container.get_item(tag)
                return container, elem, f"{where}{_name(tag)} {_vr(elem)}"
    return None


def _pick_item(ds: Dataset, rng: random.Random, want: Callable[[Dataset], bool],
               tries: int = 12) -> Optional[tuple[Dataset, str]]:
    """A random dataset of the tree (root or sequence item) matching `want`, or None."""
    for _ in range(tries):
        path = _walk(ds, rng, go_on=0.85)
        # Siblings of the last item count too: cheap (already parsed) and widens the choice.
        container, where = path[-1]
        candidates = [(d, w) for d, w in path if want(d)]
        if len(path) > 1:
            parent = path[-2][0]
            for i, sibling in enumerate(_items(parent, CONTENT_SEQUENCE)):
                if want(sibling):
                    candidates.append((sibling, f"{path[-2][1]}ContentSequence[{i}]{_concept(sibling)} > "))
        if candidates:
            return rng.choice(candidates)
    return None


def _raw(tag, vr: str, value: bytes) -> RawDataElement:
    """An element whose bytes are written exactly as given (pydicom writes raw elements as is)."""
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def put_raw(ds: Dataset, tag, vr: str, value: bytes) -> None:
    # Straight into the element dict: Dataset.__setitem__ would validate or re-encode the value.
    ds._dict[Tag(tag)] = _raw(tag, vr, value)


def value_bytes(elem) -> bytes:
    """The encoded value of an element (implicit VR little endian for sequences)."""
    if isinstance(elem, RawDataElement):
        return bytes(elem.value or b"")
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_data_element(fp, elem)
    data = fp.getvalue()[8:]
    if int.from_bytes(fp.getvalue()[4:8], "little") == 0xFFFFFFFF:
        data = data[:-8]  # sequence delimitation item
    return data


def _even(rng: random.Random, value: bytes) -> bytes:
    # DICOM values have even lengths; an odd one now and then is a fault worth sending too.
    return value + b" " if len(value) % 2 and rng.random() < 0.8 else value


# --- the mutations ----------------------------------------------------------------------------


def _garbage(rng: random.Random) -> tuple[bytes, str]:
    choice = rng.randrange(12)
    if choice == 0:
        n = rng.randint(1, 40)
        return bytes(rng.randint(0x20, 0x7E) for _ in range(n)), "random text"
    if choice == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))), "random bytes"
    if choice == 2:
        return b"", "empty"
    if choice == 3:
        return rng.choice([b"9", b"A", b"\\"]) * rng.choice([1000, 20000, 60000]), "very long"
    if choice == 4:
        return rng.choice([b"1\\2\\\\x", b"\\\\\\", b"a\\b"]), "backslash multi-value"
    if choice == 5:
        return rng.choice([b"GE\x00MEDICAL", b"\x00\x00", b"1.2\x003"]), "NUL bytes"
    if choice == 6:
        return "Ünïcødé 😀 名前".encode(), "UTF-8 text"
    if choice == 7:
        return rng.choice([b"\xed\xa0\x80", b"\xff\xfe", b"\xc3\x28abc", b"\x80\x81"]), "invalid UTF-8"
    if choice == 8:
        return rng.choice([b"%s%n{0}", b"'); DROP TABLE study;--", b"\r\n\t"]), "control/format text"
    if choice == 9:
        return rng.choice([b"NaN", b"-Infinity", b"1e400", b"-0", b" 12 ", b"1,5"]), "number-like text"
    if choice == 10:
        return rng.choice([b"99999999", b"20241399", b"00000000", b"2024", b"250000"]), "impossible date/time"
    return rng.choice([b"1..2", b"0.0.0", b"." * 64, b"1.2.840.10008.5.1.4.1.1.88.67"]), "UID-like text"


def garble_value(ds: Dataset, rng: random.Random) -> str:
    """Random text or bytes into a string-valued element (DS/IS/DA/TM/UI/CS/PN/...)."""
    picked = _pick_element(ds, rng, lambda e: _vr(e) in STRING_VRS)
    if picked is None:
        return drop_element(ds, rng)
    container, elem, where = picked
    value, what = _garbage(rng)
    put_raw(container, elem.tag, _vr(elem), _even(rng, value))
    return f"garbled {where}: {what} {value[:24]!r}"


def drop_element(ds: Dataset, rng: random.Random) -> str:
    """Remove one element, at the top level or deep in the content tree."""
    picked = _pick_element(ds, rng)
    if picked is None:
        return "nothing to drop"
    container, elem, where = picked
    del container[elem.tag]
    return f"dropped {where}"


def wrong_vr(ds: Dataset, rng: random.Random) -> str:
    """Write an element's bytes under another VR: UN, another string VR, a binary VR, or SQ."""
    picked = _pick_element(ds, rng)
    if picked is None:
        return drop_element(ds, rng)
    container, elem, where = picked
    old = _vr(elem)
    try:
        value = value_bytes(elem)
    except Exception:
        value = b"garbage!"
    new = rng.choice([v for v in ("UN", "UN", "OB", "FD", "FL", "US", "UL", "SS", "AT", "DS", "IS", "DA", "UI",
                                  "CS", "LO", "PN", "SQ", "UT") if v != old])
    if new not in ("UN", "OB", "SQ", "UT") and len(value) > 0xFFFE:
        value = value[:0xFFFE]  # a short-length VR cannot hold more
    put_raw(container, elem.tag, new, value)
    return f"rewrote {where} as VR {new} ({len(value)} bytes)"


def truncate_tree(ds: Dataset, rng: random.Random) -> str:
    """Cut the content tree: ContentSequence items, MeasuredValueSequence, concept names."""
    choice = rng.randrange(6)
    if choice == 0:
        found = _pick_item(ds, rng, lambda d: CONTENT_SEQUENCE in d)
        if found:
            item, where = found
            items = _items(item, CONTENT_SEQUENCE)
            keep = rng.randrange(len(items)) if items else 0
            item[CONTENT_SEQUENCE].value = items[:keep]
            return f"cut {where}ContentSequence to {keep} of {len(items)} items"
    if choice == 1:
        found = _pick_item(ds, rng, lambda d: MEASURED_VALUE in d)
        if found:
            item, where = found
            item[MEASURED_VALUE].value = []
            return f"emptied {where}MeasuredValueSequence"
    if choice == 2:
        found = _pick_item(ds, rng, lambda d: MEASURED_VALUE in d)
        if found:
            item, where = found
            mv = _items(item, MEASURED_VALUE)
            if mv:
                tag = rng.choice([NUMERIC_VALUE, UNITS])
                if tag in mv[0]:
                    del mv[0][tag]
                    return f"dropped {where}MeasuredValueSequence[0] > {_name(tag)}"
    if choice == 3:
        found = _pick_item(ds, rng, lambda d: CONCEPT_NAME in d)
        if found:
            item, where = found
            if rng.random() < 0.5:
                del item[CONCEPT_NAME]
                return f"removed {where}ConceptNameCodeSequence"
            item[CONCEPT_NAME].value = []
            return f"emptied {where}ConceptNameCodeSequence"
    if choice == 4:
        found = _pick_item(ds, rng, lambda d: CONCEPT_CODE in d)
        if found:
            item, where = found
            del item[CONCEPT_CODE]
            return f"removed {where}ConceptCodeSequence"
    if CONTENT_SEQUENCE in ds and rng.random() < 0.5:
        del ds[CONTENT_SEQUENCE]
        return "removed the root ContentSequence"
    return drop_element(ds, rng)


_BAD_NUMBERS = (b"NaN", b"nan", b"inf", b"-inf", b"Infinity", b"-1", b"-0", b"-1e30", b"1e308",
                b"1.7976931e308", b"9999999999999999", b"1e400", b"-1e400", b"1e-400", b"abc", b"12 mGy",
                b"1,5", b"", b" ", b"1\\2", b"0x10", b"\\", b"+", b"1e", b"--1")
_BAD_FLOATS = (float("nan"), float("inf"), float("-inf"), -1.0, -0.0, 1e308, -1e308, 5e-324, 0.0)


def bad_number(ds: Dataset, rng: random.Random) -> str:
    """NaN, infinity, negative, huge or non-numeric values into numeric fields (SR NumericValue
    or header DS/IS/FD/...)."""
    import struct

    if rng.random() < 0.6:
        found = _pick_item(ds, rng, lambda d: MEASURED_VALUE in d)
        mv = _items(found[0], MEASURED_VALUE) if found else []
        if mv:
            value = rng.choice(_BAD_NUMBERS)
            put_raw(mv[0], NUMERIC_VALUE, "DS", _even(rng, value))
            return f"NumericValue of {found[1]}MeasuredValueSequence[0] := {value!r}"
    picked = _pick_element(ds, rng, lambda e: _vr(e) in NUMBER_VRS)
    if picked is None:
        return garble_value(ds, rng)
    container, elem, where = picked
    vr = _vr(elem)
    if vr in ("DS", "IS"):
        value = rng.choice(_BAD_NUMBERS)
        put_raw(container, elem.tag, vr, _even(rng, value))
        return f"{where} := {value!r}"
    if vr in ("FD", "FL"):
        number = rng.choice(_BAD_FLOATS)
        put_raw(container, elem.tag, vr, struct.pack("<d" if vr == "FD" else "<f",
                                                      number if vr == "FD" or abs(number) < 3e38 else number / 1e270))
        return f"{where} := {number!r}"
    value = rng.choice([b"\xff\xff", b"\xff\xff\xff\xff", b"\x00", b""])
    put_raw(container, elem.tag, vr, value)
    return f"{where} := raw {value!r}"


def _container(concept: tuple[str, str, str], child: Optional[Dataset]) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "CONTAINER"
    code = Dataset()
    code.CodingSchemeDesignator, code.CodeValue, code.CodeMeaning = concept
    item.ConceptNameCodeSequence = [code]
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = [child] if child is not None else []
    return item


def _num(concept: tuple[str, str, str], value: str, unit: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "NUM"
    code = Dataset()
    code.CodingSchemeDesignator, code.CodeValue, code.CodeMeaning = concept
    item.ConceptNameCodeSequence = [code]
    mv = Dataset()
    mv.NumericValue = value
    units = Dataset()
    units.CodingSchemeDesignator, units.CodeValue, units.CodeMeaning = "UCUM", unit, unit
    mv.MeasurementUnitsCodeSequence = [units]
    item.MeasuredValueSequence = [mv]
    return item


def _datasets(ds: Dataset, depth: int) -> list[Dataset]:
    """`ds` and the items of its sequences, `depth` levels down."""
    out = [ds]
    if depth:
        for tag in list(ds.keys()):
            for item in _items(ds, tag):
                out.extend(_datasets(item, depth - 1))
    return out


def _mark_encoded(chain: Dataset, encoding) -> None:
    """Mark new items as already in the file's encoding and character set; else the writer
    re-checks the whole subtree at every level (quadratic: minutes for 1000 levels)."""
    implicit, little = encoding
    node: Optional[Dataset] = chain
    while node is not None:
        for item in _datasets(node, depth=2):
            item.set_original_encoding(bool(implicit), little is not False, item._character_set)
        below = _items(node, CONTENT_SEQUENCE)
        node = below[0] if below else None


def nest(ds: Dataset, item: Dataset, position: int, depth: int, *, undefined: bool,
         concepts: Callable[[], tuple[str, str, str]] = lambda: CONCEPTS[0]) -> None:
    """Insert into `item`'s ContentSequence (at `position`) a chain of `depth` CONTAINER items,
    each holding the next, with a Mean CTDIvol NUM at the bottom. `ds` is the object's root."""
    node = _num(("DCM", "113830", "Mean CTDIvol"), "12.5", "mGy")
    for _ in range(depth):
        node = _container(concepts(), node)
        node[CONTENT_SEQUENCE].is_undefined_length = undefined
    if CONTENT_SEQUENCE not in item:
        item.ContentSequence = []
    items = _items(item, CONTENT_SEQUENCE)
    items.insert(min(position, len(items)), node)
    item[CONTENT_SEQUENCE].value = items
    _mark_encoded(node, ds.original_encoding)


def deep_nesting(ds: Dataset, rng: random.Random) -> str:
    """A chain of CONTAINER items hundreds of levels deep, under the root or an existing item."""
    depth = rng.choice([50, 200, 500, 500, 1000])
    undefined = rng.random() < 0.5
    found = _pick_item(ds, rng, lambda d: CONTENT_SEQUENCE in d)
    item, where = found if found else (ds, "")
    nest(ds, item, rng.randint(0, len(_items(item, CONTENT_SEQUENCE))), depth, undefined=undefined,
         concepts=lambda: rng.choice(CONCEPTS))
    length = "undefined" if undefined else "defined"
    return f"nested {depth} CONTAINER levels ({length} lengths) into {where or 'the root '}ContentSequence"


def duplicate_sequence(ds: Dataset, rng: random.Random) -> str:
    """Repeat sequence items: one item again, or the whole list twice (events counted twice
    unless the reader guards against it)."""
    picked = _pick_element(ds, rng, lambda e: _vr(e) == "SQ")
    if picked is None:
        return drop_element(ds, rng)
    container, elem, where = picked
    items = _items(container, elem.tag)
    if not items:
        return f"{where}: empty sequence left as is"
    if rng.random() < 0.5:
        i = rng.randrange(len(items))
        copies = rng.choice([1, 2, 10])
        container[elem.tag].value = items + [copy.deepcopy(items[i]) for _ in range(copies)]
        return f"appended {copies} copies of item {i} to {where}"
    container[elem.tag].value = items + [copy.deepcopy(item) for item in items]
    return f"doubled the {len(items)} items of {where}"


_CHARSETS = (b"ISO_IR 192", b"ISO_IR 100", b"ISO 2022 IR 87", b"\\ISO 2022 IR 87", b"GB18030", b"ISO_IR 999",
             b"utf8", b"ISO_IR 13", b"ISO 2022 IR 149\\ISO 2022 IR 58")
_NON_UTF8 = (b"M\xfcller\xff\xfe", b"\x1b$B\x30\x21\x1b(B", b"\xc3\x28\xa0\xa1", b"\x80\x81\x82\x83",
             b"\xed\xa0\x80x", b"Caf\xe9\x00", b"\x1b\x1b\x1b\x1b")
_TEXT_KEYWORDS = ("PatientName", "OperatorsName", "ReferringPhysicianName", "PerformingPhysicianName",
                  "Manufacturer", "ManufacturerModelName", "InstitutionName", "StationName", "StudyDescription",
                  "SeriesDescription", "ProtocolName", "AccessionNumber", "DeviceSerialNumber", "StudyID")


def bad_charset(ds: Dataset, rng: random.Random) -> str:
    """Declare a SpecificCharacterSet and put bytes that are not valid in it (nor UTF-8) into
    text: header names, code meanings and text values of the content tree."""
    charset = rng.choice(_CHARSETS)
    put_raw(ds, SPECIFIC_CHARACTER_SET, "CS", _even(rng, charset))
    done = []
    for _ in range(rng.randint(1, 3)):
        junk = _even(rng, rng.choice(_NON_UTF8))
        if rng.random() < 0.5:
            keyword = rng.choice(_TEXT_KEYWORDS)
            tag = Tag(keyword)
            put_raw(ds, tag, dictionary_VR(tag), junk)
            done.append(keyword)
            continue
        found = _pick_item(ds, rng, lambda d: CONCEPT_CODE in d or CONCEPT_NAME in d or Tag(0x0040, 0xA160) in d)
        if found is None:
            continue
        item, where = found
        if Tag(0x0040, 0xA160) in item:
            put_raw(item, Tag(0x0040, 0xA160), "UT", junk)
            done.append(f"{where}TextValue")
            continue
        seq = CONCEPT_CODE if CONCEPT_CODE in item else CONCEPT_NAME
        codes = _items(item, seq)
        if codes:
            put_raw(codes[0], Tag(0x0008, 0x0104), "LO", junk)
            done.append(f"{where}{_name(seq)}[0] > CodeMeaning")
    return f"SpecificCharacterSet {charset!r} with invalid bytes in {', '.join(done) or 'nothing'}"


def wrong_sop_class(ds: Dataset, rng: random.Random) -> str:
    """Another SOP class (and sometimes modality): the object goes down another route."""
    uid = rng.choice(SOP_CLASSES)
    put_raw(ds, Tag("SOPClassUID"), "UI", _even(rng, uid.encode()).replace(b" ", b"\x00"))
    said = f"SOPClassUID := {uid!r}"
    if rng.random() < 0.4:
        modality = rng.choice(["CT", "MG", "DX", "CR", "RF", "SR", "OT", ""])
        put_raw(ds, Tag("Modality"), "CS", _even(rng, modality.encode()))
        said += f", Modality := {modality!r}"
    return said


DATASET_MUTATIONS: dict[str, Callable[[Dataset, random.Random], str]] = {
    "drop_element": drop_element,
    "garble_value": garble_value,
    "wrong_vr": wrong_vr,
    "truncate_tree": truncate_tree,
    "bad_number": bad_number,
    "deep_nesting": deep_nesting,
    "duplicate_sequence": duplicate_sequence,
    "bad_charset": bad_charset,
    "wrong_sop_class": wrong_sop_class,
}
# Applied to the written bytes.
BYTE_MUTATIONS = ("truncate_file", "wrong_transfer_syntax", "zero_byte")
# How often each is drawn: the content-tree mutations are where extractors break.
WEIGHTS = {"drop_element": 14, "garble_value": 14, "wrong_vr": 12, "truncate_tree": 12, "bad_number": 14,
           "deep_nesting": 3, "duplicate_sequence": 6, "bad_charset": 6, "wrong_sop_class": 5,
           "truncate_file": 8, "wrong_transfer_syntax": 4, "zero_byte": 1}


# --- writing ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _deep_writes():
    """Writing 1000 nested sequences takes several Python frames per level; reading them back
    is the code under test and keeps the default limit. (Without this, pydicom's writer wraps
    the RecursionError once per level, each message holding the last plus a stack trace:
    gigabytes.)"""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def encode(ds: Dataset) -> bytes:
    """The dataset as file bytes, raw (mutated) elements written exactly as they are."""
    out = io.BytesIO()
    with _deep_writes():
        pydicom.dcmwrite(out, ds, enforce_file_format=False)
    return out.getvalue()


def declare_transfer_syntax(ds: Dataset, uid: Optional[str]) -> bytes:
    """The dataset encoded as it was read, behind file meta that declares the transfer syntax
    `uid` (None: no TransferSyntaxUID at all): the reader is told the wrong encoding."""
    implicit, little = ds.original_encoding
    body = DicomBytesIO()
    body.is_implicit_VR, body.is_little_endian = bool(implicit), little is not False
    with _deep_writes():
        write_dataset(body, ds)
    meta = FileMetaDataset(ds.file_meta) if getattr(ds, "file_meta", None) else FileMetaDataset()
    if uid is None:
        if "TransferSyntaxUID" in meta:
            del meta.TransferSyntaxUID
    else:
        meta.TransferSyntaxUID = uid
    head = DicomBytesIO()
    head.is_implicit_VR, head.is_little_endian = False, True
    write_file_meta_info(head, meta, enforce_standard=False)
    return b"\x00" * 128 + b"DICM" + head.getvalue() + body.getvalue()


def renew_uids(ds: Dataset, rng: random.Random, study_uid: Optional[str]) -> None:
    """A new SOPInstanceUID (and StudyInstanceUID when given), so mutants of one object are
    different objects to the writer instead of repeats of the same one."""
    sop = generate_uid(entropy_srcs=[str(rng.random())])
    ds.SOPInstanceUID = sop
    if getattr(ds, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in ds.file_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = sop
    if study_uid:
        ds.StudyInstanceUID = study_uid


def mutate(source: Path, seed: int, out_dir: Path, *, kinds: Optional[Iterable[str]] = None,
           study_uid: Optional[str] = None, unique_uids: bool = False) -> Mutant:
    """One mutant of `source`, written to `out_dir`; the same (source, seed, kinds) always gives
    the same mutant. `unique_uids` gives it its own SOPInstanceUID (and `study_uid`) before
    mutating, so a mutation may still drop or garble them."""
    name = source.relative_to(CORPUS).as_posix() if source.is_relative_to(CORPUS) else source.name
    pool = list(kinds or WEIGHTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name.replace('/', '_').removesuffix('.dcm')}-{seed}.dcm"
    last_error: Optional[Exception] = None
    for attempt in range(6):  # a mutation pydicom cannot write is redrawn (still deterministic)
        rng = random.Random(f"{name}/{seed}/{attempt}")
        kind = rng.choices(pool, weights=[WEIGHTS.get(k, 1) for k in pool])[0]
        try:
            data, said = _make(source, kind, rng, pool, study_uid, unique_uids)
        except Exception as exc:  # noqa: BLE001 - a mutation pydicom cannot write is redrawn
            last_error = exc
            continue
        path.write_bytes(data)
        return Mutant(path, name, seed, said)
    raise RuntimeError(f"could not write any mutant of {name} seed {seed}: {last_error!r}")


def _make(source: Path, kind: str, rng: random.Random, pool: list[str], study_uid: Optional[str],
          unique_uids: bool) -> tuple[bytes, str]:
    if kind == "zero_byte":
        return b"", "zero_byte: an empty file"
    if kind == "truncate_file" and not unique_uids and rng.random() < 0.7:
        # The file as stored, cut: no parse and no re-encoding (seconds saved on big objects).
        data = _SOURCES.get(source) or _SOURCES.setdefault(source, source.read_bytes())
        cut = _cut(data, rng)
        return data[:cut], f"truncate_file: cut the stored file at byte {cut} of {len(data)}"
    ds = _load(source)
    if unique_uids:
        renew_uids(ds, rng, study_uid)
    dataset_kinds = [k for k in pool if k in DATASET_MUTATIONS]
    said = []
    if kind in DATASET_MUTATIONS:
        said.append(f"{kind}: {DATASET_MUTATIONS[kind](ds, rng)}")
    elif dataset_kinds and rng.random() < 0.3:
        extra = rng.choice(dataset_kinds)
        said.append(f"{extra}: {DATASET_MUTATIONS[extra](ds, rng)}")
    if kind in DATASET_MUTATIONS and dataset_kinds and rng.random() < 0.2:
        extra = rng.choice(dataset_kinds)
        said.append(f"{extra}: {DATASET_MUTATIONS[extra](ds, rng)}")
    if kind == "wrong_transfer_syntax":
        uid = rng.choice(TRANSFER_SYNTAXES)
        return declare_transfer_syntax(ds, uid), "; ".join(said + [f"{kind}: file meta declares {uid!r}"])
    data = encode(ds)
    if kind == "truncate_file":
        cut = _cut(data, rng)
        said.append(f"truncate_file: cut at byte {cut} of {len(data)}")
        data = data[:cut]
    return data, "; ".join(said)


def _cut(data: bytes, rng: random.Random) -> int:
    # A third of the cuts fall in the preamble and file meta, the rest anywhere.
    return rng.randrange(min(len(data), 400)) if rng.random() < 0.3 else rng.randrange(max(1, len(data)))

