"""Where trials run: ``local`` (this process, one after another) or ``ray`` (one Ray task per trial).

An executor takes (key, config) jobs and yields each job's outcome dict (see
:func:`pyramid_bert.sweep.outcome.execute_trial`) as soon as it is done. Only the driver, the caller of
:meth:`Executor.run`, writes the results store.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.outcome import TrialFunction, execute_trial

EXECUTORS = ("local", "ray")
RAY_INSTALL_HINT = 'the ray executor needs Ray: pip install "pyramid-bert[ray]"'

Job = tuple[str, dict[str, Any]]


class Executor(Protocol):
    """Runs trial jobs and yields their outcomes in completion order."""

    def run(self, jobs: Sequence[Job], trial_fn: TrialFunction) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Trials in this process, one after another."""

    def run(self, jobs: Sequence[Job], trial_fn: TrialFunction) -> Iterator[dict[str, Any]]:
        for key, config in jobs:
            yield execute_trial(trial_fn, key, config)

    def close(self) -> None:
        return None


class RayExecutor:
    """Each trial a Ray task asking for ``num_cpus`` CPUs and ``num_gpus`` GPUs.

    ``address``: None starts (or reuses) a Ray instance on this machine; ``"auto"`` joins the cluster this
    machine belongs to; ``"HOST:PORT"`` joins the cluster whose head is there. The trial function must be
    importable on the workers (a module-level function of an installed package).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        max_in_flight: int | None = None,
    ) -> None:
        if num_cpus <= 0:
            raise ConfigError(f"cpus per trial must be > 0, got {num_cpus}")
        if num_gpus < 0:
            raise ConfigError(f"gpus per trial must be >= 0, got {num_gpus}")
        self._ray = import_ray()
        self._started_here = False
        if not self._ray.is_initialized():
            self._connect(address)
            self._started_here = True
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_in_flight = max_in_flight

    def _connect(self, address: str | None) -> None:
        ray = self._ray
        if address not in (None, "auto", "local"):
            check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as error:
            where = "a local Ray instance" if address is None else f"the Ray cluster at {address!r}"
            raise ConfigError(
                f"could not reach {where}: {str(error).rstrip('.')}. For --address give 'auto' (a cluster started on this "
                "machine with `ray start --head`) or the head's HOST:PORT, or leave it out to start Ray locally"
            ) from None

    def run(self, jobs: Sequence[Job], trial_fn: TrialFunction) -> Iterator[dict[str, Any]]:
        ray = self._ray
        remote_trial = ray.remote(execute_trial).options(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)
        waiting = list(jobs)
        limit = self.max_in_flight or len(waiting) or 1
        in_flight: dict[Any, str] = {}
        try:
            while waiting or in_flight:
                while waiting and len(in_flight) < limit:
                    key, config = waiting.pop(0)
                    in_flight[remote_trial.remote(trial_fn, key, config)] = key
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    key = in_flight.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as error:
                        yield _lost_outcome(key, error)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_INSTALL_HINT) from None
    return ray


def check_reachable(address: str, *, timeout: float = 5.0) -> None:
    """Fail fast with a clear message when nothing listens at a Ray ``HOST:PORT`` (``ray://`` allowed).

    ``ray.init`` itself would retry for minutes against an address where no cluster runs.
    """
    target = address.removeprefix("ray://")
    host, _, port_text = target.rpartition(":")
    if not host or not port_text.isdigit():
        raise ConfigError(f"--address must be 'auto' or HOST:PORT (e.g. 10.0.0.5:6379), got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), timeout=timeout):
            pass
    except OSError as error:
        raise ConfigError(
            f"no Ray cluster reachable at {address!r} ({error}); start one there with `ray start --head "
            f"--port {port_text}` or check the address"
        ) from None


def make_executor(
    name: str, *, address: str | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0
) -> LocalExecutor | RayExecutor:
    """The executor called ``name`` (one of :data:`EXECUTORS`)."""
    if name == "local":
        if address is not None:
            raise ConfigError("--address applies to --executor ray only")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, num_cpus=cpus_per_trial, num_gpus=gpus_per_trial)
    raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}; got {name!r}")


def _lost_outcome(key: str, error: BaseException) -> dict[str, Any]:
    return {
        "key": key,
        "status": "failed",
        "result": {},
        "error": f"{type(error).__name__}: {error}",
        "versions": {},
        "host": None,
        "started_at": None,
        "finished_at": None,
        "wall_seconds": None,
    }
