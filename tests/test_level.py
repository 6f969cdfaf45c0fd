import pytest

from edgeprune.core.errors import InvalidArgumentError
from edgeprune.prune.level import LevelPolicy, LevelState


def test_accept_raises_and_reject_rolls_back_with_a_smaller_step():
    policy = LevelPolicy(initial_step=0.2, min_step=0.05, shrink=0.5)
    s = policy.start()
    assert policy.propose(s) == pytest.approx(0.2)
    s = policy.update(s, accepted=True)
    assert (s.accepted, policy.propose(s)) == (pytest.approx(0.2), pytest.approx(0.4))
    s = policy.update(s, accepted=False)  # 0.4 broke the tolerance: back to 0.2, step 0.1
    assert (s.accepted, s.step, policy.propose(s)) == (pytest.approx(0.2), pytest.approx(0.1), pytest.approx(0.3))
    s = policy.update(s, accepted=False)
    assert s.step == pytest.approx(0.05) and not policy.done(s)
    s = policy.update(s, accepted=False)
    assert s.step == pytest.approx(0.025) and policy.done(s) and s.accepted == pytest.approx(0.2)


def test_target_and_iteration_limits_stop_the_loop():
    policy = LevelPolicy(max_iterations=3)
    s = policy.update(policy.start(), accepted=True, target_met=True)
    assert policy.done(s)
    s = policy.start()
    for _ in range(3):
        s = policy.update(s, accepted=True)
    assert policy.done(s) and s.iteration == 3


def test_state_round_trips_for_resume():
    policy = LevelPolicy()
    s = policy.update(policy.update(policy.start(), True), False)
    assert LevelState.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("kwargs", [{"initial_step": 0}, {"min_step": 1.0, "initial_step": 0.5}, {"shrink": 1.0},
                                    {"grow": 0.5}, {"max_iterations": 0}])
def test_bad_policies(kwargs):
    with pytest.raises(InvalidArgumentError):
        LevelPolicy(**kwargs)
