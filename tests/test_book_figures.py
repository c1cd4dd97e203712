"""inr_lib.book.figures: the architecture diagram renders and shows the shapes inr_lib builds."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import inr_lib  # noqa: E402


def test_architecture_diagram_renders_with_the_library_shapes(tmp_path):
    from inr_lib.book import figures

    fig, drawn = figures.architecture_diagram(("paper", "small"), size=(64, 96))
    out = tmp_path / "arch.png"
    fig.savefig(out, dpi=50)
    assert out.stat().st_size > 10_000
    paper = drawn["paper"]
    assert paper["params"] == 63_545_439
    assert paper["theta"] == (1, 15_263, 16, 24)
    assert paper["widths"] == (11, 64, 64, 64, 64, 31)
    convs = [s for s in paper["stages"] if not s.get("head")]
    assert sum(s["n"] for s in convs) == 10                       # 3->64, 3 at 1/2, 64->1024, 5 deep
    assert convs[-1]["grid"] == (16, 24) and paper["stages"][-1]["cout"] == 15_263
    small_cfg = inr_lib.ModelConfig(**inr_lib.model.PRESETS["small"])
    assert drawn["small"]["theta"] == (1, small_cfg.mlp_params, 16, 24)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("(B, 15,263, 16, 24)" in t for t in texts)
