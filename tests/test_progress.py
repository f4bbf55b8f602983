"""Progress output: bars on a terminal, one plain line per stage or epoch elsewhere, nothing
with --quiet; learning-curve points go to the run's log with step = epoch."""

from __future__ import annotations

import pytest

from benchmark.ui import progress
from benchmark.ui.progress import Curve, bar, stage


@pytest.fixture(autouse=True)
def loud():
    progress.set_quiet(False)
    yield
    progress.set_quiet(False)


def _fit_like(log=lambda metrics, step: None) -> None:
    """What a method does: an encoding loop, a step without a loop, three epochs of a curve."""
    assert sum(bar(range(5), "encoding (minilm)", 5, "sentence")) == 10
    with stage("k-means of 12 entities"):
        pass
    curve = Curve("fine", 30, "micro_f1", log)
    for epoch, (loss, dev) in enumerate([(2.5, 0.1), (1.5, 0.3), (1.2, 0.25)]):
        curve.point(loss, dev)
        assert curve.done == epoch + 1
    curve.close(best_epoch=2)


def test_plain_lines_off_a_terminal(capsys):
    _fit_like()
    out, err = capsys.readouterr()
    assert out == ""
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0].startswith("encoding (minilm): 5 sentences in ")
    assert lines[1].startswith("k-means of 12 entities: ")
    assert lines[2].startswith("fine epoch 1/30: loss 2.5000, micro_f1 0.1000 (")
    assert lines[4].startswith("fine epoch 3/30: loss 1.2000, micro_f1 0.2500 (")
    assert lines[5].startswith("fine: 3 epochs in ")
    assert lines[5].endswith("kept epoch 2")
    assert len(lines) == 6


def test_bars_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(progress, "_terminal", lambda: True)
    _fit_like()
    err = capsys.readouterr().err
    assert "\r" in err  # tqdm redraws in place
    assert "encoding (minilm): 100%" in err
    assert "fine epochs" in err
    assert "loss 1.2000, micro_f1 0.2500" in err  # the last epoch in the bar's postfix
    assert "fine epoch 1/30" not in err  # no plain lines


@pytest.mark.parametrize("terminal", [False, True])
def test_quiet_prints_nothing_but_the_curve_is_still_logged(capsys, monkeypatch, terminal):
    monkeypatch.setattr(progress, "_terminal", lambda: terminal)
    progress.set_quiet(True)
    points = []
    _fit_like(lambda metrics, step: points.extend((k, v, step) for k, v in metrics.items()))
    assert capsys.readouterr() == ("", "")
    assert points[:2] == [("train/loss", 2.5, 1), ("dev/micro_f1", 0.1, 1)]
    assert points[-1] == ("best_epoch", 2.0, 0)


def test_a_stage_that_is_not_the_final_one_logs_under_its_name():
    points = []
    curve = Curve("coarse", 3, "coarse_micro_f1", lambda m, s: points.extend((k, s) for k in m), final=False)
    curve.point(0.7, None)  # an epoch without a dev score logs its loss only
    curve.point(0.5, 0.4)
    curve.close(2)
    assert points == [
        ("coarse/train/loss", 1),
        ("coarse/train/loss", 2),
        ("coarse/dev/coarse_micro_f1", 2),
        ("coarse/best_epoch", 0),
    ]


def test_a_loop_left_early_says_so(capsys):
    for i in bar(range(100), "LIME explanations", 100, "entity"):
        if i == 9:
            break
    # items 0–8 finished; the loop left while handling item 9
    assert capsys.readouterr().err.startswith("LIME explanations: stopped after 9 entities in ")


def test_a_long_loop_off_a_terminal_reports_count_rate_and_eta_while_it_runs(capsys, monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT", 0.0)
    for _ in bar(range(4), "LIME explanations", 4, "entity"):
        pass
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines[:4]] == [f"LIME explanations: {i}/4 entity" for i in range(1, 5)]
    assert "s to go)" in lines[0]
    assert lines[4].startswith("LIME explanations: 4 entities in ")
