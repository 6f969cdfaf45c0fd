"""The equal-budget control for the public API: :class:`EqualBudgetControl`.

Pruning with fine-tuning trains the pruned model for more steps than its baseline had; on a baseline far from
converged, those steps alone can raise quality and hide what pruning cost. The control is the *unpruned* model
trained for as many steps as the candidate's accepted history holds, with the same training; the gate
(``gate="control"``) accepts a candidate only if it is also within tolerance of the control at that budget. The CLI's
own control (``--gate control``) is :mod:`edgeprune.prune.control_chain`'s, cached across runs.
"""

from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.core.runtime import keras


class EqualBudgetControl:
    """``control(steps) -> metrics``: ``metric`` of a copy of the unpruned ``model`` trained for ``steps`` steps.

    Training is either ``train(model, steps)`` (a callable that trains the copy in place for ``steps`` more steps:
    the user's own loop or subclassed trainer), or Keras' ``fit`` on ``data`` (an endless dataset of (input,
    target) batches) with ``loss`` and a fresh ``optimizer`` (default Adam 1e-4). The copy trains forward only: a
    budget asked for again is answered from memory, and a smaller budget than one already trained is an error."""

    def __init__(self, model, metric, *, train=None, data=None, loss="mae", optimizer=None):
        from edgeprune.train.fit import plain_copy

        if not callable(metric):
            raise InvalidArgumentError(f"metric must be a callable model -> dict of values, got {metric!r}")
        if (train is None) == (data is None):
            raise InvalidArgumentError("give the control's training: train=callable(model, steps) or data= (with "
                                       "loss= and optimizer=), one of them")
        self.metric, self.train = metric, train
        self.model = plain_copy(model)
        self.data = None
        if data is not None:
            self.model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-4), loss=loss)
            self.data = iter(data)
        self.steps = 0
        self.answers = {0: None}

    def __call__(self, steps: int) -> dict:
        integer_at_least("steps", steps, 0)
        if self.answers.get(steps) is not None:
            return self.answers[steps]
        if steps < self.steps:
            raise InvalidArgumentError(f"the control has trained {self.steps} steps and trains forward only: it "
                                       f"cannot answer for {steps}")
        more = steps - self.steps
        if more:
            if self.train is not None:
                self.train(self.model, more)
            else:
                for _ in range(more):
                    x, y = next(self.data)
                    self.model.train_on_batch(x, y)
            self.steps = steps
        self.answers[steps] = {k: float(v) for k, v in self.metric(self.model).items()}
        return self.answers[steps]
