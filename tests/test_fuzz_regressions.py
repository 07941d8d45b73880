"""Inputs the fuzz test (tests/test_fuzz_extract.py) found crashing a route, each pinned down:
it must now end as a report (the unreadable value None, with a warning where the reader names
the concept) or as `Failed` with a reason — never as another exception."""
from __future__ import annotations

import warnings

import pydicom
import pytest

from services.classifier.rules import RoutingRules
from services.classifier.worker import classify_file
from shared.outcome import Failed
from tests import fuzz
from tests.conftest import corpus_file


@pytest.fixture(autouse=True)
def _quiet_pydicom():
    # pydicom warns about every malformed value these objects are made of.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _written(tmp_path, data: bytes):
    path = tmp_path / "mutant.dcm"
    path.write_bytes(data)
    return str(path)


# --- reading the file -------------------------------------------------------------------------


def test_a_file_cut_short_inside_a_sequence_fails_as_unreadable(tmp_path):
    # An undefined-length sequence cut off mid-item: pydicom raised OSError "No tag to read",
    # which escaped the reader.
    data = corpus_file("RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP.dcm").read_bytes()[:26605]
    with pytest.raises(Failed, match="not a readable DICOM object: OSError"):
        classify_file(_written(tmp_path, data), RoutingRules(), roots=[])


def test_a_deflated_transfer_syntax_over_bytes_that_are_not_deflated_fails_as_unreadable(tmp_path):
    # pydicom raised zlib.error, which escaped the reader.
    data = fuzz.declare_transfer_syntax(pydicom.dcmread(corpus_file("DX-Im-GE_XR220-1.dcm")),
                                        "1.2.840.10008.1.2.1.99")
    with pytest.raises(Failed, match="not a readable DICOM object: error"):
        classify_file(_written(tmp_path, data), RoutingRules(), roots=[])
