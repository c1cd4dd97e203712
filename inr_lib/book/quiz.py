"""Concept checks: short auto-checked questions at the end of the concept chapters (1-5).

A question is stored **without its answer**: only a SHA-256 digest of the answer (salted with
the question's id) and, optionally, an explanation encrypted with a key derived from the answer.
So the page source, the notebook and this module never show the answer; the explanation
appears once the right answer is entered.

* ``quiz.ask(...)`` shows a question: an ipywidgets form in Jupyter and Colab; in the built
  book (static HTML) a small HTML form whose script checks the answer in the browser (Web
  Crypto SHA-256, no server). Nothing waits for input, so chapters run unattended (nbval, the
  book build).
* ``quiz.check(qid, answer)``: the plain-function way, anywhere (a terminal, a script, a
  notebook without widgets): prints whether ``answer`` is right, and the explanation if it is.
* ``quiz.seal(qid, answer, ...)``: for authors: the ``digest`` and ``explain`` strings of a
  new question (run it once in a scratch session; never commit the answer).

Answers are checked exactly: a multiple-choice question by the index of the choice (``0``,
``1``, ... or the letter ``"a"``, ``"b"``, ... or the choice's text); a numeric question after
rounding to its ``decimals`` (so ask for "to one decimal" or for whole numbers).
"""
from __future__ import annotations

import base64
import hashlib
import html
import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["Question", "ask", "check", "is_correct", "seal", "registered", "results", "plain", "widget",
           "html_form"]


@dataclass
class Question:
    qid: str
    text: str
    digest: str
    choices: Sequence[str] | None = None
    decimals: int = 0
    unit: str = ""
    explain: str = ""                     # base64 of the explanation, encrypted with the answer
    answered: bool | None = field(default=None, compare=False)

    @property
    def numeric(self) -> bool:
        return not self.choices


_REGISTRY: dict[str, Question] = {}


# --------------------------------------------------------------------------- the hashing
def _canonical(q: Question | None, answer, *, choices=None, decimals: int = 0) -> str:
    """The answer as the string that is hashed: ``"choice:2"`` or ``"12.5"``."""
    choices = q.choices if q is not None else choices
    decimals = q.decimals if q is not None else decimals
    if choices:
        if isinstance(answer, bool):
            raise ValueError("answer with the number or letter of a choice")
        if isinstance(answer, int):
            index = answer
        elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha():
            index = ord(answer.strip().lower()) - ord("a")
        elif isinstance(answer, str) and answer.strip() in [c.strip() for c in choices]:
            index = [c.strip() for c in choices].index(answer.strip())
        elif isinstance(answer, str) and answer.strip().isdigit():
            index = int(answer.strip())
        else:
            raise ValueError(f"answer with the number (0-{len(choices) - 1}) or letter of a choice")
        if not 0 <= index < len(choices):
            raise ValueError(f"there are {len(choices)} choices (0-{len(choices) - 1})")
        return f"choice:{index}"
    value = float(str(answer).replace(",", "").strip()) if isinstance(answer, str) else float(answer)
    text = f"{round(value, decimals):.{decimals}f}"
    return "0" if text.strip("-0.") == "" and decimals == 0 else text


def _digest(qid: str, canonical: str) -> str:
    return hashlib.sha256(f"check|{qid}|{canonical}".encode()).hexdigest()


def _keystream(qid: str, canonical: str, n: int) -> bytes:
    out, block = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"explain|{qid}|{canonical}|{block}".encode()).digest()
        block += 1
    return out[:n]


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, key))


def seal(qid: str, answer: object, explanation: str = "", *, choices: Sequence[str] | None = None,
         decimals: int = 0) -> dict:
    """For authors: ``{"digest": ..., "explain": ...}`` for a new question (keep the answer out
    of the notebook: paste only these two strings)."""
    canonical = _canonical(None, answer, choices=choices, decimals=decimals)
    data = explanation.encode()
    return {"digest": _digest(qid, canonical),
            "explain": base64.b64encode(_xor(data, _keystream(qid, canonical, len(data)))).decode()}


