import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emlab.plotting import covariance_ellipse, plot_clusters, plot_lower_bounds  # noqa: E402


def test_ellipse_axes_follow_the_covariance():
    fig, ax = plt.subplots()
    e = covariance_ellipse(ax, [1.0, 2.0], [[4.0, 0.0], [0.0, 1.0]], n_std=2.0)
    assert np.isclose(e.width, 8.0) and np.isclose(e.height, 4.0) and np.isclose(e.angle % 180, 0.0)
    e = covariance_ellipse(ax, [0.0, 0.0], [[1.0, 0.0], [0.0, 9.0]], n_std=1.0)
    assert np.isclose(e.width, 6.0) and np.isclose(e.angle % 180, 90.0)
    plt.close(fig)


def test_plot_clusters_uses_colour_for_cluster_and_marker_for_truth():
    fig, ax = plt.subplots()
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    plot_clusters(ax, X, labels=[0, 1, 1], true_labels=[0, 0, 1], means=X[:2], covariances=[np.eye(2)] * 2)
    assert len(ax.collections) == 4  # three (truth, cluster) groups and the centres
    assert len(ax.patches) == 2
    plot_lower_bounds(ax, [[-3.0, -2.0, -1.5]], labels=["run"])
    plt.close(fig)
