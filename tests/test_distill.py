"""Distillation from the unpruned teacher: the loss is the ground truth's plus the weighted L1 to the teacher's output,
a weight of 0 (or a teacher equal to the student) trains exactly as the ground truth alone, only the student learns,
and bad weights are refused."""

import math

import numpy as np
import pytest

import edgeprune
from edgeprune.core.errors import InvalidArgumentError, ShapeError
from edgeprune.core.runtime import keras
from edgeprune.train.distill import DEFAULT_WEIGHT, Distiller, distillation_term, fine_tuned_against
from edgeprune.train.fit import plain_copy


def _tiny(width=8, seed=0):
    inputs = keras.Input((None, None, 3))
    init = keras.initializers.GlorotUniform(seed=seed)
    hidden = keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init)(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same", kernel_initializer=init)(hidden))


def _data(count=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((count, 8, 8, 3), np.float32), rng.random((count, 8, 8, 3), np.float32)


def _adam():
    return keras.optimizers.Adam(1e-2, global_clipnorm=1.0)


def _train(model, x, y, epochs=3):
    model.compile(_adam(), loss="mae")
    return model.fit(x, y, epochs=epochs, batch_size=2, shuffle=False, verbose=0).history


def _same_weights(a, b) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_weight_zero_trains_bit_for_bit_as_the_ground_truth_alone():
    student, teacher = _tiny(seed=1), _tiny(seed=2)
    x, y = _data()
    alone, distilled = plain_copy(student), plain_copy(student)
    history = _train(alone, x, y)
    trainer = Distiller(distilled, teacher, weight=0.0)
    logs = _train(trainer, x, y)
    assert _same_weights(alone, distilled)
    assert logs["loss"] == history["loss"] == logs["ground_truth"]
    assert all(d > 0 for d in logs["distillation"])  # the term was there, weighted by 0


def test_a_teacher_equal_to_the_student_adds_nothing():
    student = _tiny(seed=1)
    x, y = _data()
    assert float(distillation_term(student(x), student(x))) == 0.0
    alone, distilled = plain_copy(student), plain_copy(student)
    history = _train(alone, x, y, epochs=1)
    logs = _train(Distiller(distilled, distilled, weight=5.0), x, y, epochs=1)  # its own teacher: always equal
    assert logs["distillation"] == [0.0] and logs["loss"] == history["loss"]
    assert _same_weights(alone, distilled)


def test_the_loss_is_the_ground_truth_l1_plus_the_weighted_l1_to_the_teacher():
    student, teacher = _tiny(seed=1), _tiny(seed=2)
    x, y = _data(count=2)
    s, t = student(x).numpy(), teacher(x).numpy()
    weight = 0.7
    expected = np.abs(y - s).mean() + weight * np.abs(t - s).mean()
    trainer = Distiller(student, teacher, weight=weight)
    logs = _train(trainer, x, y, epochs=1)  # one step: the logs are of the weights before it
    assert logs["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert logs["ground_truth"][0] == pytest.approx(np.abs(y - s).mean(), rel=1e-5)
    assert logs["distillation"][0] == pytest.approx(np.abs(t - s).mean(), rel=1e-5)


def test_only_the_student_learns_and_the_teacher_pulls_it_towards_itself():
    student, teacher = _tiny(seed=1), _tiny(seed=2)
    before = [w.copy() for w in teacher.get_weights()]
    x, _ = _data()
    # trained on the teacher's term alone (ground truth = the student's own output, so the compiled loss is ~0)
    trainer = Distiller(student, teacher, weight=1.0)
    logs = _train(trainer, x, student(x).numpy(), epochs=20)
    assert all(np.array_equal(a, b) for a, b in zip(before, teacher.get_weights()))
    assert logs["distillation"][-1] < logs["distillation"][0]
    assert np.array_equal(trainer(x).numpy(), student(x).numpy())  # calling it calls the student


@pytest.mark.parametrize("weight", [-0.5, math.nan, math.inf, True, "1", None])
def test_bad_weights_are_refused_with_what_a_weight_is(weight):
    with pytest.raises(InvalidArgumentError, match=r"the distillation weight must be a finite number >= 0 \(how "
                                                   r"much the L1 distance to the teacher's output weighs"):
        Distiller(_tiny(), _tiny(), weight=weight)


def test_a_teacher_of_another_shape_or_not_a_model_is_refused():
    inputs = keras.Input((None, None, 3))
    gray = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    with pytest.raises(ShapeError, match=r"the teacher's output \(None, None, 1\) and the student's \(None, None, "
                                         r"3\) differ"):
        Distiller(_tiny(), gray)
    with pytest.raises(InvalidArgumentError, match="Distiller's teacher must be a tf_keras Model, got function"):
        Distiller(_tiny(), lambda x: x)


def test_the_report_record_says_what_the_model_learned_from():
    assert fine_tuned_against(None)["text"] == "ground truth"
    assert fine_tuned_against(1.0) == {"text": "ground truth + teacher output at weight 1", "ground_truth": True,
                                       "teacher": "the unpruned baseline's output (L1)", "weight": 1.0}
    assert fine_tuned_against(0.5, trained=False)["text"] == "nothing (not fine-tuned)"
    assert DEFAULT_WEIGHT == 1.0


def test_fit_distils_under_channel_masks_and_keeps_the_removed_channels_zero():
    from edgeprune.data.pairs import PairSet
    from edgeprune.graph.coupling import Coupling
    from edgeprune.prune.masking import ChannelMasks
    from edgeprune.prune.plan import PruningPlan
    from edgeprune.train.fit import TrainConfig, fit
    from keras_models import build_edsr

    teacher = build_edsr(scale=2, num_blocks=1, num_features=8)
    coupling = Coupling(teacher)
    full = PruningPlan.keep_all(coupling, teacher.name)
    keep = {n: units[: max(1, len(units) // 2)] for n, units in full.keep.items()}
    masks = ChannelMasks(coupling, PruningPlan(teacher.name, full.fingerprint, full.sizes, keep))
    rng = np.random.default_rng(0)
    pool = PairSet([rng.random((16, 16, 3), np.float32)], [rng.random((32, 32, 3), np.float32)], 2)
    config = TrainConfig(steps=4, batch_size=2, patch=8, steps_per_epoch=2)
    plain, plain_history = fit(teacher, pool, config, masks=masks, verbose=0)
    same, same_history = fit(teacher, pool, config, masks=masks, verbose=0, teacher=teacher, distill=0.0)
    assert _same_weights(plain, same) and plain_history["loss"] == same_history["loss"]
    distilled, history = fit(teacher, pool, config, masks=masks, verbose=0, teacher=teacher, distill=2.0)
    assert len(history["distillation"]) == 2 and not _same_weights(plain, distilled)
    assert any(masks.layers)
    for layer in distilled.layers:  # the masks held while the Distiller trained the wrapped copy
        if isinstance(layer, keras.layers.Conv2D) and layer.name in masks.layers:
            removed = masks.layers[layer.name].removed_out
            assert not np.any(layer.get_weights()[0][..., removed])
    with pytest.raises(InvalidArgumentError, match="distillation needs the teacher"):
        fit(teacher, pool, config, distill=1.0)


def test_the_public_api_distils_inside_the_users_fit_with_the_gate():
    from keras_models import build_edsr

    model = build_edsr(scale=2, num_blocks=1, num_features=8)
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 12, 12, 3), np.float32), rng.random((4, 24, 24, 3), np.float32)
    teacher_weights = [w.copy() for w in model.get_weights()]
    pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(target_mac=0.9, finetune_steps=2, max_iterations=2,
                                                           psnr_tolerance=50.0, ssim_tolerance=1.0))
    trainer = edgeprune.Distiller(pruner.model, teacher=model, weight=0.5)
    trainer.compile(_adam(), loss="mae")
    gate = edgeprune.QualityGatedPruning(pruner, (x[:2], y[:2]))
    trainer.fit(x, y, batch_size=2, epochs=4, shuffle=False, callbacks=[gate], verbose=0)
    assert pruner.state.iterations and pruner.state.iterations[0]["accepted"]
    assert pruner.state.mac < 1.0
    assert all(np.array_equal(a, b) for a, b in zip(teacher_weights, model.get_weights()))