def _open(q: Question, canonical: str) -> str:
    data = base64.b64decode(q.explain) if q.explain else b""
    return _xor(data, _keystream(q.qid, canonical, len(data))).decode(errors="replace")


# --------------------------------------------------------------------------- checking
def is_correct(qid: str, answer: object) -> bool:
    q = _lookup(qid)
    return _digest(qid, _canonical(q, answer)) == q.digest


def check(qid: str, answer: object) -> bool:
    """Check ``answer`` for question ``qid`` (shown before with :func:`ask`); prints the verdict
    and, when right, the explanation. Returns True or False."""
    q = _lookup(qid)
    try:
        canonical = _canonical(q, answer)
    except ValueError as e:
        print(f"{qid}: {e}")
        return False
    ok = _digest(qid, canonical) == q.digest
    q.answered = ok or bool(q.answered)
    if ok:
        print(f"{qid}: correct." + (f" {_open(q, canonical)}" if q.explain else ""))
    else:
        print(f"{qid}: not yet, try again" + (" (round to "
              f"{q.decimals} decimals)" if q.numeric and q.decimals else "") + ".")
    return ok


def _lookup(qid: str) -> Question:
    if qid not in _REGISTRY:
        raise KeyError(f"no question {qid!r}: run the cell that asks it first (known: {sorted(_REGISTRY)})")
    return _REGISTRY[qid]


def registered() -> dict[str, Question]:
    """The questions asked so far in this session, by id."""
    return dict(_REGISTRY)


def results() -> str:
    """One line: how many of the questions asked in this session were answered right."""
    done = [q.qid for q in _REGISTRY.values() if q.answered]
    listed = f": {', '.join(done)}" if done else ""
    return f"{len(done)} of {len(_REGISTRY)} concept checks answered correctly" + listed


# --------------------------------------------------------------------------- showing
def ask(qid: str, text: str, *, digest: str, choices: Sequence[str] | None = None, decimals: int = 0,
        unit: str = "", explain: str = "", show: bool = True) -> Question:
    """Register a question and show it (an ipywidgets form in Jupyter/Colab, an HTML form in
    the built book). Returns the :class:`Question`."""
    q = Question(qid, text, digest, list(choices) if choices else None, decimals, unit, explain)
    _REGISTRY[qid] = q
    if show:
        _show(q)
    return q


def _interactive() -> bool:
    """A live notebook front end with widgets (Colab, or a Jupyter server's kernel), not a
    batch execution (the book build, nbval)."""
    if importlib.util.find_spec("ipywidgets") is None:    # installed? (without importing it)
        return False
    return "google.colab" in sys.modules or bool(os.environ.get("JPY_SESSION_NAME"))


def _show(q: Question) -> None:
    try:
        import IPython.display
    except ImportError:
        print(plain(q))
        return
    if IPython.get_ipython() is None:
        print(plain(q))
        return
    if _interactive():
        IPython.display.display(widget(q))
    else:
        IPython.display.display({"text/html": html_form(q), "text/plain": plain(q)}, raw=True)


def plain(q: Question) -> str:
    lines = [f"[{q.qid}] {q.text}"]
    if q.choices:
        lines += [f"  ({chr(ord('a') + i)}) {c}" for i, c in enumerate(q.choices)]
    else:
        lines.append(f"  (a number{f' in {q.unit}' if q.unit else ''}"
                     f"{f', {q.decimals} decimals' if q.decimals else ''})")
    lines.append(f'  answer with: quiz.check("{q.qid}", YOUR_ANSWER)')
    return "\n".join(lines)


