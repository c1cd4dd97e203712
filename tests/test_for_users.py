"""What a user who installs the library meets first: the package's attributes, the command
line's flags (--version, -q, progress, --overwrite and its deprecated alias --force),
reconstruct's outputs (preview never the input, .npy sidecar, .tif cubes), TIFF input read
with tifffile, the one inference entry point ``pretrained.reconstruct`` (and the README's
example reproducing a card's number), torch.hub, the data folder, the install recipe and the
package metadata."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from inr_lib import pretrained

REPO = Path(__file__).resolve().parents[1]
SHARED_CAVE = REPO.parent / "shared" / "data" / "cave"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photo(path: Path, hw=(20, 24)) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, hw + (3,), dtype=np.uint8)).save(path)
    return path


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


# ------------------------------------------------------------------ 1. the package's attributes
def test_submodules_are_attributes_of_a_fresh_import():
    """``import inr_lib; inr_lib.pretrained.load(...)`` works without ``from inr_lib import ...``."""
    r = _python("import inr_lib, sys\n"
                "for name in ('pretrained', 'book', 'zoo', 'heldout', 'figures', 'data', 'spectral'):\n"
                "    assert getattr(inr_lib, name).__name__.startswith('inr_lib.'), name\n"
                "print(sorted(inr_lib.pretrained.available())[0])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in pretrained.available()


# ------------------------------------------------------------------ 2. reconstruct's outputs
def test_reconstruct_photo_png_to_photo_h5_keeps_the_input(tmp_path, tiny_ckpt, run_cli):
    """The default preview (``<cube>.preview.png``) never collides with the input."""
    src = photo(tmp_path / "photo.png")
    before = digest(src)
    argv = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src, "--out", tmp_path / "photo.h5"]
    rc, out, err, errors = run_cli(argv)
    assert rc == 0 and not errors, err
    assert digest(src) == before
    assert (tmp_path / "photo.preview.png").is_file() and "preview" in out
    # an input that bears the default preview's name: the preview is skipped, not written over it
    odd = photo(tmp_path / "cube.preview.png")
    odd_before = digest(odd)
    rc, out, err, _ = run_cli(["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", odd,
                               "--out", tmp_path / "cube.h5", "--overwrite"])
    assert rc == 0 and digest(odd) == odd_before
    assert "no preview written" in err and "preview" not in out
    # --preview PATH and --no-preview
    rc, _, _, _ = run_cli(argv + ["--preview", tmp_path / "p" / "elsewhere.png"])
    assert rc == 0 and (tmp_path / "p" / "elsewhere.png").is_file()
    rc, _, _, _ = run_cli(["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src,
                           "--out", tmp_path / "n.npy", "--no-preview"])
    assert rc == 0 and not list(tmp_path.glob("n*.png"))
    assert digest(src) == before


def test_npy_rerun_replaces_its_own_cube_only(tmp_path, tiny_ckpt, run_cli):
    """A ``.npy`` written by inr_lib is recognised (its sidecar records its SHA-256): a re-run
    replaces it without --overwrite; a foreign or edited ``.npy`` is refused."""
    from inr_lib.files.images import cube_sidecar, npy_written_by_inr_lib

    src = photo(tmp_path / "in.png")
    out = tmp_path / "cube.npy"
    argv = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src, "--out", out, "--no-preview"]
    assert run_cli(argv)[0] == 0
    side = json.loads(cube_sidecar(out).read_text())
    assert side["sha256"] == digest(out) and side["wavelengths_nm"][0] == 400
    assert npy_written_by_inr_lib(out)
    rc, _, err, errors = run_cli(argv)                 # the re-run of the issue: no flag needed
    assert rc == 0 and not errors, err
    np.save(out, np.zeros((31, 20, 24), np.float32))   # the user's own array under that name
    assert not npy_written_by_inr_lib(out)
    rc, _, _, errors = run_cli(argv)
    assert rc == 1 and "not written by inr_lib; pass --overwrite" in errors[0]
    assert not np.load(out).any()                      # left as it was
    assert run_cli(argv + ["--overwrite"])[0] == 0 and np.load(out).any()


def test_tif_cube_reads_back_equal_to_the_npy(tmp_path, tiny_ckpt, run_cli):
    import tifffile

    src = photo(tmp_path / "in.png", (18, 22))
    base = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src, "--no-preview"]
    assert run_cli(base + ["--out", tmp_path / "c.npy"])[0] == 0
    assert run_cli(base + ["--out", tmp_path / "c.tif"])[0] == 0
    tif = tifffile.imread(tmp_path / "c.tif")
    assert tif.dtype == np.float32 and tif.shape == (31, 18, 22)
    assert np.array_equal(tif, np.load(tmp_path / "c.npy"))
    with tifffile.TiffFile(tmp_path / "c.tif") as t:
        assert len(t.pages) == 31                                    # one page per band
        meta = t.shaped_metadata[0]
    assert meta["wavelengths_nm"] == [float(w) for w in range(400, 701, 10)]
    assert run_cli(base + ["--out", tmp_path / "c.tif"])[0] == 0     # its own file: replaced


# ------------------------------------------------------------------ 3. flags
def test_version_quiet_and_progress(tmp_path, tiny_ckpt, run_cli, capsys):
    from inr_lib import __version__
    from inr_lib.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"inr_lib {__version__}"
    r = subprocess.run([sys.executable, "-m", "inr_lib", "--version"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == f"inr_lib {__version__}"
    src = photo(tmp_path / "in.png", (40, 44))
    argv = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src, "--out", tmp_path / "c.npy",
            "--tile", 16, "--overlap", 4]
    rc, out, err, _ = run_cli(argv)
    # 4 x 4 windows of 16 px with overlap 4 over 40 x 44 px, 16 per batch: one forward pass
    assert rc == 0 and "reconstruct: 100%" in err and "1/1" in err
    rc, out, err, _ = run_cli(argv + ["--no-progress"])
    assert rc == 0 and "reconstruct:" not in err and "reconstructing" in err
    rc, out, err, _ = run_cli(argv + ["-q"])
    assert rc == 0 and err == "" and out.startswith("wrote ")
    rc, out, err, errors = run_cli(argv[:-4] + ["--tile", 4, "--overlap", 4, "-q"])
    assert rc == 1 and len(errors) == 1 and "overlap" in errors[0]   # errors still shown


def test_overwrite_is_the_one_flag_and_force_a_deprecated_alias(tmp_path, tiny_ckpt, synth,
                                                                 run_cli):
    from inr_lib.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    for name in ("train", "evaluate", "reconstruct", "baseline"):
        assert "--overwrite" in sub[name].format_help(), name
    src = photo(tmp_path / "in.png")
    foreign = tmp_path / "cube.h5"
    foreign.write_bytes(b"not a cube")
    argv = ["reconstruct", "--checkpoint", tiny_ckpt, "--rgb", src, "--out", foreign, "--no-preview"]
    rc, _, _, errors = run_cli(argv)
    assert rc == 1 and "pass --overwrite" in errors[0] and foreign.read_bytes() == b"not a cube"
    rc, _, err, _ = run_cli(argv + ["--force"])
    notes = [ln for ln in err.splitlines() if "deprecated" in ln]
    assert rc == 0 and notes == ["note: --force is deprecated and will be removed in the next "
                                 "release; use --overwrite"]
    # baseline: --overwrite replaces the results file; the old --force still does, with a note
    res = tmp_path / "ridge.json"
    res.write_text("mine")
    base = ["baseline", "ridge", "--data", synth, "--json", res, "--no-progress"]
    assert run_cli(base)[0] == 1 and res.read_text() == "mine"
    assert run_cli(base + ["--overwrite"])[0] == 0 and "mean" in json.loads(res.read_text())
    res.write_text("mine")
    rc, _, err, _ = run_cli(base + ["--force"])
    assert rc == 0 and "--force is deprecated" in err and "mean" in json.loads(res.read_text())


# ------------------------------------------------------------------ 4. one inference entry point
def test_pretrained_reconstruct_takes_every_kind_of_image(tmp_path):
    from inr_lib.evaluation import reconstruct

    name = "small"
    model = pretrained.load(name)
    inf = pretrained.inference(name)
    u8 = np.random.default_rng(1).integers(0, 256, (21, 26, 3), dtype=np.uint8)
    x = torch.from_numpy(u8.transpose(2, 0, 1).astype(np.float32) / np.float32(255))[None]
    want = reconstruct(model, x, mode=inf["mode"], tile=inf.get("tile") or 64,
                       overlap=inf.get("overlap") or 0)[0]            # what evaluate computes
    assert want.min() >= 0 and want.max() <= 1
    png = tmp_path / "im.png"
    Image.fromarray(u8).save(png)
    u16 = u8.astype(np.uint16) * 257                                  # the same values at 16 bits
    inputs = {"tensor (B, 3, H, W)": x, "tensor (3, H, W)": x[0], "uint8 tensor":
              torch.from_numpy(u8.transpose(2, 0, 1).copy()), "array (H, W, 3) uint8": u8,
              "array (3, H, W) float": x[0].numpy(), "array uint16": u16,
              "PIL image": Image.fromarray(u8), "path": png, "path str": str(png)}
    for what, value in inputs.items():
        got = pretrained.reconstruct(name, value, model=model)
        if what == "tensor (B, 3, H, W)":
            got = got[0]
        assert got.shape == (31, 21, 26), what
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6, msg=what)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        pretrained.reconstruct(name, u8.astype(np.float32), model=model)   # 0..255 floats
    with pytest.raises(ValueError, match="ambiguous"):
        pretrained.reconstruct(name, np.zeros((3, 8, 3), np.float32), model=model)
    with pytest.raises(ValueError, match="greyscale"):
        pretrained.reconstruct(name, Image.fromarray(u8[..., 0]), model=model)


def _readme_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"README.md: one python block with {marker!r} expected"
    return found[0]


def test_readme_example_reproduces_the_card():
    """The README's example, run as printed on a dev18 test scene, gives the card's PSNR."""
    cave = Path(os.environ.get("INR_CAVE") or SHARED_CAVE)
    if not (cave / "fake_and_real_peppers_ms").is_dir():
        pytest.skip(f"the dev18 test scene fake_and_real_peppers is not in {cave} (INR_CAVE)")
    code = _readme_block("scene_scores")
    assert '"~/data/cave"' in code
    ns: dict = {}
    exec(compile(code.replace('"~/data/cave"', repr(str(cave))), "README.md", "exec"), ns)
    card = pretrained.scene_scores("small", "whole")["fake_and_real_peppers"]["psnr"]
    assert ns["psnr"] == pytest.approx(card, abs=1e-4)
    assert pretrained.card("small")["recommended_mode"] == "whole"


# ------------------------------------------------------------------ 6. TIFF input
@pytest.mark.parametrize("compression", ["zlib", "lzw", None])
@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_16bit_tiff_read_exactly_whatever_its_compression(tmp_path, compression, planar):
    import tifffile

    from inr_lib.files.images import read_image

    if compression == "lzw":
        pytest.importorskip("imagecodecs", reason="LZW needs the imagecodecs package")
    v = np.random.default_rng(2).integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    data = v if planar == "contig" else v.transpose(2, 0, 1)
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, data, photometric="rgb", compression=compression, planarconfig=planar)
    rgb, notes = read_image(path)
    assert notes == []
    assert np.array_equal(rgb, v.transpose(2, 0, 1).astype(np.float32) / np.float32(65535))


# ------------------------------------------------------------------ torch.hub
def test_torch_hub_local_gives_the_shipped_model_and_its_card():
    hub = torch.hub.load(str(REPO), "small", source="local")
    ref = pretrained.load("small")
    assert hub.card == pretrained.card("small")
    assert not hub.training
    x = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(hub(x), ref(x))
    assert torch.hub.load(str(REPO), "card", source="local", name="small") == pretrained.card("small")


# ------------------------------------------------------------------ the data folder
def test_data_folder_follows_xdg_cache_home(tmp_path, monkeypatch, make_cave_zip, capsys):
    from inr_lib.data import default_data_root, download_cave, list_cave_scenes

    monkeypatch.delenv("INR_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_data_root() == tmp_path / "cache" / "inr_lib"
    zip_path = make_cave_zip(tmp_path / "complete_ms_data.zip")
    dest = download_cave(url=zip_path.as_uri())
    assert dest == tmp_path / "cache" / "inr_lib" / "cave" and list_cave_scenes(dest)
    assert f"CAVE is in {dest}" in capsys.readouterr().err
    monkeypatch.setenv("INR_DATA", str(tmp_path / "mine"))
    assert default_data_root() == tmp_path / "mine"


# ------------------------------------------------------------------ 5. install recipe
def _make_torch(tmp_path: Path, index: str) -> str:
    r = subprocess.run(["make", "-s", "--no-print-directory", "torch", f"TORCH_INDEX={index}",
                        "PIP_INSTALL=echo pip install", f"PY={sys.executable}"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_makefile_installs_cpu_torch_from_pytorch_index_or_falls_back(tmp_path):
    """``make torch`` (run by ``make install``) as a dry run: PIP_INSTALL=echo."""
    pin = next(ln for ln in (REPO / "requirements.txt").read_text().splitlines() if ln.startswith("torch=="))
    # an index that is not reachable (offline): the package index, with a one-line note
    out = _make_torch(tmp_path, "http://127.0.0.1:9/whl/cpu").splitlines()
    assert out[-1] == f"pip install {pin}"
    assert len(out) == 2 and out[0].startswith("note: http://127.0.0.1:9/whl/cpu is not reachable")
    # a reachable index (a local server standing in for download.pytorch.org/whl/cpu)
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<a>torch</a>")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        index = f"http://127.0.0.1:{server.server_address[1]}"
        out = _make_torch(tmp_path, index).splitlines()
    finally:
        server.shutdown()
    assert out == [f"pip install --index-url {index} {pin}"]


# ------------------------------------------------------------------ conventions
def test_package_metadata_citation_and_python_version():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    repo_url = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["url"]
    urls = project["urls"]
    assert urls["Repository"] == repo_url and urls["Documentation"].startswith("https://")
    assert any(c.startswith("Development Status :: ") for c in project["classifiers"])
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]
    assert project["requires-python"] == ">=3.11"
    assert "Python 3.11" in (REPO / "README.md").read_text()
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["repository-code"] == repo_url
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(cff["date-released"]))
    reqs = (REPO / "requirements.txt").read_text()
    for pin in ("tifffile==", "ruff==0.17.5", "mypy==2.4.1", "torch=="):
        assert pin in reqs, pin


def test_static_checks_are_configured_and_run_by_make_test():
    import tomllib

    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
    assert tool["mypy"]["files"] == ["inr_lib"] and tool["ruff"]["lint"]["select"]
    hooks = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    ids = {h["id"] for repo in hooks["repos"] for h in repo["hooks"]}
    assert {"ruff", "mypy"} <= ids
    make = (REPO / "Makefile").read_text()
    assert re.search(r"^test: .*\blint\b", make, re.M) and re.search(r"^lint:", make, re.M)
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "test.yml").read_text())
    on = workflow.get("on", workflow.get(True))        # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request"} <= set(on)
    steps = json.dumps(workflow["jobs"])
    assert "make test" in steps and "cache" in steps
