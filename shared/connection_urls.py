"""Broker and database URLs built from their parts: a password given on its own (a setting or a
secret file) is percent-encoded into the URL, so any character works; and a CA file is added as
each client library expects it.

Pasting a password into a URL as it is breaks on the characters `openssl rand -base64` makes:
`/`, `#`, `@`, `:`, `%`, `?`. libpq and pika both percent-decode the user information of a URL,
so encoding every character outside RFC 3986's unreserved set is exact for both.
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Passwords in deploy/*.example files start with this; a stack must not run with them.
PLACEHOLDER_PREFIX = "change-me"


class PlaceholderPassword(ValueError):
    pass


def refuse_placeholder(what: str, password: Optional[str]) -> None:
    if password is not None and password.strip().lower().startswith(PLACEHOLDER_PREFIX):
        raise PlaceholderPassword(f"{what} is still the example's placeholder ({PLACEHOLDER_PREFIX}...): "
                                  "set a real password (e.g. `openssl rand -base64 24`)")


def password_of(url: str) -> Optional[str]:
    """The URL's password, percent-decoded (None when it has none)."""
    from urllib.parse import unquote

    password = urlsplit(url).password
    return None if password is None else unquote(password)


def with_password(url: str, password: str) -> str:
    """`url` with `password` (raw, any characters) percent-encoded as its password; a password
    already in the URL is replaced. The URL must name a user."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if not userinfo:
        raise ValueError("the URL names no user to go with the password: write it as scheme://USER@host/...")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{hostport}"))


def with_query(url: str, **params: str) -> str:
    """`url` with query parameters added where the URL does not set them already."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    query += [(name, value) for name, value in params.items() if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote, safe="/")))


def database_url(url: str, password: Optional[str] = None, ca_file: Optional[str] = None) -> str:
    """A libpq URL with the password and, for TLS, `sslrootcert` (a file path: psycopg-binary's
    bundled OpenSSL does not find the system store, so `sslrootcert=system` fails there)."""
    if password is not None:
        url = with_password(url, password)
    if ca_file:
        url = with_query(url, sslrootcert=str(ca_file))
    return url


def amqp_url(url: str, password: Optional[str] = None, ca_file: Optional[str] = None) -> str:
    """A pika URL with the password and, for `amqps://`, pika's `ssl_options` naming the CA file
    (pika verifies against the system store otherwise)."""
    if password is not None:
        url = with_password(url, password)
    if ca_file and urlsplit(url).scheme == "amqps":
        url = with_query(url, ssl_options=repr({"ca_certs": str(ca_file)}))
    return url
