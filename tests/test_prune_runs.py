"""The steps behind the table scripts (sdk.experiments.prune_steps): each step runs once and is read back
afterwards, a failed step is a one-line error pointing at its log, and names keep distinct runs apart."""
import json

import pytest

from sdk.errors import SDKError
from sdk.experiments.prune_steps import Recipe, run_logged


def test_steps_run_once_and_are_read_back(tmp_path):
    calls = []
    r = Recipe("w.pt", "data", tmp_path, epochs=3, log=lambda m: None)
    first = r.step("a", lambda: calls.append(1) or {"x": 1})
    again = r.step("a", lambda: calls.append(2) or {"x": 2})
    assert calls == [1] and first["x"] == again["x"] == 1 and "wall_s" in first
    assert json.loads((tmp_path / "a" / "step.json").read_text())["x"] == 1
    r.cached_only = True
    with pytest.raises(LookupError):
        r.step("b", lambda: {"x": 3})
    assert not (tmp_path / "b").exists()


def test_run_names_keep_recipes_apart(tmp_path):
    r = Recipe("w.pt", "data", tmp_path, epochs=20, level=0.5)
    assert r.finetune_name("fmc") == "fmc50-ft20"
    assert r.finetune_name("fmc", "t.pt") == "fmc50-kd20"
    assert r.finetune_name("l1", "t.pt", 0.25) == "l150-kd20-w0.25"


def test_a_failing_step_names_its_log(tmp_path):
    pytest.importorskip("torch")
    from sdk.prune.api import prune_checkpoint

    log = tmp_path / "logs" / "prune.log"
    with pytest.raises(SDKError, match=r"^prune l150: .*missing\.pt.* \(see .*prune\.log\)$"):
        run_logged(lambda: prune_checkpoint(tmp_path / "missing.pt", tmp_path / "p.pt", "l1"), log, "prune l150")
    assert "missing.pt" in log.read_text() and not (tmp_path / "p.pt").exists()
