"""The MAC level of the iterative prune loop, as a pure state machine (no hidden state: each call takes a state and
returns a new one, so a run can be saved and resumed as JSON).

The level q in [0, 1) is the fraction of the baseline's MAC to remove (the loop turns it into an importance
threshold, :func:`edgeprune.prune.loop.threshold_for_level`). Each iteration proposes ``level + step``. If quality
holds after fine-tuning, that level is accepted and the next step is ``step * grow``; if not, the loop rolls back to
the last accepted level and tries ``step * shrink``. It stops when the step falls below ``min_step``, when a cost
target is met, or after ``max_iterations``.
"""

from dataclasses import asdict, dataclass, replace

from edgeprune.core.errors import InvalidArgumentError


@dataclass(frozen=True)
class LevelState:
    accepted: float = 0.0  # last accepted level (0: nothing pruned yet)
    step: float = 0.1
    iteration: int = 0
    target_met: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LevelState":
        return cls(**data)


@dataclass(frozen=True)
class LevelPolicy:
    initial_step: float = 0.1
    min_step: float = 0.0125
    shrink: float = 0.5
    grow: float = 1.0
    max_iterations: int = 30

    def __post_init__(self):
        if not self.initial_step > 0 or not 0 < self.min_step <= self.initial_step:
            raise InvalidArgumentError("level steps must satisfy 0 < min_step <= initial_step")
        if not 0 < self.shrink < 1 or self.grow < 1:
            raise InvalidArgumentError("shrink must be in (0, 1) and grow >= 1")
        if self.max_iterations < 1:
            raise InvalidArgumentError("max_iterations must be >= 1")

    def start(self) -> LevelState:
        return LevelState(step=self.initial_step)

    def propose(self, state: LevelState) -> float:
        return state.accepted + state.step

    def update(self, state: LevelState, accepted: bool, target_met: bool = False) -> LevelState:
        """The state after trying ``propose(state)``: accepted (quality held) or rolled back."""
        if accepted:
            return replace(state, accepted=self.propose(state), step=state.step * self.grow,
                           iteration=state.iteration + 1, target_met=target_met)
        return replace(state, step=state.step * self.shrink, iteration=state.iteration + 1)

    def done(self, state: LevelState) -> bool:
        return state.target_met or state.step < self.min_step or state.iteration >= self.max_iterations
