"""Batch job specs on real files (no Ray, no models): YAML and JSON job files and their one-line
errors, glob expansion with ``**``, outputs that mirror the inputs, colliding outputs refused, and
``--text-from`` transcripts (header, quoting, missing columns, rows for files that are not there)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facewire.batch.jobs import JobSpec, expand, item_seed, load_jobs, read_transcripts
from facewire.errors import InputError

LIPSYNC_KEYS = "kind, inputs, out, formats, retries, manifest, text_from, fps, alive"


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


# -- job files ----------------------------------------------------------------------------------
def test_an_unknown_key_in_a_yaml_job_is_named_with_the_keys_that_exist(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("kind: lipsync\ninputs: 'voice/*.wav'\nout: takes\nfsp: 30\n")
    with pytest.raises(InputError) as err:
        load_jobs(job)
    assert str(err.value) == f"job file {job}: unknown key 'fsp' for a lipsync job; expected {LIPSYNC_KEYS}"


def test_unknown_keys_in_a_json_job_list_name_the_job_and_each_key(tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"jobs": [
        {"kind": "lipsync", "inputs": ["a/*.wav"], "out": "x"},
        {"kind": "track", "inputs": "v/*.mp4", "out": "y", "maxfaces": 2, "solvr": "auto"}]}))
    with pytest.raises(InputError) as err:
        load_jobs(job)
    assert str(err.value) == (f"job file {job}: jobs[1]: unknown keys 'maxfaces', 'solvr' for a track job; expected "
                              "kind, inputs, out, formats, retries, manifest, fps, max_faces, solver, model, "
                              "calibrate, filter")


@pytest.mark.parametrize(("text", "message"), [
    ("jobs:\n  - kind: render\n    inputs: a\n    out: b\nworkers: 4\n",
     "unknown top-level key 'workers'; a file of several jobs holds only 'jobs'"),
    ("kind: dub\ninputs: a\nout: b\n", "kind: expected one of lipsync, track, render, got 'dub'"),
    ("kind: track\nout: b\n", "missing key 'inputs'"),
    ("kind: lipsync\ninputs: a\nout: b\nformats: [jsonl, mp3]\n", "take format 'mp3': expected a name"),
    ("kind: render\ninputs: a\nout: b\ntext_from: t.csv\n", "unknown key 'text_from' for a render job"),
    ("kind: lipsync\ninputs: a\nout: b\nretries: -1\n", "job retries: expected a whole number 0..100, got -1"),
    ("kind: lipsync\ninputs: a\nout: b\nfps: fast\n", "lipsync fps: expected a number 1..1000, got 'fast'"),
    ("kind: [lipsync\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping of keys such as kind, inputs, out, got list"),
])
def test_bad_job_files_fail_with_one_line_saying_what_was_expected(tmp_path, text, message):
    job = tmp_path / "job.yaml"
    job.write_text(text)
    with pytest.raises(InputError) as err:
        load_jobs(job)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_json_job_file_reads_like_yaml_and_dashes_in_keys_are_accepted(tmp_path):
    as_json = tmp_path / "job.json"
    as_json.write_text(json.dumps({"kind": "track", "input": "clips/*.mp4", "out": "tracks", "format": "jsonl,csv",
                                   "max-faces": 2}))
    as_yaml = tmp_path / "job.yml"
    as_yaml.write_text("kind: track\ninputs: clips/*.mp4\nout: tracks\nformats: [jsonl, csv]\nmax_faces: 2\n")
    (a,), (b,) = load_jobs(as_json), load_jobs(as_yaml)
    assert a == b
    assert a.inputs == ("clips/*.mp4",) and a.formats == ("jsonl", "csv") and a.opts["max_faces"] == 2
    assert a.root == str(tmp_path)  # relative paths are the job file's, not the caller's
    with pytest.raises(InputError, match=r"job\.json: not valid JSON"):
        as_json.write_text("{kind: track")
        load_jobs(as_json)
    with pytest.raises(InputError, match=r"job file .*nope\.yaml: cannot read it \(No such file or directory\)"):
        load_jobs(tmp_path / "nope.yaml")


# -- expansion ----------------------------------------------------------------------------------
def test_double_star_recurses_and_outputs_mirror_the_inputs_below_the_glob(tmp_path):
    _touch(tmp_path, "voice/en/a.wav", "voice/en/deep/er/b.wav", "voice/c.wav", "voice/en/notes.txt",
           "elsewhere/d.wav")
    job = JobSpec(kind="lipsync", inputs=("voice/**/*.wav",), out="takes", formats=("llf.csv", "a2f.json"),
                  root=str(tmp_path))
    items = expand(job)
    assert [i.id for i in items] == ["c.wav", "en/a.wav", "en/deep/er/b.wav"]
    deep = items[2]
    assert deep.input == str(tmp_path / "voice/en/deep/er/b.wav")
    assert [(o.format, o.path) for o in deep.outputs] == [
        ("llf", str(tmp_path / "takes/en/deep/er/b.llf.csv")), ("a2f", str(tmp_path / "takes/en/deep/er/b.a2f.json"))]
    assert deep.seed == item_seed("en/deep/er/b.wav") and items[0].seed != items[1].seed
    assert len({i.params_sha256 for i in items}) == 1  # no transcripts: the same parameters for all
    flat = expand(JobSpec(kind="lipsync", inputs=("voice/*.wav",), out="takes", root=str(tmp_path)))
    assert [i.id for i in flat] == ["c.wav"]  # one star stays in its folder


def test_two_inputs_that_would_write_the_same_outputs_are_refused(tmp_path):
    _touch(tmp_path, "voice/line.wav", "voice/line.mp3")
    with pytest.raises(InputError) as err:
        expand(JobSpec(kind="lipsync", inputs=("voice/*",), out="takes", root=str(tmp_path)))
    assert str(err.value) == ("inputs line.mp3 and line.wav would write the same outputs (line.*); "
                              "rename one or run them as separate jobs")
    _touch(tmp_path, "a/x.wav", "b/x.wav")
    with pytest.raises(InputError, match=r"a/x\.wav and .*b/x\.wav have the same path 'x\.wav' below their globs' "
                                         r"folders; their outputs would collide"):
        expand(JobSpec(kind="lipsync", inputs=("a/*.wav", "b/*.wav"), out="takes", root=str(tmp_path)))


def test_globs_that_match_nothing_and_missing_files_are_named(tmp_path):
    with pytest.raises(InputError, match=r"inputs 'voice/\*\*/\*\.wav': no files match \(looked in .*voice\)"):
        expand(JobSpec(kind="lipsync", inputs=("voice/**/*.wav",), out="o", root=str(tmp_path)))
    with pytest.raises(InputError, match=r"^input voice/a\.wav: no such file$"):
        expand(JobSpec(kind="lipsync", inputs=("voice/a.wav",), out="o", root=str(tmp_path)))


# -- transcripts --------------------------------------------------------------------------------
def test_transcripts_match_by_id_stem_or_name_with_quoting_and_an_optional_header(tmp_path):
    _touch(tmp_path, "voice/g0/one.wav", "voice/g1/two.wav", "voice/g1/three.wav")
    (tmp_path / "t.csv").write_text('file,text\n'
                                    'g0/one.wav,"hello, world"\n'
                                    'g1/two,"she said ""hi"" twice"\n'
                                    'three.wav,  spaced out  \n'
                                    '\n')
    job = JobSpec(kind="lipsync", inputs=("voice/**/*.wav",), out="o", text_from="t.csv", root=str(tmp_path))
    items = {i.id: i for i in expand(job)}
    assert {k: i.text for k, i in items.items()} == {"g0/one.wav": "hello, world", "g1/two.wav": 'she said "hi" twice',
                                                     "g1/three.wav": "spaced out"}
    assert len({i.params_sha256 for i in items.values()}) == 3  # each transcript shapes its own item
    (tmp_path / "n.csv").write_text("one,hello\n")  # no header
    assert read_transcripts(str(tmp_path / "n.csv"), ["g0/one.wav"]) == {"g0/one.wav": "hello"}


def test_a_row_without_a_text_column_is_an_error_naming_the_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("file,text\na.wav,hello\nb.wav\n")
    with pytest.raises(InputError) as err:
        read_transcripts(str(path), ["a.wav", "b.wav"])
    assert str(err.value) == f"--text-from {path}: row 2: expected file,text, got 'b.wav'"
    with pytest.raises(InputError, match=r"--text-from .*gone\.csv: cannot read it \(No such file or directory\)"):
        read_transcripts(str(tmp_path / "gone.csv"), ["a.wav"])


def test_rows_for_files_that_are_not_inputs_are_ignored_and_inputs_without_a_row_are_warned(tmp_path):
    _touch(tmp_path, "voice/a.wav", "voice/b.wav", "voice/c.wav")
    (tmp_path / "t.csv").write_text("file,text\na.wav,alpha\nzzz.wav,not among the inputs\n")
    job = JobSpec(kind="lipsync", inputs=("voice/*.wav",), out="o", text_from="t.csv", root=str(tmp_path))
    with pytest.warns(UserWarning, match=r"--text-from t\.csv: no row for 2 of 3 inputs \(e\.g\. b\.wav\); they are "
                                         r"lip-synced without a transcript"):
        items = expand(job)
    assert [i.text for i in items] == ["alpha", None, None]


def test_a_bare_name_shared_by_two_inputs_is_ambiguous(tmp_path):
    _touch(tmp_path, "voice/en/hi.wav", "voice/fr/hi.wav")
    (tmp_path / "t.csv").write_text("hi.wav,hello\n")
    job = JobSpec(kind="lipsync", inputs=("voice/**/*.wav",), out="o", text_from="t.csv", root=str(tmp_path))
    with pytest.raises(InputError, match=r"row 1: 'hi\.wav' matches 2 inputs \(en/hi\.wav, fr/hi\.wav…\); write the "
                                         r"path below the glob's folder"):
        expand(job)
