"""DICOM helpers shared by every stage: reading files, and turning attribute values into
plain Python values (ISO dates, floats, names). Pure apart from the readers.

Every stage reads a file through `read_header` or `read_object`: the one place where a file
that is missing, a folder, not readable, not DICOM or cut short becomes `Failed` with the reason
(`parse_file` below them is the raw read, raising OSError/UnreadableObject). Every read goes
through two guards: `open_regular` (never a FIFO, device or socket: a FIFO would block for
ever) and `inflate_capped` (a deflated data set never inflates beyond a bound).
"""
from __future__ import annotations

import datetime as _dt
import errno
import io
import math
import os
import re
import stat
import zlib
from typing import BinaryIO, Optional

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.filebase import DicomFileLike
from pydicom.filereader import _at_pixel_data, _read_file_meta_info, read_dataset, read_partial, read_preamble
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from shared.outcome import Failed

# SOP classes doseflow knows (PS3.4 Annex B).
XRAY_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
RADIOPHARMACEUTICAL_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.68"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"


class UnreadableObject(Exception):
    """The file is not a DICOM object pydicom can read (truncated, empty, not DICOM)."""


class NotRegularFile(UnreadableObject):
    """The path is a FIFO, device or socket: refused without reading (a FIFO would block)."""


class InflationLimit(UnreadableObject):
    """A deflated data set inflates beyond the bound (a deflate bomb, or an object too large)."""


MB = 1 << 20
# The mark `parse_file` puts on what it reads (see shared/sr.py `_fast_children`).
FAST_TREE = "_doseflow_fast_tree"
# How far a Deflated Explicit VR Little Endian data set may inflate in memory: dose reports and
# image headers are far below it; 500 MB of zeros deflate to 500 kB. `configure` sets it from
# DOSEFLOW_MAX_INFLATED_MB at the start of every process.
max_inflated_bytes = 64 * MB
_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link"}


def configure(max_inflated_mb: float) -> None:
    global max_inflated_bytes
    max_inflated_bytes = int(max_inflated_mb * MB)


def open_regular(path: str) -> BinaryIO:
    """Open `path` read-only if it is a regular file. Opened non-blocking first, so that a FIFO
    with no writer cannot hang the reader, then checked with fstat (the file opened, not a name
    that may have changed since); a folder raises IsADirectoryError, a FIFO, device or socket
    NotRegularFile. Other OS errors (not found, permission, symlink loop, name too long) raise
    as they are: `os_reason` words them."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file but {_KINDS.get(stat.S_IFMT(mode), 'a special file')}: "
                                 "refused unread")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_regular_at(name: str, dir_fd: int) -> BinaryIO:
    """`open_regular` of `name` inside the folder `dir_fd`, never through a symbolic link."""
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile("not a regular file: refused unread")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def os_reason(exc: OSError) -> str:
    """An OS error in words for a ledger row, without the path (the row names it already)."""
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    hints = {errno.ELOOP: " (a symbolic link loop?)", errno.ENAMETOOLONG: "", errno.EACCES: " (permission denied)"}
    return f"{exc.strerror or type(exc).__name__} [{name}]{hints.get(exc.errno, '')}"


def inflate_capped(f: BinaryIO, limit: int, chunk: int = MB) -> io.BytesIO:
    """The raw-deflate stream from `f` inflated, read and inflated piece by piece; raises
    InflationLimit as soon as the output would pass `limit` bytes, so memory stays near `limit`
    whatever the ratio (zeros deflate a thousandfold)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = io.BytesIO()
    while not inflater.eof:
        data = inflater.unconsumed_tail or f.read(chunk)
        if not data:
            break  # a stream cut short: the parser says what is missing
        out.write(inflater.decompress(data, chunk))  # at most `chunk` bytes per step
        if out.tell() > limit:
            raise InflationLimit(f"not a readable DICOM object: the deflated data set inflates beyond "
                                 f"{limit // MB} MB (a deflate bomb? DOSEFLOW_MAX_INFLATED_MB)")
    out.seek(0)
    return out


