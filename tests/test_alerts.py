"""Alert rules (services/alerts/rules.py) and their pure evaluation (services/alerts/evaluate.py),
on reports of real vendor files."""
from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from services.alerts import rules as alert_rules
from services.alerts.evaluate import categories_of, evaluate, metric
from services.alerts.rules import RulesError, parse
from services.alerts.store import idempotency_key, payload
from tests.conftest import report_of

ZEE = "RF-RDSR-Siemens-Zee"
DOSE_CHECK = "CT-RDSR-Toshiba_DoseCheck"


def with_patient(report, *, pseudonym="p1", uid=None, date=None, age=None):
    study = report.study.model_copy(update={k: v for k, v in
                                            (("study_instance_uid", uid), ("study_date", date)) if v is not None})
    patient = report.patient.model_copy(update={"id_hash": pseudonym, **({"age_years": age} if age else {})})
    return report.model_copy(update={"study": study, "patient": patient})


def ruleset(text: str):
    return parse(textwrap.dedent(text), "test.yaml")


# --- the file --------------------------------------------------------------------------------


def test_the_shipped_defaults_load_and_every_rule_names_its_source():
    rs = alert_rules.load()
    assert {r.id for r in rs.rules} >= {"fgi-kar", "fgi-psd", "fgi-kap", "fgi-fluoro-time", "fgi-patient-kap",
                                        "fgi-patient-kar", "ct-dose-check-alert", "ct-dose-check-notification",
                                        "aapm-adult-head"}
    assert all(r.source and r.version >= 1 for r in rs.rules)
    by_id = {r.id: r for r in rs.rules}
    # Spec §3.1 (verified) in doseflow units.
    assert by_id["fgi-kar"].levels[0].comparison == ("above", 5.0)
    assert by_id["fgi-kap"].levels[0].comparison == ("above", 0.05)
    assert by_id["fgi-fluoro-time"].levels[0].comparison == ("above", 3600)
    # Spec §3.5: OpenREM's cumulative defaults, 20000 cGy·cm² = 0.02 Gy·m², 12 weeks, >=.
    assert by_id["fgi-patient-kap"].levels[0].comparison == ("at_least", 0.02)
    assert by_id["fgi-patient-kap"].window_days == 84
    assert rs.needs_patient_pseudonym() == ["fgi-patient-kap", "fgi-patient-kar"]


@pytest.mark.parametrize("text, message", [
    ("rules:\n  - id: a\n    version: 1\n    kind: threshold\n    title: t\n    source: s\n"
     "    metric: dap_total_Gym2\n    levels:\n      - {level: warning, abov: 1}\n",
     "test.yaml:9: rules.0.threshold.levels.0.abov: Extra inputs are not permitted"),
    ("rules:\n  - id: a\n    version: 1\n    kind: threshold\n    title: t\n    source: s\n"
     "    metric: dap_total_Gy\n    levels: [{level: warning, above: 1}]\n",
     "test.yaml:7: rules.0.threshold.metric: Input should be"),
    ("rules:\n  - id: a\n    version: 1\n    kind: range\n    title: t\n    source: s\n"
     "    metric: ct_dlp_total_mGycm\n    max: 700\n",
     "test.yaml:2: rules.0.range.min: Field required"),
    ("rules:\n  - id: a\n    version: 1\n    kind: threshold\n    title: t\n    source: s\n"
     "    metric: dap_total_Gym2\n    per: patient\n    levels: [{level: warning, above: 1}]\n",
     "test.yaml:2: rules.0.threshold: a per-patient rule needs window_days"),
    ("rules:\n  - id: a\n    kind: dose_check\n    which: alert\n    title: t\n    source: s\n    level: warning\n",
     "test.yaml:2: rules.0.dose_check.version: Field required"),
    ("rules:\n  - id: a\n    version: 1\n    kind: teleport\n",
     "test.yaml:2: rules.0: Input tag 'teleport' found using 'kind' does not match"),
    ("rules:\n  - {id: a, version: 1, kind: dose_check, which: alert, title: t, source: s, level: warning,\n"
     "     scope: {categories: [head]}}\n",
     "test.yaml:3: rules.0.scope.categories: rule a: unknown categories ['head']"),
    ("rules: [\n  {id: a\n", "test.yaml:3: not valid YAML"),
    ("subscriptions:\n  - name: x\n    email: a@b.org\n    webhook: http://h/\n",
     "test.yaml:2: subscriptions.0: a subscription has exactly one of email or webhook"),
    ("- just\n- a list\n", "test.yaml:1: the file must be a mapping"),
])
def test_a_bad_file_is_refused_with_its_line(text, message):
    with pytest.raises(RulesError) as err:
        parse(text, "test.yaml")
    assert message in str(err.value), str(err.value)


