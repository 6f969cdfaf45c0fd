"""Text formatting primitives shared by every layer's human-readable output: SI numbers, fixed-width tables and
the name of a pruning criterion. The command tables built from them live in :mod:`edgeprune.commands.render`."""

from collections.abc import Sequence

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def si(value: float) -> str:
    """4 significant digits with an SI suffix: 1428061363200 -> '1.428T'."""
    for scale, suffix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:g}"


def table(headers: Sequence[str], rows: Sequence[Sequence], align: str | None = None) -> str:
    """A fixed-width table; ``align`` has one 'l' or 'r' per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(cells[0]), rule] + [fmt(r) for r in cells[1:]])


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with every run of whitespace (newlines included) made one space, cut to ``limit`` characters: how an
    exception's message goes into a one-line user error."""
    flat = " ".join(str(text).split())
    return flat if limit is None else flat[:limit]


def method_label(settings: dict, strategy: dict | None = None) -> str:
    """'method D, magnitude importance': how a prune report's loop ranked channels; 'coarse strategy (both),
    method D options' or 'one-shot QR strategy, method D options' for the two other strategies (``strategy``: the
    report's)."""
    name = (strategy or {}).get("name", "threshold")
    if name == "coarse":
        return f"coarse strategy ({strategy['granularity']}, {strategy['candidates']} candidates per step)"
    if name == "qr":
        return f"one-shot QR strategy, method {settings['method']} allocation"
    return f"method {settings['method']}, {settings.get('importance', 'magnitude')} importance"
