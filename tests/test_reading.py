"""The one reading layer (shared/dicom.py read_object/read_header): every way a file cannot be
read ends as Failed with a reason, whichever stage reads it."""
from __future__ import annotations

import os

import pytest

from services.toshiba_builder.worker import dose_page_reader
from shared.dicom import read_header, read_object
from shared.outcome import Failed
from tests.conftest import corpus_file

SR = "CT-RDSR-GEPixelMed.dcm"


def test_a_readable_object_reads_whole_or_header_only():
    path = corpus_file(SR)
    assert "ContentSequence" in read_object(str(path))
    assert read_header(str(path), routing_only=True).SOPClassUID == read_object(str(path)).SOPClassUID


@pytest.mark.parametrize("read", [read_object, read_header])
def test_every_unreadable_file_fails_with_its_reason(read, tmp_path):
    whole = corpus_file(SR).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[:9813])
    text = tmp_path / "notes.txt"
    text.write_text("not a DICOM object")
    locked = tmp_path / "locked.dcm"
    locked.write_bytes(whole)
    locked.chmod(0)
    cases = {str(tmp_path / "gone.dcm"): "file not found", str(tmp_path): "folder",
             str(cut): "cut short" if read is read_object else "not a readable DICOM object",
             str(text): "not a readable DICOM object"}
    if os.geteuid() != 0:  # root reads any file
        cases[str(locked)] = "permission denied"
    for path, reason in cases.items():
        with pytest.raises(Failed, match=reason):
            read(path)


def test_the_toshiba_builder_names_the_dose_page_it_cannot_read(tmp_path):
    gone = str(tmp_path / "page.dcm")
    with pytest.raises(Failed, match=r"^dose page .*page\.dcm: file not found"):
        dose_page_reader([])(gone)
