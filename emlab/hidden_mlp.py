"""A one-hidden-layer network with binary stochastic hidden units, trained by EM.

The hidden units are latent variables: given x they are independent, unit k
on with probability ``sigmoid(a_k . [x, 1])`` (a sigmoid belief layer); the
class then follows a softmax of the whole configuration,
``p(y = c | h) = softmax_c(B_c . [h, 1])``. So

    ``p(y | x) = sum_h p(h | x) p(y | h)``

is a mixture over the ``2**H`` configurations, and EM fits it as it fits any
mixture: the E-step is the posterior ``p(h | x_i, y_i)``; the M-step, given
it, is H logistic regressions with soft targets ``E[h_k | x_i, y_i]`` and one
softmax regression on the configurations weighted by their posterior.
"""

import sys
import warnings

import numpy as np

from . import _config
from ._base import ParamsMixin
from ._kernels.hidden_mlp import (
    config_log_softmax,
    exact_e_step,
    exact_predict_proba,
    hidden_newton,
    monte_carlo_e_step,
    monte_carlo_predict_proba,
    output_newton,
    solve_ridged,
)
from ._validation import (
    check_array,
    check_int,
    check_is_fitted,
    check_option,
    check_random_state,
    check_sample_weight,
    check_scalar,
)
from .em import check_em_options, fit_em

E_STEPS = ("auto", "exact", "monte_carlo")
MAX_EXACT_HIDDEN = 12
#: Newton steps per M-step block (each with step-halving); fewer stop when the
#: Newton decrement is below NEWTON_RTOL per unit of sample weight.
NEWTON_STEPS = 3
NEWTON_RTOL = 1e-12
MAX_HALVINGS = 40
PREDICT_CHUNK = 1024


# ----------------------------------------------------------------------------- helpers


def _data_conversion_warning():
    """scikit-learn's DataConversionWarning when scikit-learn is loaded, else UserWarning.

    (emlab does not import scikit-learn; code that checks for its warning has.)
    """
    sk = sys.modules.get("sklearn.exceptions")
    category = getattr(sk, "DataConversionWarning", None)
    return category if isinstance(category, type) and issubclass(category, Warning) else UserWarning


def config_bits(n_hidden):
    """The (2**H, H) uint8 table whose row m holds the bits of m (bit k is unit k)."""
    m = np.arange(2**n_hidden)[:, None]
    return np.ascontiguousarray((m >> np.arange(n_hidden)) & 1, dtype=np.uint8)


