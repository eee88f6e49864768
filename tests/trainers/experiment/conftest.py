import gymnasium as gym
import pytest


@pytest.fixture(autouse=True)
def _forget_ids_a_run_registers():
    """A recipe for an env outside the catalogue registers its Dream-* id in the process (runner.ensure_registered);
    forget it after the test, so other tests in the same worker see only what gym-dream registers."""
    before = set(gym.registry)
    yield
    for env_id in set(gym.registry) - before:
        gym.registry.pop(env_id, None)
