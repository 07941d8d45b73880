"""Passwords given on their own (secret files) are percent-encoded into the broker and database
URLs, so the characters `openssl rand -base64` makes (and worse) reach pika and libpq intact;
the CA file is added as each client expects it; the examples' placeholders are refused."""
from __future__ import annotations

import pika
import psycopg.conninfo
import pytest

from shared import connection_urls
from shared.settings import Settings

HOSTILE = ["a/b#c@d:e%f", "p@ss:w/rd#1%2F", "?&=+ ;,[]{}'\"\\ ü€", "%41%", "x" * 200]


@pytest.mark.parametrize("password", HOSTILE)
def test_libpq_reads_back_exactly_the_password_and_the_rest_of_the_url(password):
    url = connection_urls.database_url("postgresql://doseflow_app@db.example.org:5433/doseflow?sslmode=verify-full",
                                       password, "/run/secrets/tls ca.pem")
    info = psycopg.conninfo.conninfo_to_dict(url)
    assert info["password"] == password
    assert (info["user"], info["host"], info["port"], info["dbname"]) == ("doseflow_app", "db.example.org", "5433",
                                                                          "doseflow")
    assert info["sslmode"] == "verify-full" and info["sslrootcert"] == "/run/secrets/tls ca.pem"


@pytest.mark.parametrize("password", HOSTILE)
def test_pika_reads_back_exactly_the_password_and_the_rest_of_the_url(password):
    url = connection_urls.amqp_url("amqp://doseflow@rabbitmq:5672/%2F", password)
    params = pika.URLParameters(url)
    assert params.credentials.username == "doseflow" and params.credentials.password == password
    assert (params.host, params.port, params.virtual_host, params.ssl_options) == ("rabbitmq", 5672, "/", None)


def test_amqps_gets_the_ca_file_as_pikas_ssl_options(tmp_path):
    from tests.ca_certificate import CA_PEM

    ca = tmp_path / "ca.pem"
    ca.write_text(CA_PEM)
    params = pika.URLParameters(connection_urls.amqp_url("amqps://doseflow@main:5671/%2F", "a/b#c", str(ca)))
    assert params.ssl_options is not None and params.port == 5671
    assert params.ssl_options.context.check_hostname
    assert [c["subject"] for c in params.ssl_options.context.get_ca_certs()] == [((("commonName", "doseflow test CA"),),)]


def test_a_password_already_in_the_url_is_replaced_and_the_url_must_name_a_user():
    url = connection_urls.with_password("postgresql://u:old@h/d", "new/pw")
    assert psycopg.conninfo.conninfo_to_dict(url)["password"] == "new/pw"
    with pytest.raises(ValueError, match="names no user"):
        connection_urls.with_password("postgresql://h/d", "pw")


def test_settings_read_the_secret_files_into_the_urls(tmp_path, monkeypatch):
    (tmp_path / "db").write_text("d/b#p@ss:%\n")
    (tmp_path / "mq").write_text("m/q#p@ss:%")
    monkeypatch.setenv("DOSEFLOW_DATABASE_URL", "postgresql://doseflow_app@postgres:5432/doseflow")
    monkeypatch.setenv("DOSEFLOW_DATABASE_PASSWORD_FILE", str(tmp_path / "db"))
    monkeypatch.setenv("DOSEFLOW_AMQP_URL", "amqp://doseflow@rabbitmq:5672/%2F")
    monkeypatch.setenv("DOSEFLOW_AMQP_PASSWORD_FILE", str(tmp_path / "mq"))
    settings = Settings()
    assert psycopg.conninfo.conninfo_to_dict(settings.database_url)["password"] == "d/b#p@ss:%"
    assert pika.URLParameters(settings.amqp_url).credentials.password == "m/q#p@ss:%"


@pytest.mark.parametrize("variable, url", [
    ("DOSEFLOW_DATABASE_PASSWORD_FILE", None),
    ("DOSEFLOW_AMQP_PASSWORD_FILE", None),
    (None, "postgresql://u:change-me-too@h/d"),
])
def test_placeholder_passwords_are_refused(tmp_path, monkeypatch, variable, url):
    (tmp_path / "pw").write_text("change-me\n")
    monkeypatch.setenv("DOSEFLOW_DATABASE_URL", url or "postgresql://u@h/d")
    if variable:
        monkeypatch.setenv(variable, str(tmp_path / "pw"))
    with pytest.raises(ValueError, match="placeholder"):
        Settings()


def test_an_unreadable_secret_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSEFLOW_AMQP_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="cannot read the secret file .*missing"):
        Settings()
