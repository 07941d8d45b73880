"""Configuration, from environment variables prefixed DOSEFLOW_ (README lists every one).

List values are comma-separated (`DOSEFLOW_INGEST_ROOTS=/data/incoming,/mnt/pacs-export`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared import connection_urls
from shared.paths import parse_path_map


# Manufacturer/Model prefixes of legacy CT scanners whose dose screens the Toshiba builder reads
# (the classifier's routing rules default to these too).
DEFAULT_TOSHIBA_MODELS = ("Toshiba/Aquilion", "GE Medical Systems/LightSpeed Plus",
                          "GE Medical Systems/Discovery STE")


def _split(value):
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    # An empty variable is an unset one: compose files write `VAR: ""` to turn a setting off.
    model_config = SettingsConfigDict(env_prefix="DOSEFLOW_", extra="ignore", env_ignore_empty=True)

    # Each description is the README's configuration table row (`doseflow config --markdown`
    # renders the table; tests/test_configuration.py keeps README equal to it). `default_text`:
    # how the table shows a default that depends on the machine or on another setting.
    database_url: Optional[str] = Field(
        None, description="PostgreSQL URL (libpq form; add `?sslmode=verify-full&sslrootcert=...` for TLS). "
        "Unset: `import`, `studies` and `status` use an embedded PostgreSQL (pgserver) under "
        "`DOSEFLOW_DATA_DIR`; the writer requires it.")
    amqp_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        description="RabbitMQ URL (`amqps://...` for TLS). RabbitMQ's guest user only works on localhost.")
    database_password_file: Optional[Path] = Field(
        None, description="file holding the password of `DOSEFLOW_DATABASE_URL`'s user (a compose secret); "
        "doseflow percent-encodes it into the URL, so any character works; wins over a password in the URL")
    amqp_password_file: Optional[Path] = Field(
        None, description="file holding the password of `DOSEFLOW_AMQP_URL`'s user, likewise")
    tls_ca_file: Optional[Path] = Field(
        None, description="CA certificate (PEM) that verifies the broker's and the database's TLS "
        "certificates: added to `amqps://` URLs (pika's `ssl_options`) and to the database URL "
        "(`sslrootcert`) unless they set their own")
    connect_wait_seconds: float = Field(
        30, ge=0, description="how long a command (`db migrate`, `status`, ...) retries an unreachable "
        "database before it gives up with the reason; workers wait out outages for up to 10 minutes")
    ready_file: Optional[Path] = Field(
        None, description="file a worker touches every few seconds while it is connected to the broker "
        "(and its database), consuming, and (receiver) able to write its folder; removed when not. "
        "docker-compose.yml's healthchecks check its age")
    ingest_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list, json_schema_extra={"default_text": "empty (any path)"},
        description="folders ingest paths must lie under (symlinks resolved); others are refused "
        "unopened and recorded failed")
    path_map: Annotated[list[tuple[str, str]], NoDecode] = Field(
        default_factory=list, description="`FROM=TO` path prefixes rewritten in every incoming message "
        "path before the ingest-root check and before opening, so a worker host whose share is mounted "
        "elsewhere reads the same file (`/mnt/pacs=/data/incoming`); whole path components only, the "
        "longest `FROM` wins; the ledger keeps the path as published")
    prefetch: int = Field(16, ge=1, description="unacknowledged messages a consumer may hold")
    delivery_limit: int = Field(
        5, ge=1, description="deliveries of one message before the broker dead-letters it (a message that "
        "keeps killing a worker); deploy/rabbitmq/definitions.json declares the queues with the default, "
        "so changing it means regenerating that file and, for queues that already exist, a RabbitMQ policy "
        "(queue arguments cannot be redeclared)")
    patient_hash_key: Optional[str] = Field(
        None, description="key for HMAC-SHA-256 hashes of patient name and ID (`patient.name_hash`, "
        "`patient.id_hash`); unset: neither is stored in any form")
    patient_hash_key_file: Optional[Path] = Field(
        None, description="file holding that key (e.g. a Docker secret); wins over the variable")
    toshiba_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_TOSHIBA_MODELS),
        description="Manufacturer/Model prefixes (case-insensitive) whose CT images and secondary "
        "captures go to the Toshiba builder")
    dw_from_images: bool = Field(
        True, description="send CT axial images to the Dw stage, which measures the water-equivalent "
        "diameter (AAPM 220) of sampled images for the SSDE of their irradiation event; off: CT images are "
        "ignored, as objects without dose")
    dw_sample_interval_mm: float = Field(
        20.0, gt=0, le=1000, description="the Dw stage measures one image per this much table travel "
        "(per series); the others are ignored unread")
    toshiba_quiet_seconds: float = Field(
        120, ge=0, description="a legacy Toshiba study is built when no object arrived for this long")
    toshiba_output_dir: Optional[Path] = Field(
        None, json_schema_extra={"default_text": "`<data dir>/toshiba-rdsr`"},
        description="where the Toshiba builder writes the RDSRs it builds (must lie under an ingest "
        "root when roots are set)")
    data_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
        / "doseflow", json_schema_extra={"default_text": "`$XDG_DATA_HOME/doseflow` or `~/.local/share/doseflow`"},
        description="embedded PostgreSQL data and built RDSRs")
    log_level: str = Field("INFO", description="Python logging level; logs never carry patient names or IDs")
    log_format: Literal["text", "json"] = Field(
        "text", description="`text`, or `json`: one object per line with `time`, `level`, `logger`, "
        "`message`, `service` and the `correlation_id` that follows one object through the stages (the "
        "ObjectReceived message id); docker-compose.yml sets `json`")
    metrics_port: int = Field(
        0, ge=0, le=65535, json_schema_extra={"default_text": "`0` (off)"},
        description="port on which `doseflow worker ...` serves Prometheus metrics at `/metrics` (all "
        "interfaces)")
    receiver_ae_title: str = Field(
        "DOSEFLOW", min_length=1, max_length=16,
        description="AE title of the DICOM receiver (`doseflow worker receiver`)")
    receiver_port: int = Field(11112, ge=1, le=65535, description="TCP port the receiver listens on")
    receiver_allowed_calling_aes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, json_schema_extra={"default_text": "empty (any)"},
        description="calling AE titles the receiver accepts associations from; others are rejected")
    receiver_acse_timeout_s: float = Field(
        10, gt=0, description="seconds a peer has to complete its association request; a connection "
        "still negotiating after that (a stalled or hostile peer) is dropped")
    receiver_dimse_timeout_s: float = Field(
        30, gt=0, description="seconds the receiver waits for the next DIMSE message of an association "
        "before aborting it")
    receiver_network_timeout_s: float = Field(
        60, gt=0, description="seconds an association may stay silent (also within one PDU) before it "
        "is dropped")
    receiver_max_associations: int = Field(
        10, ge=1, description="associations the receiver serves at once; more are rejected as transient "
        "(local limit exceeded), so the modality retries. Connections still negotiating do not count")
    receiver_max_associations_per_ae: int = Field(
        4, ge=1, description="associations one calling AE title may hold at once")
    receiver_max_object_mb: float = Field(
        2048, gt=0, description="largest data set the receiver accepts, in MB; it is written to disk as "
        "it arrives and a larger one is answered `0xA701` (refused: out of resources) and removed")
    receiver_announce_timeout_s: float = Field(
        10, gt=0, description="longest the receiver tries to reach the broker for one object before it "
        "answers `0xA700` (the modality keeps the object and retries); keep it below the modalities' "
        "C-STORE timeout (often 30 s)")
    max_inflated_mb: float = Field(
        64, gt=0, description="how far a Deflated Explicit VR data set may inflate in memory when any "
        "stage reads it, in MB; beyond it the object is failed with the reason (a deflate bomb)")
    age_precision_years: Literal["0.1", "1"] = Field(
        "0.1", description="precision of the stored patient age (`patient.age_years`), in years: `0.1` "
        "(a birth date cannot be recovered closer than about ±18 days) or `1` (whole years, floored)")
    staff_names: Literal["keep", "hash", "drop"] = Field(
        "keep", description="operator, performing and referring physician, and dose-check person names: "
        "`keep`, `hash` (HMAC-SHA-256 with the patient hash key; without a key they are dropped) or `drop`")
    accession_number: Literal["keep", "hash", "drop"] = Field(
        "keep", description="the accession number (which identifies an examination at the hospital): "
        "`keep`, `hash` (as staff names) or `drop`")
    receiver_root: Optional[Path] = Field(
        None, json_schema_extra={"default_text": "the first ingest root"},
        description="folder the receiver writes received objects to, as "
        "`<root>/<StudyInstanceUID>/<SOPInstanceUID>.dcm`; required when `DOSEFLOW_INGEST_ROOTS` is empty")
    alert_rules: Optional[Path] = Field(
        None, json_schema_extra={"default_text": "the shipped defaults"},
        description="the alert rules and subscriptions file (README [Alerts](#alerts)); `doseflow alerts rules "
        "check FILE` validates one; a file that does not validate stops `doseflow worker alerts` and `import` "
        "at start")
    smtp_host: Optional[str] = Field(
        None, description="SMTP server for e-mail notifications; unset: e-mail subscriptions make the notifier "
        "refuse to start")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587: submission with STARTTLS)")
    smtp_security: Literal["starttls", "none"] = Field(
        "starttls", description="`starttls` (the server's certificate is verified) or `none` (a relay on "
        "the same host only)")
    smtp_ca_file: Optional[Path] = Field(
        None, json_schema_extra={"default_text": "the system's CAs"},
        description="CA certificates (PEM) that verify the SMTP server's certificate")
    smtp_username: Optional[str] = Field(None, description="SMTP login name; unset: no AUTH")
    smtp_password_file: Optional[Path] = Field(
        None, description="file holding the SMTP password (e.g. a Docker secret); needed with a username")
    smtp_from: str = Field("doseflow@localhost", description="sender address of alert e-mails")
    webhook_secret_file: Optional[Path] = Field(
        None, description="file holding the key that signs webhook bodies (HMAC-SHA-256 in "
        "`X-Doseflow-Signature`); required when a subscription has a webhook")
    notify_max_attempts: int = Field(
        30, ge=1, description="delivery attempts of one notification before it is marked failed")
    notify_retry_max_seconds: float = Field(
        300, gt=0, description="longest wait between two attempts (exponential backoff from 1 s, with jitter)")

    protocol_map: Optional[Path] = Field(
        None, json_schema_extra={"default_text": "the shipped `services/audit/data/protocol-map.csv`"},
        description="CSV of rules mapping local study and acquisition names to examination categories "
        "(see [Audit](#audit)); after editing it, restart the writer and run `doseflow audit --remap`")
    drl_set: str = Field(
        "UK-2024", description="DRL set the writer compares each CT study with (`ct.drl_ratio_*`) and "
        "`doseflow audit` uses by default: `UK-2024`, `ARPANSA-2018`, or a site set's id")
    k_set: str = Field(
        "AAPM96", description="k-factor table for the effective-dose estimate: `AAPM96` (ICRP 60), "
        "`ICRP103-adult`, `NCI-ED103-120kV`, or a site table's id")
    reference_dir: Optional[Path] = Field(
        None, description="folder with a site's own reference data: `drl/<ID>.toml` (local DRLs) and "
        "`k/<ID>.toml`, in the shipped files' format; a site file wins over a shipped one with the same id")
    backfill_nodes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="PACS nodes for `doseflow backfill --pacs NAME`, as `NAME=AET@HOST:PORT` "
        "(`--pacs` also takes `AET@HOST:PORT` itself); our calling AE title and the C-MOVE destination are "
        "`DOSEFLOW_RECEIVER_AE_TITLE`")
    backfill_profile: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="overrides of the probed PACS capability profile, `key=value` for every "
        "node or `NAME.key=value` for one (NAME: node name or AE title), e.g. "
        "`PACS1.matches_modalities_in_study=false,max_answers=500`")
    backfill_pace_seconds: float = Field(
        1.0, ge=0, description="`doseflow backfill`: pause between two requests to the PACS (C-FIND, C-MOVE)")
    backfill_max_objects: int = Field(
        5000, ge=1, description="`doseflow backfill`: objects retrieved per run at most; `--resume` continues")

    _split_lists = field_validator("ingest_roots", "toshiba_models", "receiver_allowed_calling_aes",
                                   "backfill_nodes", "backfill_profile", mode="before")(_split)

    @field_validator("path_map", mode="before")
    @classmethod
    def _parse_path_map(cls, value):
        if isinstance(value, str):
            return parse_path_map(_split(value))
        return value

    @model_validator(mode="after")
    def _credentials(self):
        """Passwords from their files go into the URLs (percent-encoded), with the CA file; the
        examples' placeholder passwords are refused."""
        ca = str(self.tls_ca_file) if self.tls_ca_file else None
        if self.database_url:
            password = _read_secret(self.database_password_file)
            connection_urls.refuse_placeholder(
                "DOSEFLOW_DATABASE_PASSWORD_FILE" if password is not None else "the password in DOSEFLOW_DATABASE_URL",
                password if password is not None else connection_urls.password_of(self.database_url))
            self.database_url = connection_urls.database_url(self.database_url, password, ca)
        password = _read_secret(self.amqp_password_file)
        connection_urls.refuse_placeholder(
            "DOSEFLOW_AMQP_PASSWORD_FILE" if password is not None else "the password in DOSEFLOW_AMQP_URL",
            password if password is not None else connection_urls.password_of(self.amqp_url))
        self.amqp_url = connection_urls.amqp_url(self.amqp_url, password, ca)
        return self

    def receiver_folder(self) -> Optional[Path]:
        """Where the receiver writes: DOSEFLOW_RECEIVER_ROOT, else the first ingest root."""
        if self.receiver_root is not None:
            return self.receiver_root
        return Path(self.ingest_roots[0]) if self.ingest_roots else None

    def patient_key(self) -> Optional[bytes]:
        if self.patient_hash_key_file:
            return self.patient_hash_key_file.read_bytes().strip() or None
        return self.patient_hash_key.encode() if self.patient_hash_key else None


def _read_secret(path: Optional[Path]) -> Optional[str]:
    """A secret file's text without its final line break (what `echo` or an editor adds)."""
    if path is None:
        return None
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read the secret file {path}: {exc.strerror or exc}") from None


def load() -> Settings:
    return Settings()