def _sigmoid(u):
    out = np.empty_like(u)
    pos = u >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-u[pos]))
    e = np.exp(u[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def hidden_probabilities(X, A):
    """``p(h_k = 1 | x_i)``, shape (n, H), for parameters ``A`` (H, d + 1)."""
    return _sigmoid(X @ A[:, :-1].T + A[:, -1])


def draw_configurations(X, A, n_draws, rng):
    """(n, S, H) uint8 draws of the hidden configuration from ``p(h | x_i)``."""
    prob = hidden_probabilities(X, A)
    n, n_hidden = prob.shape
    out = np.empty((n, n_draws, n_hidden), dtype=np.uint8)
    step = max(1, 2**22 // (n_draws * n_hidden))  # uniforms in slices of 32 MiB at most
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        u = rng.random((rows.stop - start, n_draws, n_hidden))
        out[rows] = u < prob[rows, None, :]
    return out


def _solve(neg_hess, grad):
    """``(neg_hess + ridge I)^{-1} grad``, batched over leading axes (see ``solve_ridged``)."""
    p = grad.shape[-1]
    M = np.ascontiguousarray(neg_hess.reshape(-1, p, p))
    out = np.empty((M.shape[0], p))
    solve_ridged(M, np.ascontiguousarray(grad.reshape(-1, p)), out)
    return out.reshape(grad.shape)


def newton_hidden(X, targets, sample_weight, A, alpha, n_steps=NEWTON_STEPS):
    """The hidden layer's M-step: Newton steps with step-halving, unit by unit.

    Maximises ``sum_k [sum_i w_i (t_ik log s_ik + (1 - t_ik) log(1 - s_ik))
    - alpha / 2 |A[k, :d]|^2]``; each unit's term never decreases (a step
    that would lower it is halved, at most ``MAX_HALVINGS`` times, then
    dropped). Returns ``(A_new, value)``.
    """
    n, d = X.shape
    n_hidden, p = A.shape
    A = A.copy()
    nb = _config.n_blocks(n, n_hidden * (p * p + p + 1))
    value, grad, hess = np.empty(n_hidden), np.empty((n_hidden, p)), np.empty((n_hidden, p, p))
    diag = np.arange(d)

    def evaluate(At):
        with _config.threads_for(n * n_hidden * p * p):
            hidden_newton(X, At, targets, sample_weight, nb, value, grad, hess)
        v = value - 0.5 * alpha * np.sum(At[:, :d] ** 2, axis=1)
        g = grad.copy()
        g[:, :d] -= alpha * At[:, :d]
        h = hess.copy()
        h[:, diag, diag] -= alpha
        return v, g, h

    total_weight = float(sample_weight.sum())
    v, g, h = evaluate(A)
    for _ in range(n_steps):
        delta = _solve(-h, g)
        decrement = np.einsum("kj,kj->k", g, delta)
        pending = decrement > NEWTON_RTOL * total_weight
        if not pending.any():
            break
        step = np.ones(n_hidden)
        for _ in range(MAX_HALVINGS):
            At = A.copy()
            At[pending] += step[pending, None] * delta[pending]
            v2, g2, h2 = evaluate(At)
            ok = pending & (v2 >= v)
            A[ok], v[ok], g[ok], h[ok] = At[ok], v2[ok], g2[ok], h2[ok]
            pending &= ~ok
            if not pending.any():
                break
            step[pending] *= 0.5
    return A, float(v.sum())


def newton_output(bits, counts, B, alpha, n_steps=NEWTON_STEPS):
    """The output layer's M-step: weighted softmax regression on configurations, by Newton.

    Maximises ``sum_r sum_c counts[r, c] log softmax_c(B @ [bits[r], 1]) -
    alpha / 2 |B[:, :H]|^2`` with step-halving (it never decreases). Returns
    ``(B_new, value)``.
    """
    n_rows, n_hidden = bits.shape
    n_classes, q = B.shape
    size = n_classes * q
    B = B.copy()
    nb = _config.n_blocks(n_rows, size * size + size + 1)
    value, grad, hess = np.empty(1), np.empty((n_classes, q)), np.empty((n_classes, q, n_classes, q))
    coef = np.zeros((n_classes, q), dtype=bool)
    coef[:, :n_hidden] = True
    coef = coef.ravel()

    def evaluate(Bt):
        with _config.threads_for(n_rows * size * size):
            output_newton(bits, counts, Bt, nb, value, grad, hess)
        v = float(value[0]) - 0.5 * alpha * float(np.sum(Bt[:, :n_hidden] ** 2))
        g = grad.ravel() - alpha * Bt.ravel() * coef
        h = hess.reshape(size, size).copy()
        h[coef, coef] -= alpha
        return v, g, h

    # Softmax probabilities do not change when the same vector is added to every class's
    # weights, and the penalty is smallest when they sum to zero over the classes: centring
    # never lowers the objective, and keeps the flat directions from drifting with rounding.
    B -= B.mean(axis=0)
    total_weight = float(counts.sum())
    v, g, h = evaluate(B)
    for _ in range(n_steps):
        delta = _solve(-h, g).reshape(n_classes, q)
        delta = (delta - delta.mean(axis=0)).ravel()
        if float(g @ delta) <= NEWTON_RTOL * total_weight:
            break
        step = 1.0
        for _ in range(MAX_HALVINGS):
            Bt = B + step * delta.reshape(n_classes, q)
            v2, g2, h2 = evaluate(Bt)
            if v2 >= v:
                B, v, g, h = Bt, v2, g2, h2
                break
            step *= 0.5
        else:
            break
    return B, v


def aggregate_draws(bits, weights, y, sample_weight, n_classes):
    """The Monte Carlo E-step's pseudo-rows, merged by configuration: (bits (R, H), counts (R, C)).

    Pseudo-row (i, s) has configuration ``bits[i, s]``, class ``y_i`` and weight
    ``sample_weight[i] * weights[i, s]``; equal configurations are added up.
    """
    n, n_draws, n_hidden = bits.shape
    flat = bits.reshape(n * n_draws, n_hidden)
    if n_hidden <= 62:  # one int64 code per configuration: a 1-d unique, much faster
        codes = flat.astype(np.int64) @ (np.int64(1) << np.arange(n_hidden, dtype=np.int64))
        unique_codes, inverse = np.unique(codes, return_inverse=True)
        unique = (unique_codes[:, None] >> np.arange(n_hidden)) & 1
    else:
        unique, inverse = np.unique(flat, axis=0, return_inverse=True)
    counts = np.zeros((unique.shape[0], n_classes))
    np.add.at(counts, (inverse.ravel(), np.repeat(y, n_draws)),
              (sample_weight[:, None] * weights).ravel())
    return np.ascontiguousarray(unique, dtype=np.uint8), counts


# ----------------------------------------------------------------------------- the EM model


class HiddenMLPModel:
    """The EM model (:class:`~emlab.em.EMModel`) of the network: params are ``(A, B)``.

    ``A`` (H, d + 1) and ``B`` (C, H + 1) hold the hidden and output weights,
    intercepts in the last column. The objective is the penalised
    log-likelihood per unit of sample weight,
    ``(sum_i w_i log p(y_i | x_i) - alpha / 2 (|A[:, :d]|^2 + |B[:, :H]|^2)) / sum_i w_i``.
    """

    def __init__(self, y, sample_weight, n_classes, n_hidden, alpha, method, n_draws=0, seed=0):
        self.y = y
        self.sample_weight = sample_weight
        self.n_classes = n_classes
        self.n_hidden = n_hidden
        self.alpha = alpha
        self.method = method
        self.n_draws = n_draws
        self.seed = seed
        self.bits = config_bits(n_hidden) if method == "exact" else None

    def init_params(self, X, rng):
        """Hidden pre-activations about N(0, 1) on X; random output weights, class-frequency intercepts."""
        n, d = X.shape
        w = self.sample_weight
        mean = w @ X / w.sum()
        std = np.sqrt(w @ (X - mean) ** 2 / w.sum())
        std[std == 0] = 1.0
        coef = rng.standard_normal((self.n_hidden, d)) / (np.sqrt(d) * std)
        A = np.empty((self.n_hidden, d + 1))
        A[:, :d] = coef
        A[:, d] = -coef @ mean
        freq = np.bincount(self.y, weights=w, minlength=self.n_classes) / w.sum()
        B = np.empty((self.n_classes, self.n_hidden + 1))
        B[:, :self.n_hidden] = rng.standard_normal((self.n_classes, self.n_hidden))
        B[:, self.n_hidden] = np.log(np.maximum(freq, 1e-12))
        B[:, self.n_hidden] -= B[:, self.n_hidden].mean()
        return A, B

    def penalty(self, params):
        A, B = params
        return 0.5 * self.alpha * (float(np.sum(A[:, :-1] ** 2)) + float(np.sum(B[:, :-1] ** 2)))

    def e_step(self, X, params):
        A, B = params
        n = X.shape[0]
        loglik = np.empty(n)
        marginals = np.empty((n, self.n_hidden))
        if self.method == "exact":
            log_out = np.empty((2**self.n_hidden, self.n_classes))
            config_log_softmax(B, log_out)
            counts = np.empty_like(log_out)
            with _config.threads_for(n * log_out.shape[0] * (self.n_hidden + 4)):
                exact_e_step(X, A, self.y, self.sample_weight, log_out,
                             _config.n_blocks(n, log_out.size), loglik, marginals, counts)
            bits = self.bits
        else:
            # common random numbers: the same uniforms at every iteration, so the estimated
            # objective is a deterministic function of the parameters
            bits = draw_configurations(X, A, self.n_draws, np.random.default_rng(self.seed))
            weights = np.empty((n, self.n_draws))
            with _config.threads_for(n * self.n_draws * self.n_classes * self.n_hidden):
                monte_carlo_e_step(bits, B, self.y, loglik, marginals, weights)
            bits, counts = aggregate_draws(bits, weights, self.y, self.sample_weight,
                                           self.n_classes)
        self.loglik = loglik
        w = self.sample_weight
        objective = (float(w @ loglik) - self.penalty(params)) / float(w.sum())
        return objective, (marginals, bits, counts)

    def m_step(self, X, expectations, params):
        A, B = params
        marginals, bits, counts = expectations
        A, _ = newton_hidden(X, marginals, self.sample_weight, A, self.alpha)
        B, _ = newton_output(bits, counts, B, self.alpha)
        return A, B


# ----------------------------------------------------------------------------- the estimator


class BinaryHiddenMLPClassifier(ParamsMixin):
    """A classifier whose H hidden units are binary latent variables, trained by EM.

    The model: given ``x``, hidden unit k is on independently with probability
    ``sigmoid(hidden_coef_[k] . x + hidden_intercept_[k])``; given the hidden
    configuration ``h`` (a vector of H zeros and ones), the class is ``c`` with
    probability ``softmax_c(output_coef_ @ h + output_intercept_)``. The
    prediction sums over the ``2**H`` configurations,
    ``p(y | x) = sum_h p(h | x) p(y | h)``.

    **EM.** The E-step computes the posterior over configurations
    ``p(h | x_i, y_i)``; the M-step raises the expected complete-data
    log-likelihood Q with Newton steps (and step-halving, so that Q never
    decreases): each hidden unit is a weighted logistic regression on the soft
    targets ``E[h_k | x_i, y_i]``, and the output layer a weighted softmax
    regression with one pseudo-row per (sample, configuration), weighted by
    its posterior, which the kernels sum without forming the rows. That is a
    generalised EM step, so the penalised log-likelihood cannot decrease; the
    driver (:func:`~emlab.fit_em`) checks that at every iteration.

    Parameters
    ----------
    n_hidden : int, default=4
        Number H of binary hidden units.
    e_step : {'auto', 'exact', 'monte_carlo'}, default='auto'
        'exact' enumerates the ``2**H`` configurations of each row (``H <=
        12``). 'monte_carlo' draws ``n_samples`` configurations per row from
        ``p(h | x_i)`` and weights them by ``p(y_i | h)`` (self-normalised
        importance sampling with the prior as proposal); the same uniforms are
        reused at every iteration (common random numbers). The objective is
        then an estimate (biased low: the log of a sample mean) and **nothing
        guarantees that it rises**: the driver's guard is switched off
        (``on_decrease='ignore'``) and ``lower_bounds_`` may fall. 'auto':
        'exact' when ``H <= 12``, else 'monte_carlo'.
    n_samples : int, default=256
        Draws per row for the Monte Carlo E-step, and for ``predict_proba``
        when ``H > 12``.
    alpha : float, default=1e-4
        L2 penalty on the weights (not the intercepts): the objective is
        ``sum_i w_i log p(y_i | x_i) - alpha / 2 (|hidden_coef_|^2 +
        |output_coef_|^2)``, as scikit-learn's MLPClassifier.
    max_iter : int, default=200
        EM iterations per start.
    tol : float, default=1e-6
        Convergence threshold on the change of the objective per unit of sample weight.
    n_init : int, default=1
        Number of random starts; the best objective is kept.
    random_state : None, int or numpy.random.Generator
        Seeds the starting weights, the Monte Carlo draws of the fit and of
        ``predict_proba`` (for ``H > 12``).
    verbose : int, default=0
        As :func:`~emlab.fit_em`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    hidden_coef_ : ndarray of shape (n_hidden, n_features)
    hidden_intercept_ : ndarray of shape (n_hidden,)
    output_coef_ : ndarray of shape (n_classes, n_hidden)
    output_intercept_ : ndarray of shape (n_classes,)
    lower_bounds_ : ndarray of shape (n_iter,)
        The objective (penalised log-likelihood per unit of sample weight)
        before each M-step of the kept run; non-decreasing for the exact E-step.
    lower_bound_ : float
        Its last value.
    converged_ : bool
    n_iter_ : int
    e_step_ : str
        The E-step used: 'exact' or 'monte_carlo'.

    Notes
    -----
    The exact E-step and prediction cost ``O(n 2**H (H + C))`` per pass; the
    Monte Carlo E-step ``O(n S (H + C) H)``. The hidden M-step costs
    ``O(n H d^2)`` per Newton step, the output one ``O(R C^2 H^2)`` over
    ``R <= 2**H`` configurations.

    See Also
    --------
    emlab.fit_em : the EM driver that runs the fit and checks the objective.

    References
    ----------
    .. [1] R. M. Neal (1992). Connectionist learning of belief networks. *Artificial
       Intelligence* 56, 71-113 (sigmoid belief networks, and their fit by EM).
    .. [2] Y. Tang and R. Salakhutdinov (2013). Learning stochastic feedforward neural
       networks. *Advances in Neural Information Processing Systems* 26 (generalised EM
       with importance-sampled E-steps for binary hidden units).

    Examples
    --------
    >>> import numpy as np
    >>> from emlab.datasets import load_wine
    >>> X, y = load_wine(return_X_y=True)
    >>> X = (X - X.mean(axis=0)) / X.std(axis=0)
    >>> net = BinaryHiddenMLPClassifier(n_hidden=3, max_iter=50, tol=1e-4, random_state=0)
    >>> net = net.fit(X, y)
    >>> bool(np.all(np.diff(net.lower_bounds_) >= -1e-10))
    True
    >>> bool(net.score(X, y) > 0.9)
    True
    """

    _estimator_type = "classifier"

    def __init__(self, n_hidden=4, *, e_step="auto", n_samples=256, alpha=1e-4, max_iter=200,
                 tol=1e-6, n_init=1, random_state=None, verbose=0):
        self.n_hidden = n_hidden
        self.e_step = e_step
        self.n_samples = n_samples
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), input_tags=InputTags())

    def _check_settings(self):
        n_hidden = check_int(self.n_hidden, "n_hidden", low=1)
        method = check_option(self.e_step, "e_step", E_STEPS)
        if method == "exact" and n_hidden > MAX_EXACT_HIDDEN:
            raise ValueError(
                f"e_step='exact' enumerates 2**n_hidden configurations per row and is limited to "
                f"n_hidden <= {MAX_EXACT_HIDDEN}; got n_hidden={n_hidden}. Use "
                f"e_step='monte_carlo' (or 'auto')."
            )
        if method == "auto":
            method = "exact" if n_hidden <= MAX_EXACT_HIDDEN else "monte_carlo"
        check_int(self.n_samples, "n_samples", low=1)
        check_scalar(self.alpha, "alpha", low=0.0)
        check_em_options(check_int(self.max_iter, "max_iter", low=1), self.tol, "warn")
        check_int(self.n_init, "n_init", low=1)
        check_int(self.verbose, "verbose", low=0)
        rng = check_random_state(self.random_state)
        return n_hidden, method, rng

    def _check_y(self, y, n_samples):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             f"is None: a classifier needs the class of each row of X.")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is "
                          "flattened with y.ravel().", _data_conversion_warning(), stacklevel=3)
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"y must be 1-d of shape (n_samples,); got shape {y.shape}.")
        if y.shape[0] != n_samples:
            raise ValueError(f"X has {n_samples} row(s) but y has {y.shape[0]} label(s); they "
                             f"must match.")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values.")
        if y.dtype.kind in "fc" and np.any(y != np.round(y.real)):
            raise ValueError("Unknown label type: continuous. y holds non-integer numbers; a "
                             "classifier needs class labels (integers or strings).")
        if y.dtype == object and any(v is None or (isinstance(v, float) and v != v) for v in y):
            raise ValueError("y contains missing values (None or NaN).")
        try:
            classes, encoded = np.unique(y, return_inverse=True)
        except TypeError as exc:
            raise ValueError(f"y's labels cannot be sorted: {exc}") from None
        if classes.size < 2:
            raise ValueError(f"y has {classes.size} class(es); a classifier needs at least 2.")
        return classes, np.ascontiguousarray(encoded.ravel(), dtype=np.int64)

    def fit(self, X, y, sample_weight=None):
        """Fit the network by EM. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any sortable values; at least two distinct).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; weight 2 counts a row twice.
        """
        n_hidden, method, rng = self._check_settings()
        X = check_array(X, "X", min_samples=1)
        classes, y_idx = self._check_y(y, X.shape[0])
        w = check_sample_weight(sample_weight, X.shape[0])
        if w is None:
            w = np.ones(X.shape[0])
        # drawn whatever the E-step, so both E-steps start from the same weights
        seed = int(rng.integers(2**63 - 1))
        model = HiddenMLPModel(y_idx, w, classes.size, n_hidden, float(self.alpha), method,
                               int(self.n_samples), seed)
        result = fit_em(model, X, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                        random_state=rng, on_decrease="warn" if method == "exact" else "ignore",
                        verbose=self.verbose)
        A, B = result.params
        d = X.shape[1]
        self.classes_ = classes
        self.n_features_in_ = d
        self.hidden_coef_ = np.ascontiguousarray(A[:, :d])
        self.hidden_intercept_ = A[:, d].copy()
        self.output_coef_ = np.ascontiguousarray(B[:, :n_hidden])
        self.output_intercept_ = B[:, n_hidden].copy()
        self.lower_bounds_ = result.lower_bounds
        self.lower_bound_ = float(result.lower_bounds[-1])
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.e_step_ = method
        return self

    # ------------------------------------------------------------------------- prediction

    def _params(self):
        A = np.ascontiguousarray(np.column_stack([self.hidden_coef_, self.hidden_intercept_]))
        B = np.ascontiguousarray(np.column_stack([self.output_coef_, self.output_intercept_]))
        return A, B

    def _check_X(self, X):
        check_is_fitted(self, "hidden_coef_")
        return check_array(X, "X", n_features=self.n_features_in_, estimator=type(self).__name__)

    def hidden_proba(self, X):
        """``p(h_k = 1 | x)`` of each hidden unit, shape (n_samples, n_hidden)."""
        X = self._check_X(X)
        return hidden_probabilities(X, self._params()[0])

    def predict_proba(self, X):
        """``p(y = c | x) = sum_h p(h | x) p(y = c | h)``, shape (n_samples, n_classes).

        Exact for ``n_hidden <= 12``; beyond, a Monte Carlo estimate from
        ``n_samples`` draws of ``h`` per row (seeded by ``random_state``).
        Rows sum to 1.
        """
        X = self._check_X(X)
        A, B = self._params()
        n, n_hidden = X.shape[0], A.shape[0]
        proba = np.empty((n, B.shape[0]))
        if n_hidden <= MAX_EXACT_HIDDEN:
            log_out = np.empty((2**n_hidden, B.shape[0]))
            config_log_softmax(B, log_out)
            with _config.threads_for(n * log_out.size * 2):
                exact_predict_proba(X, A, log_out, proba)
            return proba
        rng = check_random_state(self.random_state)
        n_draws = check_int(self.n_samples, "n_samples", low=1)
        for start in range(0, n, PREDICT_CHUNK):
            rows = slice(start, min(n, start + PREDICT_CHUNK))
            bits = draw_configurations(X[rows], A, n_draws, rng)
            out = np.empty((bits.shape[0], B.shape[0]))
            with _config.threads_for(bits.size * B.shape[0]):
                monte_carlo_predict_proba(bits, B, out)
            proba[rows] = out
        return proba

    def predict(self, X):
        """The most probable class of each row, shape (n_samples,)."""
        check_is_fitted(self, "hidden_coef_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y, sample_weight=None):
        """(Weighted) accuracy of :meth:`predict` on (X, y)."""
        pred = self.predict(X)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.shape != pred.shape:
            raise ValueError(f"y must have shape {pred.shape}, one label per row of X; got "
                             f"{y.shape}.")
        w = check_sample_weight(sample_weight, pred.shape[0])
        return float(np.average(pred == y, weights=w))


__all__ = ["BinaryHiddenMLPClassifier"]
