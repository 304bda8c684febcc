"""Runs batch items: `run_item` does one item anywhere (this process or a Ray worker) and writes its
outputs atomically; `run_batch` plans a whole run against the manifest and executes it on Ray
(in-process by default, or an existing cluster) or serially, with retries, a progress bar and a
clean stop on Ctrl-C.

Failure model:

* A worker process that dies (SIGKILL, OOM) loses only its task: Ray runs it again, up to the
  item's ``retries`` times. A task's outputs appear only by rename, so a dead worker leaves at most
  a hidden ``.NAME.*.part`` file, which the next attempt at that item (or the end of the run)
  removes.
* An item that raises is tried again up to ``retries`` times, except for `InputError` (the input
  itself is bad: a corrupt file fails the same way every time), which fails at once. Either way the
  error lands in the manifest and the summary and the batch goes on.
* Ctrl-C (SIGINT) stops submitting, lets the items in flight finish, records them and returns;
  a second Ctrl-C abandons those too (they stay pending). A re-run does only what is left.

Outputs depend only on the item (input bytes, parameters, its id-derived seed), never on the
worker, the order or the time, so serial, 1-worker and N-worker runs give the same bytes; a signed
render's C2PA manifest store is the exception (see `facewire.batch.trust`).

Ray started here, or joined at 127.0.0.1, listens on 127.0.0.1 only (`facewire.batch.loopback`).
"""

from __future__ import annotations

import collections
import contextlib
import glob
import hashlib
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Self

from ..errors import FacewireError, InputError, OutputError
from ..frame import FaceFrame
from .jobs import Item, JobSpec, expand
from .loopback import loopback_ray, wants_loopback
from .manifest import Manifest
from .trust import BatchTrust, SealSpec, sealed_params

__all__ = [
    "ItemResult",
    "RunOptions",
    "Summary",
    "clean_partials",
    "item_frames",
    "run_batch",
    "run_item",
    "sha256_file",
]

MAX_CONSECUTIVE_FAILURES = 30  # as in `facewire track`: a video survives bad frames, not a broken decoder
OBJECT_STORE_MB = 100  # results are small; the object store only carries items and summaries
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ItemResult:
    """What one attempt at an item gave: its outputs (paths, sizes) or its one-line error."""

    kind: str
    id: str
    ok: bool
    outputs: tuple[str, ...] = ()
    output_sizes: tuple[int, ...] = ()
    error: str | None = None
    retryable: bool = False
    compute_s: float = 0.0
    worker: str = ""
    warnings: tuple[str, ...] = ()
    frames: tuple[int, ...] = ()  # render items: the frames each output holds


@dataclass(frozen=True)
class RunOptions:
    """How to run: ``workers`` (Ray: CPUs of the in-process cluster, or most items at once on an
    existing one; default all CPUs), ``address`` (``auto`` or ``ray://HOST:PORT``; None starts
    Ray in-process), ``serial`` (no Ray: one item after another here), ``force`` (redo items that
    are done and unchanged), ``progress`` (a tqdm bar on stderr). Render items go through the trust
    home ``trust_home`` (default: ``$FACEWIRE_HOME``, else the user data folder): audited, and signed
    when it has keys (``passphrase`` unlocks them; ``sign=False``: unsigned without a warning)."""

    workers: int | None = None
    address: str | None = None
    serial: bool = False
    force: bool = False
    progress: bool = True
    object_store_mb: int = OBJECT_STORE_MB
    trust_home: str | None = None
    passphrase: bytes | None = field(default=None, repr=False)
    sign: bool = True

    def __post_init__(self) -> None:
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise InputError(f"--workers: expected a positive whole number, got {self.workers!r}")
        if self.serial and self.address:
            raise InputError("--serial runs here without Ray; it cannot go with --address")


@dataclass(frozen=True)
class Summary:
    """What a run did. ``ran``: items attempted this run; ``skipped``: done and unchanged;
    ``remaining``: not attempted because the run was interrupted."""

    total: int
    skipped: int
    done: int
    failed: int
    remaining: int
    interrupted: bool
    elapsed_s: float
    workers: int
    retried: int = 0
    failures: tuple[tuple[str, str], ...] = ()
    warned: tuple[tuple[str, str], ...] = ()
    mode: str = "ray"
    renders: str = ""  # how render items were sealed and where they were logged (empty: no render items)

    @property
    def ran(self) -> int:
        return self.done + self.failed

    @property
    def items_per_s(self) -> float:
        return self.ran / self.elapsed_s if self.elapsed_s > 0 else 0.0