def test_duplicate_ids_and_unknown_names_are_named():
    text = """
        rules:
          - {id: a, version: 1, kind: dose_check, which: alert, title: t, source: s, level: warning}
          - {id: a, version: 2, kind: dose_check, which: alert, title: t, source: s, level: warning}
        subscriptions:
          - {name: x, email: x@example.org, rules: [b]}
        """
    with pytest.raises(RulesError) as err:
        ruleset(text)
    assert str(err.value).splitlines() == [
        "test.yaml:4: rules.1.id: rule id a appears more than once (ids must be unique)",
        "test.yaml:6: subscriptions.0.rules: subscription x: unknown rules ['b']"]


# --- evaluation on corpus reports ---------------------------------------------------------------

ZEE_RULES = """
    rules:
      - id: rf-kap-study
        version: 1
        kind: threshold
        title: KAP
        source: test (spec TV-OR-1)
        metric: dap_total_Gym2
        scope: {modalities: [RF]}
        levels: [{level: warning, at_least: 1.5e-5}]
      - id: rf-kap-patient
        version: 1
        kind: threshold
        title: summed KAP
        source: test (spec TV-OR-2)
        metric: dap_total_Gym2
        per: patient
        window_days: 14
        scope: {modalities: [RF]}
        levels: [{level: warning, at_least: 3.0e-5}]
      - id: rf-kar-patient
        version: 1
        kind: threshold
        title: summed Ka,r
        source: test (spec TV-OR-2)
        metric: rp_dose_total_Gy
        per: patient
        window_days: 14
        scope: {modalities: [RF]}
        levels: [{level: warning, at_least: 0.0050}, {level: critical, at_least: 1.0}]
    """


def test_zee_alone_single_study_level_only():
    zee = with_patient(report_of(ZEE))
    assert metric(zee, "dap_total_Gym2") == pytest.approx(1.6e-5)
    assert metric(zee, "rp_dose_total_Gy") == pytest.approx(0.00252)
    assert metric(zee, "fluoro_time_s") == 28.0
    alerts = evaluate(zee, [], ruleset(ZEE_RULES))
    assert [(a.rule_id, a.level) for a in alerts] == [("rf-kap-study", "warning")]
    assert alerts[0].values == {"metric": "dap_total_Gym2", "value": pytest.approx(1.6e-5),
                                "comparison": "at_least", "limit": 1.5e-5}


def test_zee_twice_for_one_patient_sums_on_the_later_study_only():
    """Spec TV-OR-2: the second copy two days earlier; the sums cross on the later study."""
    later = with_patient(report_of(ZEE))
    earlier = with_patient(report_of(ZEE), uid="2.25.1", date="2016-05-10")
    rs = ruleset(ZEE_RULES)
    on_later = {a.rule_id: a for a in evaluate(later, [earlier], rs)}
    assert set(on_later) == {"rf-kap-study", "rf-kap-patient", "rf-kar-patient"}
    assert on_later["rf-kap-patient"].values["value"] == pytest.approx(3.2e-5)
    assert on_later["rf-kap-patient"].values["studies_summed"] == 2
    assert on_later["rf-kap-patient"].values["first_study_date"] == "2016-05-10"
    assert on_later["rf-kar-patient"].values["value"] == pytest.approx(0.00504)
    assert on_later["rf-kar-patient"].level == "warning"
    assert {a.rule_id for a in evaluate(earlier, [later], rs)} == {"rf-kap-study"}


