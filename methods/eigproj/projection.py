"""The eigenprojection (paper §3, §5.2–5.4): PCA, the generalized eigenproblem, nearest class.

Primal: minimise ``||(X - H) u||²`` subject to ``uᵀ B u = 1`` with ``B = Σx + Σh`` (+ ε·mean(diag B)·I).
KKT stationarity gives ``(X - H)ᵀ(X - H) u = λ B u``: the solutions are the generalized
eigenvectors, the optimum the one of the smallest eigenvalue; the next k-1 give a k-dim map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
from sklearn.decomposition import PCA
from sklearn.kernel_approximation import Nystroem

from benchmark.core.errors import BenchmarkError

Constraint = Literal["sum", "keywords", "classes"]


def constraint_matrix(
    kind: Constraint, x: np.ndarray, h: np.ndarray, classes: np.ndarray, epsilon: float
) -> np.ndarray:
    """``B``: Σx+Σh (the paper's primal), Σh alone, or the class embeddings' covariance; then
    + ε·mean(diag B)·I: the paper's "slight noise" on the diagonal, relative to B's own scale in
    the space B lives in (PCA or Nyström), so one ε means the same in every setting."""
    if kind == "sum":
        b = np.cov(x, rowvar=False) + np.cov(h, rowvar=False)
    elif kind == "keywords":
        b = np.cov(h, rowvar=False)
    else:
        b = np.cov(classes, rowvar=False)
    b = np.atleast_2d(b)
    return b + epsilon * float(np.mean(np.diag(b))) * np.eye(len(b))


def solve_projection(x: np.ndarray, h: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k generalized eigenvectors of ``((X-H)ᵀ(X-H), B)`` with the smallest eigenvalues.

    Returned as columns of U (d × k) normalised so that ``Uᵀ B U = I``, with their eigenvalues.
    """
    if k > b.shape[0]:
        raise BenchmarkError(f"k={k} eigenvectors asked for, but the space has only {b.shape[0]} dimensions")
    diff = x - h
    a = diff.T @ diff
    try:
        values, vectors = scipy.linalg.eigh(a, b, subset_by_index=[0, k - 1])
    except np.linalg.LinAlgError as error:
        raise BenchmarkError(
            f"the constraint matrix is singular or not positive definite ({error}); "
            "add the paper's slight noise on its diagonal, e.g. --set epsilon=1e-3"
        ) from error
    return values, vectors


@dataclass
class Projection:
    """Maps entity vectors (``entities``) and keyword/class vectors (``keywords``) to R^k. With
    one PCA (``pca=joint``) ``pca_x`` and ``pca_h`` are the same fitted transform."""

    pca_x: PCA
    pca_h: PCA
    kernel: Nystroem | None
    vectors: np.ndarray
    eigenvalues: np.ndarray

    def _lift(self, z: np.ndarray) -> np.ndarray:
        return self.kernel.transform(z) if self.kernel is not None else z

    def entities(self, x: np.ndarray) -> np.ndarray:
        return self._lift(self.pca_x.transform(x)) @ self.vectors

    def keywords(self, h: np.ndarray) -> np.ndarray:
        """Keyword vectors and fine-class vectors ("transformed in conjunction with H")."""
        return self._lift(self.pca_h.transform(h)) @ self.vectors


def fit_projection(
    x: np.ndarray,
    h: np.ndarray,
    classes: np.ndarray,
    *,
    dims: int,
    k: int,
    constraint: Constraint,
    epsilon: float,
    pca: Literal["separate", "joint"],
    kernel: Literal["linear", "rbf"],
    kernel_components: int,
    gamma: float | None,
    seed: int,
) -> Projection:
    """PCA to ``dims`` (one shared by X, H and the classes, or one for X and one for H and the
    classes), optional RBF lift, eigenproblem. ``epsilon`` is relative (`constraint_matrix`)."""
    dims = min(dims, x.shape[1], len(x) - 1)
    if pca == "separate":
        pca_x = PCA(dims, svd_solver="full").fit(x)
        pca_h = PCA(dims, svd_solver="full").fit(h)
    else:
        pca_x = pca_h = PCA(dims, svd_solver="full").fit(np.vstack([x, h]))
    xp, hp, cp = pca_x.transform(x), pca_h.transform(h), pca_h.transform(classes)
    lift = None
    if kernel == "rbf":
        components = min(kernel_components, 2 * len(x))
        lift = Nystroem(kernel="rbf", gamma=gamma, n_components=components, random_state=seed)
        lift.fit(np.vstack([xp, hp]))
        xp, hp, cp = lift.transform(xp), lift.transform(hp), lift.transform(cp)
    b = constraint_matrix(constraint, xp, hp, cp, epsilon)
    values, vectors = solve_projection(xp, hp, b, k)
    return Projection(pca_x, pca_h, lift, vectors, values)


def nearest_class(
    entities: np.ndarray, classes: np.ndarray, allowed: np.ndarray, metric: Literal["euclidean", "cosine"]
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest allowed class for each entity, and the margin to the runner-up.

    ``allowed`` is a boolean (entities × classes) mask (the fine types of the gold coarse type).
    """
    if metric == "cosine":
        e = entities / np.maximum(np.linalg.norm(entities, axis=1, keepdims=True), 1e-12)
        c = classes / np.maximum(np.linalg.norm(classes, axis=1, keepdims=True), 1e-12)
        distance = 1 - e @ c.T
    else:
        distance = np.sqrt(np.maximum(((entities[:, None, :] - classes[None, :, :]) ** 2).sum(-1), 0))
    distance = np.where(allowed, distance, np.inf)
    order = np.argsort(distance, axis=1, kind="stable")
    rows = np.arange(len(entities))
    best, second = distance[rows, order[:, 0]], distance[rows, order[:, 1]]
    margin = np.where(np.isfinite(second), second - best, np.ones_like(best))
    return order[:, 0], margin
