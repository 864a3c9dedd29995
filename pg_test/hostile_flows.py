#!/usr/bin/env python3
"""Every flow pgops runs unattended or as a superuser near a tenant's objects, derived from the
sources, for the hostile-tenant scenario (pg_test/scenarios/95_hostile.sh) to prove it ran each one
while the tenant's objects were planted:

- workers: the label of every per-database worker task the code builds (`Task::Query`, `Exec`,
  `Utility` with `label: "…"`, and every registered `Handler`'s label); the postmaster logs
  `starting background worker process "pgops <label> in <database>"` at DEBUG1;
- turns: the name of every launcher turn hook (`TurnHook { name: "…" }`); the launcher logs
  `pgops launcher: turn "<name>"` at DEBUG1.

A new task or hook is in this list as soon as it is written, so the scenario fails until it has
a hostile case. Test modules (and src/pg_tests.rs, the #[pg_test]s) are left out.

    pg_test/hostile_flows.py ROOT   → {"workers": [...], "turns": [...]}
"""
import json
import pathlib
import re
import sys

TASK = re.compile(r"Task::(?:Query|Exec|Utility)\s*\{[^{}]*?\blabel:\s*\"([^\"]+)\"", re.S)
HANDLER = re.compile(r"\bHandler\s*=\s*(?:[\w:]*::)?Handler\s*\{\s*name:\s*\"[^\"]+\",\s*label:\s*\"([^\"]+)\"", re.S)
TURN = re.compile(r"\bTurnHook\s*=\s*(?:[\w:]*::)?TurnHook\s*\{\s*name:\s*\"([^\"]+)\"", re.S)


def main(root: str) -> None:
    workers, turns = set(), set()
    for path in sorted(pathlib.Path(root, "src").rglob("*.rs")):
        if path.name == "pg_tests.rs":  # the #[pg_test]s, included into lib.rs' test module
            continue
        text = path.read_text()
        # Unit tests build tasks that never run in a server.
        cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
        if cut:
            text = text[: cut.start()]
        workers.update(TASK.findall(text))
        workers.update(HANDLER.findall(text))
        turns.update(TURN.findall(text))
    if not workers or not turns:
        sys.exit("hostile_flows.py: no worker task or launcher turn found: the patterns no longer match the sources")
    print(json.dumps({"workers": sorted(workers), "turns": sorted(turns)}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