# -- one item ---------------------------------------------------------------------------------
def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def clean_partials(paths: Iterable[str]) -> int:
    """Remove the hidden ``.NAME.*.part`` files `facewire.atomic` leaves when a writer is killed
    outright; returns how many went."""
    removed = 0
    for path in paths:
        folder, name = os.path.split(os.path.realpath(path))
        for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.part")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
                removed += 1
    return removed


def _lipsync_frames(item: Item) -> Iterator[FaceFrame]:
    from ..audio.lipsync import LipSync

    opts = item.opts
    stages: list = []
    if opts["alive"]:
        from ..expression.blink import BlinkStage
        from ..expression.gaze import GazeStage

        # Seeds from the item id (never time or worker): the same item blinks the same everywhere.
        stages = [GazeStage(mode="synthetic", state="speaking", seed=item.seed),
                  BlinkStage(mode="synthetic", state="speaking", seed=item.seed ^ 1)]
    for frame in LipSync(fps=opts["fps"], text=item.text, source=item.id).frames_from_file(item.input):
        for stage in stages:
            frame = stage.process(frame)
        yield frame


def _track_stages(opts: dict) -> Callable[[], list]:
    from ..expression.calibration import CalibrationStage
    from ..expression.filters import OneEuroStage

    def make() -> list:
        stages: list = []
        if opts["calibrate"] == "auto":
            stages.append(CalibrationStage(mode="auto"))
        if opts["filter"]:
            stages.append(OneEuroStage())
        return stages

    return make


def _track_frames(item: Item) -> Iterator[FaceFrame]:
    from ..media import open_input
    from ..vision.video import TrackerOptions, VideoTracker

    opts = item.opts
    options = TrackerOptions(max_faces=opts["max_faces"], solver=opts["solver"], landmarks=True)
    tracker = VideoTracker(opts["model"], options, stages=_track_stages(opts))  # a fresh one: no state leaks
    failures = 0
    with open_input(item.input, fps=opts["fps"]) as source:
        for image in source:
            try:
                frames = tracker.process(image, source=item.id)
                failures = 0
            except Exception as exc:  # one bad frame must not end a long video
                failures += 1
                if failures > MAX_CONSECUTIVE_FAILURES:
                    raise
                warnings.warn(f"frame {image.index} skipped ({type(exc).__name__}: {exc})", stacklevel=2)
                frames = [FaceFrame.untracked(image.t_ns, seq=image.index, source=item.id)]
            yield from frames


def item_frames(item: Item) -> Iterator[FaceFrame]:
    """The frames a lipsync or track item animates (what its take outputs hold)."""
    if item.kind == "lipsync":
        return _lipsync_frames(item)
    if item.kind == "track":
        return _track_frames(item)
    raise InputError(f"item {item.id}: a {item.kind} item makes no frames")


def _write_takes(item: Item) -> None:
    from ..takes import open_writer

    fps = item.opts.get("fps")
    # One stack for every format: all outputs of an item are committed together, or none.
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(open_writer(out.path, out.format, fps=fps)) for out in item.outputs]
        for frame in item_frames(item):
            for writer in writers:
                writer.send(frame)


def _render(item: Item, seal: SealSpec | None) -> tuple[int, ...]:
    from ..plugins import module_exists

    if not module_exists("facewire.render.video"):
        raise InputError("render items need facewire.render.video, which this installation lacks")
    from ..render.commands import load_avatar, parse_size
    from ..render.video import render_take
    from ..takes import read_take

    opts = item.opts
    avatar = load_avatar(opts["avatar"])
    background = opts["background"] if opts["background"] is not None else "default"
    info = {"take": item.input, "take_sha256": seal.take_sha256} if seal is not None else None
    frames = []
    for out in item.outputs:
        # A fresh seal per output: each file carries its own manifest, all pointing at the item's record.
        done = render_take(read_take(item.input), avatar, out.path, size=parse_size(opts["size"]), fps=opts["fps"],
                           background=background, progress=False, seal=seal.seal() if seal is not None else None,
                           info=info)
        frames.append(done.frames)
    return tuple(frames)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return text if isinstance(exc, FacewireError) else f"{type(exc).__name__}: {text}"


