"""Configuration, from environment variables prefixed DOSEFLOW_ (README lists every one).

List values are comma-separated (`DOSEFLOW_INGEST_ROOTS=/data/incoming,/mnt/pacs-export`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.classifier.rules import DEFAULT_TOSHIBA_MODELS
from shared.paths import parse_path_map


def _split(value):
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOSEFLOW_", extra="ignore")

    database_url: Optional[str] = Field(
        None, description="PostgreSQL URL (libpq form; add ?sslmode=verify-full for TLS). Unset: "
        "`import`, `studies` and `status` use an embedded PostgreSQL under data_dir.")
    amqp_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        description="RabbitMQ URL (amqps://... for TLS). The default guest user only works on localhost.")
    ingest_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated folders that ingest paths must lie under; "
        "others are refused and recorded as failed without being opened. Empty: any path.")
    path_map: Annotated[list[tuple[str, str]], NoDecode] = Field(
        default_factory=list, description="Comma-separated FROM=TO path prefixes rewritten in every "
        "incoming message path before the ingest-root check and before opening "
        "(`/mnt/pacs=/data/incoming`: a worker host with the share mounted elsewhere reads the same "
        "file); whole path components only, the longest FROM wins. The ledger keeps the path as published.")
    prefetch: int = Field(16, ge=1, description="Unacknowledged messages a consumer may hold.")
    delivery_limit: int = Field(
        5, ge=1, description="Deliveries of one message before the broker dead-letters it (a message "
        "that keeps killing a worker).")
    patient_hash_key: Optional[str] = Field(
        None, description="Key for HMAC-SHA-256 hashes of patient name and ID. Unset (default): "
        "neither is stored.")
    patient_hash_key_file: Optional[Path] = Field(
        None, description="File holding the patient hash key (e.g. a Docker secret); wins over "
        "DOSEFLOW_PATIENT_HASH_KEY.")
    toshiba_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_TOSHIBA_MODELS),
        description="Comma-separated Manufacturer/Model prefixes (case-insensitive) whose CT objects "
        "and secondary captures go to the Toshiba builder.")
    toshiba_quiet_seconds: float = Field(
        120, ge=0, description="A legacy Toshiba study is built when no object arrived for this long.")
    toshiba_output_dir: Optional[Path] = Field(
        None, description="Where the Toshiba builder writes the RDSRs it builds (default: "
        "<data_dir>/toshiba-rdsr; must lie under an ingest root when roots are set).")
    data_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
        / "doseflow", description="Where the embedded PostgreSQL and built RDSRs are kept.")
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`text` lines for a terminal, or `json`: one object per line with time, level, "
        "logger, message, service and the correlation id of the object in hand (for a log collector).")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Port on which `doseflow worker ...` serves Prometheus metrics "
        "(`/metrics`, all interfaces). 0: no metrics server.")
    receiver_ae_title: str = Field(
        "DOSEFLOW", min_length=1, max_length=16,
        description="AE title of the DICOM C-STORE receiver (`doseflow worker receiver`).")
    receiver_port: int = Field(11112, ge=1, le=65535, description="TCP port the receiver listens on.")
    receiver_allowed_calling_aes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated calling AE titles the receiver accepts "
        "associations from. Empty: any.")
    receiver_root: Optional[Path] = Field(
        None, description="Folder the receiver writes objects to (<root>/<StudyInstanceUID>/"
        "<SOPInstanceUID>.dcm). Default: the first ingest root; required when no roots are set.")

    _split_lists = field_validator("ingest_roots", "toshiba_models", "receiver_allowed_calling_aes",
                                   mode="before")(_split)

    @field_validator("path_map", mode="before")
    @classmethod
    def _parse_path_map(cls, value):
        if isinstance(value, str):
            return parse_path_map(_split(value))
        return value

    def receiver_folder(self) -> Optional[Path]:
        """Where the receiver writes: DOSEFLOW_RECEIVER_ROOT, else the first ingest root."""
        if self.receiver_root is not None:
            return self.receiver_root
        return Path(self.ingest_roots[0]) if self.ingest_roots else None

    def patient_key(self) -> Optional[bytes]:
        if self.patient_hash_key_file:
            return self.patient_hash_key_file.read_bytes().strip() or None
        return self.patient_hash_key.encode() if self.patient_hash_key else None


def load() -> Settings:
    return Settings()
