"""The configuration reference, generated from the settings model (shared/settings.py), and the
effective configuration of this process (`doseflow config`).

README's "Configuration" table is `markdown_table()`'s output between its
`<!-- settings-table -->` markers; tests/test_configuration.py fails when they differ, so a new
setting is documented by writing its Field description.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic.fields import FieldInfo

from shared.settings import Settings

ENV_PREFIX = Settings.model_config["env_prefix"]
BEGIN, END = "<!-- settings-table -->", "<!-- /settings-table -->"
SECRET_FIELDS = ("patient_hash_key",)


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _as_env(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join("=".join(v) if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


def default_text(info: FieldInfo) -> str:
    """The default as the README shows it: the field's own words where the value depends on the
    machine (`default_text`), else the value as it would be written in the environment."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "default_text" in extra:
        return str(extra["default_text"])
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, (list, tuple)) and not value:
        return "empty"
    return f"`{_as_env(value)}`"


def markdown_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        rows.append(f"| `{env_name(name)}` | {_cell(default_text(info))} | {_cell(info.description or '')} |")
    return "\n".join(rows) + "\n"


def readme_table(readme: str) -> str:
    """The table between the README's settings-table markers."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"README has no {BEGIN} ... {END} section")
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


# `password=...` as a libpq key=value pair (quoted or not) or a URL query parameter.
_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;]*)", re.IGNORECASE)


def _hide_password(url: str) -> str:
    """`url` with every form of password hidden: URL userinfo, a `password=` query parameter,
    and libpq's `key=value` form."""
    url = _PASSWORD_PARAM.sub(lambda m: m.group(1) + "***", url)
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def effective(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) for every setting of this process; passwords and keys hidden."""
    out = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            text = ""
        elif name in SECRET_FIELDS:
            text = "***"
        elif name.endswith("_url"):
            text = _hide_password(str(value))
        else:
            text = _as_env(value)
        out.append((env_name(name), text))
    return out
