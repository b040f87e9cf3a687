"""Training curves (s2s-plot-curves, CurveWriter) and the training progress bar's ETA."""

from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from scripts import curves  # noqa: E402
from scripts.progress import STEP_LIMIT, TIME_LIMIT, TrainingProgress, eta  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def train_record(step: int, loss: float = 5.0) -> dict:
    """A train record with the trainer's field names (s2s/training/trainer.py _log_train)."""
    return {"kind": "train", "step": step, "epoch": 0, "loss": loss, "lr": 1e-3 * min(1, step / 20),
            "grad_norm": 1.5, "tokens_per_s": 12000.0 + step, "elapsed_s": step * 0.5}


def valid_record(step: int, loss: float = 4.0, improved: bool = True) -> dict:
    """A valid record with the trainer's field names (_record_validation + validate)."""
    return {"kind": "valid", "step": step, "valid_loss": loss, "valid_ppl": 2.718 ** loss,
            "bleu": 10.0 + step / 10, "chrf": 30.0 + step / 10, "exact": 1.0,
            "improved": improved, "elapsed_s": step * 0.5}


def make_run(folder: Path, records: list[dict], tail: str = "") -> Path:
    folder.mkdir(parents=True)
    text = "".join(json.dumps(record) + "\n" for record in records)
    (folder / "metrics.jsonl").write_text(text + tail, encoding="utf-8")
    return folder


def full_run(folder: Path, steps: int = 100) -> Path:
    records = []
    for step in range(10, steps + 1, 10):
        records.append(train_record(step, loss=6.0 - step / 50))
        if step % 50 == 0:
            records.append(valid_record(step, loss=5.0 - step / 50))
    return make_run(folder, records)


def panel(figure, title: str):
    (ax,) = [ax for ax in figure.axes if ax.get_title() == title]
    return ax


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    return width, height


def test_plot_of_a_run_folder_writes_a_valid_png(tmp_path):
    import matplotlib.image

    run = full_run(tmp_path / "run")
    out = curves.plot_runs([run], tmp_path / "plots" / "curves.png")
    assert out == tmp_path / "plots" / "curves.png"
    assert out.stat().st_size > 0
    width, height = png_size(out)
    assert (width, height) == (1200, 1100)
    assert matplotlib.image.imread(out).shape[:2] == (height, width)
    assert [p.name for p in out.parent.iterdir()] == ["curves.png"]  # no temp file left


