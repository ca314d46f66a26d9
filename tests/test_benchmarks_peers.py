"""The benchmark's oneDAL and mlpack peers, its per-library worker processes and the
machine's limit on one iteration (issue 16, item 1)."""

import json

import numpy as np
import pytest

from benchmarks.cases import GMM_EXTRA_PEERS, gmm_case, parse_case_name
from benchmarks.data import make_data, make_start
from benchmarks.machine import iteration_flops, iteration_limit
from benchmarks.peers import Emlab, OneDAL, get_library


def test_the_limit_of_one_iteration_by_hand():
    # N = 1000, d = 2, K = 3, full: 8 N d = 16000 bytes at 1 GB/s = 1.6e-5 s;
    # N K = 3000 exponentials at 1e6/s = 3e-3 s; 2 N K d (d + 1) = 36000 flops at 1 GFLOP/s
    # = 3.6e-5 s: the exponentials bound it.
    limit = iteration_limit(1000, 2, 3, "full", gb_per_s=1.0, exp_per_s=1e6, gflops=1.0)
    assert limit["bytes_s"] == pytest.approx(1.6e-5)
    assert limit["exp_s"] == pytest.approx(3e-3)
    assert limit["flops_s"] == pytest.approx(3.6e-5)
    assert limit["limit_s"] == pytest.approx(3e-3) and limit["bound"] == "exp"
    # a slow GEMM: 36000 flops at 1e-6 GFLOP/s = 36 s
    slow = iteration_limit(1000, 2, 3, "full", gb_per_s=1.0, exp_per_s=1e6, gflops=1e-6)
    assert slow["bound"] == "flops" and slow["limit_s"] == pytest.approx(36.0)
    # little bandwidth: 16000 bytes at 1e-6 GB/s = 16 s
    narrow = iteration_limit(1000, 2, 3, "full", gb_per_s=1e-6, exp_per_s=1e9, gflops=1.0)
    assert narrow["bound"] == "bytes" and narrow["limit_s"] == pytest.approx(16.0)
    # the diagonal model's flops are the grid's count, 8 N K d
    assert iteration_flops("diag", 1000, 2, 3) == 8 * 1000 * 3 * 2
    assert iteration_flops("full", 10, 4, 2) == 2 * 10 * 2 * 4 * 5


def test_the_issue_cases_have_the_new_peers_and_targets():
    for name, speedup in [("gmm-full-N1e6-d2-K3", 3), ("gmm-full-N1e6-d8-K8", 3),
                          ("gmm-diag-N1e6-d8-K8", 3), ("gmm-full-N2e5-d32-K16", 2)]:
        case = parse_case_name(name)
        assert case.peers == ("sklearn",) + GMM_EXTRA_PEERS
        targets = {t.metric: t for t in case.targets}
        assert targets["speedup[onedal]"].threshold == speedup
        assert targets["limit_fraction"].threshold == 0.6
    assert parse_case_name("gmm-full-N1e5-d64-K8").peers == ("sklearn",)
    # unsupported covariance types are said so, not raised in the middle of a run
    tied = parse_case_name("gmm-tied-N1e6-d8-K8")
    assert "full and diagonal" in get_library("onedal").supports(tied)
    assert "full and diagonal" in get_library("mlpack").supports(tied)


def _daal4py():
    reason = OneDAL().available(install=False)
    if reason is not None:
        pytest.skip(f"daal4py cannot be imported ({reason}); the benchmark installs "
                    f"{OneDAL.pin} when it runs")


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_onedal_from_the_shared_start_agrees_with_emlab(covariance_type):
    _daal4py()
    case = gmm_case(covariance_type, 3000, 3, 3, memory=False)
    X = make_data(case)
    start = make_start(case, X)
    ours = Emlab().fit(case, X, start, 4)
    for m in (1, 4):
        theirs = OneDAL().fit(case, X, start, m)
        assert theirs.n_iter == m and theirs.trajectory.shape == (1,)
        # emlab adds reg_covar = 1e-6 to the covariances, oneDAL nothing: ~1e-8 apart
        assert theirs.trajectory[0] == pytest.approx(ours.trajectory[m - 1], rel=1e-6)
    assert OneDAL().fit(case, X, start, 1).trajectory[0] == pytest.approx(ours.trajectory[0],
                                                                          rel=1e-12)


def test_the_worker_process_fits_as_this_process_does():
    from benchmarks.isolated import Worker
    from benchmarks.machine import limited_threads

    case = gmm_case("full", 2000, 3, 2, memory=False)
    X = make_data(case)
    start = make_start(case, X)
    with limited_threads(2):
        here = Emlab().fit(case, X, start, 3)
    with Worker("emlab", case, 2) as worker:
        from benchmarks.data import checksum

        assert worker.info["checksum"] == checksum(X)  # the same data, regenerated
        assert worker.info["pid"] > 0 and worker.info["numba_threads"] >= 1
        seconds, there = worker.fit(3)
    assert seconds > 0 and there.n_iter == here.n_iter == 3
    np.testing.assert_allclose(there.trajectory, here.trajectory, rtol=1e-12)


