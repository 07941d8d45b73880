"""The one header accessor (shared/header.py): private attributes found by creator and offset,
values read leniently, on the corpus's Philips Dose Info object and a Toshiba CT image."""
from __future__ import annotations

import struct

import pydicom
from pydicom.tag import Tag

from shared.header import HeaderReader, private_tag
from tests.conftest import corpus_file

PHILIPS = "CT-SC-Philips_Brilliance16P.dcm"
TOSHIBA_IMAGE = "toshiba/toshiba_cxl_cap_contrast/IM00001.dcm"
ELSCINT, TOSHIBA = "ELSCINT1", "TOSHIBA_MEC_CT3"


def test_a_private_attribute_is_found_by_its_creator_in_whichever_block_it_reserved():
    ds = pydicom.dcmread(corpus_file(PHILIPS))
    assert private_tag(ds, 0x00E1, "elscint1", 0x21) == Tag(0x00E1, 0x1021)  # case of the creator
    assert HeaderReader(ds, []).private_number(0x00E1, ELSCINT, 0x21, "DLP") == 1102.44609
    # The same creator in the second block, after another creator's
    value = ds[0x00E11021]
    del ds[0x00E11021]
    ds[0x00E10010].value = "GEIIS"
    ds.add_new(0x00E10011, "LO", ELSCINT)
    ds.add_new(0x00E11121, value.VR, value.value)
    assert private_tag(ds, 0x00E1, ELSCINT, 0x21) == Tag(0x00E1, 0x1121)
    assert HeaderReader(ds, []).private_number(0x00E1, ELSCINT, 0x21, "DLP") == 1102.44609


def test_without_any_creator_the_first_block_is_assumed_only_when_asked_and_never_over_another():
    item = pydicom.dcmread(corpus_file(PHILIPS)).ExposureDoseSequence[1]
    del item[0x00E10010]  # as an anonymiser leaves it
    assert private_tag(item, 0x00E1, ELSCINT, 0x21) is None
    reader = HeaderReader(item, [])
    assert reader.private_number(0x00E1, ELSCINT, 0x21, "DLP", assume_first_block=True) == 196.01
    item.add_new(0x00E10010, "LO", "SOMEONE ELSE")
    assert private_tag(item, 0x00E1, ELSCINT, 0x21, assume_first_block=True) is None


def test_a_private_double_is_read_as_fd_and_as_the_un_bytes_a_pacs_makes_of_it():
    ds = pydicom.dcmread(corpus_file(TOSHIBA_IMAGE), stop_before_pixels=True)
    warnings: list[str] = []
    reader = HeaderReader(ds, warnings)
    assert reader.private_double(0x7005, TOSHIBA, 0x63, "CTDIvol") == 9.8  # FD as sent
    tag = private_tag(ds, 0x7005, TOSHIBA, 0x63)
    ds[tag] = pydicom.DataElement(tag, "UN", struct.pack("<d", 9.8))
    assert reader.private_double(0x7005, TOSHIBA, 0x63, "CTDIvol") == 9.8
    ds[tag] = pydicom.DataElement(tag, "UN", b"\x00\x01\x02")
    assert reader.private_double(0x7005, TOSHIBA, 0x63, "CTDIvol (7005,xx63)") is None
    assert warnings == ["CTDIvol (7005,xx63): 3 bytes where an 8-byte double belongs"]
    assert reader.private_text(0x7005, TOSHIBA, 0x09).count("1") == 64  # active detector rows
