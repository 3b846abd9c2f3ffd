"""Resolve which database to use: ``DATABASE_URL``, or the private local cluster (started on demand)."""
from __future__ import annotations

from dataclasses import dataclass

from app.core import localdb
from app.core.settings import Settings


@dataclass(frozen=True)
class DatabaseTarget:
    url: str          # the service role
    admin_url: str    # the schema owner, for migrations and operator commands
    local: localdb.LocalCluster | None
    started_local: bool = False  # this process started the local cluster (and stops it on the way out)

    @property
    def maintenance_url(self) -> str | None:
        """The owner's URL for the scheduler's owner-only upkeep (compacting closed hot chunks' indexes), or
        None when no owner's URL is known apart from the service's."""
        return self.admin_url if self.admin_url != self.url else None


def resolve(settings: Settings, *, start_local: bool = True) -> DatabaseTarget:
    if settings.database_url:
        return DatabaseTarget(settings.database_url, settings.database_admin_url or settings.database_url, None)
    cluster = localdb.default_cluster(settings.data_dir, settings.local_pg_port)
    started = False
    if start_local:
        started = not localdb.is_running(cluster)
        localdb.start(cluster)
    elif not cluster.credentials_file.exists():
        raise localdb.LocalClusterError(f"no local cluster in {cluster.root}: run `beidou db start` first")
    return DatabaseTarget(cluster.url(), cluster.admin_url(), cluster, started)
