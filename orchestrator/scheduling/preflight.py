"""What `orch submit` and `orch resume` check before a job runs in this process, so that
each refusal is one line before the ledger records anything or the live display starts."""

from __future__ import annotations

from orchestrator.config import Workspace
from orchestrator.ledger import Ledger
from orchestrator.spec.model import JobSpec


def address_source(address: str | None, ws: Workspace) -> str:
    """How the user gave the Ray address, for error messages: the option, or the
    workspace setting it came from."""
    return "--address" if address else ws.origin("ray_address")


def check_same_spec(ledger: Ledger, job: JobSpec, update: bool) -> None:
    """A [job] name already in the ledger with other trials: refused unless --update."""
    from orchestrator.scheduling.submit import spec_changed

    changes = ledger.spec_changes(job)
    if changes is not None and not update:
        known = ledger.job(job.name)
        raise spec_changed(job, known.spec_path if known else "?", *changes)


def preflight(
    job: JobSpec,
    ws: Workspace,
    *,
    force: bool = False,
    address: str | None = None,
    update: bool = False,
) -> frozenset[str]:
    """Checks the Ray address, the tracking store and the job's name in the ledger; returns
    the keys of the job's trials that are already finished (none with force)."""
    from orchestrator.scheduling.adapters.address import check

    # A cluster that does not answer or refuses the token is one line, before the ledger
    # records anything (bounded time; the result is cached for the connect that follows).
    check(address or ws.ray_address, address_source(address, ws))
    from orchestrator.stores import check_tracking_uri

    check_tracking_uri(ws.tracking_uri)  # a bad or damaged store: refused before any write
    if ws.tracking_uri.startswith(("http://", "https://")):
        from orchestrator.stores import probe_server

        probe_server(ws.tracking_uri)  # a server that is down: one line, before training
    ledger = Ledger(ws.ledger_url)
    check_same_spec(ledger, job, update)
    if force:
        return frozenset()
    return frozenset(ledger.finished_keys(job.name) & {t.key for t in job.trials})
