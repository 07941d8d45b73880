"""The receiver in docker-compose.yml: its port is published on the host (modalities send to
it), and it alone may write to the ingest folder."""
from __future__ import annotations

import re

from tests.test_docs import DUMMY_ENV, compose


def service_block(config: str, name: str) -> str:
    marker = f"\n  {name}:\n"
    assert marker in config, f"no {name} service"
    block = config.split(marker, 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("   "):  # the next service or top-level key
            break
        lines.append(line)
    return "\n".join(lines)


def published_ports(block: str) -> list[tuple[str, str]]:
    """(host, container) port pairs, from docker-compose's long form (1.x prints `published:
    11112` then `target: 11112`; v2 quotes the published port and may order them otherwise)
    or from the short form "11112:11112"."""
    if "ports:" not in block:
        return []
    long = re.findall(r'published: "?(\d+)"?\s+target: (\d+)', block)
    long += [(p, t) for t, p in re.findall(r'target: (\d+)\s+published: "?(\d+)"?', block)]
    return long or re.findall(r'"?(\d+):(\d+)"?\n', block.split("ports:", 1)[1])


def test_the_receiver_publishes_its_dicom_port_and_writes_the_ingest_folder(tmp_path):
    result = compose(tmp_path, env=DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    receiver = service_block(result.stdout, "receiver")
    assert "- worker\n    - receiver" in receiver
    assert published_ports(receiver) == [("11112", "11112")]
    assert "/srv/doseflow/incoming:/data/incoming:rw" in receiver


def test_the_other_services_keep_the_ingest_folder_read_only(tmp_path):
    result = compose(tmp_path, env=DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    for name in ("classifier", "extractor", "toshiba-builder", "writer", "migrate"):
        block = service_block(result.stdout, name)
        assert "/srv/doseflow/incoming:/data/incoming:ro" in block, name
        assert "ports:" not in block, name


def test_the_receiver_port_on_the_host_can_be_changed(tmp_path):
    result = compose(tmp_path, env={**DUMMY_ENV, "DOSEFLOW_RECEIVER_HOST_PORT": "104"})
    assert result.returncode == 0, result.stderr
    receiver = service_block(result.stdout, "receiver")
    assert published_ports(receiver) == [("104", "11112")]
