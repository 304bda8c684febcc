"""Batch job specs and their items: what to run (from a YAML/JSON job file or from flags), expanded
from globs into one `Item` per input file, each with its outputs, transcript and parameters hash.

A job file holds one job, or several under ``jobs:`` (run in one go). Keys of a job:

=============  =========================================================================
``kind``       ``lipsync`` (speech → take), ``track`` (video → take), ``render`` (take → video)
``inputs``     a glob or a list of globs (``**`` recurses); relative to the job file's folder
``out``        the output folder; an item's outputs mirror its path below the glob's base
``formats``    take formats by name or suffix (``llf.csv``, ``a2f.json``, ``jsonl``, …); for
               ``render``: ``mp4``, ``mov``, ``mkv`` or ``png``
``retries``    how many times a failed item is tried again (default 2)
``manifest``   the SQLite manifest (default ``OUT/.facewire-batch.sqlite``)
lipsync        ``text_from`` (CSV ``file,text``), ``fps`` (60), ``alive`` (seeded blinks and gaze)
track          ``fps``, ``max_faces`` (1), ``solver`` (auto), ``model``, ``calibrate`` (auto|off),
               ``filter`` (true)
render         ``avatar`` (default), ``size`` (512x512), ``fps`` (30), ``background``
=============  =========================================================================

Unknown keys are errors (a typo must not silently change what runs). An item's parameters hash
covers everything that shapes its outputs (kind, options, formats, its transcript, facewire's
version), never the paths or the machine, so a re-run can tell "done and unchanged" from "redo".
Seeds of procedural layers come from the item id (`item_seed`), never from time or worker.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError

__all__ = [
    "KINDS",
    "Item",
    "JobSpec",
    "Output",
    "expand",
    "item_seed",
    "load_jobs",
    "output_suffix",
    "read_transcripts",
    "with_overrides",
]

KINDS = ("lipsync", "track", "render")
SCHEMA = 1  # bump when the same parameters would give different bytes
DEFAULT_RETRIES = 2
MANIFEST_NAME = ".facewire-batch.sqlite"
RENDER_SUFFIXES = {"mp4": ".mp4", "mov": ".mov", "mkv": ".mkv", "png": ".png"}

_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "lipsync": {"fps": 60.0, "alive": False},
    "track": {"fps": None, "max_faces": 1, "solver": "auto", "model": None, "calibrate": "auto", "filter": True},
    "render": {"avatar": "default", "size": "512x512", "fps": 30.0, "background": None},
}
_COMMON_KEYS = ("kind", "inputs", "out", "formats", "retries", "manifest")
_KIND_KEYS = {"lipsync": ("text_from", *_DEFAULTS["lipsync"]), "track": tuple(_DEFAULTS["track"]),
              "render": tuple(_DEFAULTS["render"])}
_DEFAULT_FORMATS = {"lipsync": ("jsonl",), "track": ("jsonl",), "render": ("mp4",)}
_TOP_KEYS = ("jobs",)


@dataclass(frozen=True)
class Output:
    """One file an item writes: its format (a take format's name, or a render suffix) and path."""

    format: str
    path: str


@dataclass(frozen=True)
class JobSpec:
    """One job: a kind, its input globs, where and in which formats to write, and its options."""

    kind: str
    inputs: tuple[str, ...]
    out: str
    formats: tuple[str, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    text_from: str | None = None
    retries: int = DEFAULT_RETRIES
    manifest: str | None = None
    root: str = "."  # relative inputs, out, text_from and manifest are taken from here

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"job kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        inputs = (self.inputs,) if isinstance(self.inputs, str) else tuple(self.inputs)
        if not inputs or not all(isinstance(p, str) and p.strip() for p in inputs):
            raise InputError(f"job inputs: expected one or more globs such as 'voice/**/*.wav', got {self.inputs!r}")
        object.__setattr__(self, "inputs", inputs)
        if not isinstance(self.out, str) or not self.out.strip():
            raise InputError(f"job out: expected an output folder, got {self.out!r}")
        formats = _split_formats(self.formats) or _DEFAULT_FORMATS[self.kind]
        for token in formats:
            output_suffix(self.kind, token)  # fails now, before any work
        object.__setattr__(self, "formats", formats)
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or not 0 <= self.retries <= 100:
            raise InputError(f"job retries: expected a whole number 0..100, got {self.retries!r}")
        if self.text_from is not None and self.kind != "lipsync":
            raise InputError(f"job text_from: only lipsync jobs take transcripts, this one is {self.kind!r}")
        object.__setattr__(self, "options", tuple(sorted(_check_options(self.kind, dict(self.options)).items())))

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)

    def path(self, relative: str) -> str:
        """``relative`` taken from the job's root, made absolute: workers run in other folders."""
        return os.path.abspath(os.path.join(self.root, os.path.expanduser(relative)))

    @property
    def manifest_path(self) -> str:
        return self.path(self.manifest) if self.manifest else os.path.join(self.path(self.out), MANIFEST_NAME)

    @classmethod
    def from_mapping(cls, data: Any, root: str = ".", where: str = "job") -> JobSpec:
        """A job from a parsed job file entry; unknown keys name themselves and the known ones."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected a mapping of keys such as kind, inputs, out, got {type(data).__name__}")
        data = {str(k).replace("-", "_"): v for k, v in data.items()}
        data = {("inputs" if k == "input" else "formats" if k == "format" else k): v for k, v in data.items()}
        kind = data.get("kind")
        if kind not in KINDS:
            raise InputError(f"{where}: kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        known = (*_COMMON_KEYS, *_KIND_KEYS[kind])
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InputError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                             f"for a {kind} job; expected {', '.join(known)}")
        for key in ("inputs", "out"):
            if key not in data:
                raise InputError(f"{where}: missing key {key!r}")
        options = {k: v for k, v in data.items() if k in _DEFAULTS[kind]}
        return cls(kind=kind, inputs=data["inputs"], out=data["out"], formats=data.get("formats") or (),
                   options=tuple(options.items()), text_from=data.get("text_from"),
                   retries=data.get("retries", DEFAULT_RETRIES), manifest=data.get("manifest"), root=root)


def _split_formats(formats: Any) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = formats.split(",")
    if not isinstance(formats, (list, tuple)):
        raise InputError(f"job formats: expected a list such as [llf.csv, a2f.json], got {formats!r}")
    out = tuple(str(f).strip().lstrip(".").lower() for f in formats if str(f).strip())
    if len(set(out)) != len(out):
        raise InputError(f"job formats: each format once, got {', '.join(out)}")
    return out


def output_suffix(kind: str, token: str) -> tuple[str, str]:
    """(format name, file suffix) for a ``--format`` token: a take format's name (``jsonl``) or
    suffix (``llf.csv``); for render jobs a video/picture suffix."""
    if kind == "render":
        if token not in RENDER_SUFFIXES:
            raise InputError(f"render format: expected one of {', '.join(RENDER_SUFFIXES)}, got {token!r}")
        return token, RENDER_SUFFIXES[token]
    from ..takes import FORMAT_NAMES, FORMATS

    if token in FORMAT_NAMES:
        fmt = FORMAT_NAMES[token]
        return fmt.name, fmt.suffixes[0]
    if f".{token}" in FORMATS:
        return FORMATS[f".{token}"].name, f".{token}"
    raise InputError(f"take format {token!r}: expected a name ({', '.join(FORMAT_NAMES)}) "
                     f"or a suffix ({', '.join(s.lstrip('.') for s in FORMATS)})")


def _number(kind: str, key: str, value: Any, low: float, high: float, whole: bool = False) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    if ok and whole and value != int(value):
        ok = False
    if not ok:
        raise InputError(f"{kind} {key}: expected {'a whole number' if whole else 'a number'} {low:g}..{high:g}, "
                         f"got {value!r}")
    return int(value) if whole else float(value)


def _check_options(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    opts = {**_DEFAULTS[kind], **{k: v for k, v in given.items() if v is not None or k not in _DEFAULTS[kind]}}
    unknown = sorted(set(opts) - set(_DEFAULTS[kind]))
    if unknown:
        raise InputError(f"{kind} options: unknown {', '.join(unknown)}; expected {', '.join(_DEFAULTS[kind])}")
    if opts["fps"] is not None:
        opts["fps"] = _number(kind, "fps", opts["fps"], 1, 1000)
    if kind == "lipsync":
        if not isinstance(opts["alive"], bool):
            raise InputError(f"lipsync alive: expected true or false, got {opts['alive']!r}")
    elif kind == "track":
        opts["max_faces"] = _number(kind, "max_faces", opts["max_faces"], 1, 16, whole=True)
        if opts["solver"] not in ("auto", "facewire", "mediapipe"):
            raise InputError(f"track solver: expected auto, facewire or mediapipe, got {opts['solver']!r}")
        if opts["calibrate"] not in ("auto", "off"):
            raise InputError(f"track calibrate: expected auto or off, got {opts['calibrate']!r}")
        if not isinstance(opts["filter"], bool):
            raise InputError(f"track filter: expected true or false, got {opts['filter']!r}")
    return opts


# -- job files --------------------------------------------------------------------------------
def load_jobs(path: str | os.PathLike[str]) -> list[JobSpec]:
    """The jobs of a YAML or JSON job file (one job, or several under ``jobs:``)."""
    path = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"job file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from exc
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"job file {path}: not valid JSON ({exc})") from exc
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"job file {path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    root = os.path.dirname(os.path.abspath(path))
    if isinstance(data, Mapping) and "jobs" in data:
        extra = sorted(set(map(str, data)) - set(_TOP_KEYS))
        if extra:
            raise InputError(f"job file {path}: unknown top-level key{'s' if len(extra) > 1 else ''} "
                             f"{', '.join(map(repr, extra))}; a file of several jobs holds only 'jobs'")
        entries = data["jobs"]
        if not isinstance(entries, list) or not entries:
            raise InputError(f"job file {path}: jobs: expected a list of jobs, got {entries!r}")
        return [JobSpec.from_mapping(e, root, f"job file {path}: jobs[{i}]") for i, e in enumerate(entries)]
    return [JobSpec.from_mapping(data, root, f"job file {path}")]


# -- items ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One unit of work: an input file, the outputs it makes and everything that shapes them."""

    kind: str
    id: str  # the input's path below its glob's base, with '/' (stable across machines)
    input: str
    outputs: tuple[Output, ...]
    options: tuple[tuple[str, Any], ...] = ()
    text: str | None = None
    params_sha256: str = ""
    seed: int = 0
    retries: int = DEFAULT_RETRIES
    job: int = field(default=0, compare=False)  # which job of the run it came from

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)


