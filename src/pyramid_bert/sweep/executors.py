"""Where trials run: ``local`` (this machine: in this process, or W worker processes) or ``ray``.

An executor takes (key, config) jobs, optionally with ``needs`` (key -> keys that must succeed first; see
:mod:`pyramid_bert.sweep.scheduling`), and yields each job's outcome dict (see
:func:`pyramid_bert.sweep.outcome.execute_trial`) as soon as it is done; ``on_start(key)`` is called as a
job starts. Only the driver, the caller of :meth:`Executor.run`, writes the results store.

A worker process that dies (the kernel's out-of-memory killer, a crash) does not end the sweep: the local
executor starts new worker processes and runs the trials that were in flight again, those that shared the
pool with the death one at a time, so that a trial that kills its worker every time is found and recorded as
failed after :data:`WORKER_DEATHS_PER_TRIAL` deaths instead of being run forever. A Ray task lost to the
cluster is recorded ``retryable``: a resumed sweep runs it again.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.outcome import STATUS_FAILED, STATUS_OK, STATUS_RETRYABLE, TrialFunction, execute_trial
from pyramid_bert.sweep.scheduling import Job, JobQueue

EXECUTORS = ("local", "ray")
RAY_INSTALL_HINT = 'the ray executor needs Ray: pip install "pyramid-bert[ray]"'

#: Deaths of its worker process, each while it was the only trial in flight, after which a trial is recorded failed.
WORKER_DEATHS_PER_TRIAL = 2

Needs = Mapping[str, Sequence[str]]
OnStart = Callable[[str], None]


class Executor(Protocol):
    """Runs trial jobs and yields their outcomes in completion order."""

    def run(
        self, jobs: Sequence[Job], trial_fn: TrialFunction, *, needs: Needs | None = None, on_start: OnStart | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers(threads_per_trial: int | None) -> int:
    """Cores / threads per trial (at least 1); one worker when threads are left to torch (all cores each)."""
    if not threads_per_trial:
        return 1
    return max(1, available_cores() // threads_per_trial)


class LocalExecutor:
    """Trials on this machine: ``workers=1`` in this process one after another, else ``workers`` processes.

    Worker processes are started with ``spawn`` (a fresh interpreter each, nothing inherited from the
    driver's threads or torch state), run one trial at a time, and get ``OMP_NUM_THREADS`` /
    ``MKL_NUM_THREADS`` = ``threads`` (when given) before anything imports torch. The trial function must
    be importable by the workers (a module-level function).
    """

    def __init__(self, workers: int = 1, *, threads: int | None = None) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"--workers must be an int >= 1, got {workers!r}")
        self.workers = workers
        self.threads = threads

    def run(
        self, jobs: Sequence[Job], trial_fn: TrialFunction, *, needs: Needs | None = None, on_start: OnStart | None = None
    ) -> Iterator[dict[str, Any]]:
        queue = JobQueue(jobs, needs)
        if self.workers == 1:
            yield from _run_serial(queue, trial_fn, on_start)
        else:
            yield from self._run_pool(queue, trial_fn, on_start)

    def _run_pool(self, queue: JobQueue, trial_fn: TrialFunction, on_start: OnStart | None) -> Iterator[dict[str, Any]]:
        pool = _WorkerPool(self.workers, self.threads, trial_fn, on_start)
        try:
            while queue or pool.in_flight:
                pool.fill(queue)
                if not pool.in_flight:
                    break  # everything left waits on jobs that are not here: nothing can run
                for outcome in pool.wait_for_outcomes(queue):
                    yield outcome
                    yield from _finish(queue, outcome)
        finally:
            pool.shutdown()

    def close(self) -> None:
        return None


class _WorkerPool:
    """The worker processes of one :meth:`LocalExecutor.run`, started again when one of them dies.

    The trials in flight at a death are handed out again. Which trial killed the worker is not known when
    several were in flight, so each of those runs alone next time (``alone``); a death while a trial is the
    only one in flight counts against it, and at :data:`WORKER_DEATHS_PER_TRIAL` it is recorded as failed.
    """

    def __init__(self, workers: int, threads: int | None, trial_fn: TrialFunction, on_start: OnStart | None) -> None:
        self.workers, self.threads, self.trial_fn, self.on_start = workers, threads, trial_fn, on_start
        self.in_flight: dict[concurrent.futures.Future, Job] = {}
        self.alone: set[str] = set()
        self.deaths: dict[str, int] = {}
        self._executor = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        """A pool whose workers have all started and each run a no-op.

        Left to start its workers on demand, the pool wakes its watching thread before it adds the new worker,
        so the death of a worker started last could go unnoticed (its trial would never end) until some other
        job ends; with every worker started first, every death is seen at once.
        """
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(self.threads, os.getpid()),
        )  # fmt: skip
        started = [pool.submit(os.getpid) for _ in range(self.workers)]
        concurrent.futures.wait(started)
        errors = [future.exception() for future in started if future.exception() is not None]
        if errors:
            pool.shutdown(wait=True, cancel_futures=True)
            raise RuntimeError(f"the local executor's worker processes die as they start: {errors[0]}")
        return pool

    def fill(self, queue: JobQueue) -> None:
        """Hand ready jobs to free workers; a job that must run alone waits until nothing else runs."""
        while len(self.in_flight) < self.workers and not self.alone & self._running_keys():
            job = queue.pop_ready()
            if job is None:
                return
            if job[0] in self.alone and self.in_flight:
                queue.requeue(job)
                return
            if self.on_start is not None:
                self.on_start(job[0])
            try:
                future = self._executor.submit(execute_trial, self.trial_fn, *job)
            except concurrent.futures.process.BrokenProcessPool:  # a worker died while none of ours ran
                queue.requeue(job)
                self._restart()
                continue
            self.in_flight[future] = job

    def wait_for_outcomes(self, queue: JobQueue) -> list[dict[str, Any]]:
        """Wait for at least one job to end; its outcome, or after a worker's death the outcomes of the jobs
        that finished before it and of those that died too often (the others are back in ``queue``)."""
        done, _ = concurrent.futures.wait(self.in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
        if any(isinstance(future.exception(), concurrent.futures.process.BrokenProcessPool) for future in done):
            concurrent.futures.wait(self.in_flight)  # a broken pool fails every job it holds at once
            done = set(self.in_flight)
        outcomes, lost = [], []
        for future in done:
            job = self.in_flight.pop(future)
            error = future.exception()
            if isinstance(error, concurrent.futures.process.BrokenProcessPool):
                lost.append(job)
            else:  # the trial's outcome, or an error of the pool's own (its result could not be sent back)
                outcomes.append(_lost_outcome(job[0], error, STATUS_FAILED) if error else future.result())
        if lost:
            outcomes += self._after_death(lost, queue)
        return outcomes

    def _after_death(self, lost: list[Job], queue: JobQueue) -> list[dict[str, Any]]:
        """Requeue the jobs that a worker's death took down, or fail the one that died too often on its own."""
        self._restart()
        if len(lost) > 1:
            self.alone.update(key for key, _ in lost)
            for job in reversed(lost):
                queue.requeue(job)
            return []
        ((key, config),) = lost
        self.alone.add(key)
        self.deaths[key] = self.deaths.get(key, 0) + 1
        if self.deaths[key] < WORKER_DEATHS_PER_TRIAL:
            queue.requeue((key, config))
            return []
        return [_lost_outcome(key, RuntimeError(
            f"its worker process died {self.deaths[key]} times while it ran (killed by the system, e.g. "
            "for lack of memory, or crashed); recorded as failed instead of running it again"
        ), STATUS_FAILED)]  # fmt: skip

    def _running_keys(self) -> set[str]:
        return {key for key, _ in self.in_flight.values()}

    def _restart(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = self._start()

    def shutdown(self) -> None:
        """Cancel what has not started and stop the workers, running trials included: an interrupted driver
        (Ctrl-C, an exception) must not wait for them, and ``--resume`` runs them again."""
        for future in self.in_flight:
            future.cancel()
        if self.in_flight:
            _terminate_workers(self._executor)
        self._executor.shutdown(wait=True, cancel_futures=True)


def _terminate_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """SIGTERM to every worker process of ``pool``. ``shutdown(wait=False)`` alone leaves them running their
    trials, and the interpreter's exit then joins them: the driver would hang until each trial ends."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((pool._processes or {}).values()):  # the pool's own table of its processes (3.8-3.13)
        if process.is_alive():
            process.terminate()


def _finish(queue: JobQueue, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """Tell ``queue`` how a job ended; the outcomes of the jobs that can now never run."""
    status = outcome["status"]
    return queue.finish(outcome["key"], ok=status == STATUS_OK, retryable=status == STATUS_RETRYABLE)


def _run_serial(queue: JobQueue, trial_fn: TrialFunction, on_start: OnStart | None) -> Iterator[dict[str, Any]]:
    while (job := queue.pop_ready()) is not None:
        key, config = job
        if on_start is not None:
            on_start(key)
        outcome = execute_trial(trial_fn, key, config)
        yield outcome
        yield from _finish(queue, outcome)


def _init_worker(threads: int | None, driver_pid: int | None = None) -> None:
    """In each worker process, before any trial: thread counts for OpenMP / MKL (and so for torch), and on Linux
    a request to be terminated when the driver dies (however it dies: a killed driver must not leave workers
    training into run folders that a resumed sweep then finds locked)."""
    if threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)
    _exit_with_driver(driver_pid)


def _exit_with_driver(driver_pid: int | None) -> None:
    """Linux: ``prctl(PR_SET_PDEATHSIG, SIGTERM)``; if the driver is already gone, exit now. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if driver_pid is not None and os.getppid() != driver_pid:
        os._exit(1)


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

    def run(
        self, jobs: Sequence[Job], trial_fn: TrialFunction, *, needs: Needs | None = None, on_start: OnStart | None = None
    ) -> Iterator[dict[str, Any]]:
        ray = self._ray
        remote_trial = ray.remote(execute_trial).options(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)
        queue = JobQueue(jobs, needs)
        limit = self.max_in_flight or len(jobs) or 1
        in_flight: dict[Any, str] = {}
        try:
            while queue or in_flight:
                while len(in_flight) < limit and (job := queue.pop_ready()) is not None:
                    key, config = job
                    if on_start is not None:
                        on_start(key)
                    in_flight[remote_trial.remote(trial_fn, key, config)] = key
                if not in_flight:
                    break
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    key = in_flight.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayTaskError as error:  # raised by the trial's own process
                        outcome = _lost_outcome(key, error, STATUS_FAILED)
                    except ray.exceptions.RayError as error:  # a dead worker or node, a lost object: not the trial
                        outcome = _lost_outcome(key, error, STATUS_RETRYABLE)
                    yield outcome
                    yield from _finish(queue, outcome)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError that says how to install it."""
    try:
        import ray  # optional dependency (extra "ray"): only the Ray executor needs it
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
    name: str,
    *,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    workers: int | None = None,
    threads: int | None = None,
) -> LocalExecutor | RayExecutor:
    """The executor called ``name`` (one of :data:`EXECUTORS`); ``workers`` / ``threads``: local only
    (``workers=None``: :func:`default_workers`)."""
    if name == "local":
        if address is not None:
            raise ConfigError("--address applies to --executor ray only")
        return LocalExecutor(default_workers(threads) if workers is None else workers, threads=threads)
    if name == "ray":
        if workers is not None:
            raise ConfigError("--workers applies to --executor local only (Ray places trials by --cpus-per-trial)")
        return RayExecutor(address, num_cpus=cpus_per_trial, num_gpus=gpus_per_trial)
    raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}; got {name!r}")


def _lost_outcome(key: str, error: BaseException, status: str) -> dict[str, Any]:
    """The outcome of a job whose run ended outside the trial function (its worker, the pool, Ray)."""
    return {
        "key": key,
        "status": status,
        "result": {},
        "error": f"{type(error).__name__}: {error}",
        "versions": {},
        "host": None,
        "started_at": None,
        "finished_at": None,
        "wall_seconds": None,
    }
