"""Who may do what: roles (from shipyard.yaml, or in team mode from the server's store), and separation of duties."""

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
    "hold": frozenset({"admin"}),  # put a version under legal hold, or lift it
    "retention": frozenset({"deployer", "admin"}),  # apply retention (the worker's service principal is a deployer)
    "principal": frozenset({"admin"}),  # manage principals and their roles
    "token:others": frozenset({"admin"}),  # create, list or revoke another principal's tokens
    "token:own": frozenset(ROLES),  # an api token for oneself: any principal
}
OPEN_ROLES = frozenset(r for r in ROLES if r != "admin")


class Access:
    """Roles per actor. Without a principals key every actor holds every role but admin.

    ``team``: the roles come from the server's store and the actor was authenticated, so a refusal
    points at `shipyard principals set`, never at acting as someone else.
    """

    def __init__(self, principals: Mapping[str, Iterable[str]] | None, *, team: bool = False) -> None:
        self.principals = {name: frozenset(roles) for name, roles in principals.items()} if principals is not None else None
        self.team = team

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
        if self.team:
            # Identity is authenticated in team mode: acting as someone else is not an option to offer.
            if self.principals is not None and actor not in self.principals:
                return (
                    f"{actor} is not a principal of this server; "
                    f"an admin adds one: `shipyard principals set {actor} --role ROLE`."
                )
            return f"Roles are kept by the server; an admin changes them: `shipyard principals set {actor} --role ROLE`."
        if self.principals is not None and actor not in self.principals:
            known = ", ".join(sorted(self.principals)) or "none"
            return (
                f"{actor} is not declared under principals in shipyard.yaml (declared: {known}); "
                "act as another actor with --actor."
            )
        return "Roles are declared under principals in shipyard.yaml."


# -- team mode: roles live in the store, seeded once from shipyard.yaml ----------------------------

SERVICE_ROLES = ("scientist", "deployer")  # automated actions: retrain, roll out, roll back; never approve


def service_principals(worker_actor: str, monitor_actors: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The actors automated work runs as (the worker's, each model's monitor), each with ``SERVICE_ROLES``."""
    return {name: SERVICE_ROLES for name in sorted({worker_actor, *monitor_actors})}


def seed_roles(declared: Mapping[str, Iterable[str]] | None, service: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """What a team-mode store starts with: shipyard.yaml's principals, plus the service principals it leaves out."""
    seeded = {name: tuple(roles) for name, roles in service.items()}
    seeded.update({name: tuple(roles) for name, roles in (declared or {}).items()})
    return seeded


def principals_drift(
    declared: Mapping[str, Iterable[str]] | None,
    stored: Mapping[str, Iterable[str]],
    service: Iterable[str] = (),
) -> list[str]:
    """How shipyard.yaml's principals differ from the store's, one line per principal; empty when they agree.

    Without a principals key nothing is declared, so nothing differs. Service principals the YAML leaves out
    were seeded by Shipyard itself and are not a difference.
    """
    if declared is None:
        return []
    lines = []
    stored_roles = {name: sorted(set(roles)) for name, roles in stored.items()}
    for name, roles in sorted(declared.items()):
        want, have = sorted(set(roles)), stored_roles.get(name)
        if have is None:
            lines.append(f"{name}: shipyard.yaml gives [{', '.join(want)}]; the server has no such principal")
        elif want != have:
            lines.append(f"{name}: shipyard.yaml gives [{', '.join(want)}]; the server holds [{', '.join(have)}]")
    for name in sorted(set(stored_roles) - set(declared) - set(service)):
        lines.append(f"{name}: the server holds [{', '.join(stored_roles[name])}]; shipyard.yaml does not declare it")
    return lines


def require_separation(actor: str, involved: Mapping[str, str | None], *, what: str) -> None:
    """Refuse when the actor registered or trained the version they are about to sign off."""
    for duty, person in involved.items():
        if person is not None and person == actor:
            raise PermissionDenied(
                f"separation of duties: {actor} {duty} this version and so may not {what}",
                hint="Ask someone else who holds the role to do it.",
            )
