"""Metric labels stay bounded: a failure reason becomes its first plain words, never a value."""
from __future__ import annotations

import pytest

from shared.metrics import reason_class


@pytest.mark.parametrize("reason, label", [
    ("file not found (deleted or moved after it was published?)", "file not found"),
    ("refused: path is outside DOSEFLOW_INGEST_ROOTS", "refused path is outside DOSEFLOW_INGEST_ROOTS"),
    ("not a readable DICOM object: InvalidDicomError: File is missing DICOM File Meta", "not a readable DICOM object"),
    ("dose screen row 3 (Helical): no CTDIvol read", "dose screen row"),
    ("no StudyInstanceUID (0020,000D): the report cannot be filed", "no StudyInstanceUID"),
    ("internal error in writer handler: KeyError: 'x'", "internal error in writer handler"),
    ("1.2.840.10008.5.1.4.1.1.88.67 is unknown", "other"),
    ("'SMITH^JOHN' is not a number", "other"),
    ("", "other"),
    (None, "other"),
])
def test_a_reason_class_is_the_reasons_first_plain_words(reason, label):
    assert reason_class(reason) == label


def test_a_reason_class_never_carries_a_path_or_a_uid():
    assert reason_class("cannot open /data/incoming/1.2.3/4.5.6.dcm") == "cannot open"
    assert reason_class("study 1.2.826.0.1.3680043 failed") == "study"
