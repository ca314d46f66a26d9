"""The scale-out benchmark (benchmarks/scale.py) runs end to end at a tiny size.

No timing is asserted: only that the pipeline works (a LocalCluster of two
spawned workers, an in-process worker, the JSON), that the Dask and in-process
fits followed the same trajectory on the same data, and that the pieces the
Spark run relies on (row ranges, the NumPy reference of MLlib's EM step) are
right. Spark itself is not started here (a JVM and pyspark take too long for a
test); ``python -m benchmarks.scale --quick`` exercises it.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import scale

ROOT = Path(__file__).resolve().parent.parent


def test_chunks_are_a_function_of_the_seed_and_the_chunk():
    spec = scale.DataSpec(2_500, 1_000)
    assert spec.n_chunks == 3 and spec.rows_in_chunk(2) == 500
    X, digests = scale.generate_array(spec)
    assert X.shape == (2_500, 8) and len(digests) == 3
    np.testing.assert_array_equal(X[1_000:2_000], scale.generate_chunk(spec, 1))
    prefix, _ = scale.generate_array(spec, 1_700)  # what Spark gets when it runs on fewer rows
    np.testing.assert_array_equal(prefix, X[:1_700])
    assert scale.combined_digest(digests) == scale.combined_digest(
        [scale.chunk_digest(scale.generate_chunk(spec, c)) for c in range(3)])


def test_spark_ranges_cover_the_rows_once():
    for n_rows, chunk_rows, threads in ((2_000_000, 1_000_000, 2), (2_000, 1_000_000, 2),
                                        (70_000, 50_000, 2), (16, 5, 4)):
        ranges = scale.spark_ranges(n_rows, chunk_rows, threads)
        assert len(ranges) >= threads
        assert ranges[0][0] == 0 and ranges[-1][1] == n_rows
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


def test_spark_reference_is_exact_em_without_the_epsilon(monkeypatch):
    """The NumPy model of MLlib's iteration, with MLlib's epsilon set to 0, is emlab's EM."""
    import emlab

    spec = scale.DataSpec(3_000, 1_000)
    X, _ = scale.generate_array(spec)
    start = scale.start_params(spec, X[scale.start_rows(spec)], np.cov(X, rowvar=False))
    monkeypatch.setattr(scale, "SPARK_EPSILON", 0.0)
    reference = scale.spark_reference_em(X, start, 3, block_rows=700)
    gm = emlab.GaussianMixture(8, tol=0.0, reg_covar=0.0, max_iter=3, weights_init=start.weights,
                               means_init=start.means, precisions_init=start.precisions)
    with pytest.warns(emlab.ConvergenceWarning):
        gm.fit(X)
    exact = {"weights": gm.weights_, "means": gm.means_, "covariances": gm.covariances_}
    assert scale._params_rel_diff(reference, exact)[0] < 1e-9


def test_spark_scaling_per_row():
    record = {"n_samples_measured": 1_000, "seconds_per_iter_measured": 1.1,
              "fixed_seconds_per_iter": 0.1}
    assert scale.scale_spark(record, 4_000)["seconds_per_iter"] == pytest.approx(0.1 + 1.0 * 4)
    assert scale.scale_spark(record, 1_000)["seconds_per_iter"] == 1.1


def test_a_tiny_scale_run_is_consistent(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "scale.json"
    command = [sys.executable, "-m", "benchmarks.scale", "--n", "2e4", "--chunk-rows", "5e3",
               "--repeats", "1", "--iterations", "1", "3", "--no-spark", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert "Scale-out: gmm-full-N2e4-d8-K8" in done.stdout
    for key in ("case", "n_samples", "n_features", "n_components", "chunk_rows", "n_chunks",
                "n_workers", "libraries", "dask_over_inprocess", "spark_over_dask",
                "trajectory_rel_diff", "bytes_per_iteration", "versions", "targets", "summary"):
        assert key in results, key
    assert (results["n_samples"], results["n_features"], results["n_components"],
            results["chunk_rows"], results["n_chunks"], results["n_workers"]) == \
        (20_000, 8, 8, 5_000, 4, 2)
    assert results["data"]["same_data"] and results["data"]["generated_on"] == "workers"
    assert sorted(results["data"]["chunks_per_worker"].values()) == [2, 2]
    assert all(w["numba_threads"] == 1 for w in results["workers"].values())
    assert results["inprocess_worker"]["numba_threads"] == 2
    dask, inprocess = results["libraries"]["dask"], results["libraries"]["inprocess"]
    assert len(dask["trajectory"]) == len(inprocess["trajectory"]) == 3
    assert results["trajectory_rel_diff"] <= 1e-6
    for lib in (dask, inprocess):
        assert lib["n_iter"] == {"1": [1], "3": [3]} and len(lib["samples"]) == 1
    if (dask["seconds_per_iter"] or 0) > 0 and (inprocess["seconds_per_iter"] or 0) > 0:
        assert results["dask_over_inprocess"] == pytest.approx(
            dask["seconds_per_iter"] / inprocess["seconds_per_iter"])
    else:  # a busy machine can make a one-repeat median negative: no ratio then
        assert results["dask_over_inprocess"] is None
    assert results["libraries"]["spark"]["status"] == "skipped"
    assert results["spark_over_dask"] is None
    sent = results["bytes_per_iteration"]
    assert sent["method"].startswith("pickled") and sent["params_to_workers"] > 0
    assert 0 < sent["statistics_to_client"] < 10_000  # O(K d^2), not O(N)
    assert sent["wire"]["by_connection"]["client_and_scheduler"]
    assert {"dask", "distributed", "pyspark", "java"} <= set(results["versions"])
    verdicts = {row["metric"]: row["verdict"] for row in results["targets"]}
    assert verdicts["trajectory_rel_diff"] == "PASS"
    assert verdicts["spark_over_dask"] == verdicts["spark_reference_rel_diff"] == "n/a"
