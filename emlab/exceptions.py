"""Errors and warnings that emlab raises by name."""


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``."""


class ConvergenceWarning(UserWarning):
    """EM or k-means stopped at ``max_iter`` before meeting ``tol``."""


class LikelihoodDecreaseWarning(UserWarning):
    """The EM objective decreased between two iterations by more than round-off.

    In exact arithmetic an EM step cannot lower the log-likelihood (Dempster,
    Laird and Rubin, 1977), so a decrease points to a numerical problem or to a
    model whose E- or M-step is not exact.
    """


class LikelihoodDecreaseError(ArithmeticError):
    """Raised instead of :class:`LikelihoodDecreaseWarning` when ``on_decrease='raise'``."""


class EmptyComponentWarning(UserWarning):
    """A mixture component or k-means cluster lost all its data and was handled."""


class DegenerateCovarianceError(ArithmeticError):
    """A component's covariance is not positive definite, even after ``reg_covar``."""


class DegenerateCovarianceWarning(UserWarning):
    """A fitted covariance is held positive definite only by ``reg_covar``.

    The component has collapsed onto (nearly) fewer points than dimensions, or a
    feature is (nearly) constant within it; without ``reg_covar`` its covariance
    would be singular and the likelihood unbounded.
    """


class DegenerateComponentError(ArithmeticError):
    """A component's parameters left their domain (an infinite rate, a zero scale): the
    likelihood is unbounded there. A prior, or fewer components, prevents it."""


class UnderflowWarning(RuntimeWarning):
    """Some rows' log-likelihood underflowed to -inf: no component gives them a positive density."""


class ModelFileError(ValueError):
    """A file given to ``load`` is not a usable saved model (foreign, truncated, empty or
    edited); the message names the file and what is wrong."""


class SingularHessianError(ArithmeticError):
    """The Newton system of an M-step block has no Cholesky factor.

    Raised when the system has non-finite entries (an overflow: X on a huge
    scale), or is not positive definite even with a ridge of 1e-6 times its
    largest diagonal entry added (see ``_solve``: smaller ridges are tried
    first, for directions of numerically zero curvature, such as a constant
    feature with ``alpha=0`` or saturated probabilities).
    """


class ForkedProcessError(RuntimeError):
    """emlab was called in a process forked after its parent ran emlab's kernels on GNU OpenMP,
    which cannot run there (use the 'spawn' or 'forkserver' start method)."""
