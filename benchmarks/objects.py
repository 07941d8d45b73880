"""Benchmark inputs: unique copies of corpus objects, and one very large multi-frame image.

A copy is the template's bytes with its Study, Series and SOP Instance UIDs and (in SRs) its
Irradiation Event UIDs replaced, wherever they occur (file meta, header, content tree), by new
random UIDs of the same length. Same length keeps every element length and padding valid, so a
copy is made by a byte substitution instead of a pydicom read and write per copy: 2000 copies
take a second, and nothing in them is a duplicate for doseflow's deduplication.
"""
from __future__ import annotations

import os
import random
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian

from shared.codes import IRRADIATION_EVENT_UID


# The mix: one kind after the other, and within a kind the templates in turn. Corpus objects
# larger than MAX_TEMPLATE_BYTES (a 3 MB RF report) are left out: one of them costs as much as
# a hundred others and would make the mix's cost depend on N.
KINDS: dict[str, tuple[str, ...]] = {
    "CT RDSR": ("CT-RDSR-*.dcm", "CT-ESR-*.dcm"),
    "RF RDSR": ("RF-RDSR-*.dcm",),
    "DX image": ("DX-Im-*.dcm",),
    "MG image": ("MG-Im-*.dcm",),
}
MAX_TEMPLATE_BYTES = 1_000_000


def corpus_folder(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("DOSEFLOW_CORPUS"):
        return Path(os.environ["DOSEFLOW_CORPUS"])
    return Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def _uid_values(ds: pydicom.Dataset) -> set[str]:
    """The UIDs a copy must not share with its template: study, series, SOP instance, and every
    Irradiation Event UID in the content tree."""
    uids = {str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    for item in ds.iterall():
        if item.keyword != "ContentSequence":
            continue
        for content in item.value:
            name = content.get("ConceptNameCodeSequence")
            if content.get("ValueType") == "UIDREF" and name and \
                    (str(name[0].get("CodingSchemeDesignator", "")), str(name[0].get("CodeValue", ""))) \
                    == IRRADIATION_EVENT_UID:
                uids.add(str(content.get("UID", "")))
    return {u.strip("\x00 ") for u in uids if u and u.strip("\x00 ")}


@dataclass
class Template:
    kind: str
    name: str
    data: bytes
    pattern: re.Pattern  # matches any of the UIDs to replace, as whole UIDs

    def copy(self, rng: random.Random) -> bytes:
        new: dict[bytes, bytes] = {}

        def replace(m: re.Match) -> bytes:
            old = m.group(0)
            if old not in new:
                new[old] = same_length_uid(len(old), rng)
            return new[old]

        return self.pattern.sub(replace, self.data)


def same_length_uid(length: int, rng: random.Random) -> bytes:
    """A random UID of exactly `length` characters ('2.25.' then digits; no leading zero)."""
    if length < 7:
        raise ValueError(f"UID of {length} characters is too short to replace")
    n = length - 5
    return b"2.25." + str(rng.randrange(10 ** (n - 1), 10 ** n)).encode()


def load_templates(corpus: Path) -> dict[str, list[Template]]:
    out: dict[str, list[Template]] = {}
    for kind, patterns in KINDS.items():
        paths = sorted({p for pattern in patterns for p in corpus.glob(pattern)
                        if p.stat().st_size <= MAX_TEMPLATE_BYTES})
        templates = []
        for path in paths:
            data = path.read_bytes()
            uids = sorted(_uid_values(pydicom.dcmread(path)), key=len, reverse=True)
            # Longest first, and never inside a longer UID (a series UID may extend the study's).
            pattern = re.compile(rb"(?<![0-9.])(?:" + b"|".join(re.escape(u.encode()) for u in uids) + rb")(?![0-9.])")
            templates.append(Template(kind, path.stem, data, pattern))
        if not templates:
            raise SystemExit(f"no {kind} objects ({', '.join(patterns)}) in {corpus}")
        out[kind] = templates
    return out


def make_copies(templates: dict[str, list[Template]], n: int, folder: Path, seed: int,
                prefix: str = "") -> list[tuple[str, str]]:
    """`n` unique objects in `folder`, kinds in turn; returns [(path, kind)]."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    kinds = list(templates)
    turn = {kind: 0 for kind in kinds}
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        template = templates[kind][turn[kind] % len(templates[kind])]
        turn[kind] += 1
        path = folder / f"{prefix}{i:05d}-{template.name}.dcm"
        path.write_bytes(template.copy(rng))
        out.append((str(path), kind))
    return out


def make_large_multiframe(template_path: Path, path: Path, size_bytes: int, rng: random.Random) -> int:
    """A multi-frame 16-bit image of about `size_bytes` pixel data with the template's header
    (a DX image: its dose attributes make it a dx_image object). The pixel data is a sparse
    hole, so making it costs no disk writes; reading it would still return every byte."""
    ds = pydicom.dcmread(template_path, stop_before_pixels=True)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(ds, keyword, same_length_uid(64, rng).decode())
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    rows = cols = 1024
    frame = rows * cols * 2
    frames = max(1, size_bytes // frame)
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    length = frames * frame
    with open(path, "wb") as f:
        ds.save_as(f, enforce_file_format=True)
        # (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved bytes, 4-byte length.
        f.write(struct.pack("<HH", 0x7FE0, 0x0010) + b"OW\x00\x00" + struct.pack("<I", length))
        f.truncate(f.tell() + length)
    return os.path.getsize(path)
