"""The table `attn gradcheck` runs (commands/gradcheck_cases.py), one test per case, on both
CPU backends and on the strict device: a case broken on any of them fails its own test.
(tests/cuda/test_cuda_gradcheck.py runs its op cases on cuda.)"""

import pytest

from commands import gradcheck_cases

CASES = gradcheck_cases.CASES


def ids(cases):
    return [f"{c.op}-{c.label}" for c in cases]


def assert_case_passes(case, device):
    worst, error = gradcheck_cases.check(case, device)
    assert error is None, f"{case.op} {case.label}: {error}"
    assert worst >= 0.0  # a number for the table (gradcheck's own tolerances passed it)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_every_case_of_the_gradcheck_table_passes(on, case):
    assert_case_passes(case, on.device)


def test_the_table_names_every_op_once_in_order():
    names = gradcheck_cases.op_names()
    assert len(names) == len(set(names)) == len({c.op for c in CASES})
    assert names[0] == CASES[0].op and "attention" in names and "GRU" in names
