"""How fast the web UI renders its heaviest pages, beside the server's floor.

Builds a churn project with one trained version, then 199 more versions sharing its evidence (200 in
all) and 100,000 audit events, serves it with the control plane on a loopback port, logs in as a user
would, and times in interleaved rounds, each as one HTTP request over a kept-alive connection:

- the floor: `/healthz`, a constant answer from the same server (what any page pays for HTTP);
- the overview (`/ui/`), the model page with 200 versions, the version page, the audit page over
  100,000 events;

printing medians, their difference to the floor, the page size, and the target: each page under
150 ms on this machine and under 300 kB (assets are cached by the browser, so they are not counted).

    .venv/bin/python benchmarks/ui.py [--rounds 15] [--events 100000] [--versions 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

USER = "dana.scientist"  # the churn template's scientist
TARGET_MS = 150.0
TARGET_KB = 300.0


def build(root: Path, *, versions: int, events: int) -> None:
    from shipyard.scaffold import init_project
    from shipyard.service import Shipyard

    init_project(root)
    with Shipyard.open(root, actor=USER, env={}) as service:
        service.run_pipeline("churn")
        store, first = service.store, service.store.get_version("churn", 1)
        evidence, schema = store.evidence("churn", 1), store.reference_schema("churn")
        for number in range(2, versions + 1):
            store.register_version(
                actor=first.registered_by, model="churn", owner="team", version=number, source=first.source,
                run_id=first.run_id, data_uri=first.data_uri, data_fingerprint=first.data_fingerprint,
                git_commit=first.git_commit, metrics=first.metrics, evidence=evidence, schema=schema,
                files_sha256=first.files_sha256,
            )  # fmt: skip
        have = len(store.audit_events())
        with store.write(service.actor) as tx:  # one transaction: the chain stays intact, the build stays quick
            for i in range(max(0, events - have)):
                tx.audit("benchmark.event", "churn", {"i": i})


def measure(url: str, token: str, pages: dict[str, str], rounds: int) -> dict[str, tuple[list[float], int]]:
    import html
    import re

    timings: dict[str, list[float]] = {name: [] for name in pages}
    sizes: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=120) as browser:
        form = browser.get("/ui/login").text
        csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', form)[1])  # type: ignore[index]
        browser.post("/ui/login", data={"token": token, "csrf": csrf, "next": "/ui/"})
        for path in pages.values():  # warm: templates compiled, caches filled, as for any user after the first
            browser.get(path).raise_for_status()
        for _ in range(rounds):
            for name, path in pages.items():
                started = time.perf_counter()
                response = browser.get(path)
                timings[name].append(time.perf_counter() - started)
                response.raise_for_status()
                sizes[name] = len(response.content)
    return {name: (timings[name], sizes[name]) for name in pages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=200)
    args = parser.parse_args()

    from shipyard.server.app import create_app
    from shipyard.service import Shipyard
    from shipyard.serving.server import BackgroundServer

    root = Path(tempfile.mkdtemp(prefix="shipyard-ui-bench-")) / "project"
    started = time.perf_counter()
    build(root, versions=args.versions, events=args.events)
    print(f"built {args.versions} versions and {args.events:,} audit events in {time.perf_counter() - started:.0f} s: {root}")
    service = Shipyard.open(root, actor=USER, env={})
    _, token = service.create_token("benchmark", expires_seconds=3600)
    pages = {
        "floor (/healthz)": "/healthz",
        "overview": "/ui/",
        f"model ({args.versions} versions)": "/ui/models/churn",
        "version": "/ui/models/churn/versions/1",
        f"audit ({args.events:,} events)": "/ui/audit",
    }
    with BackgroundServer(create_app(service)) as server:
        results = measure(server.url, token, pages, args.rounds)
    service.close()
    floor = statistics.median(results["floor (/healthz)"][0]) * 1000
    print(f"\n{'page':<26}{'median ms':>11}{'over floor':>12}{'kB':>8}   target: < {TARGET_MS:g} ms, < {TARGET_KB:g} kB")
    for name, (times, size) in results.items():
        median = statistics.median(times) * 1000
        kb = size / 1024
        verdict = "" if name.startswith("floor") else ("met" if median < TARGET_MS and kb < TARGET_KB else "NOT met")
        print(f"{name:<26}{median:>11.1f}{median - floor:>+12.1f}{kb:>8.1f}   {verdict}")


if __name__ == "__main__":
    main()