def _make_folder(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        blocker = folder
        while blocker and not os.path.lexists(blocker):
            blocker = os.path.dirname(blocker)
        if blocker and not os.path.isdir(blocker):
            raise OutputError(f"cannot write into {folder}: {blocker} is a file, not a folder") from exc
        raise OutputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc


def run_item(item: Item, seal: SealSpec | None = None) -> ItemResult:
    """Do one item here: remove stale partial outputs, write every output atomically, and report.
    Never raises for the item's own trouble; the result says what went wrong and whether trying
    again could help. ``seal``: how a render item's outputs are watermarked and signed (`BatchTrust`)."""
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    paths = tuple(out.path for out in item.outputs)
    caught: list[str] = []
    frames: tuple[int, ...] = ()
    try:
        clean_partials(paths)
        for path in paths:
            _make_folder(os.path.dirname(path) or ".")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            if item.kind == "render":
                frames = _render(item, seal)
            else:
                _write_takes(item)
        caught = list(dict.fromkeys(" ".join(str(w.message).split()) for w in seen))
        sizes = tuple(os.stat(p).st_size for p in paths)
    except Exception as exc:  # noqa: BLE001 - any failure of one item is recorded, never fatal to the batch
        clean_partials(paths)
        return ItemResult(item.kind, item.id, False, error=_one_line(exc), retryable=not isinstance(exc, InputError),
                          compute_s=time.perf_counter() - t0, worker=worker, warnings=tuple(caught))
    return ItemResult(item.kind, item.id, True, paths, sizes, compute_s=time.perf_counter() - t0, worker=worker,
                      warnings=tuple(caught), frames=frames)


# -- planning ---------------------------------------------------------------------------------
@dataclass
class _Plan:
    todo: list[Item] = field(default_factory=list)
    skipped: int = 0
    failed: list[tuple[Item, str]] = field(default_factory=list)


def _plan(items: Sequence[Item], manifests: dict[int, Manifest], force: bool) -> _Plan:
    """Which items to run: new, changed (input or parameters), not done, outputs missing, or all
    with ``force``. Unreadable inputs fail here, each with its error."""
    plan = _Plan()
    for item in items:
        manifest = manifests[item.job]
        record = manifest.get(item.kind, item.id)
        try:
            st = os.stat(item.input)
            if record is not None and record.input_sha256 and record.input_size == st.st_size \
                    and record.input_mtime_ns == st.st_mtime_ns:
                digest = record.input_sha256  # unchanged size and mtime: trust the stored hash
            else:
                digest = sha256_file(item.input)
        except OSError as exc:
            error = f"cannot read {item.input}: {exc.strerror or exc}"
            manifest.queue(item.kind, item.id, item.input, item.params_sha256, input_sha256=None, input_size=None,
                           input_mtime_ns=None)
            manifest.failed(item.kind, item.id, error, attempts=0)
            plan.failed.append((item, error))
            continue
        unchanged = (record is not None and record.status == "done" and record.input_sha256 == digest
                     and record.params_sha256 == item.params_sha256
                     and record.outputs == tuple(o.path for o in item.outputs) and record.outputs_present())
        if unchanged and not force:
            if record.input_mtime_ns != st.st_mtime_ns:  # touched, same bytes: hash it once, not every run
                manifest.touch_input(item.kind, item.id, st.st_size, st.st_mtime_ns)
            plan.skipped += 1
            continue
        manifest.queue(item.kind, item.id, item.input, item.params_sha256, input_sha256=digest,
                       input_size=st.st_size, input_mtime_ns=st.st_mtime_ns)
        plan.todo.append(item)
    return plan


# -- executing --------------------------------------------------------------------------------
class _Stop:
    """First SIGINT: stop submitting (items in flight finish). Second: `KeyboardInterrupt`."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.event = threading.Event()
        self._say = say
        self._previous = None

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum, frame) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        self._say("facewire: stopping: no new items; finishing those in flight (Ctrl-C again to abandon them)")

    @property
    def stopping(self) -> bool:
        return self.event.is_set()


class _Books:
    """The driver's bookkeeping: the manifest, retries, the bar and the tallies."""

    def __init__(self, manifests: dict[int, Manifest], bar, trust: BatchTrust | None = None) -> None:
        self.manifests, self.bar, self.trust = manifests, bar, trust
        self.attempts: dict[tuple[str, str], int] = collections.Counter()
        self.done = self.retried = 0
        self.failures: list[tuple[str, str]] = []
        self.warned: list[tuple[str, str]] = []

    def start(self, item: Item) -> SealSpec | None:
        """Record an attempt; a render item's seal (its audit session begins on the first attempt)."""
        key = (item.kind, item.id)
        self.attempts[key] += 1
        self.manifests[item.job].started(item.kind, item.id, self.attempts[key])
        if item.kind == "render" and self.trust is not None:
            return self.trust.begin(item)
        return None

    def abandon(self, item: Item) -> None:
        if self.trust is not None:
            self.trust.end(item, False, error="interrupted")
        m = self.manifests[item.job]
        record = m.get(item.kind, item.id)
        m.queue(item.kind, item.id, item.input, item.params_sha256, input_sha256=record.input_sha256 if record else None,
                input_size=record.input_size if record else None,
                input_mtime_ns=record.input_mtime_ns if record else None)

    def finish(self, item: Item, result: ItemResult, stopping: bool) -> bool:
        """Record a result; True when the item should be tried again."""
        attempts = self.attempts[(item.kind, item.id)]
        m = self.manifests[item.job]
        if result.warnings:
            self.warned.append((item.id, result.warnings[0]))
        if result.ok:
            if self.trust is not None:
                self.trust.end(item, True, outputs=result.outputs, frames=result.frames)
            m.done(item.kind, item.id, result.outputs, result.output_sizes, attempts=attempts,
                   compute_s=result.compute_s, worker=result.worker)
            self.done += 1
        elif stopping:
            self.abandon(item)  # interrupted (its worker may have died with the Ctrl-C): redo next time
            return False
        elif result.retryable and attempts <= item.retries:
            self.retried += 1
            return True
        else:
            if self.trust is not None:
                self.trust.end(item, False, error=result.error)
            m.failed(item.kind, item.id, result.error or "failed", attempts=attempts, compute_s=result.compute_s,
                     worker=result.worker or None)
            self.failures.append((item.id, result.error or "failed"))
        if self.bar is not None:
            self.bar.update(1)
            if self.failures:
                self.bar.set_postfix_str(f"failed {len(self.failures)}", refresh=False)
        return False


def _execute_serial(todo: Sequence[Item], books: _Books, stop: _Stop) -> list[Item]:
    queue = collections.deque(todo)
    while queue and not stop.stopping:
        item = queue.popleft()
        seal = books.start(item)
        if books.finish(item, run_item(item, seal), stop.stopping):
            queue.appendleft(item)
    return list(queue)


def _ray_connect(options: RunOptions) -> tuple[int, bool, bool]:
    """Start or join Ray; returns (CPUs available to this run, whether to shut it down after,
    whether the cluster is this run's own)."""
    import ray

    if ray.is_initialized():  # a caller's session (a benchmark, a notebook): theirs to end
        return max(1, int(ray.cluster_resources().get("CPU", 1))), False, False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if options.address:
        try:
            ray.init(address=options.address, **quiet)
        except Exception as exc:
            hint = " (ray:// needs the client extra: pip install 'ray[client]')" \
                if options.address.startswith("ray://") and isinstance(exc, ImportError) else ""
            raise InputError(f"--address {options.address}: cannot join a Ray cluster there "
                             f"({_one_line(exc)}){hint}") from exc
        return max(1, int(ray.cluster_resources().get("CPU", 1))), True, False
    cpus = options.workers or os.cpu_count() or 1
    ray.init(num_cpus=cpus, object_store_memory=options.object_store_mb * 1024 * 1024,
             _node_ip_address="127.0.0.1", **quiet)  # with `loopback_ray`: nothing listens beyond this machine
    return cpus, True, True


def _ray_remote(item: Item, seal: SealSpec | None) -> ItemResult:
    return run_item(item, seal)


def _execute_ray(todo: Sequence[Item], books: _Books, stop: _Stop, cap: int) -> list[Item]:
    import ray
    from ray.exceptions import RayError

    task = ray.remote(_ray_remote)
    queue = collections.deque(todo)
    inflight: dict = {}
    try:
        while True:
            while queue and len(inflight) < cap and not stop.stopping:
                item = queue.popleft()
                seal = books.start(item)
                # max_retries: Ray runs the task again when its worker process dies.
                ref = task.options(num_cpus=1, max_retries=item.retries, retry_exceptions=False,
                                   name=f"facewire-batch:{item.kind}").remote(item, seal)
                inflight[ref] = item
            if not inflight:
                break
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.25)
            if ready:
                ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=0)
            for ref in ready:
                item = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except RayError as exc:  # the worker died on every try, or Ray itself gave up
                    result = ItemResult(item.kind, item.id, False, retryable=False,
                                        error=f"worker lost {item.retries + 1} times ({type(exc).__name__}): "
                                              f"{_one_line(exc)[:300]}")
                if books.finish(item, result, stop.stopping):
                    queue.appendleft(item)
    except KeyboardInterrupt:
        for ref, item in inflight.items():
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
            books.abandon(item)
        raise
    return list(queue)


