"""Slow, obviously correct versions of what emlab computes fast.

Nothing here calls emlab: these are the independent references the tests
compare against (scipy.stats and explicit Python loops).
"""

import itertools
import math

import numpy as np
from scipy.linalg import cho_solve
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def log_gaussian(X, means, covariances):
    """log N(x_i | mu_k, Sigma_k) by scipy.stats, shape (n, K)."""
    return np.column_stack(
        [multivariate_normal(m, c).logpdf(X).reshape(-1) for m, c in zip(means, covariances)]
    )


def log_normalize(log_prob):
    """Row-wise log-sum-exp and normalised probabilities, one row at a time with math.fsum."""
    n, k = log_prob.shape
    log_norm = np.empty(n)
    resp = np.empty((n, k))
    for i in range(n):
        top = max(log_prob[i])
        if top == -math.inf:
            log_norm[i] = -math.inf
            resp[i] = 1.0 / k
            continue
        terms = [math.exp(v - top) for v in log_prob[i]]
        s = math.fsum(terms)
        log_norm[i] = top + math.log(s)
        resp[i] = [t / s for t in terms]
    return log_norm, resp


def weighted_stats(X, resp):
    """N_k, weighted means and centred scatter matrices by explicit loops (two passes)."""
    n, d = X.shape
    k = resp.shape[1]
    nk = np.array([math.fsum(resp[:, j]) for j in range(k)])
    means = np.zeros((k, d))
    for j in range(k):
        for a in range(d):
            means[j, a] = math.fsum(resp[i, j] * X[i, a] for i in range(n)) / nk[j]
    scatter = np.zeros((k, d, d))
    for j in range(k):
        for a in range(d):
            for b in range(d):
                scatter[j, a, b] = math.fsum(
                    resp[i, j] * (X[i, a] - means[j, a]) * (X[i, b] - means[j, b]) for i in range(n)
                )
    return nk, means, scatter


def restrict(scatter, nk, covariance_type):
    """Each model's maximising covariances, as (K, d, d) matrices, from full scatter matrices."""
    d = scatter.shape[1]
    if covariance_type == "full":
        return scatter / nk[:, None, None]
    if covariance_type == "tied":
        return np.broadcast_to(scatter.sum(axis=0) / nk.sum(), scatter.shape).copy()
    if covariance_type == "diag":
        return np.array([np.diag(np.diag(s)) for s in scatter]) / nk[:, None, None]
    return np.array([np.trace(s) / d * np.eye(d) for s in scatter]) / nk[:, None, None]


def em_step(X, weights, means, covariances, reg_covar, covariance_type="full"):
    """One EM step, straight from the textbook formulas.

    Covariances come in and go out as (K, d, d) matrices whatever the model; the
    M-step of each model restricts the full-covariance maximiser: 'tied' pools
    the scatter matrices, 'diag' keeps their diagonals, 'spherical' the mean of
    the diagonal. Returns (mean log-likelihood of the input parameters, new
    weights, means, covariances).
    """
    n, d = X.shape
    dens = np.column_stack(
        [w * multivariate_normal(m, c).pdf(X).reshape(-1) for w, m, c in zip(weights, means, covariances)]
    )
    lik = dens.sum(axis=1)
    resp = dens / lik[:, None]
    nk = resp.sum(axis=0)
    new_means = (resp.T @ X) / nk[:, None]
    scatter = np.empty((len(weights), d, d))
    for k in range(len(weights)):
        diff = X - new_means[k]
        scatter[k] = (resp[:, k, None] * diff).T @ diff
    return np.log(lik).mean(), nk / n, new_means, restrict(scatter, nk, covariance_type) + reg_covar * np.eye(d)


def kmeans_assign(X, centers):
    """Nearest centre (lowest index on ties) and squared distance, by loops."""
    labels = np.empty(len(X), dtype=np.int64)
    dist = np.empty(len(X))
    for i, x in enumerate(X):
        d2 = [math.fsum((x - c) ** 2) for c in centers]
        labels[i] = int(np.argmin(d2))
        dist[i] = d2[labels[i]]
    return labels, dist


def lloyd(X, centers, n_iter):
    """Plain Lloyd iterations (no empty clusters expected)."""
    centers = centers.copy()
    for _ in range(n_iter):
        labels, _ = kmeans_assign(X, centers)
        centers = np.array([X[labels == k].mean(axis=0) for k in range(len(centers))])
    return centers


def best_permutation_errors(true, pred, k):
    """Fewest mismatches over all relabelings of pred, by brute force."""
    return min(
        int(np.sum(np.asarray(perm)[pred] != true)) for perm in itertools.permutations(range(k))
    )