def test_outside_the_window_or_without_a_pseudonym_nothing_is_summed():
    later = with_patient(report_of(ZEE))
    rs = ruleset(ZEE_RULES)
    far = with_patient(report_of(ZEE), uid="2.25.1", date="2016-04-27")  # 15 days: TV-OR-3
    assert {a.rule_id for a in evaluate(later, [far], rs)} == {"rf-kap-study"}
    other_patient = with_patient(report_of(ZEE), pseudonym="p2", uid="2.25.1", date="2016-05-10")
    assert {a.rule_id for a in evaluate(later, [other_patient], rs)} == {"rf-kap-study"}
    anonymous = with_patient(report_of(ZEE), pseudonym=None)
    assert {a.rule_id for a in evaluate(anonymous, [], rs)} == {"rf-kap-study"}


def test_same_day_copies_are_ordered_by_uid():
    a = with_patient(report_of(ZEE), uid="2.25.1")
    b = with_patient(report_of(ZEE), uid="2.25.2")
    rs = ruleset(ZEE_RULES)
    assert "rf-kap-patient" in {x.rule_id for x in evaluate(b, [a], rs)}
    assert "rf-kap-patient" not in {x.rule_id for x in evaluate(a, [b], rs)}


def test_toshiba_dose_check_alert_as_raised_at_the_console():
    """Spec TV-DC-1/2: both events exceeded the configured alert values; no notification values."""
    report = report_of(DOSE_CHECK)
    alerts = evaluate(report, [], alert_rules.load())
    dose_check = [a for a in alerts if a.rule_id.startswith("ct-dose-check")]
    assert [(a.rule_id, a.level) for a in dose_check] == [("ct-dose-check-alert", "warning")]
    events = dose_check[0].values["events"]
    assert [e["event_index"] for e in events] == [0, 1]
    assert events[0]["exceeded"] == {"dlp": {"dlp_alert_value_mGycm": 100.0,
                                             "accumulated_dlp_forward_estimate_mGycm": 251.2}}
    assert events[1]["exceeded"]["ctdivol"] == {"ctdivol_alert_value_mGy": 10.0,
                                                "accumulated_ctdivol_forward_estimate_mGy": 10.6}
    assert events[1]["reason_for_proceeding"] is None  # the object states none
    assert "Luuk" not in repr(dose_check[0].values)  # the authorizing person is not in the alert


def test_siemens_dose_check_configured_but_not_exceeded():
    """Spec TV-DC-3."""
    alerts = evaluate(report_of("CT-RDSR-Siemens-Multi-3"), [], alert_rules.load())
    assert not [a for a in alerts if a.rule_id.startswith("ct-dose-check")]


RANGE_RULES = """
    categories:
      - {name: tap, modalities: [CT], patterns: ['thorax.*(abdomen|tap)', '\\bTAP\\b']}
    rules:
      - id: ct-dlp-range
        version: 1
        kind: range
        title: DLP outside the expected range
        source: test
        metric: ct_dlp_total_mGycm
        min: 400
        max: 700
        scope: {modalities: [CT], devices: [CTTOSHIBA1, 'CTAWP*']}
      - id: tap-drl
        version: 1
        kind: drl
        title: DLP over the DRL
        source: test
        metric: ct_dlp_total_mGycm
        drl: 660
        drl_source: UKHSA NDRL 2024 UK-CT-08 (chest, abdomen, pelvis)
        scope: {categories: [tap]}
        levels: [{level: notice, above: 1.0}, {level: warning, above: 1.5}]
    """


def test_ct_range_below_and_above_and_drl_multiple():
    rs = ruleset(RANGE_RULES)
    low = evaluate(report_of("CT-RDSR-ToshibaPixelMed"), [], rs)
    assert [(a.rule_id, a.level, a.values["direction"], a.values["value"]) for a in low] == [
        ("ct-dlp-range", "notice", "low", pytest.approx(349.7))]
    siemens = report_of("CT-RDSR-Siemens_Flash-TAP-SS")
    assert categories_of(siemens, rs) == {"tap"}
    high = {a.rule_id: a for a in evaluate(siemens, [], rs)}
    assert high["ct-dlp-range"].level == "warning" and high["ct-dlp-range"].values["direction"] == "high"
    assert high["tap-drl"].level == "notice"
    assert high["tap-drl"].values["ratio_to_drl"] == pytest.approx(724.52 / 660, rel=1e-5)
    # A device outside the scope is not evaluated: the GE Optima's 415.82 would be in range anyway.
    assert evaluate(report_of("CT-ESR-GE_Optima"), [], rs) == []


