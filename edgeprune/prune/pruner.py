"""The pruning engine of one model: :class:`Pruner`.

A pruner knows the model's coupled channel groups (:class:`~edgeprune.graph.coupling.Coupling`), the level the loop
has reached, the units every group keeps and the accepted weights. It proposes (``propose``: the next level's
masks, by the configured proposer and importance criterion, from the accepted weights), is told what the gate decided
(``decide``), checkpoints and restores itself (``save``, ``restore``) and hands back the results (``plan``,
``strip``, ``slim``, ``predicted_cost``). It never trains: the user's ``fit`` (or own loop) trains
:attr:`Pruner.model`, the tfmot-wrapped copy, and :class:`edgeprune.prune.gating.QualityGatedPruning` judges.
"""

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeprune.core.atomic import atomic_path, write_json_atomic
from edgeprune.core.errors import FileFormatError, InvalidArgumentError, UnsupportedModelError
from edgeprune.core.files import read_json
from edgeprune.graph.cost import CostReport, model_cost, predicted_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.prune import masking
from edgeprune.prune.coarse import CoarseMasks, exploitable_keep, kernels_from_json, kernels_to_json, \
    pruned_kernel_fraction, sparse_mac
from edgeprune.prune.criteria import batch_source
from edgeprune.prune.importance import layer_means, mac_per_unit
from edgeprune.prune.level import LevelState
from edgeprune.prune.oracle import CostOracle
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.proposers import proposer
from edgeprune.prune.settings import LoopSettings, PruneConfig
from edgeprune.core.runtime import keras
from edgeprune.train.fit import plain_copy

DEFAULT_INPUT_SIZE = (256, 256)  # of the cost figures when the model's input has no fixed size

STATE_FILE = "loop.json"
STATE_FORMAT = "edgeprune.loop/1"


@dataclass
class LoopState:
    """Everything a resumed run needs, as JSON (the weights are a separate file, named by ``weights``). The level's
    state is recorded under its first name, ``threshold``, so checkpoints of earlier versions still resume."""

    level: LevelState
    keep: dict[str, list[int]]
    iterations: list[dict] = field(default_factory=list)
    lineage_steps: int = 0  # fine-tuning steps in the accepted model's history
    spent_steps: int = 0  # all fine-tuning steps, rolled-back ones included
    weights: str | None = None  # file of the accepted weights (None: the baseline's)
    quality: dict | None = None  # of the accepted state
    mac: float = 1.0  # of the accepted state, as a fraction of the baseline
    latency: float | None = None  # predicted latency of the accepted state, as a fraction (with a profile)
    kernels: dict[str, list[int]] | None = None  # coarse: each conv's pruned kernels (flat (in, out) indices)
    baseline: dict | None = None  # the unpruned model's quality, every proposal's reference

    def to_dict(self) -> dict:
        return {"format": STATE_FORMAT, "threshold": self.level.to_dict(), "keep": self.keep,
                "iterations": self.iterations, "lineage_steps": self.lineage_steps,
                "spent_steps": self.spent_steps, "weights": self.weights, "quality": self.quality, "mac": self.mac,
                "latency": self.latency, **({"kernels": self.kernels} if self.kernels is not None else {}),
                **({"baseline": self.baseline} if self.baseline is not None else {})}

    @classmethod
    def from_dict(cls, data: dict) -> "LoopState":
        """The state ``data`` holds; a ValueError (or KeyError, TypeError) names the first field that is not one
        :meth:`to_dict` writes."""
        keep, weights, quality = data["keep"], data["weights"], data["quality"]
        if not isinstance(keep, dict) or not all(
                isinstance(units, list) and all(isinstance(u, int) and not isinstance(u, bool) for u in units)
                for units in keep.values()):
            raise ValueError(f"'keep' is {keep!r}, not a map of group names to unit indices")
        if weights is not None and not isinstance(weights, str):
            raise ValueError(f"'weights' is {weights!r}, not a file name")
        if quality is not None and not (isinstance(quality, dict) and all(
                isinstance(quality.get(k), (int, float)) and not isinstance(quality.get(k), bool)
                for k in ("psnr", "ssim"))):
            raise ValueError(f"'quality' is {quality!r}, not numeric PSNR and SSIM")
        kernels = data.get("kernels")
        if kernels is not None and not (isinstance(kernels, dict) and all(
                isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
                for v in kernels.values())):
            raise ValueError(f"'kernels' is not a map of layer names to kernel indices")
        return cls(LevelState.from_dict(data["threshold"]), {k: list(v) for k, v in keep.items()},
                   list(data["iterations"]), int(data["lineage_steps"]), int(data["spent_steps"]), weights,
                   quality, float(data["mac"]),
                   None if data.get("latency") is None else float(data["latency"]), kernels,
                   data.get("baseline"))



