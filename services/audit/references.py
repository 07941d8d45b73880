"""Reference data as versioned files: DRL sets and k-factor tables (TOML), target regions (CSV).

Each file carries its provenance (issuer, version, date, URL, status); only values read on a
primary (V) or secondary (V2) source are shipped, and a value nobody has read is absent, never 0.
The shipped files live in `services/audit/data/`; a site adds its own DRL sets (local DRLs) or
k tables as `drl/<ID>.toml` or `k/<ID>.toml` under DOSEFLOW_REFERENCE_DIR, which win over a shipped file of the same id.
"""
from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

DATA = Path(__file__).resolve().parent / "data"
PHANTOMS = ("head16", "body32")


class ReferenceError(ValueError):
    """A reference or mapping file that cannot be used, said with the file and the reason."""


@dataclass(frozen=True)
class Provenance:
    id: str
    issuer: str
    title: str
    version: str
    date: str
    url: str
    status: str

    @property
    def label(self) -> str:
        return f"{self.id} v{self.version}"


@dataclass(frozen=True)
class DrlRow:
    id: str
    category: str
    examination: str
    indication: Optional[str]
    phantom: str
    ctdivol_mGy: Optional[float]
    dlp_mGycm: Optional[float]


@dataclass(frozen=True)
class DrlSet:
    provenance: Provenance
    modality: str
    population: str  # "adult": compared for patients aged 16 and over only [doseflow convention]
    rows: tuple[DrlRow, ...]
    ctdivol_quantity: str = "CTDIvol (mGy)"
    dlp_quantity: str = "DLP (mGy·cm)"
    superseded: Optional[str] = None

    def row_for(self, category: Optional[str]) -> Optional[DrlRow]:
        return next((r for r in self.rows if r.category == category), None) if category else None


@dataclass(frozen=True)
class KRow:
    region: str
    regions: tuple[str, ...]  # target regions (target-regions.csv) this row is used for
    phantom: str
    k: dict[str, float]  # age band -> mSv per mGy·cm; an unread band is absent


@dataclass(frozen=True)
class KSet:
    provenance: Provenance
    basis: str  # "ICRP 60" | "ICRP 103"
    bands: tuple[tuple[str, float], ...]  # (band, lowest age in years), ascending
    rows: tuple[KRow, ...]

    @property
    def method(self) -> str:
        """What a stored estimate says it was computed with."""
        return f"k-factor {self.provenance.id} ({self.basis}) v{self.provenance.version}"

    def band(self, age_years: float) -> str:
        chosen = self.bands[0][0]
        for band, lowest in self.bands:
            if age_years >= lowest:
                chosen = band
        return chosen

    def row_for(self, region: str) -> Optional[KRow]:
        return next((r for r in self.rows if region in r.regions), None)


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ReferenceError(f"{path}: {exc}") from None


def _provenance(data: dict, path: Path) -> Provenance:
    meta = data.get("set")
    if not isinstance(meta, dict):
        raise ReferenceError(f"{path}: no [set] table with the set's provenance")
    missing = [k for k in ("id", "issuer", "version", "date", "url") if not meta.get(k)]
    if missing:
        raise ReferenceError(f"{path}: [set] lacks {', '.join(missing)}")
    return Provenance(id=str(meta["id"]), issuer=str(meta["issuer"]), title=str(meta.get("title", "")),
                      version=str(meta["version"]), date=str(meta["date"]), url=str(meta["url"]),
                      status=str(meta.get("status", "unstated")))


def _positive(value, what: str, path: Path) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ReferenceError(f"{path}: {what} must be a positive number (leave it out when unknown), not {value!r}")
    return float(value)


