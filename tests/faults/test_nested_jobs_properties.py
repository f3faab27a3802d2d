"""Properties of the kernel's nested job input (`qjm_jupyter.jobs.flatten`/`registrations`).

tests/kernel/test_jobs.py pins examples; these generate arbitrary nestings of job ids
with notify_status trees of the same shape (or one flat list for all) and check what
must hold for any of them: every job comes out once, in input order, at the position
it was found, with its own statuses normalized; a mismatched shape is a ValueError
naming a position, never something else.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qjm_jupyter.jobs import flatten, registrations
from qjm_jupyter.statuses import ALIASES, STATUSES, normalize_statuses

EXAMPLES = int(os.environ.get("QJM_FUZZ_EXAMPLES", "150"))
SPELLINGS = [*STATUSES, *ALIASES, *(s.lower() for s in STATUSES), "Completed", "Failed", "canceled"]

job_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
trees = st.recursive(job_ids, lambda kids: st.lists(kids, max_size=4), max_leaves=20)
status_lists = st.lists(st.sampled_from(SPELLINGS), min_size=1, max_size=4)


def leaves_of(tree: Any, path: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], Any]]:
    if isinstance(tree, list):
        return [leaf for i, child in enumerate(tree) for leaf in leaves_of(child, (*path, i))]
    return [(path, tree)]


def at(tree: Any, path: tuple[int, ...]) -> Any:
    for i in path:
        tree = tree[i]
    return tree


@st.composite
def tree_with_notify(draw: st.DrawFn) -> tuple[Any, Any]:
    """A job tree and a notify tree of exactly its shape (a status list per job)."""
    tree = draw(trees)

    def shape(node: Any) -> Any:
        if isinstance(node, list):
            return [shape(child) for child in node]
        return draw(status_lists)

    return tree, shape(tree)


@settings(max_examples=EXAMPLES, deadline=None)
@given(trees)
def test_every_job_once_in_order_at_its_position(tree: Any) -> None:
    leaves = flatten(tree)
    assert [(leaf.path, leaf.job) for leaf in leaves] == leaves_of(tree)
    for leaf in leaves:
        assert at(tree, leaf.path) is leaf.job
        assert leaf.notify is None
        assert leaf.where == "".join(f"[{i}]" for i in leaf.path)


@settings(max_examples=EXAMPLES, deadline=None)
@given(tree_with_notify())
def test_same_shape_notify_goes_to_its_own_job(pair: tuple[Any, Any]) -> None:
    tree, notify = pair
    leaves = flatten(tree, notify)
    assert [leaf.path for leaf in leaves] == [p for p, _ in leaves_of(tree)]
    for leaf in leaves:
        assert leaf.notify == normalize_statuses(at(notify, leaf.path))
    if leaves and not isinstance(tree, str):
        records = registrations(leaves, group="g")
        assert [r["job_id"] for r in records] == [leaf.job.strip() for leaf in leaves]
        assert [r["notify_status"] for r in records] == [leaf.notify for leaf in leaves]


@settings(max_examples=EXAMPLES, deadline=None)
@given(trees, status_lists)
def test_one_flat_list_applies_to_every_job(tree: Any, statuses: list[str]) -> None:
    expected = normalize_statuses(statuses)
    assert all(leaf.notify == expected for leaf in flatten(tree, statuses))


@settings(max_examples=EXAMPLES, deadline=None)
@given(tree_with_notify(), st.data())
def test_a_wrong_shape_is_a_value_error_naming_a_position(pair: tuple[Any, Any], data: st.DataObject) -> None:
    tree, notify = pair
    lists = [p for p, _ in _lists_of(tree) if at(notify, p)]  # an empty level has nothing to mismatch
    if not lists:
        return
    path = data.draw(st.sampled_from(lists))
    broken = _copy(notify)
    at(broken, path).append(["DONE"])  # one entry more than there are jobs at that level
    with pytest.raises(ValueError, match=r"notify_status(\[\d+\])*"):
        flatten(tree, broken)


def _lists_of(tree: Any, path: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], Any]]:
    if not isinstance(tree, list):
        return []
    return [(path, tree), *(x for i, child in enumerate(tree) for x in _lists_of(child, (*path, i)))]


def _copy(node: Any) -> Any:
    return [_copy(c) for c in node] if isinstance(node, list) else node