def _save_state(workdir: Path, state: LoopState, model) -> LoopState:
    """Checkpoints ``state`` (and ``model``'s weights when they changed): weights first, then the JSON that names
    them, so a kill between the two leaves the previous consistent checkpoint."""
    if model is not None:
        name = _weights_name(state)
        with atomic_path(workdir / name, suffix=".partial.weights.h5") as tmp:
            model.save_weights(str(tmp))
        state = replace(state, weights=name)
    write_json_atomic(workdir / STATE_FILE, state.to_dict())
    for old in workdir.glob("accepted-*.weights.h5"):
        if old.name != state.weights:
            old.unlink()
    return state


def _weights_name(state: LoopState) -> str:
    return f"accepted-{len(state.iterations):03d}.weights.h5"


def load_state(workdir: Path) -> LoopState | None:
    """The checkpoint in ``workdir``, or None when there is none; a corrupt or foreign one is a FileFormatError."""
    path = Path(workdir) / STATE_FILE
    if not path.exists():
        return None
    data = read_json(path, "prune loop checkpoint")
    if data.get("format") != STATE_FORMAT:
        raise FileFormatError(f"'{path}' is not an edgeprune loop checkpoint of this version: delete it to "
                              "start over")
    try:
        return LoopState.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FileFormatError(f"prune loop checkpoint '{path}' is malformed ({exc.__class__.__name__}: {exc}): "
                              "delete it to start over") from None


def _resume_error(workdir: Path, problem: str) -> FileFormatError:
    return FileFormatError(f"prune loop checkpoint in '{workdir}' cannot be resumed: {problem}; delete the run "
                           "folder's .work and run again without --resume")


def _check_resumed(workdir: Path, state: LoopState, full: PruningPlan) -> None:
    """Raises unless ``state`` (read from ``workdir``) fits the model being pruned: the same channel groups,
    unit indices within them, and the quality and weights file that only this loop writes."""
    if set(state.keep) != set(full.keep):
        raise _resume_error(workdir, "its channel groups are not this model's")
    for name, units in state.keep.items():
        if not units or not set(units) <= set(full.keep[name]):
            raise _resume_error(workdir, f"group {name!r} keeps units {units!r}, not some of its "
                                         f"{len(full.keep[name])}")
    if state.quality is None:
        raise _resume_error(workdir, "it records no quality")
    if state.weights is not None and not re.fullmatch(r"accepted-\d{3}\.weights\.h5", state.weights):
        raise _resume_error(workdir, f"its weights {state.weights!r} are not a file this loop writes")


def _load_accepted(model, workdir: Path, name: str) -> None:
    """The checkpointed weights ``workdir / name`` into ``model``."""
    path = workdir / name
    if not path.is_file():
        raise _resume_error(workdir, f"its weights file '{path}' does not exist")
    try:
        model.load_weights(str(path))
    except (OSError, ValueError, KeyError) as exc:  # h5py: truncated or foreign file; Keras: weights that do not fit
        raise _resume_error(workdir, f"its weights file '{path}' is unreadable ({exc.__class__.__name__})") from None



