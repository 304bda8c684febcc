import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import facewire
from facewire.atomic import atomic_write
from facewire.errors import InputError, OutputError

SRC = str(Path(facewire.__file__).resolve().parents[1])


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_text_write_replaces_destination(tmp_path):
    dest = tmp_path / "out.txt"
    with atomic_write(dest) as f:
        f.write("hello\n")
        f.writelines(["a\n", "b\n"])
        assert not dest.exists()  # nothing visible until the block ends
    assert dest.read_text() == "hello\na\nb\n"
    assert leftovers(tmp_path) == []


def test_binary_write(tmp_path):
    dest = tmp_path / "out.bin"
    with atomic_write(str(dest), "wb") as f:
        f.write(b"\x00\xff")
    assert dest.read_bytes() == b"\x00\xff"


def test_temp_file_is_hidden_sibling(tmp_path):
    dest = tmp_path / "take.csv"
    with atomic_write(dest) as f:
        tmp = Path(f.name)
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".take.csv.") and tmp.name.endswith(".part")
    assert not tmp.exists()


def test_new_file_gets_umask_permissions_and_existing_keeps_its_own(tmp_path):
    dest = tmp_path / "out.txt"
    with atomic_write(dest) as f:
        f.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~mask
    dest.chmod(0o640)
    with atomic_write(dest) as f:
        f.write("y")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640


def test_exception_mid_write_leaves_nothing(tmp_path):
    dest = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"), atomic_write(dest) as f:
        f.write("partial")
        raise RuntimeError("boom")
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_keyboard_interrupt_leaves_nothing(tmp_path):
    dest = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt), atomic_write(dest) as f:
        f.write("partial")
        raise KeyboardInterrupt
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_failed_rewrite_keeps_existing_destination(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old contents\n")
    with pytest.raises(ValueError), atomic_write(dest) as f:
        f.write("new contents that must never appear\n" * 1000)
        raise ValueError("bad frame")
    assert dest.read_text() == "old contents\n"
    assert leftovers(tmp_path) == []


def test_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with atomic_write(link) as f:
        f.write("new")
    assert link.is_symlink()
    assert real.read_text() == "new"


def test_missing_directory_is_output_error_naming_path(tmp_path):
    dest = tmp_path / "no" / "such" / "dir" / "out.txt"
    with pytest.raises(OutputError, match="out.txt"), atomic_write(dest) as f:
        f.write("x")


def test_directory_destination_is_output_error(tmp_path):
    with pytest.raises(OutputError, match="directory"), atomic_write(tmp_path) as f:
        f.write("x")


def test_write_error_is_output_error_and_keeps_old_destination(tmp_path):
    # A real write failure: the file size limit makes write() fail with EFBIG in a child process.
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {SRC!r})
        from facewire.atomic import atomic_write
        from facewire.errors import OutputError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        try:
            with atomic_write({str(dest)!r}) as f:
                for _ in range(100):
                    f.write("x" * 100)
                    f.flush()
        except OutputError as exc:
            print("OutputError:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OutputError: cannot write ") and "out.txt" in done.stdout
    assert dest.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_commit_failure_is_output_error_and_keeps_old_destination(tmp_path, monkeypatch):
    import errno

    from facewire import atomic

    def broken_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    dest = tmp_path / "out.txt"
    dest.write_text("old")
    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OutputError, match="out.txt"), atomic_write(dest) as f:
        f.write("new")
    assert dest.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_bad_mode_is_input_error(tmp_path):
    with pytest.raises(InputError, match="mode"), atomic_write(tmp_path / "x", "a"):
        pass


def test_dash_means_stdout(capsys):
    with atomic_write("-") as f:
        f.write("to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"


def test_sigkill_mid_write_leaves_old_destination(tmp_path):
    dest = tmp_path / "take.jsonl"
    dest.write_text("old line\n")
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {SRC!r})
        from facewire.atomic import atomic_write
        with atomic_write({str(dest)!r}) as f:
            for i in range(100000):
                f.write("new line %d\\n" % i)
                f.flush()
                if i == 10:
                    print("writing", flush=True)
                time.sleep(0.01)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        # the temporary file really holds new data when the process dies
        parts = leftovers(tmp_path)
        assert len(parts) == 1 and (tmp_path / parts[0]).read_text().startswith("new line 0\n")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert dest.read_text() == "old line\n"


def test_write_private_is_0600_from_the_start_and_never_overwrites_by_accident(tmp_path) -> None:
    import os
    import stat

    from facewire.atomic import write_private
    from facewire.errors import OutputError

    old = os.umask(0)  # even with a permissive umask
    try:
        key = tmp_path / "k.pem"
        write_private(key, b"secret-1")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_bytes() == b"secret-1"
        with pytest.raises(OutputError, match=r"already exists \(use --force\)"):
            write_private(key, b"secret-2", exists_hint="use --force")
        write_private(key, b"secret-2", replace=True)
        assert key.read_bytes() == b"secret-2" and stat.S_IMODE(key.stat().st_mode) == 0o600
        assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem"]  # no temporary sibling left
    finally:
        os.umask(old)
