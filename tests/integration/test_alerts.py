"""High-dose alerts through real workers: corpus studies that trip rules are published three
times while the alerts and notifier workers are SIGKILLed mid-flow and the SMTP server is down
for 30 s; each alert is raised once and each notification reaches each recipient once per
channel after the receiver drops repeats by idempotency key.

Scenarios (rules in RULES below; the rules are the test's, the values the corpus'):
- Siemens Zee fluoroscopy RDSR and a copy under the same patient (new Study/SOP UIDs): summed
  KAP 3.2e-5 Gy·m² >= 3.0e-5 and summed Ka,r 0.00504 Gy >= 0.0050 on the later study only
  (spec dose-references TV-OR-2);
- the Toshiba Dose Check RDSR: the console's Dose Check alert (spec TV-DC-1/2);
- a CT below its expected DLP range (ToshibaPixelMed 349.7 mGy·cm) and one above it
  (Siemens Flash TAP 724.52 mGy·cm), range 400-700.
"""
from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import time

import psycopg
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.conftest import corpus_file
from tests.integration.conftest import doseflow, wait_until
from tests.integration.receivers import SmtpReceiver, WebhookReceiver, self_signed_certificate
from tests.integration.test_metrics import scrape, serving, value

pytestmark = pytest.mark.integration

SMTP_DOWN_S = 30

RULES = """
rules:
  - id: rf-patient-kap
    version: 1
    kind: threshold
    title: Summed KAP over two weeks
    source: test levels after spec TV-OR-2 (OpenREM's test)
    metric: dap_total_Gym2
    per: patient
    window_days: 14
    scope: {modalities: [RF]}
    levels: [{level: warning, at_least: 3.0e-5}]
  - id: rf-patient-kar
    version: 1
    kind: threshold
    title: Summed reference-point air kerma over two weeks
    source: test levels after spec TV-OR-2
    metric: rp_dose_total_Gy
    per: patient
    window_days: 14
    scope: {modalities: [RF]}
    levels: [{level: warning, at_least: 0.0050}]
  - id: ct-dose-check-alert
    version: 1
    kind: dose_check
    which: alert
    title: CT Dose Check alert value exceeded at the console
    source: DICOM TID 10015
    level: warning
  - id: ct-dlp-range
    version: 1
    kind: range
    title: DLP outside the expected range
    source: test range
    metric: ct_dlp_total_mGycm
    min: 400
    max: 700
    scope: {modalities: [CT], devices: [CTTOSHIBA1, 'CTAWP*']}
subscriptions:
  - {name: physics, email: physics@example.org, min_level: notice}
  - {name: cath-lab, email: cathlab@example.org, devices: ['Artis*'], min_level: warning}
  - {name: ct-critical, email: ct-lead@example.org, modalities: [CT], min_level: critical}
  - {name: dashboard, webhook: 'WEBHOOK_URL', min_level: notice}
"""

TOSHIBA_DOSE_CHECK = "1.3.6.1.4.1.5962.99.1.4226553877.745998417.1511760107541.3.0"
TOSHIBA_PIXELMED = "CT-RDSR-ToshibaPixelMed.dcm"
SIEMENS_TAP = "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.3.0"


def zee_copy(src, dst) -> str:
    """The Zee RDSR as a second study of the same patient: new Study and SOP Instance UIDs."""
    ds = pydicom.dcmread(src)
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(dst, enforce_file_format=True)
    return ds.StudyInstanceUID


def reserve_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(url: str, sql: str, *args):
    with psycopg.connect(url) as conn:
        try:
            return conn.execute(sql, args).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


@pytest.fixture
def alert_setup(doseflow_env, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    smtp = SmtpReceiver(reserve_port(), cert, key, "doseflow", "smtp-pass")
    secret = b"webhook-signing-key"
    webhook = WebhookReceiver(secret, hold_first=True)
    (tmp_path / "smtp-password").write_text("smtp-pass\n")
    (tmp_path / "webhook-secret").write_bytes(secret + b"\n")
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES.replace("WEBHOOK_URL", webhook.url("/dashboard")))
    env = {**doseflow_env, "DOSEFLOW_PATIENT_HASH_KEY": "test-pseudonym-key", "DOSEFLOW_ALERT_RULES": str(rules),
           "DOSEFLOW_SMTP_HOST": "127.0.0.1", "DOSEFLOW_SMTP_PORT": str(smtp.port),
           "DOSEFLOW_SMTP_CA_FILE": str(cert), "DOSEFLOW_SMTP_USERNAME": "doseflow",
           "DOSEFLOW_SMTP_PASSWORD_FILE": str(tmp_path / "smtp-password"), "DOSEFLOW_SMTP_FROM": "doseflow@example.org",
           "DOSEFLOW_WEBHOOK_SECRET_FILE": str(tmp_path / "webhook-secret"),
           "DOSEFLOW_NOTIFY_RETRY_MAX_SECONDS": "2"}
    yield env, smtp, webhook
    smtp.stop()
    webhook.stop()


