"""Alert rules as data: the YAML file a site edits (README "Alerts"), its schema, and loading it
with errors that name the line.

A file has three sections:
- `categories`: examination categories by study-description patterns (used when a report has no
  `study.examination_category` of its own);
- `rules`: each with an `id` and a `version` (a raised alert is never raised twice for the same
  study, rule, version and level: bump the version when you change what a rule means);
- `subscriptions`: who is told, by which channel, about which devices, categories and levels.

Loading is pure (text in, `RuleSet` out) so `doseflow alerts rules check`, the services and the
tests share it. A file that does not load raises `RulesError` with `path:line: what is wrong`.
"""
from __future__ import annotations

import logging
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

log = logging.getLogger(__name__)

DEFAULT_RULES_FILE = Path(__file__).with_name("default_rules.yaml")
MAX_RULES_BYTES = 1_000_000

Level = Literal["notice", "warning", "critical"]
LEVEL_ORDER = {"notice": 0, "warning": 1, "critical": 2}

# What a rule can compare, each a function of a stored study (services/alerts/evaluate.py).
Metric = Literal[
    "rp_dose_total_Gy",  # reference-point air kerma Ka,r, summed over planes
    "dap_total_Gym2",  # kerma-area product, summed over planes
    "fluoro_time_s",  # fluoroscopy time, summed over planes
    "peak_skin_dose_Gy",  # only where the report states one (none of today's routes does)
    "ct_dlp_total_mGycm",  # CT DLP total of the examination
    "ct_ctdivol_max_mGy",  # largest CTDIvol of a non-localizer CT event
    "ct_ctdivol_max_head16_mGy",  # the same over events on the 16 cm (head) phantom
    "ct_ctdivol_max_body32_mGy",  # the same over events on the 32 cm (body) phantom
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgeBand(_Model):
    """`min` inclusive, `below` exclusive, in years. A study without an age is outside every band."""

    min: Optional[float] = Field(None, ge=0)
    below: Optional[float] = Field(None, gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.min is None and self.below is None:
            raise ValueError("an age band needs min, below or both")
        if self.min is not None and self.below is not None and self.below <= self.min:
            raise ValueError(f"below ({self.below}) must be greater than min ({self.min})")
        return self

    def contains(self, age: Optional[float]) -> bool:
        if age is None:
            return False
        return (self.min is None or age >= self.min) and (self.below is None or age < self.below)


class Scope(_Model):
    """Which studies a rule applies to; an empty list means any."""

    modalities: list[str] = Field(default_factory=list)
    # Glob patterns (case-insensitive) against station name, device observer UID, serial number
    # and "manufacturer model".
    devices: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    not_categories: list[str] = Field(default_factory=list)
    age_years: Optional[AgeBand] = None


class Condition(_Model):
    """One level of a threshold rule: exactly one of above (>), at_least (>=), below (<)."""

    level: Level
    above: Optional[float] = None
    at_least: Optional[float] = None
    below: Optional[float] = None

    @model_validator(mode="after")
    def _one_comparison(self):
        given = [k for k in ("above", "at_least", "below") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of above, at_least, below" +
                             (f" (got {', '.join(given)})" if given else ""))
        return self

    @property
    def comparison(self) -> tuple[str, float]:
        for k in ("above", "at_least", "below"):
            v = getattr(self, k)
            if v is not None:
                return k, v
        raise AssertionError

    def met(self, value: float) -> bool:
        op, limit = self.comparison
        return value > limit if op == "above" else value >= limit if op == "at_least" else value < limit


class _Rule(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    version: int = Field(ge=1)
    title: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, description="where the number comes from (publication, site decision)")
    enabled: bool = True
    scope: Scope = Field(default_factory=Scope)


class ThresholdRule(_Rule):
    """A metric of the study (`per: study`) or its sum over the patient's studies within
    `window_days` (`per: patient`, needs DOSEFLOW_PATIENT_HASH_KEY) against levels."""

    kind: Literal["threshold"]
    metric: Metric
    per: Literal["study", "patient"] = "study"
    window_days: Optional[int] = Field(None, ge=1, le=3660)
    levels: list[Condition] = Field(min_length=1)

    @model_validator(mode="after")
    def _window(self):
        if self.per == "patient" and self.window_days is None:
            raise ValueError("a per-patient rule needs window_days")
        if self.per == "study" and self.window_days is not None:
            raise ValueError("window_days is only for per: patient")
        names = [c.level for c in self.levels]
        if len(set(names)) != len(names):
            raise ValueError("each level may appear once in a rule")
        return self


class RangeRule(_Rule):
    """An expected range with a lower AND an upper limit (The Joint Commission's expected dose
    index range): below `min` raises `level_low`, above `max` raises `level_high`."""

    kind: Literal["range"]
    metric: Metric
    min: float = Field(ge=0)
    max: float = Field(gt=0)
    level_low: Level = "notice"
    level_high: Level = "warning"

    @model_validator(mode="after")
    def _ordered(self):
        if self.max <= self.min:
            raise ValueError(f"max ({self.max}) must be greater than min ({self.min})")
        if self.level_low == self.level_high:
            raise ValueError("level_low and level_high must differ (an alert is kept once per level)")
        return self


class DrlRule(_Rule):
    """A single study's value against a diagnostic reference level: value / drl against levels
    (a factor, e.g. `above: 2.0` = more than twice the DRL). DRLs apply to medians; a single
    study above one is a prompt to look, not a breach."""

    kind: Literal["drl"]
    metric: Metric
    drl: float = Field(gt=0)
    drl_source: str = Field(min_length=1)
    levels: list[Condition] = Field(min_length=1)


class DoseCheckRule(_Rule):
    """The scanner's own Dose Check (NEMA XR 25, DICOM TID 10015) as carried in the RDSR: an
    `alert` (accumulated forward estimate above the configured alert value) or a `notification`
    (per-scan forward estimate above the notification value), with the reason the operator gave."""

    kind: Literal["dose_check"]
    which: Literal["alert", "notification"]
    level: Level


Rule = Annotated[Union[ThresholdRule, RangeRule, DrlRule, DoseCheckRule], Field(discriminator="kind")]


class Category(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    modalities: list[str] = Field(default_factory=list)
    # Regular expressions, searched case-insensitively in the study description, requested
    # procedure and procedure.
    patterns: list[str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns):
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"pattern {p!r} is not a regular expression: {exc}") from None
        return patterns

    @cached_property
    def compiled(self) -> list[re.Pattern]:
        return [re.compile(p, re.IGNORECASE) for p in self.patterns]


class Subscription(_Model):
    """One recipient on one channel; empty lists mean any."""

    name: str = Field(min_length=1, max_length=100)
    email: Optional[str] = Field(None, pattern=r"^[^@\s<>]+@[^@\s<>]+$")
    webhook: Optional[str] = Field(None, pattern=r"^https?://\S+$")
    devices: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    modalities: list[str] = Field(default_factory=list)
    # The lowest level this recipient wants (notice: everything).
    min_level: Level = "warning"
    rules: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_channel(self):
        if (self.email is None) == (self.webhook is None):
            raise ValueError("a subscription has exactly one of email or webhook (add one subscription per channel)")
        return self

    @property
    def channel(self) -> str:
        return "email" if self.email else "webhook"

    @property
    def address(self) -> str:
        return self.email or self.webhook or ""


class RuleSet(_Model):
    categories: list[Category] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    subscriptions: list[Subscription] = Field(default_factory=list)

    @property
    def active(self) -> list:
        return [r for r in self.rules if r.enabled]

    def needs_patient_pseudonym(self) -> list[str]:
        return [r.id for r in self.active if isinstance(r, ThresholdRule) and r.per == "patient"]


def reference_problems(rs: RuleSet, known_categories: frozenset[str] = frozenset()) -> list[tuple[tuple, str]]:
    """What the schema cannot see: duplicate ids and names, names that refer to nothing (a
    category is known when the file defines it or the dose-audit protocol mapping names it).
    (location in the file, message) pairs."""
    out: list[tuple[tuple, str]] = []
    seen: set[str] = set()
    for i, r in enumerate(rs.rules):
        if r.id in seen:
            out.append((("rules", i, "id"), f"rule id {r.id} appears more than once (ids must be unique)"))
        seen.add(r.id)
    names: set[str] = set()
    for i, c in enumerate(rs.categories):
        if c.name in names:
            out.append((("categories", i, "name"), f"category {c.name} appears more than once"))
        names.add(c.name)
    names |= known_categories
    for i, r in enumerate(rs.rules):
        for field_name in ("categories", "not_categories"):
            unknown = [c for c in getattr(r.scope, field_name) if c not in names]
            if unknown:
                out.append((("rules", i, "scope", field_name),
                            f"rule {r.id}: unknown categories {unknown} (define them under categories:, or "
                            "map them in the protocol mapping, DOSEFLOW_PROTOCOL_MAP)"))
    for i, sub in enumerate(rs.subscriptions):
        for field_name, known in (("rules", seen), ("categories", names)):
            unknown = [x for x in getattr(sub, field_name) if x not in known]
            if unknown:
                out.append((("subscriptions", i, field_name), f"subscription {sub.name}: unknown {field_name} {unknown}"))
    return out


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and line."""


# --- loading ----------------------------------------------------------------------------------


def _lines(node, path=(), out=None) -> dict[tuple, int]:
    """(key, index, ...) path -> 1-based line of every node of a composed YAML document."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)  # a mapping's key line was set by its parent
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else None
            out[path + (k,)] = key.start_mark.line + 1
            _lines(value, path + (k,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, path + (i,), out)
    return out


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int:
    """The line of the deepest part of a pydantic error location the file has (pydantic adds
    the union member's tag, e.g. 'threshold', which the file does not have: skipped)."""
    path, line = (), lines.get((), 1)
    for part in loc:
        if path + (part,) in lines:
            path += (part,)
            line = lines[path]
    return line


def parse(text: str, name: str = "<rules>", known_categories: frozenset[str] = frozenset()) -> RuleSet:
    if len(text.encode("utf-8", "replace")) > MAX_RULES_BYTES:
        raise RulesError(f"{name}: larger than {MAX_RULES_BYTES} bytes; not a rules file")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise RulesError(f"{name}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{name}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(f"{name}:1: the file must be a mapping with categories:, rules: and subscriptions:")
    lines = _lines(node) if node is not None else {}
    try:
        rs = RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            where = ".".join(str(p) for p in loc) or "file"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "union_tag_not_found":
                msg = "a rule needs kind: threshold, range, drl or dose_check"
            problems.append(f"{name}:{_line_of(loc, lines)}: {where}: {msg}")
        raise RulesError("\n".join(problems)) from None
    problems = [f"{name}:{_line_of(loc, lines)}: {'.'.join(map(str, loc))}: {msg}"
                for loc, msg in reference_problems(rs, known_categories)]
    if problems:
        raise RulesError("\n".join(problems))
    return rs


def load(path: Optional[Path] = None, known_categories: frozenset[str] = frozenset()) -> RuleSet:
    path = Path(path) if path else DEFAULT_RULES_FILE
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RULES_BYTES + 1)
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse(text, str(path), known_categories)


def load_configured(settings) -> RuleSet:
    """The rules file the settings name (DOSEFLOW_ALERT_RULES, else the shipped defaults), or
    RulesError: the caller refuses to start. Says which rules cannot fire without the patient
    pseudonym."""
    rules = load(settings.alert_rules, protocol_categories(settings))
    needs = rules.needs_patient_pseudonym()
    if needs and settings.patient_key() is None:
        log.warning("per-patient alert rules %s never fire: DOSEFLOW_PATIENT_HASH_KEY is not set, so studies "
                    "carry no patient pseudonym to sum over", ", ".join(needs))
    return rules


def protocol_categories(settings) -> frozenset[str]:
    """The examination categories of the dose-audit protocol mapping (DOSEFLOW_PROTOCOL_MAP): the
    writer stores a CT study's category in its report, and rules may be scoped by them."""
    from services.audit.mapping import load_map
    from services.audit.references import ReferenceError

    try:
        return frozenset(r.category for r in load_map(getattr(settings, "protocol_map", None)).rules)
    except (ReferenceError, OSError) as exc:
        log.warning("protocol mapping not read (%s): rules can use only the categories they define", exc)
        return frozenset()