def _read_deflated(f: BinaryIO, stop_when) -> Optional[FileDataset]:
    """The data set of a Deflated Explicit VR Little Endian file, inflated with the cap; None when
    the file is not deflated (the caller reads it as usual). pydicom would inflate it whole."""
    f.seek(0)
    try:
        preamble = read_preamble(f, False)
        file_meta = _read_file_meta_info(f)
    except Exception:  # noqa: BLE001 - not ours to judge: the ordinary read reports it
        return None
    if file_meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return None
    body = inflate_capped(f, max_inflated_bytes)
    dataset = read_dataset(DicomFileLike(body), False, True, stop_when=stop_when)
    ds = FileDataset(getattr(f, "name", None) or "", dataset, preamble, file_meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds


def _read_content_unparsed(f: BinaryIO, header_only: bool) -> Optional[FileDataset]:
    """The object with an undefined-length SR ContentSequence (0040,A730) kept as raw bytes, as
    pydicom keeps a defined-length one, for the fast content-tree walk (shared/sr_tree.py).
    pydicom parses an undefined-length sequence into Datasets while reading, which was most of
    the cost of an RF report. The walk finds the sequence's end; every element after it is read
    by pydicom as usual. None when the object has no such sequence or the walk cannot read it
    (cut short, big endian, an odd encoding): the caller reads it with pydicom alone, so such a
    file fails, or reads, exactly as before."""
    from shared.sr_tree import CONTENT_SEQUENCE, UNDEFINED, NotSimple, read_undefined_sequence

    def stop_when(tag, vr, length):
        return (tag == CONTENT_SEQUENCE and length == UNDEFINED) or (header_only and _at_pixel_data(tag, vr, length))

    ds = read_partial(f, stop_when=stop_when)
    start = f.tell()
    head = f.read(12)
    if len(head) < 8 or int.from_bytes(head[0:2], "little") << 16 | int.from_bytes(head[2:4], "little") \
            != CONTENT_SEQUENCE:
        # Read to the end, or stopped before the pixel data: what dcmread gives. Anything else
        # (a read cut short that pydicom let pass) is left to dcmread to say.
        return ds if not head or (header_only and _starts_pixel_data(head)) else None
    raw_flags = next((e for e in ds._dict.values() if isinstance(e, RawDataElement)), None)
    if raw_flags is None or not raw_flags.is_little_endian:
        return None
    implicit = raw_flags.is_implicit_VR
    if implicit:
        header_length = 8
    elif head[4:6] == b"SQ" and len(head) == 12:
        header_length = 12
    else:
        return None
    if int.from_bytes(head[header_length - 4:header_length], "little") != UNDEFINED:
        return None
    if os.fstat(f.fileno()).st_size - start > max_inflated_bytes:
        return None  # the walk holds the rest in memory; pydicom reads such a file as it always has
    f.seek(start + header_length)
    rest = f.read()
    encoding = ds._character_set
    try:
        items, end = read_undefined_sequence(rest, implicit=implicit, encoding=encoding)
    except NotSimple:
        return None
    # Kept as a defined-length element: the same items for pydicom, should anything ask it.
    element = RawDataElement(Tag(CONTENT_SEQUENCE), None if implicit else "SQ", end - 8, rest[:end - 8],
                             start + header_length, implicit, True)
    ds._dict[Tag(CONTENT_SEQUENCE)] = element
    ds.__dict__["_doseflow_content"] = (element, items)  # what shared.sr would walk again
    f.seek(start + header_length + end)
    after = read_dataset(f, implicit, True, stop_when=_at_pixel_data if header_only else None,
                         parent_encoding=ds._character_set)
    ds._dict.update(after._dict)
    return ds


def _starts_pixel_data(head: bytes) -> bool:
    tag = int.from_bytes(head[0:2], "little") << 16 | int.from_bytes(head[2:4], "little")
    return tag in (0x7FE00008, 0x7FE00009, 0x7FE00010)


def parse_file(path: str, *, header_only: bool = False, up_to_tag: Optional[int] = None) -> Dataset:
    """Parse a DICOM file, read-only, only if it is a regular file (raises OSError,
    UnreadableObject: use `read_object`). `header_only` stops before
    pixel data (a 500 MB multi-frame image costs a few kB); `up_to_tag` stops at the first
    top-level element after that tag. A deflated data set is inflated with a cap."""
    with open_regular(path) as f:  # not found, a folder, no permission: the caller names those
        try:
            if up_to_tag is not None:
                stop_when = lambda tag, vr, length: tag > up_to_tag  # noqa: E731
            else:
                stop_when = _at_pixel_data if header_only else None
            ds = _read_deflated(f, stop_when)
            if ds is None:
                f.seek(0)
                if up_to_tag is not None:
                    ds = read_partial(f, stop_when=stop_when)
                else:
                    ds = _read_content_unparsed(f, header_only)
                    if ds is None:
                        f.seek(0)
                        ds = pydicom.dcmread(f, stop_before_pixels=header_only)
        except InflationLimit:
            raise
        except Exception as exc:  # noqa: BLE001
            # Whatever the parser raises on these bytes is a fact about the file, not a fault of
            # ours: InvalidDicomError, EOFError, OSError "No tag to read" (a file cut short),
            # zlib.error (a Deflated transfer syntax over bytes that are not deflated),
            # RecursionError (sequences nested too deep)... The object cannot be read.
            raise UnreadableObject(f"not a readable DICOM object: {type(exc).__name__}: {str(exc)[:200]}") from exc
    check_complete(ds)
    # Its SR content tree may be walked by shared/sr_tree.py: a Dataset made any other way (a
    # test's own dcmread, to edit its items in place) is read through pydicom, items and all.
    ds.__dict__[FAST_TREE] = True
    return ds


def check_complete(ds: Dataset) -> None:
    """Refuse a file cut short inside an element. pydicom keeps whatever bytes are left of the
    last element's value without a word; for a dose SR that is the content tree, which then
    reads as a report with events or values missing. A file cut exactly between two elements
    cannot be told from a shorter object."""
    for tag in ds.keys():
        elem = ds.get_item(tag)
        length = getattr(elem, "length", None)
        held = getattr(elem, "value", None)
        if not getattr(elem, "is_raw", False) or length in (None, 0xFFFFFFFF) or not isinstance(held, bytes):
            continue  # converted already, or of undefined length (a cut there raises while reading)
        if len(held) < length:
            raise UnreadableObject(
                f"not a readable DICOM object: the file is cut short inside ({tag.group:04X},{tag.element:04X}), "
                f"which declares {length} bytes and holds {len(held)} (an incomplete copy or transfer?)")


# The routing rules and the ExtractRequest read nothing after an SR's root concept name
# (0040,A043). The classifier stops there: the content tree is the extractor's to read, and
# pydicom parses undefined-length sequences eagerly (180 ms for one RF dose report).
ROUTING_HEADER_END = 0x0040A043


def read_object(path: str, *, header_only: bool = False, up_to_tag: Optional[int] = None) -> Dataset:
    """The DICOM object at `path` (see `parse_file`); anything that keeps it from being read
    raises Failed with the reason."""
    try:
        return parse_file(path, header_only=header_only, up_to_tag=up_to_tag)
    except FileNotFoundError:
        raise Failed("file not found (deleted or moved after it was published?)") from None
    except IsADirectoryError:
        raise Failed("path is a folder, not a file") from None
    except PermissionError:
        raise Failed("file not readable by doseflow (permission denied)") from None
    except UnreadableObject as exc:
        raise Failed(str(exc)) from None
    except OSError as exc:  # a symbolic link loop, a name too long, an I/O error on the disk...
        raise Failed(f"file not readable: {os_reason(exc)}") from None


def read_header(path: str, *, routing_only: bool = False) -> Dataset:
    """The object's header, never its pixel data. `routing_only` stops after the attributes the
    classifier needs (not enough to extract). Raises Failed as `read_object`."""
    if routing_only:
        ds = read_object(path, up_to_tag=ROUTING_HEADER_END)
        if "SOPClassUID" in ds:
            return ds
        # Elements out of tag order, or no SOP class at all: read the whole header.
    return read_object(path, header_only=True)


def as_text(value) -> str:
    """A value as stripped text: bytes (VR UN) decoded, multi-values joined with '\\', NUL
    padding dropped. A NUL inside the text is corruption (DICOM pads with NUL only at the end
    of a UID), and PostgreSQL text and jsonb cannot hold it: it becomes U+FFFD, as pydicom
    shows bytes it cannot decode, so the rest of the value is kept and the damage visible."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1", "replace")
    elif type(value).__name__ == "MultiValue" or isinstance(value, (list, tuple)):
        value = "\\".join(str(v) for v in value)
    return str(value).strip().strip("\x00").strip().replace("\x00", "\ufffd")


def text(ds: Dataset, keyword: str) -> Optional[str]:
    """An attribute as stripped text; empty or absent is None. Multi-values are joined with '\\'."""
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed element must not stop the whole report
        return None
    if value is None:
        return None
    return as_text(value) or None


def person_name(ds: Dataset, keyword: str) -> Optional[str]:
    """A PN flattened to 'Family^Given^Middle^Prefix^Suffix' (trailing empties dropped); several
    names joined with ' | '."""
    try:
        value = ds.get(keyword)
    except Exception:
        return None
    if value is None or value == "":
        return None
    names = list(value) if type(value).__name__ == "MultiValue" else [value]
    flat = [as_text(str(n)).rstrip("^").strip() for n in names]
    flat = [n for n in flat if n]
    return " | ".join(flat) or None


def number(value) -> Optional[float]:
    """A DS/IS/FD/UN value as float; None when absent, empty, non-numeric or not finite.
    A multi-valued attribute gives its first value. Bytes (VR UN, e.g. Hologic) are decoded
    as the DS/IS text they hold."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace").strip("\x00 ")
        if "\\" in value:
            value = value.split("\\")[0]
    if type(value).__name__ == "MultiValue" or isinstance(value, (list, tuple)):
        if not value:
            return None
        value = value[0]
    if isinstance(value, str) and not value.strip():
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")
_DATETIME = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")


