"""Paths timed in turns: each call of one path is followed by one of every other, after a warm-up of each."""

from shipdet.timing import timed_interleaved


def test_paths_are_timed_in_rotation_after_one_warm_up_each() -> None:
    calls: list[str] = []
    times = timed_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed ones
    assert {name: len(seconds) for name, seconds in times.items()} == {"a": 3, "b": 3}
    assert all(s >= 0 for seconds in times.values() for s in seconds)
