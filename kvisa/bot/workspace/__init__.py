"""The agency's workspace at /agency/: staff accounts, sessions and the pages (see app.py)."""

from __future__ import annotations

from collections.abc import Mapping

from kvisa.bot.broadcasts.compose import Composer
from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.bot.cases.applicants import Applicants, workspace_secret
from kvisa.bot.cases.audit import AuditLog
from kvisa.bot.cases.catalog import Catalog, open_catalog
from kvisa.bot.cases.notes import Notes
from kvisa.bot.clock import Clock
from kvisa.bot.engine.engine import Engine
from kvisa.bot.policy.office import OfficeHours
from kvisa.bot.settings import Settings
from kvisa.bot.workspace.accounts import StaffStore
from kvisa.bot.workspace.app import Sender, Workspace
from kvisa.bot.workspace.security import Lockout, Sessions

__all__ = ["Workspace", "open_workspace"]


async def open_workspace(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    senders: Mapping[str, Sender],
    composer: Composer | None = None,
    broadcasts: BroadcastStore | None = None,
    catalog: Catalog | None = None,
) -> Workspace:
    """The workspace over the engine's storage; its case index follows every committed change
    from now on (an engine watcher) and is built first when it never was."""
    storage = engine.storage
    secret = await workspace_secret(storage)
    catalog = catalog or open_catalog(storage)
    notes = Notes(storage)
    applicants = Applicants(engine.flows, storage, catalog, secret, clock.now, notes.text)
    engine.watchers.append(applicants.on_change)
    engine.office_hours = OfficeHours.parse(settings.office_hours)
    public = settings.public_base_url
    return Workspace(
        flows=engine.flows,
        catalogs=engine.catalogs,
        engine=engine,
        applicants=applicants,
        notes=notes,
        audit=AuditLog(catalog, clock.now),
        staff=StaffStore(storage),
        sessions=Sessions(storage, secret, secure=bool(public and public.startswith("https:"))),
        lockout=Lockout(storage, secret),
        clock=clock,
        senders=senders,
        composer=composer,
        broadcasts=broadcasts,
        agency=settings.agency,
        admins=frozenset(settings.admins or ()),
        public_url=public,
        alert_minutes=settings.handover_alert_minutes,
    )
