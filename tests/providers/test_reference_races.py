"""The reference backend under concurrent runs: threads and processes on one file."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from providers.reference import ReferenceProvider
from reconciler.errors import ConflictError, NotFound
from reconciler.plan import Action, Change
from reconciler.provider import Scope
from tests.factories import make_rule, make_segment
from tests.providers.reference_support import (
    change,
    create_list,
    create_segment,
    opened,
    segment_names,
)

# -- concurrent runs -------------------------------------------------------------------

RACERS = 2
SEGMENTS = 25


def outcome(provider: ReferenceProvider, one: Change) -> str:
    try:
        provider.apply(one)
    except ConflictError:
        return "conflict"
    except NotFound:
        return "not_found"
    return "applied"


Work = Callable[[ReferenceProvider, int], list[Change]]


def race(tmp_path: Path, work: Work) -> list[list[str]]:
    """Each thread, with its own provider on the same file, applies its list of changes;
    the threads start every change at the same moment. Returns each thread's outcomes."""
    barrier = threading.Barrier(RACERS)
    results: list[list[str]] = [[] for _ in range(RACERS)]

    def run(index: int) -> None:
        with opened(tmp_path) as provider:
            provider.fetch(Scope())  # open and migrate before the start line
            for one in work(provider, index):
                barrier.wait()
                results[index].append(outcome(provider, one))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_consistent(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        duplicates = raw.execute(
            "SELECT list_id, name FROM segments GROUP BY list_id, name HAVING count(*) > 1"
        ).fetchall()
        assert duplicates == []
    raw.close()


def winners(results: list[list[str]]) -> list[list[str]]:
    """Per change, the outcomes of all racers, sorted."""
    return [sorted(column) for column in zip(*results, strict=True)]


def test_reference_racing_creates_have_one_winner_each(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)

    def work(provider: ReferenceProvider, index: int) -> list[Change]:
        return [
            change(
                Action.CREATE_SEGMENT,
                after=make_segment(f"S{n}", make_rule("by", "equals", index)),
            )
            for n in range(SEGMENTS)
        ]

    results = race(tmp_path, work)

    assert winners(results) == [["applied", "conflict"]] * SEGMENTS
    assert_consistent(tmp_path / "state.db")
    with opened(tmp_path) as provider:
        (live_list,) = provider.fetch(Scope()).lists
    stored = {segment.name: segment.rules for segment in live_list.segments}
    for n in range(SEGMENTS):
        (winner,) = [i for i in range(RACERS) if results[i][n] == "applied"]
        assert stored[f"S{n}"] == (make_rule("by", "equals", winner),)


def test_reference_racing_updates_and_deletes_have_one_winner_each(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)
        for n in range(SEGMENTS):
            create_segment(provider, make_segment(f"S{n}"))
        (planned,) = provider.fetch(Scope()).lists

    def work(provider: ReferenceProvider, index: int) -> list[Change]:
        if index == 1:
            return [change(Action.DELETE_SEGMENT, before=before) for before in planned.segments]
        return [
            change(
                Action.UPDATE_SEGMENT,
                before=before,
                after=make_segment(f"{before.name} renamed", make_rule("by", "equals", index)),
            )
            for before in planned.segments
        ]

    updates, deletes = race(tmp_path, work)

    for updated, deleted in zip(updates, deletes, strict=True):
        assert sorted([updated, deleted]) in (["applied", "conflict"], ["applied", "not_found"])
    assert_consistent(tmp_path / "state.db")
    with opened(tmp_path) as provider:
        names = segment_names(provider)
    assert len(names) == updates.count("applied")
    assert all(name.endswith(" renamed") for name in names)


def create_in_process(base_dir: str, index: int, barrier: Any, queue: Any) -> None:
    """A second ``apply`` run in its own process: create S0..S9, report each outcome."""
    with opened(Path(base_dir)) as provider:
        provider.fetch(Scope())
        for n in range(10):
            segment = make_segment(f"S{n}", make_rule("by", "equals", index))
            barrier.wait()
            queue.put((index, n, outcome(provider, change(Action.CREATE_SEGMENT, after=segment))))


def test_reference_racing_processes_have_one_winner_each(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(RACERS), context.Queue()
    processes = [
        context.Process(target=create_in_process, args=(str(tmp_path), i, barrier, queue))
        for i in range(RACERS)
    ]
    for process in processes:
        process.start()
    reports = [queue.get(timeout=60) for _ in range(10 * RACERS)]
    for process in processes:
        process.join(timeout=60)

    assert [process.exitcode for process in processes] == [0] * RACERS
    by_segment: dict[int, list[str]] = {}
    for _, n, result in reports:
        by_segment.setdefault(n, []).append(result)
    assert {n: sorted(results) for n, results in by_segment.items()} == {
        n: ["applied", "conflict"] for n in range(10)
    }
    assert_consistent(tmp_path / "state.db")
