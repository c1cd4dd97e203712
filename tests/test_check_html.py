"""tools/check_html.py: the built book must not show a path of the machine that built it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("check_html", ROOT / "tools" / "check_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pages_with_machine_paths_are_reported(tmp_path, monkeypatch, capsys):
    tool = _tool()
    monkeypatch.setenv("INR_CAVE", str(tmp_path / "somewhere" / "cave"))
    html = tmp_path / "html"
    (html / "book").mkdir(parents=True)
    (html / "book" / "ok.html").write_text("<p>runs/book/quick, ../shared/data/cave, $INR_DATA/cave, "
                                         "an example path /tmp/x</p>")
    (html / "book" / "tmp.html").write_text("<pre>wrote /tmp/inr-ch00-abc123/cube.h5</pre>")
    (html / "book" / "repo.html").write_text(f"<pre>wrote {ROOT}/runs/book/x.json</pre>")
    (html / "book" / "data.html").write_text(f"<pre>{tmp_path}/somewhere/cave/balloons_ms</pre>")
    (html / "home.html").write_text(f"<pre>{Path.home()}/.cache/inr_lib/cave</pre>")
    assert tool.main([str(html)]) == 1
    err = capsys.readouterr().err
    assert "book/repo.html" in err and "book/data.html" in err and "home.html" in err
    assert "book/tmp.html" in err and "ok.html" not in err and "4 page(s)" in err


def test_a_clean_build_passes(tmp_path, capsys):
    tool = _tool()
    (tmp_path / "index.html").write_text("<p>paths relative to the repository: runs/book</p>")
    assert tool.main([str(tmp_path)]) == 0
    assert tool.main([str(tmp_path / "missing")]) == 1
