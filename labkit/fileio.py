"""Atomic file writes and whole-folder replacement: a reader never sees half a file or a folder
that mixes two generations, a crash never leaves one, and the kit never writes into, or
deletes, a folder it did not make.

Files get the modes the user's umask gives (0644 under umask 022), as any other program's do;
an existing file keeps its mode. Temporary files and staging folders are named after the
process that made them (``.NAME.labkit-HOST-PID-...``): after a kill, the next write to the
same place removes the ones whose process is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

from labkit.errors import LabkitError

T = TypeVar("T")
_UMASK_LOCK = threading.Lock()
#: What a kit-made folder's manifest says in ``made_by`` (followed by the command that made it).
MADE_BY = "labkit"


def umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore (the only portable way to read it)
        old = os.umask(0o022)
        os.umask(old)
    return old


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"


def _tag() -> str:
    """This process, as it appears in the names of its temporary files and folders."""
    return f"{_host()}-{os.getpid()}"


def _short(name: str) -> str:
    return name[:80]  # room for the tag and random part within a file name's 255 bytes


def _gone(host: str, pid: str) -> bool:
    """Whether the process that made a leftover is known to be gone (only checkable on this host)."""
    if host != _host() or os.name != "posix":  # (on Windows, os.kill(pid, 0) would send a Ctrl-C)
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False
    return False


def _leftovers(folder: Path, name: str, kind: str) -> list[Path]:
    """Temporary files (kind "tmp") or staging folders ("new", "old") of ``name`` in ``folder``
    left by processes that are gone."""
    pattern = re.compile(
        re.escape(f".{_short(name)}.labkit-") + (r"([A-Za-z0-9]+)-(\d+)-[^/]*\.tmp(\.[A-Za-z0-9]+)?$" if kind == "tmp"
                                                  else rf"{kind}-([A-Za-z0-9]+)-(\d+)-[^/]*$"))
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    found = []
    for p in entries:
        m = pattern.match(p.name)
        if m and _gone(m.group(1), m.group(2)):
            found.append(p)
    return found


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in _leftovers(path.parent, path.name, "tmp"):
        stale.unlink(missing_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)  # an existing file keeps its mode
    except OSError:
        mode = 0o666 & ~umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{_short(path.name)}.labkit-{_tag()}-", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # mkstemp makes 0600: give the file what the user's umask gives
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_npz(path: str | os.PathLike, **arrays) -> Path:
    """Write numpy arrays as an uncompressed .npz (``np.load`` reads it), atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_atomic(path, buf.getvalue())


def save_keras_model(model, path: str | os.PathLike) -> Path:
    """``model.save(path)`` (.keras or .h5) through a temporary file in the same folder, then a rename."""
    import warnings

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in _leftovers(path.parent, path.name, "tmp"):
        shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink(missing_ok=True)
    # the suffix last: Keras picks the format from it
    fd, tmp = tempfile.mkstemp(prefix=f".{_short(path.name)}.labkit-{_tag()}-", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # Keras refuses to overwrite some formats; let it create the file
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "HDF5 ... legacy": .h5 is what the user asked for
            model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):  # some formats are folders
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# ---- kit-made folders ---------------------------------------------------------------------


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entries(folder: Path) -> dict[str, Path]:
    """Every file, link and empty folder below ``folder``, by its path relative to it (links not followed)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        for d in list(dirs):
            if (base / d).is_symlink() or not any((base / d).iterdir()):
                out[(base / d).relative_to(folder).as_posix()] = base / d
        for f in files:
            out[(base / f).relative_to(folder).as_posix()] = base / f
    return out


def folder_manifest(folder: str | os.PathLike) -> tuple[Path, dict] | None:
    """The manifest that marks ``folder`` as kit-made, with its path, or None.

    A kit-made folder holds one JSON file at its top whose ``made_by`` starts with "labkit" and
    whose ``sha256`` lists every other file the kit wrote there."""
    folder = Path(folder)
    for p in sorted(folder.glob("*.json")):
        try:
            if p.is_symlink() or p.stat().st_size > 1 << 20:
                continue
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and str(d.get("made_by", "")).startswith(MADE_BY) and isinstance(d.get("sha256"), dict):
            return p, d
    return None


def folder_changes(folder: str | os.PathLike, manifest: tuple[Path, dict]) -> list[str]:
    """How ``folder`` differs from what its manifest says the kit wrote: "notes.txt added", ..."""
    folder = Path(folder)
    path, d = manifest
    written = d["sha256"]
    have = _entries(folder)
    have.pop(path.name, None)
    changes = [f"{n} added" for n in sorted(have) if n not in written]
    changes += [f"{n} removed" for n in sorted(written) if n not in have]
    changes += [f"{n} changed" for n in sorted(written)
                if n in have and (have[n].is_symlink() or not have[n].is_file() or sha256(have[n]) != written[n])]
    return changes


def _legacy_kit_folder(folder: Path) -> bool:
    """A folder an earlier labkit wrote (before manifests said so): NAME.json beside NAME.tflite,
    and nothing but the files that manifest lists and the sketch's .ino."""
    for p in folder.glob("*.json"):
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not (isinstance(d, dict) and isinstance(d.get("files"), list) and "arena_bytes" in d
                and (folder / f"{p.stem}.tflite").is_file()):
            continue
        known = {str(f) for f in d["files"]} | {p.name, f"{p.stem}.tflite", f"{folder.name}.ino"}
        return set(_entries(folder)) <= known
    return False