def widget(q: Question) -> Any:
    """The ipywidgets form of a question (Jupyter, Colab)."""
    import ipywidgets as w

    title = w.HTML(f"<b>Concept check {html.escape(q.qid)}.</b> {html.escape(q.text)}")
    if q.choices:
        entry = w.RadioButtons(options=[(c, i) for i, c in enumerate(q.choices)], value=None,
                               layout=w.Layout(width="max-content"))
    else:
        entry = w.Text(placeholder=f"a number{f' in {q.unit}' if q.unit else ''}")
    button = w.Button(description="Check", button_style="primary")
    out = w.Output()

    def on_click(_):
        out.clear_output()
        with out:
            if entry.value is None or entry.value == "":
                print("choose an answer first")
            else:
                check(q.qid, entry.value)

    button.on_click(on_click)
    box = w.VBox([title, entry, button, out])
    box._quiz_parts = (entry, button, out, on_click)       # for tests
    return box


_JS = """
<script>
(function () {
  const root = document.getElementById(%(id)s);
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  const q = %(q)s;
  const enc = new TextEncoder();
  async function sha(text) {
    const buf = await crypto.subtle.digest("SHA-256", enc.encode(text));
    return new Uint8Array(buf);
  }
  const hex = (b) => Array.from(b).map((x) => x.toString(16).padStart(2, "0")).join("");
  async function explain(canonical) {
    if (!q.explain) return "";
    const data = Uint8Array.from(atob(q.explain), (c) => c.charCodeAt(0));
    let key = new Uint8Array(0), block = 0;
    while (key.length < data.length) {
      const k = await sha("explain|" + q.qid + "|" + canonical + "|" + block++);
      const next = new Uint8Array(key.length + k.length); next.set(key); next.set(k, key.length); key = next;
    }
    return new TextDecoder().decode(data.map((x, i) => x ^ key[i]));
  }
  function canonical() {
    if (q.choices) {
      const picked = root.querySelector("input[type=radio]:checked");
      return picked ? "choice:" + picked.value : null;
    }
    const raw = root.querySelector("input[type=text]").value.replace(/,/g, "").trim();
    if (raw === "" || isNaN(Number(raw))) return null;
    let text = Number(raw).toFixed(q.decimals);
    if (Number(text) === 0 && q.decimals === 0) text = "0";
    return text;
  }
  root.querySelector("button").addEventListener("click", async function () {
    const out = root.querySelector(".quiz-out");
    const c = canonical();
    if (c === null) { out.textContent = "Enter an answer first."; return; }
    if (!(globalThis.crypto && crypto.subtle)) {
      out.textContent = "This browser cannot check answers here; use quiz.check in the notebook.";
      return;
    }
    if (hex(await sha("check|" + q.qid + "|" + c)) === q.digest) {
      out.textContent = "Correct. " + (await explain(c));
      out.style.color = "#1a7f37";
    } else {
      out.textContent = "Not yet, try again.";
      out.style.color = "#b35900";
    }
  });
})();
</script>
"""


def html_form(q: Question) -> str:
    """The static-page form: the browser checks the answer against the digest."""
    dom_id = f"quiz-{q.qid}"
    if q.choices:
        entry = "".join(f'<label style="display:block"><input type="radio" name="{dom_id}" value="{i}"> '
                        f"{html.escape(c)}</label>" for i, c in enumerate(q.choices))
    else:
        unit = html.escape(f" in {q.unit}" if q.unit else "")
        entry = f'<input type="text" size="14" placeholder="a number{unit}"> '
    data = json.dumps({"qid": q.qid, "digest": q.digest, "choices": bool(q.choices),
                       "decimals": q.decimals, "explain": q.explain})
    return (f'<div class="inr-quiz" id="{dom_id}" style="border:1px solid #ccc;border-radius:6px;'
            f'padding:0.6em 0.9em;margin:0.6em 0">'
            f"<p><b>Concept check {html.escape(q.qid)}.</b> {html.escape(q.text)}</p>{entry}"
            f'<button type="button" style="margin-top:0.4em">Check</button> '
            f'<span class="quiz-out" style="margin-left:0.6em"></span></div>'
            + _JS % {"id": json.dumps(dom_id), "q": data})
