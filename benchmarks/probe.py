"""Bytes one doseflow stage reads of one file, measured in a process of its own.

    python -m benchmarks.probe classifier|extractor WARMUP_FILE FILE

Prints JSON. The count is the process' `rchar` (/proc/self/io: bytes returned by read calls,
page cache or not) around the one call, after a warm-up call on another file so imports and
lazily loaded dictionaries are not counted.
"""
from __future__ import annotations

import json
import sys
import time


def read_chars() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def main(argv: list[str]) -> int:
    stage, warmup, path = argv
    from services.classifier.rules import RoutingRules
    from services.classifier.worker import classify_file
    from services.extractors.common import ExtractOptions
    from services.extractors.worker import extract_file

    rules, options = RoutingRules(), ExtractOptions()
    if stage == "classifier":
        def call(p):
            return classify_file(p, rules, roots=[])[0]
    elif stage == "extractor":
        def call(p):
            route = classify_file(p, rules, roots=[])[0]
            extract_file(p, route, options)  # the extractor worker reads the file itself
            return route
    else:
        raise SystemExit(f"unknown stage {stage}")
    call(warmup)
    if stage == "extractor":
        route = classify_file(path, rules, roots=[])[0]  # the classifier's read, not counted
        before, started = read_chars(), time.perf_counter()
        extract_file(path, route, options)
    else:
        before, started = read_chars(), time.perf_counter()
        route = call(path)
    seconds = time.perf_counter() - started
    print(json.dumps({"stage": stage, "route": route, "bytes_read": read_chars() - before, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
