"""The fast content-tree walk (shared/sr_tree.py, issue 18) gives the very report pydicom's own
reading gives, for every dose SR of the corpus and for the encodings it must handle; what it
cannot walk is read by pydicom as before."""
from __future__ import annotations

import struct

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from services.classifier.rules import RoutingRules
from services.classifier.worker import classify_file
from services.extractors.common import ExtractOptions
from services.extractors.worker import extract_file
from shared import sr
from shared.dicom import read_object
from shared.outcome import Failed, Ignored
from shared.sr_tree import Item, NotSimple, read_sequence
from tests.conftest import CORPUS, corpus_file

SR_FILES = sorted(p.name for p in CORPUS.glob("*.dcm") if "RDSR" in p.name or "ESR" in p.name) \
    if CORPUS.exists() else ["CT-RDSR-GEPixelMed.dcm"]
OPTIONS = ExtractOptions()


def both_ways(path: str):
    """(report through the fast walk, report through pydicom alone) of the file at `path`."""
    route, header = classify_file(path, RoutingRules(), roots=[])
    if route == "toshiba":
        pytest.skip("not a dose SR")
    fast = outcome(lambda: extract_file(path, route, OPTIONS, header))
    assert "_doseflow_content" in header.__dict__, "the fast walk was not used"
    slow = outcome(lambda: extract_file(path, route, OPTIONS, pydicom.dcmread(path, stop_before_pixels=True)))
    return fast, slow


def outcome(run):
    try:
        return run().model_dump()
    except (Ignored, Failed) as exc:
        return type(exc).__name__, exc.reason


@pytest.mark.parametrize("name", [n for n in SR_FILES if n != "ESR_non-dose.dcm" if (CORPUS / n).stat().st_size < 1_000_000]
                         if CORPUS.exists() else SR_FILES)
def test_every_corpus_dose_report_reads_the_same_through_the_fast_walk(name):
    fast, slow = both_ways(str(corpus_file(name)))
    assert fast == slow


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("charset, text", [("ISO_IR 100", "Dr Müller, Salle 2 Ørsted"),
                                           ("ISO_IR 192", "Müller 田中 Ωmega"),
                                           ("\\ISO 2022 IR 87", "Yamada^Tarou=山田^太郎"),
                                           ("ISO_IR 13", "ﾔﾏﾀﾞ")])
def test_declared_character_sets_and_both_vr_encodings_read_as_pydicom_reads_them(tmp_path, syntax,
                                                                                   charset, text):
    ds = pydicom.dcmread(corpus_file("CT-RDSR-GEPixelMed.dcm"))
    ds.SpecificCharacterSet = charset
    for item in ds.iterall():
        if item.keyword == "TextValue":
            item.value = text
    path = tmp_path / "sr.dcm"
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path, enforce_file_format=True)
    fast, slow = both_ways(str(path))
    assert fast == slow
    items = sr.children(read_object(str(path)))
    assert all(isinstance(i, Item) for i in items)
    texts = [sr.text(i) for i in items if i.get("ValueType") == "TEXT"]
    assert texts and all(t == text for t in texts)


@pytest.mark.parametrize("vr, raw", [("FD", b"12345"), ("DS", b"1.5\\abc "), ("UL", b"1.2.3.4"),
                                     ("DS", b"12.5"), ("UN", b"7.5 "), ("CS", b"YES "), ("CS", b""),
                                     ("SH", b"  113835 "), ("LO", b"Dose\\Area "), ("UI", b"1.2.840.10008\x00"),
                                     ("LO", b"M\xfcller"), ("CS", b"A\x00B "), ("UI", b"")])
def test_a_value_reads_as_pydicom_reads_it_or_fails_as_it_fails(vr, raw):
    element = struct.pack("<HH2sH", 0x0040, 0xA30A, vr.encode(), len(raw)) if vr != "UN" else \
        struct.pack("<HH2s2xI", 0x0040, 0xA30A, b"UN", len(raw))
    item = read_sequence(struct.pack("<HHI", 0xFFFE, 0xE000, len(element) + len(raw)) + element + raw,
                         implicit=False, encoding=["iso8859"])[0]
    theirs = Dataset()
    theirs._dict[Tag(0x0040A30A)] = RawDataElement(Tag(0x0040A30A), vr, len(raw), raw, 0, False, True)

    def read(ds):
        try:
            return ds.get("NumericValue")
        except Exception as exc:  # noqa: BLE001
            return type(exc)
    assert read(item) == read(theirs)
    assert sr.value(item, "NumericValue") == sr.value(theirs, "NumericValue")


@pytest.mark.parametrize("data", [
    b"\xfe\xff\x00\xe0\x20\x00\x00\x00\x40\x00",            # an item cut short
    b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100",                # an element where an item belongs
    b"\xfe\xff\x00\xe0\x10\x00\x00\x00\x08\x00\x05\x00CS\x08\x00ISO_IR 6",  # a character set in an item
    b"\xfe\xff\x00\xe0\x0a\x00\x00\x00\x40\x00\x30\xa7\x01\x02\x00\x00\x00\x00",  # not an explicit VR
])
def test_bytes_outside_the_walk_are_left_to_pydicom(data):
    with pytest.raises(NotSimple):
        read_sequence(data, implicit=False, encoding=["iso8859"])


def test_a_tree_edited_after_reading_is_never_answered_from_the_walk():
    ds = read_object(str(corpus_file("CT-RDSR-GEPixelMed.dcm")))
    walked = sr.children(ds)
    ds.ContentSequence = ds.ContentSequence[:2]  # converted by pydicom, then replaced
    assert len(walked) > 2 and len(sr.children(ds)) == 2
