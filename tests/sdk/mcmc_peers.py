# Reference values of tests/sdk/test_mcmc_diagnostics.cpp: emcee's integrated_time, ArviZ's rank and
# split R-hat and bulk ESS, pyblock's reblock + find_optimal_block, re-derived with numpy and scipy.
import numpy as np
from scipy import stats

def traces(chains, draws):
    x = np.zeros((chains, draws))
    for c in range(chains):
        y, state = 0.0, 12345 + 977 * c
        for t in range(draws):
            state = (state * 1103515245 + 12345) % 2147483648
            y = 0.8 * y + (state / 2147483648.0 - 0.5) + 0.05 * c
            x[c, t] = y
    return x

def acf(x):
    n = len(x); m = 1
    while m < 2 * n: m *= 2
    f = np.fft.fft(x - x.mean(), n=m)
    c = np.fft.ifft(f * np.conj(f))[:n].real
    return c / c[0]

def emcee_tau(x, c=5.0):
    f = np.mean([acf(row) for row in x], axis=0)
    taus = 2.0 * np.cumsum(f) - 1.0
    m = np.arange(len(taus)) < c * taus
    w = np.argmin(m) if np.any(~m) else len(taus) - 1
    return taus[w], w

def split(x):
    h = x.shape[1] // 2
    return np.vstack([x[:, :h], x[:, -h:]])

def z(x):
    r = stats.rankdata(x, method="average").reshape(x.shape)
    return stats.norm.ppf((r - 0.375) / (x.size + 0.25))

def rhat(x):
    n = x.shape[1]
    b = n * np.var(x.mean(axis=1), ddof=1)
    w = np.mean(np.var(x, axis=1, ddof=1))
    return np.sqrt((b / w + n - 1) / n)

def rank_rhat(x):
    s = split(x)
    return max(rhat(z(s)), rhat(z(np.abs(s - np.median(s)))))

def autocov(x):
    n = x.shape[1]; m = 1
    while m < 2 * n: m *= 2
    y = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(y, n=m, axis=1)
    return np.fft.irfft(f * np.conj(f), n=m, axis=1)[:, :n] / n

def geyer_ess(x):
    k, n = x.shape
    acov = autocov(x)
    mean_var = acov[:, 0].mean() * n / (n - 1)
    var_plus = mean_var * (n - 1) / n + (np.var(x.mean(axis=1), ddof=1) if k > 1 else 0)
    rho = np.zeros(n); even = 1.0; odd = 1.0 - (mean_var - acov[:, 1].mean()) / var_plus
    rho[0], rho[1] = even, odd
    t = 1
    while t < n - 3 and even + odd > 0:
        even = 1.0 - (mean_var - acov[:, t + 1].mean()) / var_plus
        odd = 1.0 - (mean_var - acov[:, t + 2].mean()) / var_plus
        if even + odd >= 0: rho[t + 1], rho[t + 2] = even, odd
        t += 2
    mt = t - 2
    if even > 0: rho[mt + 1] = even
    t = 1
    while t <= mt - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2
        t += 2
    tau = -1 + 2 * rho[:mt + 1].sum() + rho[mt + 1:mt + 2].sum()
    return k * n / max(tau, 1 / np.log10(k * n))

def blocking(x):
    levels, size, b = [], 1, x.copy()
    while b.shape[1] >= 1 and b.size >= 2:
        levels.append((size, b.size, np.sqrt(np.var(b, ddof=1) / b.size)))
        h = b.shape[1] // 2
        b = (b[:, 0:2 * h:2] + b[:, 1:2 * h:2]) / 2
        size *= 2
    n = x.size
    for size, count, se in levels:
        if size ** 3 > 2 * n * (se / levels[0][2]) ** 4:
            return se, size
    return None

x = traces(3, 200)
np.set_printoptions(precision=17)
print("tau", repr(emcee_tau(x)))
print("split_rhat", repr(rhat(split(x))))
print("rank_rhat", repr(rank_rhat(x)))
print("ess_bulk", repr(geyer_ess(z(split(x)))))
print("binning", repr(blocking(x)), repr(x.mean()))
for p in [1e-300, 1e-10, 0.001, 0.02425, 0.1, 0.3, 0.5, 0.75, 0.975, 0.999999]:
    print(p, repr(stats.norm.ppf(p)))
x = traces(2, 4096)
print("big tau", repr(emcee_tau(x)), "rank_rhat", repr(rank_rhat(x)), "split", repr(rhat(split(x))), "ess_bulk", repr(geyer_ess(z(split(x)))))
print("big binning", repr(blocking(x)), repr(x.mean()))