def test_rules_may_name_the_protocol_mapping_categories():
    from types import SimpleNamespace

    from services.alerts.rules import protocol_categories

    known = protocol_categories(SimpleNamespace(protocol_map=None))
    assert {"head", "chest_abdomen_pelvis"} <= known
    text = ("rules:\n  - {id: a, version: 1, kind: dose_check, which: alert, title: t, source: s, level: warning,\n"
            "     scope: {categories: [head]}}\n")
    assert parse(text, "t.yaml", known).rules[0].scope.categories == ["head"]
    with pytest.raises(RulesError, match="unknown categories"):
        parse(text, "t.yaml")


def test_the_report_category_wins_over_patterns():
    rs = ruleset(RANGE_RULES)
    report = report_of("CT-RDSR-Siemens_Flash-TAP-SS")
    study = report.study.model_copy(update={"examination_category": "head"})
    assert categories_of(report.model_copy(update={"study": study}), rs) == {"head"}


def test_aapm_notification_uses_phantom_and_age_band():
    rs = alert_rules.load()
    ge = report_of("CT-RDSR-GEPixelMed")  # head16 events, 60.41 and 222.59 mGy, age 100
    assert [(a.rule_id, a.values["value"]) for a in evaluate(ge, [], rs)] == [("aapm-adult-head", 222.59)]
    child = with_patient(ge, age=4.0)
    assert [a.rule_id for a in evaluate(child, [], rs)] == ["aapm-paediatric-head-2-to-5"]
    unknown_age = ge.model_copy(update={"patient": ge.patient.model_copy(update={"age_years": None})})
    assert evaluate(unknown_age, [], rs) == []


def test_notification_payload_has_no_patient_identifiers():
    report = with_patient(report_of(ZEE))
    rs = ruleset(ZEE_RULES + """
    subscriptions:
      - {name: physics, email: physics@example.org, min_level: notice}
    """)
    alert = evaluate(report, [], rs)[0]
    key = idempotency_key(alert, rs.subscriptions[0])
    assert key == idempotency_key(alert, rs.subscriptions[0]) and key.startswith("doseflow-")
    body = payload(alert, 1, dt.datetime(2026, 1, 1).isoformat(), report, key)
    text = repr(body)
    assert report.patient.id_hash not in text and "name_hash" not in text and "patient" not in text
    assert body["study"]["study_instance_uid"] == report.study.study_instance_uid
    assert body["device"]["station_name"] == "ArtisZee"


def test_a_rule_scoped_by_the_audit_category_the_writer_stores():
    """The writer stores the dose-audit mapping's category in a CT report (services/audit)."""
    from types import SimpleNamespace

    from services.alerts.rules import protocol_categories
    from services.audit.indices import enrich
    from services.writer.store import audit_config

    stored = enrich(report_of("CT-RDSR-Siemens_Flash-TAP-SS"), audit_config())
    category = stored.study.examination_category
    assert category == "chest_abdomen_pelvis"
    rs = parse(textwrap.dedent(f"""
        rules:
          - {{id: cap-dlp, version: 1, kind: threshold, title: t, source: s, metric: ct_dlp_total_mGycm,
             scope: {{categories: [{category}]}}, levels: [{{level: notice, above: 700}}]}}
        """), "t.yaml", protocol_categories(SimpleNamespace(protocol_map=None)))
    assert [(a.rule_id, a.values["value"]) for a in evaluate(stored, [], rs)] == [("cap-dlp", pytest.approx(724.52))]
    assert evaluate(report_of("CT-RDSR-GEPixelMed"), [], rs) == []