def parse_drl_set(data: dict, path: Path) -> DrlSet:
    prov = _provenance(data, path)
    rows = []
    for i, row in enumerate(data.get("row") or [], start=1):
        where = f"row {i} ({row.get('id', '?')})"
        if not row.get("id") or not row.get("category"):
            raise ReferenceError(f"{path}: {where} needs an id and a category")
        if row.get("phantom") not in PHANTOMS:
            raise ReferenceError(f"{path}: {where}: phantom must be one of {PHANTOMS}")
        rows.append(DrlRow(id=str(row["id"]), category=str(row["category"]),
                           examination=str(row.get("examination") or row["category"]),
                           indication=row.get("indication"), phantom=row["phantom"],
                           ctdivol_mGy=_positive(row.get("ctdivol_mGy"), f"{where} ctdivol_mGy", path),
                           dlp_mGycm=_positive(row.get("dlp_mGycm"), f"{where} dlp_mGycm", path)))
    categories = [r.category for r in rows]
    if len(set(categories)) != len(categories):
        raise ReferenceError(f"{path}: a category has more than one row")
    meta = data["set"]
    return DrlSet(provenance=prov, modality=str(meta.get("modality", "CT")),
                  population=str(meta.get("population", "adult")), rows=tuple(rows),
                  ctdivol_quantity=str(meta.get("ctdivol_quantity", "CTDIvol (mGy)")),
                  dlp_quantity=str(meta.get("dlp_quantity", "DLP (mGy·cm)")),
                  superseded=meta.get("superseded"))


def parse_k_set(data: dict, path: Path) -> KSet:
    prov = _provenance(data, path)
    bands = tuple((str(b), float(lo)) for b, lo in data["set"].get("bands") or [])
    if not bands:
        raise ReferenceError(f"{path}: [set] needs bands = [[band, lowest age], ...]")
    names = {b for b, _ in bands}
    rows = []
    for i, row in enumerate(data.get("row") or [], start=1):
        if row.get("phantom") not in PHANTOMS:
            raise ReferenceError(f"{path}: row {i}: phantom must be one of {PHANTOMS}")
        k = {str(band): _positive(v, f"row {i} k[{band}]", path) for band, v in (row.get("k") or {}).items()}
        if set(k) - names:
            raise ReferenceError(f"{path}: row {i}: k for unknown age bands {sorted(set(k) - names)}")
        rows.append(KRow(region=str(row["region"]), regions=tuple(row.get("regions") or [row["region"]]),
                         phantom=row["phantom"], k=k))
    return KSet(provenance=prov, basis=str(data["set"].get("basis", "")), bands=bands, rows=tuple(rows))


def _files(kind: str, site_dir: Optional[Path]) -> dict[str, Path]:
    """Set id (file stem) -> file; a site file wins over a shipped one of the same id."""
    found = {p.stem: p for p in sorted((DATA / kind).glob("*.toml"))}
    if site_dir is not None:
        found.update({p.stem: p for p in sorted((Path(site_dir) / kind).glob("*.toml"))})
    return found


def available_drl_sets(site_dir: Optional[Path] = None) -> list[str]:
    return sorted(_files("drl", site_dir))


def load_drl_set(set_id: str, site_dir: Optional[Path] = None) -> DrlSet:
    files = _files("drl", site_dir)
    if set_id not in files:
        raise ReferenceError(f"no DRL set {set_id!r}; available: {', '.join(sorted(files))}")
    drl = parse_drl_set(_read_toml(files[set_id]), files[set_id])
    if drl.provenance.id != set_id:
        raise ReferenceError(f"{files[set_id]}: [set] id {drl.provenance.id!r} differs from the file name")
    return drl


def load_k_set(set_id: str, site_dir: Optional[Path] = None) -> KSet:
    files = _files("k", site_dir)
    if set_id not in files:
        raise ReferenceError(f"no k-factor set {set_id!r}; available: {', '.join(sorted(files))}")
    return parse_k_set(_read_toml(files[set_id]), files[set_id])


def load_target_regions(path: Path = DATA / "target-regions.csv") -> dict[str, str]:
    """Target region meaning (lower case) -> body region."""
    return {row["meaning"].strip().lower(): row["region"].strip() for row in _csv_rows(path)}


def _csv_rows(path: Path) -> Iterable[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = [line for line in f if line.strip() and not line.lstrip().startswith("#")]
    except OSError as exc:
        raise ReferenceError(f"{path}: {exc.strerror or exc}") from None
    return list(csv.DictReader(lines))
