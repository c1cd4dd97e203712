"""What a chapter shows: HTML tables, and the sentences with this run's numbers in them
(:func:`glue` records a value, :func:`say` displays a Markdown sentence filled in with the
recorded values, the same text in Colab, Jupyter and the built book)."""
from __future__ import annotations

from typing import Any


def table(header: list, rows: list, caption: str = "") -> str:
    """Display a small HTML table (a table in the built book); returns its HTML.

    Cells are written as given (``&uarr;`` or ``<b>`` work); each is passed through ``str``.
    Wide tables scroll sideways in the book instead of being cut (``book/_static/book.css``).
    """
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    html = (f"<div class='inr-table'><table>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")
    try:
        from IPython.display import HTML, display
    except ImportError:
        print(html)
    else:
        display(HTML(html))
    return html


# ----------------------------------------------------------------------------- numbers in the prose

#: the values :func:`glue` recorded in this kernel, by name (what :func:`say` fills in)
GLUED: dict[str, Any] = {}


def say(text: str, **values: Any) -> str:
    """Display ``text`` as Markdown, filled in with this run's values; returns the Markdown.

    ``text`` is a :meth:`str.format` template: ``{name}`` or ``{name:.2f}`` takes ``values``
    or else what :func:`glue` recorded under that name (a glued ``IPython.display.Markdown``
    gives its text). The sentence is a display output, so Colab, Jupyter and the built book
    (myst-nb renders Markdown outputs) show the same text; outside IPython it is printed.

    Raises:
        KeyError: a name that was neither given nor glued (run the cell that computes it first).
    """
    known = {k: getattr(v, "data", v) for k, v in {**GLUED, **values}.items()}
    try:
        md = text.strip().format(**known)
    except KeyError as e:
        raise KeyError(f"book.say: no value named {e.args[0]!r}; run the cell that computes "
                       f"it first (known: {', '.join(sorted(known)) or 'none'})") from None
    try:
        from IPython.display import Markdown, display
    except ImportError:
        print(md)
    else:
        display(Markdown(md))
    return md




def glue(name: str, value: Any, display: bool = False) -> Any:
    """Record ``value`` under ``name`` for the sentences :func:`say` prints (and for myst-nb's
    ``glue`` roles, as ``myst_nb.glue`` does); returns ``value``.

    Where myst-nb is not installed (a Colab runtime installs inr_lib without the ``notebook``
    extra) nothing is recorded, since only the built book reads glued values, and a chapter
    runs the same; with ``display=True`` the value is then shown with IPython's ``display``.

    Args:
        name: the key the prose names (unique within the chapter).
        value: a number, a string, or an IPython display object such as ``Markdown``.
        display: also show the value in the cell's output.
    """
    GLUED[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show
            show(value)
        return value
    myst_glue(name, value, display=display)
    return value
