"""The CLI tests damage the same real checkpoint as the training tests."""

from tests.training.conftest import ckpt_copy, tiny_checkpoint  # noqa: F401  (fixtures)
