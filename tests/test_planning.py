"""The guards that run before anything is spent: budget, output directory, storage URL."""

from __future__ import annotations

import pytest

from soraflow.errors import BudgetExceededError, InvalidBudgetError, StorageError
from soraflow.planning import check_budget, load_plan, resolve_paths
from soraflow.settings import Settings


@pytest.fixture
def plan(lighthouse):
    return load_plan(str(lighthouse), None, settings=Settings())


@pytest.mark.parametrize("budget", [float("nan"), float("inf"), float("-inf"), -3.0, True, "5"])
def test_a_budget_that_is_not_a_finite_amount_is_refused(plan, budget):
    with pytest.raises(InvalidBudgetError, match="finite amount of USD, 0 or more"):
        check_budget(plan, budget)


def test_a_budget_is_compared_to_the_cent(plan):
    check_budget(plan, 2.80)
    check_budget(plan, None)
    with pytest.raises(BudgetExceededError, match=r"\$2\.80 exceeds the budget \$2\.79"):
        check_budget(plan, 2.79)


def test_output_directories_the_system_cannot_hold_are_refused(tmp_path):
    settings = Settings()
    with pytest.raises(StorageError, match="at most 4096"):
        resolve_paths("d/" * 2100, None, settings)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(StorageError, match="exists and is not a directory"):
        resolve_paths(tmp_path / "a-file", None, settings)


def test_storage_is_checked_with_the_output_directory(tmp_path):
    out, url = resolve_paths(tmp_path / "out", None, Settings())
    assert (out, url) == (tmp_path / "out", (tmp_path / "out").as_uri())
    with pytest.raises(StorageError, match="at most 255"):
        resolve_paths(tmp_path / "out", "s3://bucket-ok/" + "p" * 300, Settings())
