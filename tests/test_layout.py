"""The package's shape: every module imports on its own, light commands stay light, benchmarks use the public API."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import genrekit

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(genrekit.__path__, "genrekit."))


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each module imported first in a process of its own, so an import circle cannot hide behind an earlier
    import: one interpreter loads the third-party libraries (no genrekit module), then forks a child per
    module."""
    assert "genrekit.scoring" in MODULES and "genrekit.checkpoints" in MODULES
    code = f"""
import os, sys, traceback
import numpy, scipy, sklearn, torch, librosa, matplotlib, soundfile, typer, fastapi  # noqa: F401
assert not [m for m in sys.modules if m.startswith("genrekit")]
failed = []
for module in {MODULES!r}:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(module)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1]:
        failed.append(module)
print(failed)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


HEAVY = {"plots", "midi", "features", "models", "export", "stacking", "ffmpeg_file", "distributed", "datasets"}
"""Package modules that load matplotlib, FluidSynth, librosa, torch, scikit-learn, PyAV (FFmpeg), Ray or (the
dataset readers) PyYAML: imported inside the functions that need them, so that predicting from an ONNX export
starts without any of those."""


def test_package_modules_import_nothing_inside_functions_to_dodge_a_circle():
    """Inside functions the package imports only its heavy modules (`HEAVY`), never a module to dodge a
    circle (the command line, which imports each command's needs lazily, aside)."""
    for path in (ROOT / "genrekit").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.level and "cli" not in path.parts:
                        target = (inner.module or "").split(".")[0]
                        assert target in HEAVY, \
                            f"{path.relative_to(ROOT)}:{inner.lineno} imports .{inner.module} inside a function"


def test_import_genrekit_and_the_help_do_not_load_torch_or_sklearn():
    result = _run("import sys, genrekit, genrekit.cli; print(sorted(m for m in ('torch', 'sklearn', 'librosa') "
                  "if m in sys.modules))")
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
    result = _run("import sys\nfrom genrekit.cli import app\ntry:\n    app(['predict', '--help'])\n"
                  "except SystemExit as e:\n    assert e.code == 0\nprint('torch' in sys.modules)")
    assert result.returncode == 0 and result.stdout.strip().endswith("False"), result.stdout + result.stderr
    assert callable(genrekit.load) and genrekit.load.__module__ == "genrekit.predict"


def test_predicting_from_an_onnx_export_loads_no_torch_sklearn_or_librosa(tmp_path):
    """The bundled default model exported once (that needs torch), then a fresh process predicts from the
    export with onnxruntime alone (start-up time)."""
    pytest.importorskip("onnxruntime")
    code = (f"import os, sys\nos.environ['GENREKIT_CACHE'] = {str(tmp_path)!r}\nimport numpy as np\n"
            "from genrekit.predict import load\n"
            "result = load('default').predict(np.sin(np.arange(66150) / 7.0).astype(np.float32), sr=22050)\n"
            "print(result.genre in result.labels, sorted(m for m in ('torch', 'sklearn', 'librosa', 'scipy') "
            "if m in sys.modules))")
    first, second = _run(code), _run(code)
    assert first.returncode == 0 and first.stdout.split()[0] == "True", first.stderr
    assert second.returncode == 0 and second.stdout.strip() == "True []", second.stdout + second.stderr
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.sin(np.arange(66150) / 7.0).astype(np.float32), 22050)
    command = (f"import os, sys\nos.environ['GENREKIT_CACHE'] = {str(tmp_path)!r}\nfrom genrekit.cli import main\n"
               f"sys.argv = ['genrekit', 'predict', {str(clip)!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
               "print(sorted(m for m in ('torch', 'sklearn', 'librosa', 'scipy', 'av') if m in sys.modules))")
    result = _run(command)  # the command line too: a fresh `genrekit predict` of a file
    assert result.returncode == 0 and result.stdout.strip().endswith("[]"), result.stdout + result.stderr
    command = command.replace(f"'predict', {str(clip)!r}",
                              f"'tag', {str(tmp_path)!r}, '--db', {str(tmp_path / 'lib.sqlite')!r}, '--workers', '1'")
    result = _run(command)  # and `genrekit tag` of a folder (scikit-learn is for splitting datasets)
    assert result.returncode == 0 and result.stdout.strip().endswith("[]"), result.stdout + result.stderr
    assert "1 audio files: 1 tagged" in result.stdout


@pytest.mark.parametrize("folder", ["benchmarks", "scripts"])
def test_benchmarks_and_scripts_use_no_private_name_of_the_package(folder):
    for path in (ROOT / folder).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("genrekit"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name}:{node.lineno} imports {private} from {node.module}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                assert False, f"{path.name}:{node.lineno} uses the private attribute .{node.attr}"
