"""The emlab command: the demo's output, its figure, and one-line errors."""

import subprocess
import sys

import numpy as np
import pytest

from emlab.cli import main


def test_sample_demo_writes_the_figure_and_em_wins_on_sample_2(tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["demo", "--data", "sample", "--seed", "0", "--out", str(out)]) == 0
    assert out.stat().st_size > 20_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    rows = {line.split()[1]: list(map(int, line.split()[2:4]))
            for line in printed.splitlines() if line.startswith("sample ")}
    km2, em2 = rows["2"]
    assert em2 * 5 < km2, printed  # the unbalanced sample: EM models the wide component
    assert f"figure written to {out}" in printed


def test_iris_demo_prints_confusion_tables(capsys):
    assert main(["demo", "--data", "iris", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("setosa") == 2 and "EM log-likelihood reached" in printed
    # each table's rows are the 50 flowers of a species
    rows = [line.split() for line in printed.splitlines() if line.startswith(("setosa", "versicolor", "virginica"))]
    assert all(sum(map(int, r[1:])) == 50 for r in rows)


@pytest.mark.parametrize("argv, code, message", [
    (["demo", "--data", "wine"], 2, "invalid choice: 'wine'"),
    (["demo"], 2, "--data"),
    ([], 2, "a command is required"),
    (["demo", "--data", "sample", "--n", "1"], 2, "--n must be at least 2"),
    (["demo", "--data", "sample", "--seed", "x"], 2, "invalid int value"),
    (["demo", "--data", "iris", "--out", "/nonexistent-dir/fig.png"], 1, "No such file or directory"),
])
def test_errors_are_one_line_and_non_zero(argv, code, message, capsys):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_python_dash_m_runs_the_same_command():
    done = subprocess.run([sys.executable, "-m", "emlab", "demo", "--data", "nonsense"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "invalid choice" in done.stderr
