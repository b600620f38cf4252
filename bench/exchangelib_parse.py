"""Reference point for resa's benchmark: how long exchangelib (PyPI), a
widely used EWS client, takes to parse the same SyncFolderItems response
that resa's parser is timed on (512 changes).

exchangelib parses static XML through its service's `parse()`, the path its
own tests use: SOAP envelope, response messages, then one Python item object
per change. No network is used; the account only gives the service its
version and time zone.

Usage: exchangelib_parse.py RESPONSE.xml ITERATIONS
Prints one JSON line: {"exchangelib": VERSION, "changes": N, "median_ms": M, "min_ms": m}.
"""

import json
import statistics
import sys
import time

import exchangelib
from exchangelib import DELEGATE, Account, Build, Configuration, Credentials, Version
from exchangelib.services import SyncFolderItems


def main():
    path, iterations = sys.argv[1], int(sys.argv[2])
    with open(path, "rb") as f:
        xml = f.read()
    config = Configuration(
        service_endpoint="http://127.0.0.1:9/EWS/Exchange.asmx",
        credentials=Credentials("bench", "unused"),
        version=Version(build=Build(15, 1)),
    )
    account = Account(
        "salle.bench@bench.resa.test",
        config=config,
        autodiscover=False,
        access_type=DELEGATE,
        default_timezone=exchangelib.EWSTimeZone("Europe/Paris"),
    )
    timings = []
    changes = 0
    for _ in range(iterations):
        service = SyncFolderItems(account=account)
        start = time.perf_counter()
        changes = sum(1 for _ in service.parse(xml))
        timings.append((time.perf_counter() - start) * 1000.0)
    print(
        json.dumps(
            {
                "exchangelib": exchangelib.__version__,
                "changes": changes,
                "median_ms": statistics.median(timings),
                "min_ms": min(timings),
            }
        )
    )


if __name__ == "__main__":
    main()
