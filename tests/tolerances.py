"""Numeric tolerances of the suite, each derived from floating-point rounding.

oneDNN picks its kernels by instruction set (AVX2, AVX-512, AMX, AVX512-BF16): the same float32
maths then runs with another summation order, blocking and use of FMA, so two CPUs, or a graph
and an eager call, differ in the last bits. No test uses a number that one CPU happened to meet.
Each tolerance below follows from the unit roundoff ``u`` of the format involved:

* A sum or dot product of ``n`` terms has a relative error of at most ``gamma(n) = n u / (1 - n u)``
  against ``sum |x_i y_i|``, in any order (Higham, *Accuracy and Stability of Numerical
  Algorithms*, 2nd ed., 2002, §3.1). This is the bound to use where the test can compute
  ``sum |x_i y_i|`` itself.
* Rounding errors that behave as independent random variables give the much tighter
  ``lambda sqrt(n) u`` with probability at least ``1 - 2 exp(-lambda^2 / 2)`` (Higham and Mary, "A New
  Approach to Probabilistic Rounding Error Analysis", SIAM J. Sci. Comput. 41(5), 2019,
  Theorem 3.1). ``LAMBDA = 6`` leaves a failure probability of 3e-8 per element.
* A network is a chain of such products. Its layers' errors are independent and add as a random
  walk: ``sqrt(depth)`` layers' worth. That assumes well-conditioned layers (``|W| |x|`` within a
  small factor of ``|W x|``), which BN keeps true at initialisation; tests with deliberately wild
  BN statistics scale by the output's own magnitude instead.
* Two float32 evaluations differ by at most the sum of their errors: a factor 2.
"""

from __future__ import annotations

import math

import numpy as np

U32 = 2.0 ** -24   # float32: 24-bit significand, round to nearest
U16 = 2.0 ** -11   # float16
UBF16 = 2.0 ** -8  # bfloat16: 8-bit significand
LAMBDA = 6.0


def gamma(n: int, u: float = U32) -> float:
    """Worst-case relative error of an ``n``-term sum or dot product, against ``sum |terms|``."""
    return n * u / (1.0 - n * u)


def dot_rtol(n: int, u: float = U32) -> float:
    """Probabilistic relative error of an ``n``-term dot product, against ``sum |terms|``."""
    return LAMBDA * math.sqrt(n) * u


def net_rtol(depth: int, reduction: int, u: float = U32) -> float:
    """Bound on the difference of two evaluations of a ``depth``-layer network whose largest
    reduction (``kernel_h * kernel_w * in_channels``) is ``reduction``, relative to the output's
    scale."""
    return 2.0 * math.sqrt(depth) * dot_rtol(reduction, u)


def logit_range(probs) -> float:
    """The largest spread of logits that a row of softmax probabilities implies:
    ``log(max p / min p)``. Softmax ignores a common shift of the logits, so this is the logit
    scale that rounding errors are relative to."""
    p = np.asarray(probs, np.float64).reshape(-1, np.shape(probs)[-1])
    return float(max(1.0, np.max(np.log(p.max(-1) / np.maximum(p.min(-1), 1e-300)))))


def prob_rtol(probs, depth: int, reduction: int, u: float = U32) -> float:
    """Relative tolerance for softmax probabilities of two evaluations of one network.

    ``dp_i / p_i = dz_i - sum_j p_j dz_j``, so ``|dp_i| <= 2 p_i max|dz|``, and ``max|dz|`` is
    ``net_rtol`` times the logit scale (``logit_range(probs)``)."""
    return 2.0 * net_rtol(depth, reduction, u) * logit_range(probs)


def conv_depth_and_reduction(model) -> tuple[int, int]:
    """``(number of convolution kernels, largest kernel_h * kernel_w * in_channels)`` of a
    Keras model: the ``depth`` and ``reduction`` arguments of ``net_rtol`` (counting every conv,
    shortcuts included, over-counts the depth of the longest path: a safe side)."""
    kernels = [tuple(w.shape) for w in model.weights if len(w.shape) == 4]
    return len(kernels), max(int(np.prod(shape[:3])) for shape in kernels)
