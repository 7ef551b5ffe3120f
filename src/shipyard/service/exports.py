"""Exports for a cluster: what a version or a model's current deployment looks like as Kubernetes, KServe
and Argo objects. Reads only; the files are written by the caller (or by the GitOps hook)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import Conflict
from shipyard.service.versions import Versions

if TYPE_CHECKING:
    from shipyard.deploy.target import ServingTarget
    from shipyard.domain.entities import Deployment


class Exports(Versions):
    def serving_target(self, model: str, version: int | None = None, *, evidence: dict[str, Any] | None = None) -> ServingTarget:
        """What one version of ``model`` serves with, as exported (the champion when no version is given)."""
        from shipyard.deploy.target import ServingTarget, dns_name, image_for, resources_from_footprint

        spec = self.settings.model(model)
        if version is None:
            champion = self.champion(model)
            if champion is None:
                raise Conflict(
                    f"model {model!r} has no version in production to export",
                    hint=f"Pass --version V, or promote a version first (`shipyard promote {model} V --to production`).",
                )
            version = champion.version
        else:
            self.store.get_version(model, version)
        if evidence is None:
            evidence = self.store.evidence(model, version)
        resources, source = resources_from_footprint(evidence)
        deploy = self.settings.spec.deploy
        project = self.settings.spec.project
        return ServingTarget(
            project=project,
            model=model,
            version=version,
            image=image_for(deploy, project, model, version),
            namespace=deploy.namespace or dns_name(project),
            deploy=deploy,
            alerts=list(spec.monitoring.alerts),
            resources=resources,
            resources_from=source,
        )

    def export_k8s(self, model: str, version: int | None = None) -> dict[str, Any]:
        """A kustomize base and one overlay per environment: relative path → object."""
        from shipyard.deploy.k8s import kustomize_tree

        return kustomize_tree(self.serving_target(model, version))

    def export_kserve(self, model: str) -> dict[str, Any]:
        """The InferenceService for the model's deployment now (and the runtime it names): file name → object."""
        self.settings.model(model)
        self.store.get_model(model)
        deployment = next(iter(self.store.deployments([model])), None)
        if deployment is None or deployment.champion is None:
            raise Conflict(
                f"model {model!r} has no version in production, so there is no champion to export",
                hint=f"Promote a version first: `shipyard promote {model} V --to production`.",
            )
        return self.kserve_files(deployment)

    def kserve_files(self, deployment: Deployment) -> dict[str, Any]:
        from shipyard.deploy.kserve import inference_service, serving_runtime

        model = deployment.model
        champion = self.serving_target(model, deployment.champion) if deployment.champion is not None else None
        challenger = self.serving_target(model, deployment.challenger) if deployment.challenger is not None else None
        service = inference_service(champion, challenger, deployment.challenger_weight * 100.0)
        runtime = serving_runtime(challenger or champion)  # type: ignore[arg-type]  # one of them is set
        return {f"{model}-inferenceservice.yaml": service, f"{model}-servingruntime.yaml": runtime}
