"""Training curves of one run folder (its ``metrics.jsonl``) as a PNG: loss per step beside the
evaluated metrics (probe accuracy, validation / test accuracy or mIoU) per step."""

from __future__ import annotations

from pathlib import Path

from pointsd.errors import PointSDError
from pointsd.utils import atomic, json_io

#: Suffixes of the evaluated values plotted in the right panel (``val_acc``, ``probe_test_acc``, ``test_instance_miou`` …).
EVAL_SUFFIXES = ("acc", "miou")


def read_curves(run: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``run/metrics.jsonl`` → ``{name: [(step, value), ...]}`` for ``loss`` and every evaluated value."""
    path = Path(run) / "metrics.jsonl"
    try:
        text = path.read_text()
    except OSError as err:
        raise PointSDError(f"{path}: cannot read the run's metrics log ({err.strerror})") from None
    curves: dict[str, list[tuple[int, float]]] = {}
    for record in json_io.parse_json_lines(text, path):
        for name, value in record.items():
            if (name == "loss" or name.endswith(EVAL_SUFFIXES)) and isinstance(value, (int, float)):
                curves.setdefault(name, []).append((int(record["step"]), float(value)))
    if "loss" not in curves:
        raise PointSDError(f"{path}: no loss values to plot")
    return curves


def figure_name(run: str | Path) -> str:
    """``runs/finetune/scan_objbg`` → ``finetune_scan_objbg.png`` (the path below ``runs/``, joined)."""
    parts = Path(run).parts
    parts = parts[parts.index("runs") + 1:] if "runs" in parts else parts[-2:]
    return "_".join(parts) + ".png"


def plot_run(run: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/<figure_name(run)>``: loss per step (left), evaluated values per step (right)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    curves = read_curves(run)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps, values = zip(*curves.pop("loss"))
    left.plot(steps, values, lw=1)
    left.set(xlabel="step", ylabel="training loss", title="loss")
    for name, points in sorted(curves.items()):
        xs, ys = zip(*points)
        right.plot(xs, ys, marker="o", ms=3, lw=1, label=name)
    right.set(xlabel="step", ylabel="%", title="evaluation")
    if curves:
        right.legend(fontsize=8)
    fig.suptitle(str(run), fontsize=10)
    fig.tight_layout()
    out = Path(out_dir) / figure_name(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return out
