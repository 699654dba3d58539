#!/usr/bin/env python3
"""Parses Prometheus text exposition format from stdin with the reference Python client's parser
(Debian package python3-prometheus-client) and prints one line per sample:

    <family type> <sample name> <labels as k=<JSON string> joined by ','; sorted> <value>

Exits non-zero, with the parser's error, when the input is not valid exposition text."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(sample.labels.items()))
                print(f"{family.type} {sample.name} {labels} {sample.value!r}")
    except Exception as error:  # the parser raises ValueError and others
        print(f"parse error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