def em_step_missing(X, weights, means, covariances, reg_covar, covariance_type="full"):
    """One EM step with NaN as missing values, row by row (Ghahramani and Jordan, 1994).

    E-step: each row's marginal density on its observed coordinates. M-step:
    expected sufficient statistics, the missing coordinates replaced by their
    conditional means and the conditional covariance added. Covariances in and
    out as (K, d, d), restricted per model as in ``em_step``.
    """
    n, d = X.shape
    k = len(weights)
    dens = np.zeros((n, k))
    for i in range(n):
        o = ~np.isnan(X[i])
        for j in range(k):
            dens[i, j] = weights[j] * multivariate_normal(means[j][o], covariances[j][np.ix_(o, o)]).pdf(X[i][o])
    lik = dens.sum(axis=1)
    resp = dens / lik[:, None]
    nk = resp.sum(axis=0)
    filled = np.zeros((k, n, d))
    extra = np.zeros((k, n, d, d))
    for i in range(n):
        o = ~np.isnan(X[i])
        m = ~o
        for j in range(k):
            x = X[i].copy()
            if m.any():
                s_oo = covariances[j][np.ix_(o, o)]
                s_mo = covariances[j][np.ix_(m, o)]
                x[m] = means[j][m] + s_mo @ np.linalg.solve(s_oo, X[i][o] - means[j][o])
                extra[j, i][np.ix_(m, m)] = covariances[j][np.ix_(m, m)] - s_mo @ np.linalg.solve(s_oo, s_mo.T)
            filled[j, i] = x
    new_means = np.array([resp[:, j] @ filled[j] for j in range(k)]) / nk[:, None]
    scatter = np.array([
        sum(resp[i, j] * (np.outer(filled[j, i] - new_means[j], filled[j, i] - new_means[j]) + extra[j, i])
            for i in range(n))
        for j in range(k)])
    return np.log(lik).mean(), nk / n, new_means, restrict(scatter, nk, covariance_type) + reg_covar * np.eye(d)


def distinct_rows(X):
    """X's distinct rows in lexicographic order of their values, by Python's set and sort
    (tuples of floats: -0.0 equals 0.0 and hashes alike)."""
    return sorted(set(tuple(float(v) for v in row) for row in X))


def nan_patterns(X):
    """``[(observed mask, row indices), ...]`` by a loop over rows: one entry per pattern of
    NaNs, patterns in lexicographic order of their NaN masks (False before True)."""
    groups = {}
    for i, row in enumerate(X):
        groups.setdefault(tuple(bool(np.isnan(v)) for v in row), []).append(i)
    return [(~np.array(mask), np.array(rows)) for mask, rows in sorted(groups.items())]


def missing_statistics(X, params, sample_weight, groups, diagonal):
    """The E-step of a Gaussian mixture with missing values in NumPy, a pattern of missing
    features at a time (``groups``: ``emlab._missing.patterns(X)``): what emlab did before
    its kernels (``emlab._missing.diagonal_statistics``, ``full_statistics``).

    Returns ``(loglik, nk, sums, second)``: the total observed-data log-likelihood, and the
    expected counts, sums and second moments about the current means (full (K, d, d)
    matrices, or their diagonals (K, d) when ``diagonal``), each row weighted by
    ``sample_weight`` (None: 1). Each pattern's blocks are factorised once per component:
    the Cholesky factor of ``S_oo``, the regression ``S_mo S_oo^-1`` and the conditional
    covariance ``S_mm - S_mo S_oo^-1 S_om``.
    """
    k_count, d = params.means.shape
    full = params.full_covariances()
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    log_prob = np.empty((X.shape[0], k_count))
    conditionals = {}
    for p, (obs, rows) in enumerate(groups):
        miss = ~obs
        x_o = X[np.ix_(rows, obs)]
        for k in range(k_count):
            chol = np.linalg.cholesky(full[k][np.ix_(obs, obs)])
            if miss.any():
                s_om = full[k][np.ix_(obs, miss)]
                regression = cho_solve((chol, True), s_om).T
                conditionals[p, k] = (regression, full[k][np.ix_(miss, miss)] - regression @ s_om)
            else:
                conditionals[p, k] = (None, None)
            z = np.linalg.solve(chol, (x_o - params.means[k, obs]).T)
            log_det = 2.0 * np.sum(np.log(np.diag(chol)))
            log_prob[rows, k] = log_w[k] - 0.5 * (obs.sum() * np.log(2 * np.pi) + log_det
                                                   + np.sum(z * z, axis=0))
    log_norm = logsumexp(log_prob, axis=1)
    resp = np.exp(log_prob - log_norm[:, None])
    if sample_weight is not None:
        resp *= sample_weight[:, None]
        loglik = float(np.sum(sample_weight * log_norm))
    else:
        loglik = float(np.sum(log_norm))
    nk, sums, second = np.zeros(k_count), np.zeros((k_count, d)), np.zeros((k_count, d, d))
    for p, (obs, rows) in enumerate(groups):
        miss = ~obs
        x = X[rows]
        for k in range(k_count):
            r = resp[rows, k]
            filled = x.copy()
            regression, conditional = conditionals[p, k]
            if regression is not None:
                filled[:, miss] = (params.means[k, miss]
                                   + (x[:, obs] - params.means[k, obs]) @ regression.T)
            diff = filled - params.means[k]
            nk[k] += r.sum()
            sums[k] += r @ diff
            second[k] += (r[:, None] * diff).T @ diff
            if conditional is not None:
                second[k][np.ix_(miss, miss)] += r.sum() * conditional
    if diagonal:
        second = np.diagonal(second, axis1=1, axis2=2).copy()
    return loglik, nk, sums, second


