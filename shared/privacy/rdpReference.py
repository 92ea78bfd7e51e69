"""Independent reference for shared/privacy/accountant.test.ts (run: python3 shared/privacy/rdpReference.py).

RDP of the Poisson-subsampled Gaussian at order a is log(A_a)/(a - 1) with
A_a = E_{z ~ N(0, s^2)} [((1 - q) + q * exp((2z - 1) / (2 s^2)))^a]   (Mironov, Talwar, Zhang 2019, Thm 4/§3.3).
Here A_a is computed by direct numerical integration at 40 digits (mpmath.quad), not with the binomial/erfc
series the TypeScript accountant uses: the two agree only if both are right.
"""
import math
import mpmath as mp

mp.mp.dps = 40


def rdp_by_integration(q, s, a):
    q, s, a = mp.mpf(q), mp.mpf(s), mp.mpf(a)

    def f(z):
        log_mu0 = -z * z / (2 * s * s) - mp.log(s * mp.sqrt(2 * mp.pi))
        ratio = (1 - q) + q * mp.exp((2 * z - 1) / (2 * s * s))
        return mp.exp(log_mu0 + a * mp.log(ratio))

    # The integrand's mass sits near 0 and, for large a, near z ~ a (the shifted Gaussian's pull).
    pts = sorted({-mp.inf, -10 * s, 0, mp.mpf(0.5), a / 2, a, 2 * a, a + 10 * s * s, mp.inf})
    A = mp.quad(f, pts)
    return float(mp.log(A) / (a - 1))


CASES = [
    (0.01, 1.1, 2), (0.01, 1.1, 2.5), (0.01, 1.1, 8), (0.01, 1.1, 32.5),
    (256 / 60000, 1.1, 3.7), (256 / 60000, 1.1, 20), (0.1, 0.8, 4.5), (0.1, 0.8, 10),
    (0.5, 2.0, 1.5), (0.5, 2.0, 6),
]

if __name__ == '__main__':
    for q, s, a in CASES:
        print(f"[{q!r}, {s}, {a}, {rdp_by_integration(q, s, a)!r}],")
