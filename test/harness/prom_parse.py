# Parses Prometheus text exposition format from stdin with prometheus_client's own parser (Debian
# python3-prometheus-client) and prints JSON: {"families": [{"name", "type"}], "samples": [{"family",
# "type", "name", "labels", "value"}]} (a family may have no samples yet).
# Exits 1 with the parser's message when the text does not parse.
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    families = []
    samples = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        families.append({"name": family.name, "type": family.type})
        for sample in family.samples:
            value = sample.value
            samples.append(
                {
                    "family": family.name,
                    "type": family.type,
                    "name": sample.name,
                    "labels": sample.labels,
                    "value": None if math.isnan(value) else ("+Inf" if math.isinf(value) else value),
                }
            )
except Exception as err:  # the parser raises ValueError and others on bad input
    print(f"not valid Prometheus text: {err}", file=sys.stderr)
    sys.exit(1)
json.dump({"families": families, "samples": samples}, sys.stdout)