def item_seed(item_id: str) -> int:
    """The seed of an item's procedural layers: from its id only, so any machine draws the same."""
    digest = hashlib.sha256(f"facewire-batch-seed\0{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # fits numpy's and Python's seeding


def params_sha256(kind: str, options: Mapping[str, Any], formats: Sequence[str], text: str | None) -> str:
    """SHA-256 of everything that shapes an item's output bytes, as canonical JSON."""
    doc = {"schema": SCHEMA, "facewire": __version__, "kind": kind, "options": dict(options),
           "formats": list(formats), "text": text}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


_MAGIC = set("*?[")


def _base_of(pattern: str) -> str:
    """The folder part of a glob before its first wildcard (a literal file: its folder)."""
    parts = Path(pattern).parts
    for i, part in enumerate(parts):
        if _MAGIC & set(part):
            return str(Path(*parts[:i])) if i else "."
    return str(Path(pattern).parent)


def _strip_suffix(item_id: str) -> str:
    head, name = item_id.rsplit("/", 1) if "/" in item_id else ("", item_id)
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return f"{head}/{stem}" if head else stem


def expand(job: JobSpec, job_index: int = 0) -> list[Item]:
    """Every input the job's globs match, as items sorted by id; `InputError` when a glob matches
    nothing or two inputs would write the same outputs."""
    found: dict[str, str] = {}
    for pattern in job.inputs:
        full = job.path(pattern)
        base = _base_of(full)
        matches = sorted(p for p in glob.glob(full, recursive=True) if not os.path.isdir(p))
        if not matches:
            if not (_MAGIC & set(pattern)):
                raise InputError(f"input {pattern}: no such file")
            raise InputError(f"inputs {pattern!r}: no files match (looked in {base})")
        for path in matches:
            item_id = Path(os.path.relpath(path, base)).as_posix()
            if item_id in found and os.path.realpath(found[item_id]) != os.path.realpath(path):
                raise InputError(f"inputs: {found[item_id]} and {path} have the same path {item_id!r} below their "
                                 "globs' folders; their outputs would collide")
            found[item_id] = path
    suffixes = [output_suffix(job.kind, token) for token in job.formats]
    texts = read_transcripts(job.path(job.text_from), list(found)) if job.text_from else {}
    untold = sorted(set(found) - set(texts)) if job.text_from else []
    if untold:  # a typo in the CSV must not pass unnoticed: these items are recognised, not aligned
        warnings.warn(f"--text-from {job.text_from}: no row for {len(untold)} of {len(found)} inputs "
                      f"(e.g. {untold[0]}); they are lip-synced without a transcript", stacklevel=2)
    opts = job.opts
    out_dir = job.path(job.out)
    items: list[Item] = []
    stems: dict[str, str] = {}
    for item_id in sorted(found):
        stem = _strip_suffix(item_id)
        if stem in stems:
            raise InputError(f"inputs {stems[stem]} and {item_id} would write the same outputs ({stem}.*); "
                             "rename one or run them as separate jobs")
        stems[stem] = item_id
        outputs = tuple(Output(name, os.path.join(out_dir, *f"{stem}{suffix}".split("/"))) for name, suffix in suffixes)
        text = texts.get(item_id)
        items.append(Item(kind=job.kind, id=item_id, input=found[item_id], outputs=outputs, options=job.options,
                          text=text, params_sha256=params_sha256(job.kind, opts, job.formats, text),
                          seed=item_seed(item_id), retries=job.retries, job=job_index))
    return items


def read_transcripts(path: str, item_ids: Sequence[str]) -> dict[str, str]:
    """item id → transcript, from a CSV of ``file,text`` rows (a header row is optional).

    A row's file may be the item id (``a/b.wav``), the id without its suffix, the file name or
    its stem; a row that matches no item, or a stem shared by several, is an error naming it.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"--text-from {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from exc
    if rows and rows[0][0].strip().lower() in ("file", "path", "id", "name", "audio") and len(rows[0]) >= 2 \
            and rows[0][1].strip().lower() in ("text", "transcript", "sentence"):
        rows = rows[1:]
    keys: dict[str, list[str]] = {}
    for item_id in item_ids:
        name = item_id.rsplit("/", 1)[-1]
        for key in {item_id, _strip_suffix(item_id), name, _strip_suffix(name)}:
            keys.setdefault(key, []).append(item_id)
    texts: dict[str, str] = {}
    for line, row in enumerate(rows, 1):
        if len(row) < 2 or not row[1].strip():
            raise InputError(f"--text-from {path}: row {line}: expected file,text, got {','.join(row)!r}")
        key = row[0].strip().replace("\\", "/")
        ids = keys.get(key)
        if ids is None:
            continue  # a transcript for a file this job does not include (a shared transcript list)
        if len(ids) > 1:
            raise InputError(f"--text-from {path}: row {line}: {key!r} matches {len(ids)} inputs "
                             f"({', '.join(ids[:3])}…); write the path below the glob's folder")
        texts[ids[0]] = row[1].strip()
    return texts


def with_overrides(job: JobSpec, **changes: Any) -> JobSpec:
    """The job with some fields replaced (flags over a job file), checked again."""
    return replace(job, **{k: v for k, v in changes.items() if v is not None})