def test_png_gets_the_mode_a_plain_file_would(tmp_path):
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    out = curves.plot_runs([full_run(tmp_path / "run")], tmp_path / "c.png")
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_failed_save_keeps_the_old_png_and_leaves_no_temp_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    run = full_run(tmp_path / "run")
    out = curves.plot_runs([run], tmp_path / "plots" / "c.png")
    before = out.read_bytes()

    def broken_savefig(self, handle, **kwargs):
        handle.write(b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        curves.plot_runs([run], out)
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["c.png"]


def test_two_runs_are_overlaid_with_a_legend(tmp_path):
    first, second = full_run(tmp_path / "a"), full_run(tmp_path / "b", steps=50)
    figure = curves.make_figure([curves.RunCurves.from_run_dir(first, "baseline"),
                                 curves.RunCurves.from_run_dir(second, "deeper")])
    assert [line.get_label() for line in panel(figure, curves.BLEU).lines] == [
        "baseline", "deeper"]
    assert {line.get_label() for line in panel(figure, curves.LOSS).lines} == {
        "baseline training", "baseline validation", "deeper training", "deeper validation"}
    legends = [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
    texts = {text.get_text() for legend in legends for text in legend.get_texts()}
    assert {"baseline", "deeper"} <= texts
    assert len(panel(figure, curves.THROUGHPUT).lines[0].get_xdata()) == 10


def test_truncated_last_line_is_skipped(tmp_path):
    run = make_run(tmp_path / "run", [train_record(10), valid_record(10)],
                   tail='{"kind": "train", "step": 20, "lo')
    run_curves = curves.RunCurves.from_run_dir(run)
    assert run_curves.train_step == [10.0] and run_curves.valid_step == [10.0]
    assert png_size(curves.plot_runs([run], tmp_path / "c.png"))[0] > 0


def test_empty_run_draws_no_data_panels(tmp_path):
    run = make_run(tmp_path / "run", [])
    figure = curves.make_figure([curves.RunCurves.from_run_dir(run)])
    for title in curves.PANELS:
        ax = panel(figure, title)
        assert not ax.lines
        assert [text.get_text() for text in ax.texts] == [curves.NO_DATA]
    assert png_size(curves.plot_runs([run], tmp_path / "c.png"))[0] > 0


def test_run_without_validation_says_no_data_in_validation_panels_only(tmp_path):
    run = make_run(tmp_path / "run", [train_record(10), train_record(20)])
    figure = curves.make_figure([curves.RunCurves.from_run_dir(run)])
    assert [text.get_text() for text in panel(figure, curves.BLEU).texts] == [curves.NO_DATA]
    assert not panel(figure, curves.LR).texts and panel(figure, curves.LR).lines


def test_curve_writer_redraws_on_valid_events_only(tmp_path):
    run = full_run(tmp_path / "run")
    writer = curves.CurveWriter(run)
    png = run / curves.CURVES_FILE
    for event in ({"kind": "resume", "step": 10}, train_record(60),
                  {"kind": "stop", "step": 60, "reason": "max_steps"}):
        assert writer(event) is None
    assert writer.redraws == 0 and not png.exists()
    assert writer(valid_record(50)) is None
    assert writer.redraws == 1 and png_size(png)[0] > 0


def test_curve_writer_failure_warns_once_and_does_not_raise(tmp_path):
    warnings = []
    writer = curves.CurveWriter(tmp_path / "missing", warn=warnings.append)
    first, second = writer(valid_record(10)), writer(valid_record(20))
    assert isinstance(first, curves.CurvesError) and isinstance(second, curves.CurvesError)
    assert writer.failures == 2 and writer.last_error is second
    assert len(warnings) == 1 and "training curves" in warnings[0]


def test_curve_writer_without_tensorboard_package_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import -> ImportError
    with pytest.raises(RuntimeError, match="pip install tensorboard"):
        curves.CurveWriter(tmp_path, tensorboard=True)


def test_curve_writer_logs_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    run = full_run(tmp_path / "run")
    writer = curves.CurveWriter(run, tensorboard=True)
    assert writer(train_record(10)) is None
    assert writer(valid_record(10)) is None
    writer.close()
    assert list((run / curves.TENSORBOARD_DIR).glob("events.out.tfevents.*"))


def test_cli_missing_folder_exits_2(tmp_path, capsys):
    assert curves.main([str(tmp_path / "nope"), "-o", str(tmp_path / "c.png")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()


def test_cli_folder_without_metrics_exits_2(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert curves.main([str(tmp_path / "run"), "-o", str(tmp_path / "c.png")]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err


def test_cli_compares_runs_with_labels(tmp_path):
    first, second = full_run(tmp_path / "a"), full_run(tmp_path / "b")
    out = tmp_path / "compare.png"
    assert curves.main([str(first), str(second), "-o", str(out),
                        "--label", "one", "--label", "two"]) == 0
    assert png_size(out)[0] > 0


def test_eta_for_a_time_only_limit_is_the_time_left():
    left = eta(step=500, elapsed_s=600.0, max_steps=0, max_minutes=30, steps_per_s=None)
    assert left is not None and left.limit == TIME_LIMIT and left.seconds == pytest.approx(1200)
    assert str(left) == "ETA 20:00 (time limit)"


def test_eta_takes_the_limit_that_comes_first():
    by_steps = eta(step=100, elapsed_s=100.0, max_steps=200, max_minutes=60, steps_per_s=1.0)
    assert by_steps.limit == STEP_LIMIT and by_steps.seconds == pytest.approx(100)
    by_time = eta(step=100, elapsed_s=100.0, max_steps=10_000, max_minutes=5, steps_per_s=1.0)
    assert by_time.limit == TIME_LIMIT and by_time.seconds == pytest.approx(200)
    assert eta(step=100, elapsed_s=100.0, max_steps=200, steps_per_s=None) is None
    assert eta(step=100, elapsed_s=100.0) is None


def test_training_progress_counts_down_a_time_limit_between_events():
    now = [1000.0]
    out = io.StringIO()
    progress = TrainingProgress(max_steps=0, max_minutes=10, enabled=False,
                                start_lines=["corpus a: 100 pairs"], out=out,
                                clock=lambda: now[0])
    progress(train_record(100))  # elapsed_s 50
    now[0] += 30.0
    left = progress.eta()
    assert left.limit == TIME_LIMIT and left.seconds == pytest.approx(600 - 50 - 30)
    assert progress.status().startswith("trained 01:20, ETA 08:40 (time limit), loss 5.000")
    progress(valid_record(100))
    progress({"kind": "stop", "step": 100, "reason": "max_minutes"})
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "corpus a: 100 pairs"
    assert lines[1].startswith("step 100: valid loss 4.000") and "lr 1.00e-03" in lines[1]
    assert lines[1].endswith("(best)")
    assert lines[2] == "stopped at step 100 after 00:50 of training: max_minutes"


def test_training_progress_after_resume_measures_speed_from_the_next_events():
    progress = TrainingProgress(max_steps=1000, enabled=False, out=io.StringIO(),
                                clock=lambda: 0.0)
    progress({"kind": "resume", "step": 500})
    assert progress.eta() is None
    progress(train_record(600))  # elapsed 300 s: the anchor, no speed yet
    assert progress.eta() is None
    progress(train_record(700))  # 100 steps in 50 s
    left = progress.eta()
    assert left.limit == STEP_LIMIT and left.seconds == pytest.approx(150)
