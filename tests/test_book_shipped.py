"""inr_lib.book.glue: myst-nb's glue where myst-nb is installed, a harmless no-op where it is not
(a Colab runtime installs inr_lib without the ``notebook`` extra), so chapters 0, 5 and 8 run
there too."""
from __future__ import annotations

import sys
import types

import pytest

from inr_lib import book


@pytest.fixture
def fake_myst(monkeypatch):
    """A stand-in ``myst_nb`` module that records its glue calls."""
    calls = []
    module = types.ModuleType("myst_nb")
    module.glue = lambda name, value, display=True: calls.append((name, value, display))
    monkeypatch.setitem(sys.modules, "myst_nb", module)
    return calls


def test_glue_passes_to_myst_nb(fake_myst):
    assert book.glue("ch0_psnr", 34.08) == 34.08
    assert fake_myst == [("ch0_psnr", 34.08, False)]           # not displayed by default
    book.glue("ch0_sam", 8.6, display=True)
    assert fake_myst[-1] == ("ch0_sam", 8.6, True)


def test_glue_without_myst_nb_returns_the_value(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)          # import myst_nb -> ImportError
    with pytest.raises(ImportError):
        import myst_nb  # noqa: F401
    assert book.glue("ch8_rec_psnr", 33.59) == 33.59


def test_glue_without_myst_nb_displays_when_asked(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)
    shown = []
    ipd = types.ModuleType("IPython.display")
    ipd.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython.display", ipd)
    book.glue("x", "value", display=True)
    book.glue("y", "hidden")
    assert shown == ["value"]


def test_glue_with_the_real_myst_nb_records_the_value(monkeypatch):
    """With myst-nb installed (the book build), the value is published as a glue output: a
    display bundle whose metadata names it, hidden (mime prefix) unless display=True."""
    glue_mod = pytest.importorskip("myst_nb.ext.glue")
    published = []
    monkeypatch.setattr(glue_mod, "ipy_display", lambda data, raw, metadata: published.append((data, metadata)))
    assert book.glue("ch5_card_tiled", 33.59) == 33.59
    data, metadata = published[-1]
    assert metadata["scrapbook"]["name"] == "ch5_card_tiled"
    prefix = metadata["scrapbook"]["mime_prefix"]
    assert prefix and all(k.startswith(prefix) for k in data)
    assert "33.59" in next(iter(data.values()))
