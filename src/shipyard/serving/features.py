"""Online features in the gateway: a Feast-backed model's requests carry entity keys (and request-time features);
the rest comes from the online store, in one lookup per micro-batch.

Three hooks, each a line or two in the files around it:
- ``attach`` (gateway ``_load``): the version's online lookup, when its evidence names a feature service;
- ``request_schema`` (app): what a request must carry: the model's columns less the fetched ones, plus the keys;
- ``complete`` (batcher ``_predict``): the batch's fetched values added to each request, or the request refused;
- ``logged`` (gateway ``_bookkeep``): the entity keys beside the model's columns in the prediction log, so labels
  join on them and a retrain finds each prediction's entity.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import NotFound, ShipyardError
from shipyard.serving.inputs import Field, InputSchema

if TYPE_CHECKING:
    from shipyard.features.online import OnlineFeatures
    from shipyard.serving.batching import BatchDone, Batcher, Job

_KEY_TYPES = {"STRING": "string", "INT64": "long", "INT32": "integer", "FLOAT": "float", "DOUBLE": "double", "BOOL": "boolean"}


class EntityNotFound(NotFound):
    """A request names an entity the online store has no features for."""

    code = "entity_not_found"


@dataclass(frozen=True, slots=True, kw_only=True)
class OnlineLookup:
    online: OnlineFeatures
    fetched: tuple[str, ...]  # the model's columns that come from the store
    request_schema: InputSchema  # what a request carries: the keys, then the model's other (request-time) columns
    join_keys: tuple[str, ...]
    feature_service: str


def attach(model_schema: InputSchema, evidence: dict[str, Any], repo: Path | None) -> OnlineLookup | None:
    """The online lookup of a version trained from a feature service (None for any other version)."""
    facts = evidence.get("feature_store")
    if not facts:
        return None
    from shipyard.features.online import OnlineFeatures
    from shipyard.features.repo import FeatureSource

    if repo is None:
        raise NotFound(
            f"the version was trained from Feast feature service {facts['feature_service']!r}, "
            "but the project declares no Feast repository for its model",
            hint="Declare models.*.data.feast.repo in shipyard.yaml.",
        )
    online = OnlineFeatures(FeatureSource(repo=repo, feature_service=facts["feature_service"]))
    fetched = tuple(f.name for f in model_schema.fields if f.name in online.features)
    keys = [
        Field(name=k, type=_KEY_TYPES.get(online.key_types.get(k, "STRING"), "string"))
        for k in online.join_keys
        if k not in model_schema.names
    ]
    rest = [f for f in model_schema.fields if f.name not in fetched]
    return OnlineLookup(
        online=online,
        fetched=fetched,
        request_schema=InputSchema(fields=(*keys, *rest)),
        join_keys=tuple(online.join_keys),
        feature_service=facts["feature_service"],
    )


def request_schema(batcher: Batcher) -> InputSchema:
    lookup = batcher.features
    return lookup.request_schema if lookup is not None else batcher.loaded.schema


async def complete(lookup: OnlineLookup, jobs: list[Job]) -> list[Job]:
    """One online lookup for the whole batch; each job gets its rows' values. Jobs naming an unknown entity, or all
    of them when the store cannot be reached, are answered with the error here; the others are returned."""
    keys: dict[str, list[Any]] = {key: [] for key in lookup.join_keys}
    for job in jobs:
        for key in lookup.join_keys:
            keys[key].extend(job.decoded.columns[key])
    try:
        found = await asyncio.to_thread(lookup.online.fetch, keys)
    except ShipyardError as exc:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(exc)
        return []
    missing = set(found.missing)
    kept = []
    offset = 0
    for job in jobs:
        rows = job.decoded.rows
        unknown = [i for i in range(offset, offset + rows) if i in missing]
        if unknown:
            named = ", ".join(" ".join(f"{key}={keys[key][i]!r}" for key in lookup.join_keys) for i in unknown[:5])
            if not job.future.done():
                job.future.set_exception(
                    EntityNotFound(
                        f"the online store of feature service {lookup.feature_service!r} has no features for {named}"
                        + (f" (and {len(unknown) - 5} more rows)" if len(unknown) > 5 else ""),
                        hint="Check the key, or materialize the feature views: `shipyard features materialize MODEL`.",
                    )
                )
        else:
            columns = dict(job.decoded.columns)
            for name in lookup.fetched:
                columns[name] = found.columns[name][offset : offset + rows]
            job.decoded = replace(job.decoded, columns=columns)
            kept.append(job)
        offset += rows
    return kept


def logged(lookup: OnlineLookup | None, done: BatchDone) -> dict[str, Any]:
    """The batch's columns for the prediction log: the model's, and a Feast-backed model's entity keys first."""
    if lookup is None or done.columns is None:
        return done.columns or {}
    keys = {key: [value for job in done.jobs for value in job.decoded.columns[key]] for key in lookup.join_keys}
    return {**keys, **done.columns}