def _same_kernels(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.keys() == b.keys() and all(np.array_equal(a[n], b[n]) for n in a)

@dataclass(frozen=True)
class Proposal:
    """What the pruner proposes for the next chunk of training: the masks' units and kernels, and the iteration's
    record so far (level, threshold, MAC, predicted latency, kept units)."""

    record: dict
    keep: dict[str, list[int]]
    kernels: dict | None
    mac: float
    latency: float | None


class Pruner:
    """Structured channel pruning of one Keras model, as the paper's loop does it (see the module's docstring).

    ``model``: a functional tf_keras model whose channels edgeprune can couple (else
    :class:`~edgeprune.core.errors.UnsupportedModelError`); it is not changed. ``config``: a
    :class:`~edgeprune.prune.settings.PruneConfig` (default: the paper's method D to MAC 0.8), or the engine's
    ``settings`` directly. ``importance_data``: (input, target) batches of training data (a ``tf.data.Dataset`` or
    an iterable; its first 16 are read), needed by data-driven criteria (``taylor``, ``qr``) and the ``coarse``
    strategy. ``input_size``: of the MAC figures (default: the model's fixed input size, else 256x256);
    ``latency_size``: of the predicted latency (default ``input_size``). ``times``: a
    :class:`~edgeprune.core.timing.PhaseTimes` collecting the seconds of its phases."""

    def __init__(self, model, config: PruneConfig | None = None, *, importance_data=None, input_size=None,
                 latency_size=None, settings: LoopSettings | None = None, times=None):
        from edgeprune.core.timing import PhaseTimes

        if not isinstance(model, keras.Model):
            raise InvalidArgumentError(f"Pruner needs a tf_keras Model, got {type(model).__name__}: build the model "
                                       "with tf_keras (Keras 2; edgeprune's models and tfmot use it)")
        if config is not None and settings is not None:
            raise InvalidArgumentError("give Pruner a config or settings, not both")
        if config is not None and not isinstance(config, PruneConfig):
            raise InvalidArgumentError(f"config must be an edgeprune.PruneConfig, got {type(config).__name__}")
        self.config = config or (PruneConfig() if settings is None else None)
        self.settings = settings or self.config.loop_settings()
        self.times = times or PhaseTimes()
        self.baseline = model
        self.current = plain_copy(model)  # the accepted weights, unwrapped (pruned channels exactly 0)
        self.coupling = Coupling(self.current)
        if not self.coupling.groups:
            why = "; ".join(self.coupling.frozen_reasons) or "all its channels reach a model input or output"
            raise UnsupportedModelError(f"'{model.name}' has no prunable channel group ({why}): edgeprune prunes "
                                        "convolutions whose outputs feed other layers")
        self.input_size = tuple(input_size) if input_size else _fixed_size(model) or DEFAULT_INPUT_SIZE
        self.base_cost = model_cost(self.coupling.graph, self.input_size)
        self.oracle = CostOracle(self.coupling, self.input_size, self.base_cost, self.settings.profile, latency_size)
        self.means = layer_means(self.coupling)
        self.mac_units = mac_per_unit(self.coupling, self.base_cost)
        self.full = PruningPlan.keep_all(self.coupling, model.name)
        self.batches = batch_source(importance_data)
        self.proposer = proposer(self.settings.strategy, self)
        if self.proposer.needs_data and self.batches is None:
            what = (f"the {self.settings.strategy} strategy" if self.settings.strategy != "threshold"
                    else f"importance {self.settings.importance!r}")
            raise InvalidArgumentError(f"{what} measures channels on training data: give importance_data, a "
                                       "dataset of (input, target) batches")
        self.state = LoopState(self.settings.policy.start(), dict(self.full.keep))
        self.kernels = None  # coarse: the accepted kernel masks
        self._wrapped = None

    # -- the model to train --

    @property
    def model(self) -> keras.Model:
        """The tfmot-wrapped copy to train (made on first use, inside the caller's distribution strategy scope), with
        the accepted masks imposed; the same object on every call."""
        if self._wrapped is None:
            self._wrapped = masking.wrap(self.current)
            self.masks().apply(self._wrapped)
        return self._wrapped

    def masks(self, keep=None, kernels=None):
        """The channel (and, for coarse, kernel) masks of ``keep``/``kernels`` (default: the accepted ones)."""
        keep = self.state.keep if keep is None else keep
        kernels = self.kernels if keep is self.state.keep and kernels is None else kernels
        plan = PruningPlan(self.full.model, self.full.fingerprint, self.full.sizes, keep)
        if self.settings.strategy == "coarse":
            return CoarseMasks(self.coupling, plan, kernels)
        return masking.ChannelMasks(self.coupling, plan)

    def unwrapped(self) -> keras.Model:
        """A plain copy of the model with :attr:`model`'s weights as they are now."""
        return masking.unwrap(self.model, self.current)

    # -- the loop's steps --

    @property
    def done(self) -> bool:
        return self.settings.policy.done(self.state.level)

    def propose(self) -> Proposal | None:
        """The next level's proposal, or None once the loop is done. A level that prunes nothing new is decided at
        once (accepted without training, as a record with a ``note``) and the next level is proposed."""
        settings, policy = self.settings, self.settings.policy
        coarse = settings.strategy == "coarse"
        while not self.done:
            started = time.perf_counter()
            state = self.state
            level = policy.propose(state.level)
            with self.times.phase("loop.importance"):
                choice = self.proposer.propose(level, state.level.step, state.keep, self.kernels,
                                               seed=settings.finetune.seed + state.level.iteration + 1)
            keep, kernels = choice.keep, choice.kernels
            executed = exploitable_keep(self.coupling, keep, kernels)
            mac = (sparse_mac(self.coupling, self.oracle, self.proposer.search.costs, keep, kernels) if coarse
                   else self.oracle.mac_ratio(keep))
            latency = self.oracle.latency_ratio(executed) if settings.profile is not None else None
            record = {"iteration": state.level.iteration + 1, "level": level, "threshold": choice.threshold,
                      "step": state.level.step, "mac": mac, **({"latency": latency} if latency is not None else {}),
                      "kept_units": sum(map(len, keep.values())), "finetune_steps": 0}
            if coarse:
                record.update({"executed_mac": self.oracle.mac_ratio(executed), "search": choice.extra,
                               "pruned_kernels": pruned_kernel_fraction(kernels)})
            proposal = Proposal(record, keep, kernels, mac, latency)
            if keep == state.keep and _same_kernels(kernels, self.kernels):  # nothing new to prune
                record["note"] = "no unit below this threshold" if not coarse else "no mask prunes more at this level"
                record["seconds"] = round(time.perf_counter() - started, 1)
                self.decide(proposal, True, state.quality, 0)
                continue
            return proposal
        return None

    def decide(self, proposal: Proposal, accepted: bool, quality: dict | None, steps: int,
               control: dict | None = None, weights_from=None) -> dict:
        """Records the gate's verdict on ``proposal`` after ``steps`` training steps: ``quality`` (the metric's
        values) and, with the control gate, the ``control`` it was judged against. Accepted, the proposal's masks
        become the accepted ones and ``weights_from`` (a model of the same architecture, wrapped or not; None: the
        weights do not change) the accepted weights. Returns the iteration's record."""
        record = {**proposal.record, "finetune_steps": steps, **({"control": control} if control else {}),
                  **(quality or {}), "accepted": bool(accepted)}
        target_met = bool(accepted) and self.settings.target_met(proposal.mac, proposal.latency)
        state = self.state
        new_level = self.settings.policy.update(state.level, bool(accepted), target_met)
        spent = state.spent_steps + steps
        if accepted:
            if weights_from is not None:
                masking.copy_weights(weights_from, self.current)
            self.kernels = proposal.kernels
            self.state = replace(state, level=new_level, keep=proposal.keep, quality=quality, mac=proposal.mac,
                                 latency=proposal.latency, iterations=[*state.iterations, record], spent_steps=spent,
                                 lineage_steps=state.lineage_steps + steps, kernels=kernels_to_json(self.kernels))
        else:
            self.state = replace(state, level=new_level, iterations=[*state.iterations, record], spent_steps=spent)
        return record

    def set_baseline_quality(self, quality: dict) -> None:
        """The unpruned model's quality: what every proposal is judged against (and the accepted state's until a
        proposal is accepted)."""
        self.state = replace(self.state, quality=dict(quality), baseline=dict(quality))

    # -- checkpoints --

    def save(self, workdir, weights: bool = True, write: bool = True) -> None:
        """Checkpoints the state (and, when ``weights``, the accepted weights) in ``workdir``: a killed run restored
        from it loses no accepted iteration. ``write=False`` (a worker that is not the chief) updates the state as
        a save would, and writes nothing."""
        workdir = Path(workdir)
        if not write:
            if weights:
                self.state = replace(self.state, weights=_weights_name(self.state))
            return
        workdir.mkdir(parents=True, exist_ok=True)
        self.state = _save_state(workdir, self.state, self.current if weights else None)

    def restore(self, workdir) -> bool:
        """The checkpoint in ``workdir`` (True), or nothing there (False): the state, the accepted weights and
        masks (into :attr:`model` too, if it was made)."""
        workdir = Path(workdir)
        state = load_state(workdir)
        if state is None:
            return False
        _check_resumed(workdir, state, self.full)
        if state.weights:
            _load_accepted(self.current, workdir, state.weights)
        try:
            self.kernels = kernels_from_json(self.coupling, state.kernels)
        except ValueError as exc:
            raise _resume_error(workdir, str(exc)) from None
        self.state = state
        if self._wrapped is not None:
            self.masks().impose(self._wrapped, self.current)
        return True

    # -- results --

    @property
    def plan(self) -> PruningPlan:
        """The accepted plan: the kept units of every group (channels left without kernels removed too)."""
        return PruningPlan(self.full.model, self.full.fingerprint, self.full.sizes,
                           exploitable_keep(self.coupling, dict(self.state.keep), self.kernels))

    def strip(self) -> keras.Model:
        """A plain (unwrapped) copy of the accepted model: same architecture, pruned channels exactly 0."""
        return plain_copy(self.current)

    def slim(self) -> keras.Model:
        """The accepted model with its pruned channels physically removed: it computes what the masked model
        computes, at the cost :meth:`predicted_cost` predicts."""
        from edgeprune.prune.surgery import slim

        return slim(self.current, self.plan, self.coupling)

    def predicted_cost(self, input_size=None) -> CostReport:
        """The analytical cost of the accepted plan's slim model at ``input_size`` (default: the pruner's), from the
        plan alone: the slim model's :func:`~edgeprune.graph.cost.model_cost` is exactly this."""
        kept = self.coupling.kept_channels(self.plan.keep)
        return predicted_cost(self.coupling.graph, {r: len(k) for r, k in kept.items()},
                              tuple(input_size) if input_size else self.input_size)


def _fixed_size(model) -> tuple[int, int] | None:
    shape = model.inputs[0].shape
    return (int(shape[1]), int(shape[2])) if len(shape) == 4 and shape[1] and shape[2] else None