def check_replaceable(target: str | os.PathLike, force: bool = False, what: str = "output folder") -> None:
    """Raise a LabkitError unless ``target`` may be (re)written whole: missing, empty, or made by the
    kit and unchanged since (changed too with ``force``). Never for a folder the kit did not make."""
    target = Path(target)
    if target.is_symlink() and not target.exists():
        raise LabkitError(f"the {what} {target} is a broken link: remove it or choose another folder")
    if target.exists() and not target.is_dir():
        raise LabkitError(f"the {what} {target} is a file, not a folder: give a folder path (it is created if missing)")
    if not target.is_dir() or not any(target.iterdir()):
        return
    manifest = folder_manifest(target)
    if manifest is None:
        if _legacy_kit_folder(target):
            return
        raise LabkitError(
            f"the {what} {target} is not empty and was not made by labkit (it holds no labkit manifest); "
            "nothing was changed. Choose a new or empty folder: labkit never writes into or deletes a folder it did "
            "not make (--force replaces only folders labkit made)."
        )
    if force:
        return
    changes = folder_changes(target, manifest)
    if changes:
        shown = ", ".join(changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
        raise LabkitError(
            f"the {what} {target} was made by labkit but has changed since: {shown}; nothing was changed. "
            "Use --force (force=True) to replace it, losing those changes, or choose another folder."
        )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_leftovers(target: Path) -> None:
    """Remove the staging folders of ``target`` that killed runs left; if a kill came between the two
    renames of a swap (no atomic exchange on this system), put the old folder back first."""
    parent = target.parent
    olds = _leftovers(parent, target.name, "old")
    if olds and not target.exists() and not target.is_symlink():
        os.rename(olds.pop(), target)
    for p in olds + _leftovers(parent, target.name, "new"):
        shutil.rmtree(p, ignore_errors=True)


def build_folder(
    target: str | os.PathLike,
    build: Callable[[Path], tuple[T, str, dict]],
    made_by: str,
    force: bool = False,
    what: str = "output folder",
) -> T:
    """Build a folder aside and move it into place whole, replacing ``target`` only if the kit made it.

    ``build(staging)`` writes the files into the (empty) staging folder and returns ``(result,
    manifest_name, manifest)``; the manifest is written last, at the folder's top, with ``made_by``
    and the sha256 of every file. A kill at any moment leaves the old folder or the new one at
    ``target``, never a mix; the staging folder it leaves is removed by the next call."""
    target = Path(target).resolve()
    if not target.name:
        raise LabkitError(f"{target} cannot be an output folder: give a folder below it")
    check_replaceable(target, force, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{_short(target.name)}.labkit-new-{_tag()}-", dir=target.parent))
    except PermissionError:
        raise LabkitError(f"the {what} {target} is built beside it, but {target.parent} is not writable: choose an "
                          "output folder inside a folder you can write to") from None
    try:
        # mkdtemp makes 0700: the umask's mode, or the mode of the (empty or kit-made) folder it replaces
        os.chmod(staging, stat.S_IMODE(target.stat().st_mode) if target.is_dir() else 0o777 & ~umask())
        result, manifest_name, manifest = build(staging)
        hashes = {n: sha256(p) for n, p in sorted(_entries(staging).items()) if p.is_file() and n != manifest_name}
        write_atomic(staging / manifest_name, json.dumps({**manifest, "made_by": made_by, "sha256": hashes}, indent=2) + "\n")
        _fsync_dir(staging)
        check_replaceable(target, force, what)  # again: the user may have written there meanwhile
        if not target.exists():
            os.rename(staging, target)  # fails on a folder that appeared meanwhile and is not empty
        elif _exchange(staging, target):
            shutil.rmtree(staging)  # it holds the old folder now
        else:
            _swap_in_two_steps(staging, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _swap_in_two_steps(staging: Path, target: Path) -> None:
    """Where paths cannot be exchanged in one step: the old folder aside, the new one in, the old
    one removed. A kill between the two renames leaves the old folder aside, and the next
    ``clean_leftovers`` puts it back."""
    aside = Path(tempfile.mkdtemp(prefix=f".{_short(target.name)}.labkit-old-{_tag()}-", dir=target.parent))
    os.rename(target, aside)  # replaces the empty folder just made
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside)
