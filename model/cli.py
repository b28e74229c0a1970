"""What the model CLIs (``generate``, ``encode``, ``evaluate``) share at their boundary: reading
UTF-8 line files, checking options before any work, strict JSON, and exit codes.

Only :func:`main` turns errors into exit codes, each reported as one ``error: ...`` line on
stderr: 2 for a user error (a missing or malformed file, a bad option value, a corrupt
checkpoint: ``ValueError`` and the "no such file"-like ``OSError``s), 1 for a runtime failure
(another ``OSError`` such as a full disk, a ``RuntimeError`` such as running out of memory).
Anything else is a bug and keeps its traceback. Mistyped options are argparse's: exit 2 naming
them.
"""

from __future__ import annotations

import codecs
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError)
RUNTIME_ERRORS = (OSError, RuntimeError, MemoryError)
MAX_MESSAGE = 300
"""Characters of an error message shown (a loader's message can list hundreds of keys)."""


def one_line(error: BaseException) -> str:
    """``error``'s first message line, at most ``MAX_MESSAGE`` characters."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    text = lines[0]
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def main(run: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Console entry: ``run(argv)``, then 0; a user error → one line and 2, a runtime failure →
    one line and 1."""
    try:
        run(argv)
    except USER_ERRORS as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except RUNTIME_ERRORS as err:
        print(f"error: {type(err).__name__}: {one_line(err)}", file=sys.stderr)
        return 1
    return 0


def text_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 file without their ``\\n`` / ``\\r\\n`` ends, nor a leading byte order
    mark (a BOM was kept as part of the first sentence).

    Invalid UTF-8 raises ``ValueError`` naming the file, line and byte: nothing is replaced.
    """
    data = Path(path).read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ValueError(f"{path}:{line}: invalid UTF-8 (byte {data[err.start]:#04x} at byte "
                         f"{column} of the line)") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def check_output(path: str | Path, option: str) -> Path:
    """``path`` as a ``Path`` if a file can be written there: its folder exists and it is not a
    folder itself; otherwise ``ValueError`` naming ``option``. Checked before any work."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a directory, not a file")
    if not path.parent.is_dir():
        raise ValueError(f"{option} {path}: folder {path.parent} does not exist")
    return path


def check_device(name: str) -> torch.device:
    """``torch.device(name)``; ``ValueError`` naming ``--device`` when it is not a device or
    names CUDA on a machine without it (torch is imported here: :mod:`model.sts` needs none)."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available")
    return device


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (an undefined correlation) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def json_text(value: Any, indent: int | None = None) -> str:
    """Strict JSON (RFC 8259, no ``NaN``/``Infinity``) of ``value``, non-finite floats as null,
    non-ASCII kept as is."""
    return json.dumps(finite(value), indent=indent, ensure_ascii=False, allow_nan=False)
