"""The one checked loader for every JSON file a user or the cache gives us.

Cached baselines' metadata, loop state, latency profiles, pruning plans and host-bench results are all read through
:func:`read_json`, so a missing, unreadable, truncated, corrupt or foreign file raises :class:`FileFormatError` with a
one-line message that names the file and what it should have been (the CLI prints it and exits 2), never a raw
``OSError``/``JSONDecodeError``/``KeyError``/``TypeError``.
"""

import json
import os
from collections.abc import Iterable
from pathlib import Path

from edgeprune.core.errors import FileFormatError


def read_json(path: str | os.PathLike, what: str, kind: type = dict, required: Iterable[str] = (),
              format: str | None = None):
    """The JSON value in ``path``; ``what`` names it in errors (e.g. "latency profile").

    ``kind`` is the type the top-level value must have (``dict`` or ``list``); for a dict, ``required`` keys must be
    present and, with ``format``, its ``"format"`` field must equal it.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileFormatError(f"{what} '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{what} '{path}' cannot be read ({exc.__class__.__name__}: {exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{what} '{path}' is not valid JSON ({exc.msg} at line {exc.lineno}); "
                              f"it is corrupt or truncated: delete it or give another file") from None
    if not isinstance(data, kind):
        raise FileFormatError(f"{what} '{path}' holds a JSON {type(data).__name__}, not a JSON "
                              f"{'object' if kind is dict else kind.__name__}: it is not a {what}")
    if kind is dict:
        if format is not None and data.get("format") != format:
            raise FileFormatError(f"{what} '{path}' is not a {what} (format {data.get('format')!r}, "
                                  f"expected {format!r})")
        missing = [k for k in required if k not in data]
        if missing:
            raise FileFormatError(f"{what} '{path}' lacks {', '.join(repr(k) for k in missing)}: it is not a "
                                  f"{what} this edgeprune writes")
    return data


def field(data: dict, key: str, kind: type | tuple, what: str, path: str | os.PathLike):
    """``data[key]`` checked to be of ``kind``, else a one-line :class:`FileFormatError` naming ``path``."""
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float, (int, float)):
        raise FileFormatError(f"{what} '{path}': field {key!r} is {value!r}, which is not valid")
    return value
