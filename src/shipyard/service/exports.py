"""Exports for a cluster: what a version or a model's current deployment looks like as Kubernetes, KServe
and Argo objects. Reads only; the files are written by the caller (or by the GitOps hook)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import Conflict, InvalidSpec
from shipyard.service.versions import Versions

if TYPE_CHECKING:
    from pathlib import Path

    from shipyard.deploy.target import ServingTarget
    from shipyard.domain.entities import Deployment


class Exports(Versions):
    def serving_target(self, model: str, version: int | None = None, *, evidence: dict[str, Any] | None = None) -> ServingTarget:
        """What one version of ``model`` serves with, as exported (the champion when no version is given)."""
        from shipyard.deploy.target import (
            ServingTarget,
            dns_name,
            image_for,
            monitor_schedule,
            project_image_for,
            resources_from_footprint,
        )

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
            project_image=project_image_for(deploy, project),
            namespace=deploy.namespace or dns_name(project),
            deploy=deploy,
            alerts=list(spec.monitoring.alerts),
            monitor_seconds=monitor_schedule(spec.monitoring.interval)[1],
            resources=resources,
            resources_from=source,
        )

    def export_k8s(self, model: str, version: int | None = None) -> dict[str, Any]:
        """A kustomize base and one overlay per environment: relative path → object."""
        from shipyard.deploy.k8s import kustomize_tree

        return kustomize_tree(self.serving_target(model, version))

    def export_argo(self, model: str) -> dict[str, Any]:
        """The governed pipeline as an Argo WorkflowTemplate, and `shipyard monitor run` as a CronWorkflow and as
        a CronJob: file name → object."""
        from shipyard.deploy.argo import PipelineTarget, argo_files
        from shipyard.deploy.target import dns_name, monitor_schedule, project_image_for

        spec = self.settings.model(model)
        deploy = self.settings.spec.deploy
        project = self.settings.spec.project
        target = PipelineTarget(
            project=project,
            model=model,
            image=project_image_for(deploy, project),
            namespace=deploy.namespace or dns_name(project),
            monitor_schedule=monitor_schedule(spec.monitoring.interval)[0],
        )
        return argo_files(target)

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

    # -- container build contexts ----------------------------------------------------------------

    def package(self, model: str, version: int, out: Path) -> dict[str, Any]:
        """A build context serving one version; its digest is recorded as an audited `version.packaged` event.

        (Not in the evidence itself: a new evidence digest would lapse the approvals given on it.)
        """
        from shipyard.deploy import package as pkg
        from shipyard.deploy.target import image_for
        from shipyard.store.packages import record_package

        found = self.store.get_version(model, version)
        self.authorize("train", what=f"package {found.subject}", subject=found.subject)
        with _fresh(out):
            files = self.registry.copy_version_files(found, out / pkg.MODEL_DIR)
            requirements = pkg.model_requirements(out / pkg.MODEL_DIR)
            (out / "requirements.txt").write_text(requirements, encoding="utf-8")
            pkg.write_json(out / pkg.MANIFEST, pkg.manifest(found, files, self.store.evidence(model, version)))
            pkg.shipyard_wheel(out / "wheels")
            dockerfile = pkg.VERSION_DOCKERFILE.format(model=model, version=version, base=pkg.BASE_IMAGE, port=pkg.PORT)
            (out / "Dockerfile").write_text(dockerfile, encoding="utf-8")
            digest = pkg.context_digest(out, pkg.files_under(out))
        deploy = self.settings.spec.deploy
        image = image_for(deploy, self.settings.spec.project, model, version)
        details = {"package_sha256": digest, "image": image, "files_sha256": files}
        event = record_package(self.store, actor=self.actor, model=model, version=version, details=details)
        return {"model": model, "version": version, "package_sha256": digest, "image": image, "audit_seq": event.seq}

    def package_project(self, out: Path) -> dict[str, Any]:
        """A build context of the project itself (code, locked requirements, Shipyard's wheel), for the pipeline's
        steps, the worker and a gateway following the shared store. Writes nothing to the store."""
        import shutil

        from shipyard.deploy import package as pkg

        root = self.settings.root
        ignore = shutil.ignore_patterns(".shipyard", ".git", "__pycache__", ".venv", "*.pyc")
        with _fresh(out):
            shutil.copytree(root, out / "project", ignore=ignore)
            (out / "requirements.txt").write_text(pkg.locked_requirements(root), encoding="utf-8")
            pkg.shipyard_wheel(out / "wheels")
            project = self.settings.spec.project
            (out / "Dockerfile").write_text(
                pkg.PROJECT_DOCKERFILE.format(project=project, base=pkg.BASE_IMAGE, port=pkg.PORT), encoding="utf-8"
            )
            digest = pkg.context_digest(out, pkg.files_under(out))
        return {"project": project, "package_sha256": digest}


@contextmanager
def _fresh(out: Path) -> Iterator[None]:
    """Write into a new (or empty) folder; remove what was written when anything fails."""
    import shutil

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidSpec(f"{out} is not an empty folder", hint="Pass --out a new folder; a package is written whole.")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