def test_alerts_reach_each_recipient_once_through_kills_an_smtp_outage_and_repeats(
        workers, alert_setup, database_url, tmp_path):
    env, smtp, webhook = alert_setup
    workers.env = env
    files = tmp_path / "in"
    files.mkdir()
    zee, zee2 = files / "zee.dcm", files / "zee-copy.dcm"
    shutil.copy(corpus_file("RF-RDSR-Siemens-Zee.dcm"), zee)
    zee_copy_uid = zee_copy(zee, zee2)
    for name in ("CT-RDSR-Toshiba_DoseCheck.dcm", TOSHIBA_PIXELMED, "CT-RDSR-Siemens_Flash-TAP-SS.dcm"):
        shutil.copy(corpus_file(name), files / name)
    paths = sorted(str(p) for p in files.iterdir())

    started = time.monotonic()  # the SMTP server is down from here for SMTP_DOWN_S
    workers.start_pipeline()
    alerts_worker = workers.start("alerts")
    notifier = workers.start("notifier")

    # The same studies published three times, the alerts worker killed once an alert is in.
    doseflow(env, "publish", *paths)
    wait_until(lambda: query(database_url, "SELECT count(*) FROM alert")[0:1] not in ([], [(0,)]),
               timeout=90, what="a first alert")
    alerts_worker.send_signal(signal.SIGKILL)
    alerts_worker.wait()
    doseflow(env, "publish", *paths)
    [(restarted_at,)] = query(database_url, "SELECT now()")
    alerts_port, notifier_port = reserve_port(), reserve_port()
    workers.env = {**env, "DOSEFLOW_METRICS_PORT": str(alerts_port)}
    alerts_worker = workers.start("alerts")
    # The notifier killed after the webhook receiver got a body and before it answered.
    wait_until(lambda: webhook.inbox.arrivals, timeout=60, what="a first webhook request")
    notifier.send_signal(signal.SIGKILL)
    notifier.wait()
    webhook.release.set()
    doseflow(env, "publish", *paths)
    workers.env = {**env, "DOSEFLOW_METRICS_PORT": str(notifier_port)}
    notifier = workers.start("notifier")

    # The SMTP server stays down for SMTP_DOWN_S, and at least until the new notifier met it down.
    wait_until(lambda: serving(notifier_port) and value(scrape(notifier_port), "doseflow_notifications_total",
                                                        channel="email", outcome="retried") >= 1,
               timeout=90, what="the restarted notifier retrying an e-mail")
    assert not smtp.inbox.arrivals
    time.sleep(max(0.0, SMTP_DOWN_S - (time.monotonic() - started)))
    smtp_down_s = time.monotonic() - started
    smtp.start()

    # The copy and the original have the same date and time: the later study is the one with the
    # larger StudyInstanceUID (services/alerts/evaluate.py), and only it sums over both.
    original = pydicom.dcmread(zee, stop_before_pixels=True).StudyInstanceUID
    later = max(original, zee_copy_uid)
    pixelmed = pydicom.dcmread(files / TOSHIBA_PIXELMED, stop_before_pixels=True).StudyInstanceUID
    expected_alerts = {
        (later, "rf-patient-kap", "warning"), (later, "rf-patient-kar", "warning"),
        (TOSHIBA_DOSE_CHECK, "ct-dose-check-alert", "warning"),
        (pixelmed, "ct-dlp-range", "notice"),
        (SIEMENS_TAP, "ct-dlp-range", "warning"),
    }

    def delivered():
        return query(database_url, "SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FROM notification")[0]

    # physics: every alert; cath-lab: the two Zee warnings; ct-critical: none; webhook: every alert.
    expected_email, expected_webhook = len(expected_alerts) + 2, len(expected_alerts)
    wait_until(lambda: delivered() == (expected_email + expected_webhook,) * 2, timeout=120,
               what=f"{expected_email + expected_webhook} notifications delivered")
    assert workers.alive().count("alerts") == 1 and workers.alive().count("notifier") == 1, workers.logs()

    rows = query(database_url, "SELECT study_instance_uid, rule_id, level, rule_version, details FROM alert")
    assert {(u, r, lv) for u, r, lv, _, _ in rows} == expected_alerts
    assert len(rows) == len(expected_alerts)  # raised once each, after three publishes and a kill
    details = {r: d for _, r, _, _, d in rows}
    assert details["rf-patient-kap"]["value"] == pytest.approx(3.2e-5)
    assert details["rf-patient-kar"]["value"] == pytest.approx(0.00504)
    assert details["rf-patient-kap"]["studies_summed"] == 2

    wait_until(lambda: len(smtp.inbox.processed) == expected_email, timeout=10, what="e-mails processed")
    assert smtp.inbox.per_recipient() == {"physics@example.org": 5, "cathlab@example.org": 2}
    assert webhook.inbox.per_recipient() == {"/dashboard": 5}
    assert smtp.inbox.duplicates_after_dedup == 0 and webhook.inbox.duplicates_after_dedup == 0
    assert webhook.bad_signatures == 0
    # The killed notifier's webhook went out again: the receiver dropped it by its key.
    assert webhook.inbox.repeats >= 1

    # No patient name or ID (nor their keyed hashes) in anything a recipient got.
    forbidden = set()
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        forbidden |= {str(ds.get("PatientID") or ""), str(ds.get("PatientName") or "")}
    forbidden |= {h for row in query(database_url, "SELECT patient_id_hash, patient_name_hash FROM study")
                  for h in row}
    forbidden = {f for f in forbidden if f and len(f) > 2}
    assert forbidden
    texts = [m.as_string() for m in smtp.inbox.messages.values()]
    texts += [json.dumps(p) for p in webhook.inbox.messages.values()]
    # As whole words: the Siemens TAP object's accession number ACC12345601 holds its patient ID 123456.
    assert not [(f, t[:80]) for t in texts for f in forbidden
                if re.search(rf"(?<![0-9A-Za-z]){re.escape(f)}(?![0-9A-Za-z])", t)]
    for payload in webhook.inbox.messages.values():
        assert set(payload) == {"idempotency_key", "alert_id", "raised_at", "level", "rule", "values", "study",
                                "device"}

    listed = json.loads(doseflow(env, "alerts", "list", "--json").stdout)
    assert sorted((a["study_instance_uid"], a["rule"], a["level"]) for a in listed) == sorted(expected_alerts)
    assert all(a["notifications"]["pending"] == 0 for a in listed)

    # Metrics of the restarted workers: the alerts worker counted what it raised (by rule and
    # level); the notifier, started while the SMTP server was down, retried and then delivered
    # every e-mail, and re-sent the webhook its killed predecessor had not marked.
    wait_until(lambda: serving(alerts_port) and serving(notifier_port), timeout=10, what="metrics endpoints")
    after_restart = query(database_url, "SELECT rule_id, level, count(*) FROM alert WHERE raised_at > %s"
                          " GROUP BY 1, 2", restarted_at)
    alerts_metrics = scrape(alerts_port)
    assert sum(v for (name, _), v in alerts_metrics.items() if name == "doseflow_alerts_raised_total") == \
        sum(n for *_, n in after_restart)
    for rule, level, n in after_restart:
        assert value(alerts_metrics, "doseflow_alerts_raised_total", rule=rule, level=level) == n
    notifier_metrics = scrape(notifier_port)
    assert value(notifier_metrics, "doseflow_notifications_total", channel="email", outcome="delivered") == 7
    assert value(notifier_metrics, "doseflow_notifications_total", channel="email", outcome="retried") >= 1
    assert value(notifier_metrics, "doseflow_notifications_total", channel="webhook", outcome="delivered") >= 1
    assert value(notifier_metrics, "doseflow_notifications_total", channel="email", outcome="failed") == 0

    print(f"SMTP server down for {smtp_down_s:.0f} s")
    print_table(expected_alerts, rows, database_url, smtp, webhook,
                {"Zee RF + copy, same patient (summed)": {original, zee_copy_uid},
                 "Toshiba Dose Check RDSR": {TOSHIBA_DOSE_CHECK},
                 "CT below (ToshibaPixelMed) / above (Siemens TAP) DLP range": {pixelmed, SIEMENS_TAP}})


