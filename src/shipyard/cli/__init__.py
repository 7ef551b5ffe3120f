"""The command line: parse, call the Shipyard service, render. No rules live here.

The root app and its state live in `root`, the renderers in `render`, and the
commands in one module per noun; this module assembles them into one app.
"""

from __future__ import annotations

from shipyard.cli import audit, gates, identity, models, monitor, pipeline, project, retention, rollout, serve, server
from shipyard.cli.root import app

__all__ = ["app", "main"]

# Registration order is the order `shipyard --help` lists commands and groups in.
for command in (
    project.init,
    project.demo,
    gates.promote,
    gates.approve,
    gates.reject,
    pipeline.register,
    serve.serve,
    serve.worker,
    server.server,
    server.login,
    server.ui,
    monitor.trace,
    monitor.kpis,
    retention.costs,
):
    app.command()(command)
app.add_typer(pipeline.pipeline_app, name="pipeline")
app.add_typer(models.models_app, name="models")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(project.db_app, name="db")
app.add_typer(gates.gate_app, name="gate")
app.add_typer(pipeline.evidence_app, name="evidence")
app.add_typer(rollout.rollout_app, name="rollout")
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(monitor.labels_app, name="labels")
app.add_typer(identity.token_app, name="token")
app.add_typer(identity.principals_app, name="principals")
app.add_typer(retention.hold_app, name="hold")
app.add_typer(retention.retention_app, name="retention")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
