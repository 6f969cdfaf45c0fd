"""The widths a channel group may keep, so that every channel pruning removes is time the device saves.

XNNPACK's conv kernels compute output channels in fixed-width tiles (16 on an AVX2 host, 32 with AVX-512,
typically 8 with ARM NEON): a conv pruned from 64 to 52 outputs costs what it cost at 64 (BENCHMARKS.md, "Does
removing channels remove latency?"). A :class:`WidthRule` says which kept widths are *efficient*: any (no rule), a
multiple of ``N`` channels (``--channel-multiple``), or a width the latency profile's tiles compute without waste
(``--latency-profile``: up to the small tile in multiples of it, else multiples of the main tile). A group may keep a
width at which every one of its tiled producer layers (the convolutions of the layer table's tiled kinds) has an
efficient number of output channels, or its whole width. Channels are counted per producer, so a depth-to-space
group whose units span 4 channels each keeps a multiple of 4 units under a 16-channel tile.

:func:`blocks` cuts a group's units, lowest score first, into the blocks that take it from one allowed width to
the next smaller one, each scored by its units' mean (never lower than an earlier block's). The prune loop removes
units only in whole blocks (:func:`edgeprune.prune.loop.fill_to_level`); one-shot pruning rounds to the nearest
allowed width.
"""

from dataclasses import dataclass

import numpy as np

from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.coupling import ChannelGroup, Coupling
from edgeprune.graph.model_graph import TensorRef


@dataclass(frozen=True)
class WidthRule:
    """Efficient output widths of a tiled layer: multiples of ``multiple``, or, with ``tiles = (small, main)``, widths
    the profile's tiles compute without waste. ``source`` says what the rule was made from (the report's
    ``widths_for``)."""

    multiple: int = 1
    tiles: tuple[int, int] | None = None
    source: str = "any width (no alignment)"

    def __post_init__(self):
        integer_at_least("channel multiple", self.multiple)

    @classmethod
    def of_multiple(cls, multiple: int) -> "WidthRule":
        integer_at_least("channel multiple", multiple)
        source = "any width (no alignment)" if multiple == 1 else f"multiples of {multiple} channels"
        return cls(multiple=multiple, source=source)

    @classmethod
    def from_profile(cls, profile, source: str | None = None) -> "WidthRule":
        """The tiles of a :class:`~edgeprune.graph.latency_profile.LatencyProfile`."""
        tiles = (profile.small_channel_tile, profile.channel_tile)
        what = source or f"{profile.target} ({profile.runner}, {profile.num_threads} thread(s))"
        small = f" (of {tiles[0]} up to {tiles[0]} outputs)" if tiles[0] > 1 else ""
        return cls(tiles=tiles, source=f"{what}: conv output tiles of {tiles[1]}{small}")

    @property
    def aligns(self) -> bool:
        return self.multiple > 1 or (self.tiles is not None and self.tiles != (1, 1))

    def efficient(self, channels: int) -> bool:
        """Whether a tiled layer with ``channels`` outputs computes no padding channel under this rule."""
        if self.tiles is not None:
            small, main = self.tiles
            return (channels <= small and channels % small == 0) or channels % main == 0
        return channels % self.multiple == 0

    def allowed(self, coupling: Coupling, name: str) -> list[int]:
        """Unit counts group ``name`` may keep, ascending: those at which every tiled producer's output width is
        efficient, and always the whole group."""
        group = coupling.group(name)
        spans = _tiled_spans(coupling, group)
        return [k for k in range(1, group.size + 1)
                if k == group.size or all(self.efficient(k * span) for span in spans)]

    def check_fits(self, coupling: Coupling) -> None:
        """Raises unless some group can keep a width below its whole one (else nothing could be pruned)."""
        if self.aligns and not any(len(self.allowed(coupling, n)) > 1 for n in coupling.groups):
            widest = max(g.size * max(_tiled_spans(coupling, g) or [1]) for g in coupling.groups.values())
            if self.tiles is None:
                raise InvalidArgumentError(f"a channel multiple of {self.multiple} leaves no group anything to prune "
                                           f"(its widest prunable layer has {widest} output channels): choose a "
                                           "smaller --channel-multiple")
            raise InvalidArgumentError(f"the latency profile's conv tile of {self.tiles[1]} channels leaves no "
                                       f"group anything to prune (its widest prunable layer has {widest} output "
                                       "channels): this model is too narrow for that device's kernels to get "
                                       "faster by pruning")

    def to_dict(self) -> dict:
        return {"multiple": self.multiple, "tiles": list(self.tiles) if self.tiles else None, "source": self.source}


def _tiled_spans(coupling: Coupling, group: ChannelGroup) -> list[int]:
    """Channels one unit spans in each tiled producer of ``group``."""
    from edgeprune.graph.layer_table import kind_of

    spans = []
    for producer in group.producers:
        node = coupling.graph.node(producer)
        if kind_of(node.layer).tiled:
            spans.append(group.channels_per_unit(TensorRef(node.id, 0)))
    return spans


def nearest_allowed(count: int, allowed: list[int]) -> int:
    """The allowed width nearest ``count`` (ties to the wider one)."""
    return min(allowed, key=lambda w: (abs(w - count), -w))


def smallest_allowed_at_least(count: int, allowed: list[int]) -> int:
    """The narrowest allowed width of at least ``count`` units (the widest allowed width if none is that wide)."""
    return next((w for w in allowed if w >= count), allowed[-1])


def blocks(score: np.ndarray, kept: list[int], allowed: list[int], floor: int) -> list[tuple[float, list[int]]]:
    """The group's removable blocks in the order they go: (score, units) for each step from one allowed width to
    the next smaller one, the lowest-scoring kept units first, a block scored by its units' mean and never lower than
    the block before it. ``kept``: the group's kept units; ``allowed``: its allowed widths (ascending); ``floor``:
    fewest units it must keep (raised to an allowed width)."""
    kept = np.asarray(kept, dtype=int)
    order = kept[np.argsort(np.asarray(score, dtype=np.float64)[kept], kind="stable")]  # lowest score first
    lowest = smallest_allowed_at_least(max(floor, 1), allowed)
    out, start, width, running = [], 0, kept.size, -np.inf
    for target in (w for w in sorted(allowed, reverse=True) if lowest <= w < kept.size):
        block = order[start:start + width - target]
        running = max(running, float(np.mean(np.asarray(score, dtype=np.float64)[block])))
        out.append((running, sorted(int(u) for u in block)))
        start, width = start + block.size, target
    return out


def width_rule(channel_multiple: int = 1, profile=None, profile_source: str | None = None) -> WidthRule:
    """The widths to prune to: the tiles of ``profile``, or multiples of ``channel_multiple`` (not both)."""
    integer_at_least("channel multiple", channel_multiple)
    if profile is not None and channel_multiple != 1:
        raise InvalidArgumentError("--channel-multiple and --latency-profile both choose the widths: give one")
    if profile is not None:
        return WidthRule.from_profile(profile, profile_source)
    return WidthRule.of_multiple(channel_multiple)
