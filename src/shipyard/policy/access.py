"""Who may do what: roles from shipyard.yaml, and separation of duties."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shipyard.config import ROLES
from shipyard.domain.errors import PermissionDenied

# Actions and the roles that may perform them; admin may do everything.
PERMISSIONS: dict[str, frozenset[str]] = {
    "train": frozenset({"scientist", "admin"}),
    "promote:staging": frozenset({"scientist", "deployer", "admin"}),
    "promote:production": frozenset({"deployer", "admin"}),
    "promote:archived": frozenset({"deployer", "admin"}),
    "promote:rejected": frozenset({"scientist", "approver", "deployer", "admin"}),
    "approve": frozenset({"approver", "admin"}),
    "operate": frozenset({"deployer", "admin"}),
    "monitor": frozenset({"scientist", "deployer", "admin"}),
    "break_glass": frozenset({"admin"}),
}
OPEN_ROLES = frozenset(r for r in ROLES if r != "admin")


class Access:
    """Roles per actor. Without a principals key every actor holds every role but admin."""

    def __init__(self, principals: Mapping[str, Iterable[str]] | None) -> None:
        self.principals = {name: frozenset(roles) for name, roles in principals.items()} if principals is not None else None

    @property
    def enforced(self) -> bool:
        return self.principals is not None

    def roles(self, actor: str) -> frozenset[str]:
        if self.principals is None:
            return OPEN_ROLES
        return self.principals.get(actor, frozenset())

    def require(self, actor: str, action: str, *, what: str | None = None) -> frozenset[str]:
        needed = PERMISSIONS[action]
        held = self.roles(actor)
        if held & needed:
            return held
        raise PermissionDenied(
            f"{actor} may not {what or action.replace(':', ' to ')}: it needs one of the roles "
            f"{', '.join(sorted(needed))}, and {actor} holds {', '.join(sorted(held)) or 'none'}",
            hint=self._hint(actor),
        )

    def require_role(self, actor: str, role: str, *, what: str) -> frozenset[str]:
        held = self.roles(actor)
        if role in held or "admin" in held:
            return held
        raise PermissionDenied(
            f"{actor} may not {what}: the policy asks for the role {role}, and {actor} holds {', '.join(sorted(held)) or 'none'}",
            hint=self._hint(actor),
        )

    def _hint(self, actor: str) -> str:
        if self.principals is not None and actor not in self.principals:
            known = ", ".join(sorted(self.principals)) or "none"
            return (
                f"{actor} is not declared under principals in shipyard.yaml (declared: {known}); "
                "act as another actor with --actor."
            )
        return "Roles are declared under principals in shipyard.yaml."


def require_separation(actor: str, involved: Mapping[str, str | None], *, what: str) -> None:
    """Refuse when the actor registered or trained the version they are about to sign off."""
    for duty, person in involved.items():
        if person is not None and person == actor:
            raise PermissionDenied(
                f"separation of duties: {actor} {duty} this version and so may not {what}",
                hint="Ask someone else who holds the role to do it.",
            )
