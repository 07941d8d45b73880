"""The in-process composition (`doseflow import`): the services' stages on `InProcessBroker`,
with the results applied as the RabbitMQ consumer applies them."""
from __future__ import annotations

import json

import pytest

from services.classifier.rules import RoutingRules
from services.classifier.worker import make_handler as classifier_stage
from services.extractors.common import ExtractOptions
from services.extractors.worker import make_handler as extractor_stage
from shared import broker, routes
from shared.broker import InProcessBroker, Publish, Requeued, Result, Stage
from shared.messages import ExtractRequest, ObjectReceived, Outcome, ReportReady
from shared.outcome import Failed, Ignored
from tests.conftest import corpus_file


def request(path="/in/a.dcm") -> ExtractRequest:
    return ExtractRequest(path=path, route=routes.RDSR.name, sop_instance_uid="1.2.3", study_instance_uid="1.2",
                          sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67", correlation_id="journey")


def send(pipeline: InProcessBroker, msg: ExtractRequest) -> None:
    pipeline.publish(Publish(broker.EXTRACT_EXCHANGE, msg.route, msg.encode()))


class Recorder:
    """The outcomes stage of a test: keeps what reaches the `outcomes` queue."""

    def __init__(self):
        self.outcomes: list[Outcome] = []
        self.stage = Stage("outcomes", Outcome, self.keep)

    def keep(self, msg: Outcome) -> Result:
        self.outcomes.append(msg)
        return Result()


@pytest.mark.parametrize("raised, status, dead", [(Ignored("not a dose object"), "ignored", None),
                                                  (Failed("cut short"), "failed", "cut short")])
def test_an_object_a_stage_ends_gets_its_outcome_and_a_failure_its_dead_letter_from_the_binding(raised, status, dead):
    def handle(msg):
        raise raised

    recorder = Recorder()
    pipeline = InProcessBroker([Stage(routes.RDSR.queue, ExtractRequest, handle, records="extractor"), recorder.stage])
    send(pipeline, request())
    pipeline.drain()
    [outcome] = recorder.outcomes
    assert (outcome.path, outcome.stage, outcome.status, outcome.reason, outcome.route, outcome.sop_instance_uid,
            outcome.study_instance_uid, outcome.correlation_id) == \
        ("/in/a.dcm", "extractor", status, str(raised), "rdsr", "1.2.3", "1.2", "journey")
    assert pipeline.dead_letters == ([(routes.RDSR.queue, dead)] if dead else [])


def test_a_body_that_does_not_decode_and_a_handler_that_crashes_are_dead_lettered_with_the_reason():
    def crash(msg):
        raise ZeroDivisionError("a bug")

    recorder = Recorder()
    pipeline = InProcessBroker([Stage(routes.RDSR.queue, ExtractRequest, crash, records="extractor"), recorder.stage])
    pipeline.publish(Publish(broker.EXTRACT_EXCHANGE, routes.RDSR.name, b'{"schema": 1}'))
    send(pipeline, request())
    pipeline.drain()
    [(q1, undecodable), (q2, crashed)] = pipeline.dead_letters
    assert q1 == q2 == routes.RDSR.queue
    assert undecodable.startswith("not a valid ExtractRequest")
    assert crashed == f"internal error in {routes.RDSR.queue} handler: ZeroDivisionError: a bug"
    assert recorder.outcomes == []


def test_a_message_given_back_stops_the_run_instead_of_looping():
    pipeline = InProcessBroker([Stage(routes.RDSR.queue, ExtractRequest, lambda msg: Result(requeue=True))])
    send(pipeline, request())
    with pytest.raises(Requeued):
        pipeline.drain()


def test_a_publish_no_queue_is_bound_for_is_refused_and_a_queue_without_a_stage_is_counted():
    pipeline = InProcessBroker([])
    with pytest.raises(LookupError):
        pipeline.publish(Publish(broker.EXTRACT_EXCHANGE, "no-such-route", b"{}"))
    pipeline.publish(Publish(broker.ALERTS_EXCHANGE, "alerts", b"{}"))
    assert pipeline.unconsumed == {"alerts": 1}


def test_at_the_end_of_input_a_stage_does_its_held_back_work_and_what_it_publishes_is_handled():
    recorder = Recorder()
    held = []

    def hold(msg):
        held.append(msg.path)
        return Result()

    def at_end(publisher):
        for path in held:
            publisher.publish(Publish(broker.OUTCOMES_EXCHANGE, "outcomes",
                                      Outcome(path=path, stage="toshiba_builder", status="ignored",
                                              reason="built at the end").encode()))

    pipeline = InProcessBroker([Stage(routes.TOSHIBA.queue, ExtractRequest, hold, at_end=at_end), recorder.stage])
    send(pipeline, request().model_copy(update={"route": routes.TOSHIBA.name}))
    pipeline.drain()
    assert held == ["/in/a.dcm"] and recorder.outcomes == []
    pipeline.end_of_input()
    assert [o.path for o in recorder.outcomes] == ["/in/a.dcm"]


def test_the_real_classifier_and_extractor_stages_take_a_corpus_rdsr_to_the_writers_queue_in_process():
    path = str(corpus_file("CT-RDSR-Siemens_Flash-TAP-SS.dcm"))
    ready: list[ReportReady] = []
    writer = Stage("writer", ReportReady, lambda msg: ready.append(msg) or Result())
    pipeline = InProcessBroker([classifier_stage(RoutingRules(), roots=[]),
                                extractor_stage(routes.RDSR.name, ExtractOptions(), roots=[]), writer])
    received = ObjectReceived(path=path)
    pipeline.publish(Publish(broker.INGEST_EXCHANGE, "ingest", received.encode()))
    pipeline.drain()
    [msg] = ready
    assert msg.path == path and msg.correlation_id == received.message_id
    assert msg.report.sources[0].route == routes.RDSR.name
    assert msg.report.ct.total_dlp_mGycm is not None and pipeline.dead_letters == []


def test_a_route_given_by_the_caller_skips_the_rules_for_that_path_only():
    # `doseflow import --as`: the given route for the input files; an object made from them
    # (the Toshiba builder's RDSR) is classified.
    path = str(corpus_file("CT-RDSR-Siemens_Flash-TAP-SS.dcm"))
    stage = classifier_stage(RoutingRules(), roots=[], given={path: routes.TOSHIBA.name})
    [publish] = stage(ObjectReceived(path=path).encode(), {}).publishes
    assert publish.routing_key == routes.TOSHIBA.name
    assert json.loads(publish.body)["sop_instance_uid"]
    other = str(corpus_file("CT-RDSR-GEPixelMed.dcm"))
    [publish] = stage(ObjectReceived(path=other).encode(), {}).publishes
    assert publish.routing_key == routes.RDSR.name