# --------------------------------------------------------------------------- hidden Markov models


def hmm_enumerate(log_emission, startprob, transmat):
    """Everything about one sequence by enumerating all K^T state paths (tiny T only).

    Returns ``(logprob, gamma, xi_sum, best_path, best_logprob)``: log p(x) (a
    log-sum-exp over paths), the state posteriors (T, K), the expected
    transition counts summed over time (K, K), and the most probable path with
    its log joint probability (the first in lexicographic order among ties).
    """
    log_emission = np.asarray(log_emission, dtype=np.float64)
    n, k = log_emission.shape
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.log(transmat)
    paths = list(itertools.product(range(k), repeat=n))
    log_joint = np.empty(len(paths))
    for p, path in enumerate(paths):
        terms = [log_start[path[0]], log_emission[0, path[0]]]
        for t in range(1, n):
            terms += [log_trans[path[t - 1], path[t]], log_emission[t, path[t]]]
        log_joint[p] = -math.inf if -math.inf in terms else math.fsum(terms)
    top = log_joint.max()
    best = int(np.argmax(log_joint))
    if top == -math.inf:
        return -math.inf, None, None, paths[best], -math.inf
    weights = np.exp(log_joint - top)
    total = math.fsum(weights)
    logprob = top + math.log(total)
    post = weights / total
    gamma = np.zeros((n, k))
    xi = np.zeros((k, k))
    for p, path in enumerate(paths):
        for t in range(n):
            gamma[t, path[t]] += post[p]
        for t in range(n - 1):
            xi[path[t], path[t + 1]] += post[p]
    return logprob, gamma, xi, np.array(paths[best]), float(log_joint[best])


def hmm_forward_backward(log_emission, startprob, transmat):
    """Forward-backward in log space with plain loops (Rabiner's recursions, one sequence).

    Returns ``(logprob, gamma, xi_sum)`` as :func:`hmm_enumerate`, for any T.
    """
    log_emission = np.asarray(log_emission, dtype=np.float64)
    n, k = log_emission.shape
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.log(transmat)

    def lse(values):
        values = list(values)
        top = max(values)
        if top == -math.inf:
            return -math.inf
        return top + math.log(math.fsum(math.exp(v - top) for v in values))

    log_alpha = np.empty((n, k))
    log_beta = np.zeros((n, k))
    for j in range(k):
        log_alpha[0, j] = log_start[j] + log_emission[0, j]
    for t in range(1, n):
        for j in range(k):
            log_alpha[t, j] = lse(log_alpha[t - 1, i] + log_trans[i, j] for i in range(k)) \
                + log_emission[t, j]
    for t in range(n - 2, -1, -1):
        for i in range(k):
            log_beta[t, i] = lse(log_trans[i, j] + log_emission[t + 1, j] + log_beta[t + 1, j]
                                 for j in range(k))
    logprob = lse(log_alpha[n - 1])
    gamma = np.exp(log_alpha + log_beta - logprob)
    xi = np.zeros((k, k))
    for t in range(n - 1):
        for i in range(k):
            for j in range(k):
                xi[i, j] += math.exp(log_alpha[t, i] + log_trans[i, j] + log_emission[t + 1, j]
                                     + log_beta[t + 1, j] - logprob)
    return logprob, gamma, xi


