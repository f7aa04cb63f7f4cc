"""textrnn's small C++ kernels: compiled on first use with the system's `g++`, cached per user, loaded by ctypes.

Each kernel is one .cpp file beside the Python module that calls it (`models/lstm_kernel.cpp`,
`models/simple_rnn_kernel.cpp`, `training/adam_kernel.cpp`). `load` builds it once per source, flags, compiler
and CPU (`-march=native`) into `~/.cache/textrnn/kernels` (`TEXTRNN_KERNEL_CACHE` moves it), under a second, and
checks the library's ABI number against the caller's, so a library built from another version of the source is
never called with stale argument lists. Where a kernel cannot be had (no compiler, Windows, a failed build, or its
environment switch set to "0"), `load` returns None and the caller runs PyTorch's own operators instead; the
install stays one pure-Python pip command.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path

# -fno-math-errno: nothing reads errno, and a sqrtf that may set it is a branch the loops around it cannot vectorise
COMPILE = ["-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC", "-fopenmp", "-std=c++17"]
CACHE_ENV = "TEXTRNN_KERNEL_CACHE"
# a build of a kernel not loaded for this long is removed when another build of it is made (another version of
# textrnn, another CPU sharing the cache): an upgrade does not leave every old build behind for ever
STALE_AFTER_S = 30 * 24 * 3600

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    from platformdirs import user_cache_dir  # a core dependency; imported here, as it is only needed here

    return Path(os.environ.get(CACHE_ENV, user_cache_dir("textrnn"))) / "kernels"


Signatures = dict[str, tuple[list, type | None]]  # a function's name -> its ctypes argument types and result type


def load(source: Path, abi_symbol: str, abi: int, enabled_env: str, signatures: Signatures) -> ctypes.CDLL | None:
    """The library built from `source`, building it if this machine has not yet, with `signatures` set on its
    functions; None where it cannot be had.

    `abi_symbol` names the library's `int f(void)` that returns its ABI number, which must equal `abi`;
    `enabled_env` set to "0" turns the kernel off."""
    what = source.stem
    if os.environ.get(enabled_env, "1") == "0":
        return None
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None or platform.system() == "Windows":
        log.info("no C++ compiler found: %s is not built, PyTorch's own operators run instead", what)
        return None
    text = source.read_bytes()
    # one build per source, flags, compiler and CPU (-march=native): a cache shared by machines stays correct
    key = hashlib.sha256(text + " ".join([compiler, *COMPILE, platform.machine(), _cpu_model()]).encode())
    library = cache_dir() / f"{what}-{key.hexdigest()[:16]}.so"
    try:
        if not library.exists():
            library.parent.mkdir(parents=True, exist_ok=True)
            # built beside its final name and renamed: processes starting together never load a half-written file
            with tempfile.TemporaryDirectory(dir=library.parent) as tmp:
                built = Path(tmp) / library.name
                subprocess.run([compiler, *COMPILE, str(source), "-o", str(built)], check=True,
                               capture_output=True, timeout=120)
                os.replace(built, library)
            remove_stale_builds(library)
        else:
            mark_used(library)
        lib = ctypes.CDLL(str(library))
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        log.warning("could not build %s (%s%s): PyTorch's own operators run instead", what, error,
                    ": " + detail.decode(errors="replace")[-500:] if detail else "")
        return None
    if getattr(lib, abi_symbol)() != abi:  # a source changed under a running process: its argument lists are stale
        log.warning("%s's source does not match this textrnn: PyTorch's own operators run instead", what)
        return None
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    return lib


def mark_used(library: Path) -> None:
    """Set the build's time to now: what `remove_stale_builds` goes by."""
    try:
        os.utime(library)
    except OSError:
        pass  # a read-only cache shared with us: loading it is all we need


def remove_stale_builds(library: Path) -> None:
    """Remove the builds of `library`'s kernel, other than it, that no process has loaded for STALE_AFTER_S."""
    what = library.name.rsplit("-", 1)[0]
    now = time.time()
    for other in library.parent.glob(f"{what}-*.so"):
        try:
            if other != library and now - other.stat().st_mtime > STALE_AFTER_S:
                other.unlink()  # a process that has it loaded keeps its mapping
        except OSError:
            pass  # another process removed it first, or the cache is not ours to clean


@cache
def _cpu_model() -> str:
    """The first CPU's model and instruction-set flags (what -march=native builds for)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
    except OSError:
        return platform.processor()
    return "\n".join(line for line in lines if line.startswith(("model name", "flags")))
