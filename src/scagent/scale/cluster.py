"""Where dask work runs: an existing dask.distributed scheduler, a LocalCluster of worker
processes on this machine, or (neither) dask's threaded scheduler in this process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from scagent.errors import InvalidParameterError, MissingDependencyError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["connect", "local_cluster", "use_cluster"]

_EXTRA = "pip install 'scagent[scale]'  (dask[array], distributed)"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as e:  # pragma: no cover - ships with the scale extra
        raise MissingDependencyError(
            "running on a dask cluster needs dask.distributed", remedy=_EXTRA
        ) from e
    return distributed


def connect(scheduler: str, *, timeout: float = 5.0) -> Client:
    """Connect to a running dask.distributed scheduler; fail within ``timeout`` seconds.

    Parameters
    ----------
    scheduler
        The scheduler address, e.g. ``tcp://10.0.0.5:8786`` (``host:port`` gets ``tcp://``).
    timeout
        Seconds to wait for the scheduler to answer.

    Returns
    -------
    A :class:`distributed.Client`, now the default for every ``dask.compute``; close it
    (or use it as a context manager) when done.

    Raises
    ------
    InvalidParameterError
        The address is malformed, or no scheduler answers there within ``timeout``.
    """
    distributed = _distributed()
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise InvalidParameterError(
            f"scheduler must be an address like tcp://host:8786, not {scheduler!r}"
        )
    address = scheduler.strip()
    if "://" not in address:
        address = f"tcp://{address}"
    if not timeout > 0:
        raise InvalidParameterError(f"timeout must be > 0 seconds, not {timeout!r}")
    try:
        # distributed's connect timeout is per attempt with retries inside; the config
        # below keeps the whole wait near ``timeout`` instead of the 30 s default.
        import dask

        with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
            return distributed.Client(address, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as e:
        raise InvalidParameterError(
            f"no dask scheduler answered at {address} within {timeout:g} s ({type(e).__name__})",
            remedy="check the address and that the scheduler is running "
            "(`dask scheduler` prints its address), or drop --scheduler to run locally",
        ) from e
    except ValueError as e:  # unparsable address / unknown protocol
        raise InvalidParameterError(f"bad scheduler address {scheduler!r}: {e}") from e


def local_cluster(
    n_workers: int = 2,
    *,
    threads_per_worker: int = 1,
    memory_limit: str | float | None = "auto",
    processes: bool = True,
) -> Client:
    """Start a :class:`distributed.LocalCluster` of worker processes and connect to it.

    Parameters
    ----------
    n_workers
        Worker processes.
    threads_per_worker
        Threads in each worker. CSR chunk work holds the GIL for much of its time, so
        processes scale better than threads.
    memory_limit
        Per worker (``"4GB"``, bytes, ``"auto"``: the machine's memory / n_workers).
        Workers spill to disk and then pause above it, which keeps the run inside RAM.
    processes
        Separate processes (default) or threads in this process.

    Returns
    -------
    A :class:`distributed.Client` whose ``close()`` also shuts the cluster down.
    """
    distributed = _distributed()
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise InvalidParameterError(f"n_workers must be a positive integer, not {n_workers!r}")
    cluster = distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=processes,
        memory_limit=memory_limit,
        dashboard_address=None,  # no port to collide with on shared machines
    )
    client = distributed.Client(cluster, set_as_default=True)
    # The client owns the cluster: closing it must not leave worker processes behind.
    client._scagent_cluster = cluster  # type: ignore[attr-defined]
    return client


def _close(client: Client) -> None:
    cluster = getattr(client, "_scagent_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


@contextlib.contextmanager
def use_cluster(
    scheduler: str | None = None, *, workers: int | None = None, timeout: float = 5.0
) -> Iterator[Client | None]:
    """Run the enclosed dask work on ``scheduler``, on a LocalCluster, or locally.

    Parameters
    ----------
    scheduler
        Address of a running scheduler (takes precedence).
    workers
        Without ``scheduler``: start a LocalCluster with this many worker processes.
        Neither: yield ``None`` and let dask use its threaded scheduler.
    timeout
        Seconds to wait for ``scheduler``.

    Yields
    ------
    The client, or ``None``. It is closed (and a LocalCluster shut down) on exit.
    """
    if scheduler is not None and workers is not None:
        raise InvalidParameterError(
            "give either a scheduler address or a number of local workers, not both"
        )
    if scheduler is None and workers is None:
        yield None
        return
    client = connect(scheduler, timeout=timeout) if scheduler else local_cluster(workers or 1)
    try:
        yield client
    finally:
        _close(client)