# ----------------------------------------------------------------------------- binary hidden units


def _log_softmax_list(z):
    top = max(z)
    lse = top + math.log(math.fsum(math.exp(v - top) for v in z))
    return [v - lse for v in z]


def hidden_mlp_enumerate(X, A, B, y, sample_weight=None):
    """The network with binary hidden units by brute force over all 2**H configurations.

    ``A`` (H, d + 1) and ``B`` (C, H + 1) hold weights with the intercept last;
    configuration index ``m = sum_k h_k 2**k``. Returns a dict with
    ``loglik`` (n,): log p(y_i | x_i); ``posterior`` (n, 2**H): p(h = m | x_i, y_i);
    ``marginals`` (n, H): E[h_k | x_i, y_i]; ``counts`` (2**H, C):
    sum_i w_i p(h = m | x_i, y_i) [y_i = c]; ``proba`` (n, C): p(y = c | x_i).
    """
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    H, C = A.shape[0], B.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    configs = list(itertools.product([0, 1], repeat=H))
    out = {"loglik": np.empty(n), "posterior": np.empty((n, 2**H)), "marginals": np.zeros((n, H)),
           "counts": np.zeros((2**H, C)), "proba": np.empty((n, C))}
    for i in range(n):
        u = [float(A[k, :d] @ X[i] + A[k, d]) for k in range(H)]
        log_joint = {}  # (m, c) -> log p(h = m | x) + log p(y = c | h = m)
        for h in configs:
            m = sum(bit << k for k, bit in enumerate(h))
            log_prior = 0.0
            for k in range(H):  # log sigmoid(+-u) = -log(1 + exp(-+u))
                log_prior += -float(np.logaddexp(0.0, -u[k] if h[k] else u[k]))
            z = [float(B[c, :H] @ np.array(h, dtype=float) + B[c, H]) for c in range(C)]
            for c, lp in enumerate(_log_softmax_list(z)):
                log_joint[m, c] = log_prior + lp
        for c in range(C):
            out["proba"][i, c] = math.fsum(math.exp(log_joint[m, c]) for m in range(2**H))
        out["proba"][i] /= out["proba"][i].sum()
        c = int(y[i])
        values = [log_joint[m, c] for m in range(2**H)]
        top = max(values)
        lse = top + math.log(math.fsum(math.exp(v - top) for v in values))
        out["loglik"][i] = lse
        for m in range(2**H):
            r = math.exp(values[m] - lse)
            out["posterior"][i, m] = r
            out["counts"][m, c] += w[i] * r
            for k in range(H):
                if (m >> k) & 1:
                    out["marginals"][i, k] += r
    return out


def hidden_mlp_q_hidden(X, A, targets, sample_weight):
    """Each hidden unit's soft-target logistic log-likelihood, sum_i w_i (t log s + (1 - t) log(1 - s))."""
    X = np.asarray(X, dtype=float)
    d = X.shape[1]
    values = []
    for k in range(A.shape[0]):
        total = []
        for i in range(X.shape[0]):
            u = float(A[k, :d] @ X[i]) + A[k, d]
            t = targets[i, k]  # log s = -log(1 + exp(-u)), log(1 - s) = -log(1 + exp(u))
            total.append(-sample_weight[i] * (t * float(np.logaddexp(0.0, -u))
                                              + (1.0 - t) * float(np.logaddexp(0.0, u))))
        values.append(math.fsum(total))
    return np.array(values)


def hidden_mlp_q_output(bits, counts, B):
    """sum_r sum_c counts[r, c] log softmax_c(B @ [bits[r], 1]), by explicit loops."""
    H = bits.shape[1]
    total = []
    for r in range(bits.shape[0]):
        z = [float(B[c, :H] @ bits[r].astype(float) + B[c, H]) for c in range(B.shape[0])]
        for c, lp in enumerate(_log_softmax_list(z)):
            total.append(counts[r, c] * lp)
    return math.fsum(total)


# ----------------------------------------------------------------------------- mixtures of experts