def _as_text(value) -> str:
    # VR UN (e.g. Hologic) hands over the raw bytes of the DA/TM/DT text.
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1", "replace")
    return str(value).strip().strip("\x00").strip()


def iso_date(value) -> Optional[str]:
    """DA 'YYYYMMDD' (or 'YYYY.MM.DD', old ACR-NEMA) to 'YYYY-MM-DD'; invalid gives None."""
    if value is None:
        return None
    s = _as_text(value).replace(".", "").replace("-", "")
    m = _DATE.match(s)
    if not m:
        return None
    y, mo, d = (int(g) for g in m.groups())
    try:
        # A calendar check, not just ranges: '20240230' would otherwise pass here and crash
        # date arithmetic (patient age) or the database's date column later.
        _dt.date(y, mo, d)
    except ValueError:
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}"


def iso_time(value, *, keep_fraction: bool = False) -> Optional[str]:
    """TM 'HHMMSS.ffffff' (also 'HHMM', 'HH', 'HH:MM:SS') to 'HH:MM:SS'; invalid gives None."""
    if value is None:
        return None
    s = _as_text(value).replace(":", "")
    m = _TIME.match(s)
    if not m:
        return None
    hh, mm, ss, frac = m.group(1), m.group(2) or "00", m.group(3) or "00", m.group(4)
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
        return None
    out = f"{hh}:{mm}:{min(int(ss), 59):02d}"
    if keep_fraction and frac:
        out += frac.ljust(7, "0")
    return out


def iso_datetime(value) -> Optional[str]:
    """DT to ISO 'YYYY-MM-DDTHH:MM:SS[.ffffff]' (a timezone suffix is dropped, not converted)."""
    if value is None:
        return None
    s = _as_text(value)
    m = _DATETIME.match(s)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, _tz = m.groups()
    date = iso_date(f"{y}{mo or '01'}{d or '01'}")
    if date is None:
        return None
    if hh is None:
        return date + "T00:00:00"
    t = iso_time(f"{hh}{mi or '00'}{ss or '00'}{frac or ''}", keep_fraction=True)
    return None if t is None else f"{date}T{t}"


def date_time(date, time) -> Optional[str]:
    """Join a DA and a TM into an ISO date-time (fraction kept); None if either is missing."""
    d = iso_date(date)
    t = iso_time(time, keep_fraction=True) if time is not None else None
    if d is None or t is None:
        return None
    return f"{d}T{t}"
