"""The benchmark suite runs end to end on a tiny case and reports what it claims.

No timing is asserted (speed lives in benchmarks/, not in tests): only that the
pipeline works, that both libraries followed the same trajectory, and that the
numbers it derives are consistent with each other.
"""

import json

import pytest

from benchmarks.cases import format_count, parse_case_name, useful_flops
from benchmarks.runner import Settings, run


def test_case_names_round_trip():
    case = parse_case_name("gmm-diag-N1e6-d8-K8")
    assert (case.model, case.covariance_type, case.n_samples, case.n_features, case.n_components) == \
        ("gmm", "diag", 10**6, 8, 8)
    assert case.name == "gmm-diag-N1e6-d8-K8" and format_count(250_000) == "25e4"
    assert useful_flops("gmm", "full", 10, 3, 2) == 2 * 10 * 2 * 9
    with pytest.raises(ValueError, match="cannot read the case name"):
        parse_case_name("gmm-N1e6-d8-K8")


def test_a_tiny_run_is_consistent(tmp_path):
    pytest.importorskip("sklearn")
    settings = Settings(cases=[parse_case_name("gmm-full-N3000-d3-K2"), parse_case_name("kmeans-N3000-d3-K2")],
                        repeats=1, iterations=(2, 4), memory=False, cold_start=False, gemm_size=300,
                        bandwidth_mib=16, quick=True)
    results = run(settings)
    json.dumps(results)  # the record is plain JSON
    for case in results["cases"]:
        assert case["status"] == "ok", case
        assert case["trajectory_rel_diff"] <= 1e-6
        ours, theirs = case["libraries"]["emlab"], case["libraries"]["sklearn"]
        assert len(ours["samples"]) == len(theirs["samples"]) == 1
        if ours["seconds_per_iter"] > 0 and theirs["seconds_per_iter"] > 0:
            assert case["speedup"] == pytest.approx(theirs["seconds_per_iter"] / ours["seconds_per_iter"])