def softmax_rows(eta):
    """Row-wise softmax, max-shifted (plain NumPy)."""
    e = np.exp(eta - eta.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def logit_objective(X, coef, targets, weights, alpha=0.0):
    """``sum_i w_i sum_c t_ic log softmax_c(coef [x_i, 1]) - alpha/2 ||coef[:, :d]||^2``."""
    Xa = np.column_stack([X, np.ones(len(X))])
    eta = Xa @ coef.T
    top = eta.max(axis=1, keepdims=True)
    log_p = eta - top - np.log(np.exp(eta - top).sum(axis=1, keepdims=True))
    d = X.shape[1]
    return float(weights @ (targets * log_p).sum(axis=1)) - 0.5 * alpha * float(np.sum(coef[:, :d] ** 2))


def logit_gradient_hessian(X, coef, targets, weights, alpha=0.0):
    """Gradient and negative Hessian of :func:`logit_objective`, one row at a time (np.kron).

    In the full (C (d + 1)) parameterisation, indexed ``c * (d + 1) + a``.
    """
    n, d = X.shape
    n_classes, p = coef.shape
    Xa = np.column_stack([X, np.ones(n)])
    prob = softmax_rows(Xa @ coef.T)
    grad = np.zeros(n_classes * p)
    hess = np.zeros((n_classes * p, n_classes * p))
    for i in range(n):
        grad += weights[i] * np.kron(targets[i] - prob[i], Xa[i])
        a = np.diag(prob[i]) - np.outer(prob[i], prob[i])
        hess += weights[i] * np.kron(a, np.outer(Xa[i], Xa[i]))
    pen = np.tile(np.r_[np.ones(d), 0.0], n_classes)
    grad -= alpha * pen * coef.ravel()
    hess += alpha * np.diag(pen)
    return grad.reshape(n_classes, p), hess


def logit_newton_step(X, coef, targets, weights, alpha, learning_rate=1.0):
    """One damped Newton step on :func:`logit_objective`, solved with the pseudo-inverse.

    The minimum-norm solution leaves out the null direction (a common shift of
    the intercepts); the intercepts are then centred.
    """
    grad, hess = logit_gradient_hessian(X, coef, targets, weights, alpha)
    step = (np.linalg.pinv(hess, rcond=1e-13, hermitian=True) @ grad.ravel()).reshape(coef.shape)
    new = coef + learning_rate * step
    new[:, -1] -= new[:, -1].mean()
    return new


def logit_newton_fit(X, targets, weights, alpha, n_iter=50):
    """Penalised multinomial logistic regression by plain Newton from zero."""
    coef = np.zeros((targets.shape[1], X.shape[1] + 1))
    for _ in range(n_iter):
        coef = logit_newton_step(X, coef, targets, weights, alpha)
    return coef


def moe_em_step(X, y, weights, gate, experts, alpha, learning_rate, sigma2=None):
    """One EM iteration of a mixture of experts with one damped Newton step per block.

    ``y`` one-hot (n, C) with ``experts`` (K, C, d + 1) for multinomial-logit
    experts, or real (n,) with ``experts`` (K, d + 1) and ``sigma2`` (K,) for
    linear-Gaussian ones (their step: weighted least squares with the old
    variance, damped, then the variance). Returns ``(objective per unit weight
    of the given parameters, gate, experts, sigma2)``.
    """
    n, d = X.shape
    k = gate.shape[0]
    Xa = np.column_stack([X, np.ones(n)])
    log_gate = np.log(softmax_rows(Xa @ gate.T))
    if sigma2 is None:
        log_expert = np.column_stack(
            [np.log((softmax_rows(Xa @ experts[j].T) * y).sum(axis=1)) for j in range(k)])
    else:
        mu = Xa @ experts.T
        log_expert = -0.5 * np.log(2 * np.pi * sigma2) - 0.5 * (y[:, None] - mu) ** 2 / sigma2
    joint = log_gate + log_expert
    top = joint.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
    h = np.exp(joint - log_norm[:, None])
    penalty = 0.5 * alpha * (np.sum(gate[:, :d] ** 2) + np.sum(experts[..., :d] ** 2))
    objective = (float(weights @ log_norm) - penalty) / weights.sum()
    new_gate = logit_newton_step(X, gate, h, weights, alpha, learning_rate) if k > 1 else gate
    new_experts = experts.copy()
    new_sigma2 = None if sigma2 is None else sigma2.copy()
    for j in range(k):
        w = weights * h[:, j]
        if sigma2 is None:
            new_experts[j] = logit_newton_step(X, experts[j], y, w, alpha, learning_rate)
        else:
            a = Xa.T @ (w[:, None] * Xa) / sigma2[j] + alpha * np.diag(np.r_[np.ones(d), 0.0])
            target = np.linalg.solve(a, Xa.T @ (w * y) / sigma2[j])
            new_experts[j] = experts[j] + learning_rate * (target - experts[j])
            new_sigma2[j] = w @ (y - Xa @ new_experts[j]) ** 2 / w.sum()
    return objective, new_gate, new_experts, new_sigma2