def test_a_tiny_run_with_the_new_peers(tmp_path):
    from benchmarks.report import format_report, write_json
    from benchmarks.runner import Settings, run

    # Seconds per iteration are the median of (T(12) - T(2)) / 10 over the repeats: at
    # N = 3000 an iteration takes tens of microseconds, and one noisy repeat on a busy
    # machine made the difference negative (no fraction; CI, 2026-12-01). At N = 1e5 an
    # iteration takes about a millisecond; with (2, 4) the difference still came out
    # non-positive once in a slow period of this machine (2026-12-01, where the same step
    # took 2.6 ms or 4.4 ms seconds apart): ten iterations apart it exceeds such a swing
    # of the two-iteration fit.
    case = gmm_case("full", 100_000, 3, 2, memory=False, extra_peers=GMM_EXTRA_PEERS,
                    onedal_speedup=3, limit_fraction=0.6)
    tied = gmm_case("tied", 3000, 3, 2, memory=False, extra_peers=GMM_EXTRA_PEERS)
    settings = Settings(cases=[case, tied], repeats=3, iterations=(2, 12), memory=False,
                        cold_start=False, gemm_size=200, bandwidth_mib=8, quick=True,
                        install=False)
    results = run(settings)
    write_json(results, tmp_path / "r.json")
    json.loads((tmp_path / "r.json").read_text())
    first, second = results["cases"]
    assert first["status"] == second["status"] == "ok"
    assert results["exp"]["per_s"] > 0
    assert set(first["limit"]) == {"bytes_s", "exp_s", "flops_s", "limit_s", "bound"}
    assert first["limit_fraction"] == first["limit_fractions"]["emlab"] > 0
    assert set(first["workers"]) >= {"emlab", "sklearn"}
    pids = {w["pid"] for w in first["workers"].values()}
    assert len(pids) == len(first["workers"])  # each library in its own process
    skipped = first.get("skipped_peers") or {}
    if "onedal" in first["libraries"]:
        assert first["trajectory_checks"]["onedal"] == "final"
        assert first["trajectory_rel_diffs"]["onedal"] <= 1e-6
        assert first["speedups"]["onedal"] is not None
    else:
        assert skipped["onedal"]["status"] == "skipped"
    if "mlpack" in first["libraries"]:
        mlpack = first["libraries"]["mlpack"]
        assert mlpack["whole_fit"] and mlpack["seconds_per_iter"] is None
        assert set(mlpack["whole_fit_seconds"]) == {"1", "3"}
        assert first["trajectory_checks"]["mlpack"] == "none"
        assert "mlpack" not in first["trajectory_rel_diffs"]
    else:
        assert skipped["mlpack"]["status"] == "skipped"
    targets = {row["metric"]: row["verdict"] for row in first["targets"]}
    assert targets["trajectory_rel_diff"] == "PASS" and "limit_fraction" in targets
    # the tied case goes on without the peers that have no tied covariances
    assert second["skipped_peers"]["onedal"]["status"] == "unsupported"
    assert set(second["libraries"]) == {"emlab", "sklearn"}
    report = format_report(results)
    assert "fraction of the machine's limit" in report and "unsupported" in report


def test_the_busy_machine_benchmark_starts_and_stops_its_load():
    # benchmarks.busy (issue 16, item 6) times an iteration beside processes it keeps busy;
    # they must be running while it times and gone afterwards
    from benchmarks.busy import cpu_load, per_iteration

    with cpu_load(2) as procs:
        assert all(p.poll() is None for p in procs)
        seconds, samples = per_iteration(lambda m: sum(range(20000 * m)), iterations=(1, 3),
                                         repeats=2)
        assert len(samples) == 2 and np.isfinite(seconds)
    assert all(p.poll() is not None for p in procs)


def test_the_first_fit_after_install_is_a_target():
    # issue 16, item 4: an empty cache's first fit <= 10 s and its import <= 1 s, beside the
    # warm cache's import plus first fit <= 2 s; a run without an empty-cache start is "n/a"
    from benchmarks.runner import cold_start_targets

    cold = {"emlab": {"warm": {"total_s": 0.81},
                      "empty_cache": {"import_s": 0.62, "fit_s": 10.4}}}
    verdicts = {row["metric"]: row["verdict"] for row in cold_start_targets(cold)}
    assert verdicts == {"cold_start_warm_s": "PASS", "first_fit_empty_cache_s": "FAIL",
                        "import_s": "PASS"}
    cold["emlab"]["empty_cache"]["fit_s"] = 9.6
    cold["emlab"]["empty_cache"]["import_s"] = 1.2
    verdicts = {row["metric"]: row["verdict"] for row in cold_start_targets(cold)}
    assert verdicts["first_fit_empty_cache_s"] == "PASS" and verdicts["import_s"] == "FAIL"
    del cold["emlab"]["empty_cache"]
    verdicts = {row["metric"]: row["verdict"] for row in cold_start_targets(cold)}
    assert verdicts["first_fit_empty_cache_s"] == verdicts["import_s"] == "n/a"


def test_the_categorical_hmm_case_has_the_scaling_target():
    from benchmarks.cases import default_cases

    case = next(c for c in default_cases() if c.name == "hmm-categorical-T1e6-M10-K4")
    targets = {t.metric: t for t in case.targets}
    assert targets["speedup[hmmlearn-scaling]"].threshold == 10  # issue 16, item 5
