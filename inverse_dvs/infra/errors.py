"""User-facing errors: each carries one paragraph that names the file or key and the fix."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

# The exit codes of every command (run_all.sh, each stage, preflight, chain), defined here once; README → Exit codes
# is the same table, and tests/test_exit_codes.py holds run_all.sh and the README to it.
EXIT_OK = 0  # every item is complete: computed, found up to date, or finished by another run it waited for
EXIT_ITEMS_FAILED = 1  # some items failed for another reason than their input (a crash, out of memory)
EXIT_USER_ERROR = 2  # config, preflight, weights or a full disk stopped the run, or each failed item had bad input
EXIT_INTERRUPTED = 130  # Ctrl-C: finished items are kept; rerun to resume
EXIT_CODES = {EXIT_OK: "done", EXIT_ITEMS_FAILED: "some items failed", EXIT_USER_ERROR: "bad input or preflight",
              EXIT_INTERRUPTED: "interrupted"}


class UserError(Exception):
    """Bad input or setup the user can fix. Stages exit with code 2 and print only the message."""


class ConfigError(UserError):
    """An invalid `config.yml` value (unknown key, wrong type, out of range, missing path)."""


class UpstreamBusy(UserError):
    """An input is being computed right now by another process (its folder is locked); not a failure: the stage waits
    for that folder's lock and tries the item again."""

    def __init__(self, message: str, folder=None):
        super().__init__(message)
        self.folder = folder


class DiskFull(UserError):
    """The disk a stage writes to is full: the stage stops (no later item could be written either), keeping every
    finished item; half-written files are removed as always."""


_FULL = {errno.ENOSPC, errno.EDQUOT}


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**27 else f"{n / 2**20:.0f} MiB"


def disk_full(exc: BaseException, folder: str | Path) -> DiskFull | None:
    """The DiskFull for `exc` when it (or what caused it: writers such as torch or ffmpeg wrap the OSError) says the
    disk or the quota is full, else None. Names the folder written (the file's own when the error gives it), the
    free space left on its disk and the fix."""
    seen, e = set(), exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if (isinstance(e, OSError) and e.errno in _FULL) or "No space left on device" in str(e):
            break
        e = e.__cause__ or e.__context__
    else:
        return None
    where = Path(getattr(e, "filename", None) or folder).absolute()
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
        space = f"{_gib(usage.free)} free of {_gib(usage.total)}"
    except OSError:
        space = "free space unknown"
    quota = " (or your quota on it)" if isinstance(e, OSError) and e.errno == errno.EDQUOT else ""
    return DiskFull(f"the disk{quota} is full: writing to '{where}' failed "
                    f"({space}). Finished items are kept and nothing half-written is: free space there (e.g. delete "
                    "the work folders of runs you no longer need) or point run.work_dir at a larger disk, then rerun "
                    "the same command to resume.")


class UnresolvedAuto(UserError):
    """A camera key is `auto`, and the video model's config files, which decide it, are not on this machine (or the
    config was not resolved: `config.resolve_config` reads them)."""

    def __init__(self, key: str, model: str, resolved: bool = True):
        if not resolved:
            super().__init__(f"config key '{key}' is auto, which the video model's own config files decide, and this "
                             "config has not read them: pass it through `inverse_dvs.config.resolve_config` first "
                             "(every entry point of the package does).")
            return
        super().__init__(f"config key '{key}' is auto, which the video model's own config files decide, and those of "
                         f"inversion.model '{model}' are not on this machine. Fetch the model with `python -m "
                         "inverse_dvs.weights download --config <your config>`, or set camera.height, camera.width, "
                         "camera.num_frames and camera.window explicitly (README → Backbones).")


class WeightsMissingError(UserError):
    """Model weights are not on disk; stages never download on their own."""


def weights_hint(model: str) -> str:
    return (
        f"Model weights for '{model}' are not on this machine, and stages never download on their own. "
        "Fetch them once with `python -m inverse_dvs.weights download` (or `bash setup_env.sh --weights`), "
        "or point the config at a local folder. For an offline demo with tiny random weights run "
        "`bash run_all.sh configs/tiny.yml`."
    )
