"""The retention journal: which action a pass started and which it finished, so a killed pass's last
action is audited exactly once — by the next pass, when its effect is on disk and no event of that
pass records it yet (each event carries its pass's id)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shipyard.domain.retention import RetentionAction


def _key(action: dict[str, Any]) -> tuple[str, str]:
    return str(action["kind"]), str(action["subject"])


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, state: str, action: RetentionAction, pass_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"state": state, "pass": pass_id, "action": action.to_dict()}) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def start(self, action: RetentionAction, pass_id: str) -> None:
        self._append("started", action, pass_id)

    def done(self, action: RetentionAction, pass_id: str) -> None:
        self._append("done", action, pass_id)

    def unfinished(self) -> list[tuple[RetentionAction, str]]:
        """Actions started and not recorded as done, with the pass that started them, in order."""
        if not self.path.is_file():
            return []
        open_actions: dict[tuple[str, str], dict[str, Any]] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill: its action was never started
            key = _key(entry["action"])
            if entry.get("state") == "started":
                open_actions[key] = entry
            else:
                open_actions.pop(key, None)
        return [(RetentionAction(**entry["action"]), str(entry.get("pass"))) for entry in open_actions.values()]

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
