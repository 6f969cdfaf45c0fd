"""Fine-tuning a pruned model against its unpruned teacher as well as the ground truth: :class:`Distiller`.

Knowledge distillation, as super-resolution pruning uses it: the pruned student's loss is the user's loss on the
ground truth plus ``weight`` times the L1 distance between the student's output and the teacher's (the unpruned
baseline's) on the same inputs::

    loss = loss(target, student(x)) + weight * mean(|teacher(x) - student(x)|)

The teacher is the baseline itself, so the equal-budget control (the baseline fine-tuned on the ground truth for as
many steps) stays the fair comparison. :class:`Distiller` is a Keras model that trains ``student`` with that loss
inside ``fit`` (the teacher's weights are never changed); it fits edgeprune's public API in tfmot's shape::

    pruner = edgeprune.Pruner(model, config)
    trainer = edgeprune.Distiller(pruner.model, teacher=model, weight=1.0)
    trainer.compile(optimizer, loss=your_loss)
    trainer.fit(data, callbacks=[edgeprune.QualityGatedPruning(pruner, validation_pairs)])

``edgeprune prune --distill [WEIGHT]`` uses the same class for the loop's fine-tuning and the QR strategy's
recovery (:func:`edgeprune.train.fit.fit`). :func:`fine_tuned_against` says in a report what a model learned from.
"""

from edgeprune.core.checks import finite_at_least
from edgeprune.core.errors import InvalidArgumentError, ShapeError
from edgeprune.core.runtime import keras, tf

DEFAULT_WEIGHT = 1.0  # ``--distill`` given without a weight: the teacher's term weighs as much as the ground truth's


WEIGHT_MEANING = "how much the L1 distance to the teacher's output weighs beside the ground truth's loss"


def check_weight(weight, what: str = "the distillation weight") -> float:
    """``weight`` as a float, finite and >= 0 (0 trains exactly as the ground truth alone does)."""
    return finite_at_least(what, weight, 0.0, WEIGHT_MEANING)


def fine_tuned_against(weight: float | None, trained: bool = True) -> dict:
    """``report.json``'s record of what a pruned model was fine-tuned against: the ground truth alone (``weight``
    None), or the ground truth plus the unpruned baseline's output at ``weight``; nothing when not ``trained``."""
    if not trained:
        return {"text": "nothing (not fine-tuned)", "ground_truth": False, "teacher": None, "weight": None}
    if weight is None:
        return {"text": "ground truth", "ground_truth": True, "teacher": None, "weight": None}
    return {"text": f"ground truth + teacher output at weight {weight:g}", "ground_truth": True,
            "teacher": "the unpruned baseline's output (L1)", "weight": weight}


def distillation_term(teacher_output, student_output):
    """The mean absolute difference of the two outputs: the teacher's term before its weight."""
    return tf.reduce_mean(tf.abs(tf.cast(teacher_output, student_output.dtype) - student_output))


class Distiller(keras.Model):
    """Trains ``student`` on the compiled loss plus ``weight`` times :func:`distillation_term` to ``teacher``'s output
    (see the module's docstring). Calling it calls the student; only the student's trainable weights are updated, and
    the teacher runs in inference mode. Both must map an input to outputs of the same shape; ``weight`` is checked by
    :func:`check_weight`. Compile it as the student would be (``compile(optimizer, loss)``). Its training logs:
    ``loss`` the whole objective, ``ground_truth`` the compiled loss alone and ``distillation`` the unweighted
    teacher term (evaluation measures the student on the ground truth, as the compiled loss does)."""

    def __init__(self, student, teacher, weight: float = DEFAULT_WEIGHT, **kwargs):
        super().__init__(**kwargs)
        for role, model in (("student", student), ("teacher", teacher)):
            if not isinstance(model, keras.Model):
                raise InvalidArgumentError(f"Distiller's {role} must be a tf_keras Model, got {type(model).__name__}")
        s_out, t_out = _output_shape(student), _output_shape(teacher)
        if s_out is not None and t_out is not None and not _compatible(s_out, t_out):
            raise ShapeError(f"the teacher's output {t_out} and the student's {s_out} differ: distil from a model of "
                             "the same task (the unpruned baseline of the pruned student)")
        self.student, self.teacher = student, teacher
        self.weight = check_weight(weight)
        self.distillation_tracker = keras.metrics.Mean(name="distillation")

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher_output = self.teacher(x, training=False)
        with tf.GradientTape() as tape:
            y_pred = self.student(x, training=True)
            loss = self.compiled_loss(y, y_pred, sample_weight, regularization_losses=self.student.losses)
            term = distillation_term(teacher_output, y_pred)
            # as Keras scales the compiled loss: the replicas' gradients are summed
            loss = loss + self.weight * term / tf.distribute.get_strategy().num_replicas_in_sync
        self.optimizer.minimize(loss, self.student.trainable_variables, tape=tape)
        self.distillation_tracker.update_state(term)
        logs = self.compute_metrics(x, y, y_pred, sample_weight)
        logs["ground_truth"] = logs["loss"]  # the compiled loss: running means over the epoch's batches
        logs["loss"] = logs["ground_truth"] + self.weight * logs["distillation"]
        return logs


def _output_shape(model):
    outputs = getattr(model, "outputs", None)
    return tuple(outputs[0].shape[1:]) if outputs else None


def _compatible(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))
