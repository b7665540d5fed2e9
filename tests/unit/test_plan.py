"""Plan then apply: check mode runs nothing, failures undo newest first."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._plan import Plan


def _plan(log, fail_at=None, undo_fails=()):
    plan = Plan()
    for step in ("a", "b", "c"):

        def do(step=step):
            if step == fail_at:
                raise StorageError(f"boom at {step}")
            log.append("do " + step)

        def undo(step=step):
            if step in undo_fails:
                raise OSError(f"cannot undo {step}")
            log.append("undo " + step)

        plan.add("step " + step, do, undo)
    return plan


@pytest.mark.parametrize(
    ("fail_at", "undo_fails", "log_after", "left"),
    [
        (None, (), ["do a", "do b", "do c"], []),
        ("a", (), [], []),
        ("c", (), ["do a", "do b", "undo b", "undo a"], []),
        ("c", ("a",), ["do a", "do b", "undo b"], ["step a (cannot undo a)"]),
    ],
)
def test_apply_and_undo(fail_at, undo_fails, log_after, left):
    log = []
    plan = _plan(log, fail_at, undo_fails)
    if fail_at is None:
        assert plan.apply(check_mode=False) == ["step a", "step b", "step c"]
    else:
        with pytest.raises(StorageError) as err:
            plan.apply(check_mode=False)
        assert err.value.left == left
        assert f"step {fail_at} failed: boom at {fail_at}" in err.value.msg
    assert log == log_after


def test_check_mode_returns_plan_and_runs_nothing():
    log = []
    assert _plan(log).apply(check_mode=True) == ["step a", "step b", "step c"]
    assert log == []


def test_write_file_records_diff_only_on_change():
    plan = Plan()
    plan.write_file("/f", "same", "same", None, None)
    assert not plan.changed
    assert plan.diffs == []
    plan.write_file("/f", "old", "new", lambda: None, lambda: None)
    assert plan.diffs == [{"before_header": "/f", "after_header": "/f", "before": "old", "after": "new"}]
    assert plan.descriptions() == ["update /f"]


def _raise_eio():
    raise OSError(5, "I/O error")


def test_mkdirs_creates_and_undoes_only_missing(tmp_path):
    (tmp_path / "a").mkdir()
    plan = Plan()
    plan.mkdirs(str(tmp_path / "a" / "b" / "c"))
    plan.add("fail", _raise_eio)
    with pytest.raises(StorageError, match="fail failed"):
        plan.apply(check_mode=False)
    assert [p.name for p in tmp_path.iterdir()] == ["a"]
    assert list((tmp_path / "a").iterdir()) == []


def test_mkdirs_shares_planned_parents(tmp_path):
    """Two steps needing the same missing parent create it once (a fresh host: no /etc/flexvdi)."""
    base = tmp_path / "etc" / "flexvdi"
    plan = Plan()
    plan.mkdirs(str(base / "credentials"), mode=0o700)
    plan.mkdirs(str(base))
    assert plan.descriptions() == [f"create directory {base / 'credentials'}"]
    plan.apply(check_mode=False)
    assert (base / "credentials").is_dir()
    assert oct((base / "credentials").stat().st_mode & 0o777) == "0o700"
    assert oct(base.stat().st_mode & 0o777) == "0o755"


def test_mkdirs_undo_removes_only_what_it_created(tmp_path):
    target = tmp_path / "a" / "b"
    plan = Plan()
    plan.mkdirs(str(target))
    (tmp_path / "a").mkdir()  # appears between plan and apply (another run)

    def boom():
        raise StorageError("boom")

    plan.add("fail", boom)
    with pytest.raises(StorageError, match="undone: create directory"):
        plan.apply(check_mode=False)
    assert (tmp_path / "a").is_dir()
    assert not target.exists()