def _expand_all(jobs: Sequence[JobSpec]) -> list[Item]:
    items: list[Item] = []
    for index, job in enumerate(jobs):
        items.extend(expand(job, index))
    return items


def run_batch(jobs: Sequence[JobSpec], options: RunOptions = RunOptions(), *,
              say: Callable[[str], None] | None = None) -> Summary:
    """Run every item of ``jobs`` that is not done and unchanged; returns the `Summary`.

    Raises only for the run as a whole (bad job, no inputs, a manifest that cannot be written,
    Ray unreachable); each item's trouble is recorded and reported instead.
    """
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    items = _expand_all(jobs)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        trust = None
        if any(item.kind == "render" for item in items):
            # Every render is audited (and signed when the home has keys), as with `facewire render`.
            trust = stack.enter_context(BatchTrust(options.trust_home, passphrase=options.passphrase,
                                                   sign=options.sign, warn=say))
            items = [replace(item, params_sha256=sealed_params(item.params_sha256, trust.signer))
                     if item.kind == "render" else item for item in items]
        by_path: dict[str, Manifest] = {}
        manifests: dict[int, Manifest] = {}
        for index, job in enumerate(jobs):
            path = os.path.abspath(job.manifest_path)
            if path not in by_path:
                by_path[path] = stack.enter_context(Manifest(path, lock=True))
                by_path[path].requeue_running()  # a killed driver's items in flight
            manifests[index] = by_path[path]
        plan = _plan(items, manifests, options.force)
        if trust is not None:
            for spec in dict.fromkeys(item.opts["avatar"] for item in plan.todo if item.kind == "render"):
                trust.avatar_name(spec)  # a bad avatar fails the run before any item
        stop = stack.enter_context(_Stop(say))
        bar = None
        if options.progress and plan.todo:
            from tqdm import tqdm

            bar = stack.enter_context(tqdm(total=len(plan.todo), unit="item", desc="batch", file=sys.stderr,
                                           dynamic_ncols=True, smoothing=0.1))
        books = _Books(manifests, bar, trust)
        for item, error in plan.failed:
            books.failures.append((item.id, error))
        workers = 1
        if plan.todo and options.serial:
            left = _execute_serial(plan.todo, books, stop)
        elif plan.todo:
            # Our own cluster, or one at 127.0.0.1: every Ray server listens on loopback only.
            stack.enter_context(loopback_ray(wants_loopback(options.address)))
            cpus, started, own = _ray_connect(options)
            workers = min(options.workers, cpus) if options.workers else cpus
            if started:
                stack.callback(_ray_shutdown)
            # On a cluster of our own every CPU is ours: keep one item queued per worker so none
            # waits for the driver. On a shared one, --workers N means at most N items at once.
            cap = workers if options.workers and not own else 2 * workers
            left = _execute_ray(plan.todo, books, stop, cap)
        else:
            left = []
        for item in left:
            books.abandon(item)
        clean_partials(out.path for item in plan.todo for out in item.outputs)
    return Summary(total=len(items), skipped=plan.skipped, done=books.done, failed=len(books.failures),
                   remaining=len(left), interrupted=stop.stopping, elapsed_s=time.perf_counter() - t0,
                   workers=workers, retried=books.retried, failures=tuple(books.failures),
                   warned=tuple(books.warned), mode="serial" if options.serial else "ray",
                   renders=_renders(trust) if trust is not None else "")


def _renders(trust: BatchTrust) -> str:
    how = "signed (C2PA + watermark)" if trust.signed else "unsigned"
    return f"renders {how}; {trust.sessions} render sessions in the audit log of {trust.home.root}"


def _ray_shutdown() -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.shutdown()