def print_table(expected_alerts, rows, database_url, smtp, webhook, scenarios: dict[str, set]) -> None:
    scenarios = {name: uids.__contains__ for name, uids in scenarios.items()}
    delivered = query(database_url, "SELECT a.study_instance_uid, n.channel, n.idempotency_key FROM notification n"
                      " JOIN alert a ON a.id = n.alert_id WHERE n.status = 'delivered'")
    print("\n| scenario | alerts expected | raised | e-mails delivered | webhooks delivered | duplicates after "
          "idempotency-key dedup |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, mine in scenarios.items():
        keys = {k for u, _, k in delivered if mine(u)}
        email_keys = {k for u, c, k in delivered if mine(u) and c == "email"}
        print(f"| {name} | {sum(1 for u, _, _ in expected_alerts if mine(u))} | "
              f"{sum(1 for u, *_ in rows if mine(u))} | {len(email_keys)} | {len(keys - email_keys)} | "
              f"{smtp.inbox.duplicates_after_dedup + webhook.inbox.duplicates_after_dedup if keys else 0} |")
    print(f"receivers: e-mail arrivals {len(smtp.inbox.arrivals)} (repeats dropped {smtp.inbox.repeats}), "
          f"webhook arrivals {len(webhook.inbox.arrivals)} (repeats dropped {webhook.inbox.repeats})")


def test_import_evaluates_alerts_in_process_and_leaves_notifications_in_the_outbox(
        alert_setup, database_url, tmp_path):
    env, smtp, webhook = alert_setup
    zee, zee2 = tmp_path / "zee.dcm", tmp_path / "zee-copy.dcm"
    shutil.copy(corpus_file("RF-RDSR-Siemens-Zee.dcm"), zee)
    zee_copy(zee, zee2)
    result = doseflow(env, "import", str(zee), str(zee2), str(corpus_file("CT-RDSR-Toshiba_DoseCheck.dcm")))
    assert "stored 3, ignored 0, failed 0" in result.stdout
    assert "alerts raised 3" in result.stdout
    again = doseflow(env, "import", str(zee), str(zee2))
    assert "alerts raised" not in again.stdout  # evaluated again, nothing raised twice
    listed = json.loads(doseflow(env, "alerts", "list", "--json").stdout)
    assert sorted(a["rule"] for a in listed) == ["ct-dose-check-alert", "rf-patient-kap", "rf-patient-kar"]
    assert all({"study_instance_uid", "rule", "level", "values"} <= set(a) for a in listed)
    pending = query(database_url, "SELECT channel, status FROM notification")
    assert sorted(pending) == sorted([("email", "pending")] * (3 + 2) + [("webhook", "pending")] * 3)
    ack = doseflow(env, "alerts", "ack", str(listed[0]["id"]), "--by", "Medical Physics")
    assert "acknowledged by Medical Physics" in ack.stdout
    [row] = json.loads(doseflow(env, "alerts", "list", "--json", "--study", listed[0]["study_instance_uid"]).stdout)[:1]
    assert row["acknowledged_by"] == "Medical Physics" and row["acknowledged_at"]


CONTINUED_RULES = """
rules:
  - id: ct-dlp
    version: 1
    kind: threshold
    title: CT DLP total
    source: test levels between the Siemens Continued parts (60.17) and their sum (116.61)
    metric: ct_dlp_total_mGycm
    levels: [{level: notice, above: 50}, {level: warning, above: 100}]
"""


def test_an_update_that_raises_the_dose_raises_the_next_level_once(doseflow_env, tmp_path):
    """A continued CT study: the first part (DLP 60.17 mGy·cm) raises the notice, the second
    (the study's total becomes 116.61) the warning; importing both again raises nothing."""
    rules = tmp_path / "alerts.yaml"
    rules.write_text(CONTINUED_RULES)
    env = {**doseflow_env, "DOSEFLOW_ALERT_RULES": str(rules)}
    first, second = (str(corpus_file(f"CT-RDSR-Siemens-Continued-{n}.dcm")) for n in (1, 2))
    assert "alerts raised 1" in doseflow(env, "import", first).stdout
    assert "alerts raised 1" in doseflow(env, "import", second).stdout
    assert "alerts raised" not in doseflow(env, "import", first, second).stdout
    listed = json.loads(doseflow(env, "alerts", "list", "--json").stdout)
    assert [(a["rule"], a["level"], a["values"]["value"]) for a in listed] == [
        ("ct-dlp", "notice", pytest.approx(60.17)), ("ct-dlp", "warning", pytest.approx(116.61))]


def test_a_rules_file_with_an_error_stops_the_services_at_start(workers, doseflow_env, tmp_path):
    bad = tmp_path / "alerts.yaml"
    bad.write_text("rules:\n  - id: kap\n    version: 1\n    kind: threshold\n    title: t\n    source: s\n"
                   "    metric: dap_total_Gym2\n    levels:\n      - {level: urgent, above: 0.05}\n")
    env = {**doseflow_env, "DOSEFLOW_ALERT_RULES": str(bad)}
    workers.env = env
    for kind in ("alerts", "notifier"):
        proc = workers.start(kind)
        assert proc.wait(timeout=60) == 2
    log = workers.logs()
    assert f"{bad}:9: rules.0.threshold.levels.0.level: Input should be 'notice', 'warning' or 'critical'" in log
    assert "nothing started" in log
    result = doseflow(env, "import", str(corpus_file("RF-RDSR-Siemens-Zee.dcm")), check=False)
    assert result.returncode == 2 and f"{bad}:9:" in result.stderr
