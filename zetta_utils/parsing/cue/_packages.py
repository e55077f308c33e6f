"""The standard packages of CUE v0.4 and which of their members the built-in evaluator
implements.

``STDLIB`` lists every function and constant each package of CUE v0.4.0 exports (taken
from the real CUE). The pure ones are implemented (``_pkg_*`` modules; ``encoding/yaml`` in
``_yaml_decode`` and ``_yaml_encode`` too); the others (the ``tool/*`` packages of ``cue
cmd``) and the few corners of implemented functions their modules name are reported as
unsupported where used, never evaluated differently. A name a package does not have is an
evaluation error, as in CUE. ``template.Execute`` runs Go's template language
(``_gotemplate``, ``_gofmt``); ``list.Sort`` with a struct comparator Go's stable sort
(``_gosort``); ``net.FQDN`` checks punycode labels against ``_idna12``.
"""

from __future__ import annotations

from . import (
    _pkg_encoding,
    _pkg_math,
    _pkg_misc,
    _pkg_net,
    _pkg_path,
    _pkg_tabwriter,
    _pkg_template,
    _pkg_text,
    _pkg_time,
    _pkg_yaml,
)
from ._errors import Pos, unsupported
from ._values import error, make_int

STDLIB: dict[str, str] = {
    "crypto/hmac": "Sign MD5 SHA1 SHA224 SHA256 SHA384 SHA512 SHA512_224 SHA512_256",
    "crypto/md5": "Sum Size BlockSize",
    "crypto/sha1": "Sum Size BlockSize",
    "crypto/sha256": "Sum256 Sum224 Size Size224 BlockSize",
    "crypto/sha512": "Sum512 Sum384 Sum512_224 Sum512_256 Size Size224 Size256 Size384 BlockSize",
    "encoding/base64": "Encode Decode EncodedLen DecodedLen",
    "encoding/csv": "Encode Decode",
    "encoding/hex": "Encode Decode EncodedLen DecodedLen Dump",
    "encoding/json": "Compact HTMLEscape Indent Marshal MarshalStream Unmarshal Valid Validate",
    "encoding/yaml": "Marshal MarshalStream Unmarshal Validate ValidatePartial",
    "html": "Escape Unescape",
    "list": (
        "Avg Concat Contains Drop FlattenN IsSorted IsSortedStrings Max Min Product Range "
        "Repeat Slice Sort SortStable SortStrings Sum Take UniqueItems MinItems MaxItems "
        "Ascending Descending Comparer"
    ),
    "math": (
        "Abs Acos Acosh Asin Asinh Atan Atan2 Atanh Cbrt Ceil Copysign Cos Cosh Dim Erf Erfc "
        "Erfcinv Erfinv Exp Exp2 Expm1 Floor Gamma Hypot Ilogb J0 J1 Jn Ldexp Log Log10 Log1p "
        "Log2 Logb Mod Pow Pow10 Remainder Round RoundToEven Signbit Sin Sinh Sqrt Tan Tanh "
        "Trunc Y0 Y1 Yn MultipleOf Jacobi E Pi Phi Sqrt2 SqrtE SqrtPi SqrtPhi Ln2 Log2E Ln10 "
        "Log10E MaxExp MinExp MaxPrec ToNearestEven ToNearestAway ToZero AwayFromZero "
        "ToNegativeInf ToPositiveInf"
    ),
    "math/bits": "And At Clear Len Lsh OnesCount Or Rsh Set Xor",
    "net": (
        "FQDN GlobalUnicastIP IP IPString IPv4 InterfaceLocalMulticastIP JoinHostPort "
        "LinkLocalMulticastIP LinkLocalUnicastIP LoopbackIP MulticastIP ParseIP SplitHostPort "
        "ToIP16 ToIP4 UnspecifiedIP IPv4len IPv6len"
    ),
    "path": (
        "Base Clean Dir Ext IsAbs Join Match Split FromSlash Rel SplitList ToSlash VolumeName "
        "Resolve Unix Windows Plan9"
    ),
    "regexp": (
        "Find FindAll FindAllNamedSubmatch FindAllSubmatch FindNamedSubmatch FindSubmatch "
        "Match QuoteMeta Valid"
    ),
    "strconv": (
        "Atoi FormatBool FormatFloat FormatInt FormatUint IsGraphic IsPrint ParseBool "
        "ParseFloat ParseInt ParseUint Quote QuoteRune QuoteRuneToASCII QuoteRuneToGraphic "
        "QuoteToASCII QuoteToGraphic Unquote IntSize"
    ),
    "strings": (
        "ByteAt ByteSlice Compare Contains ContainsAny Count Fields HasPrefix HasSuffix Index "
        "IndexAny Join LastIndex LastIndexAny MaxRunes MinRunes Repeat Replace Runes "
        "SliceRunes Split SplitAfter SplitAfterN SplitN ToCamel ToLower ToTitle ToUpper Trim "
        "TrimLeft TrimPrefix TrimRight TrimSpace TrimSuffix"
    ),
    "struct": "MinFields MaxFields",
    "text/tabwriter": "Write",
    "text/template": "Execute HTMLEscape JSEscape",
    "time": (
        "Duration Format Parse ParseDuration Time Unix Nanosecond Microsecond Millisecond "
        "Second Minute Hour ANSIC UnixDate RubyDate RFC822 RFC822Z RFC850 RFC1123 RFC1123Z "
        "RFC3339 RFC3339Nano RFC3339Date Kitchen Kitchen24 January February March April May "
        "June July August September October November December Sunday Monday Tuesday "
        "Wednesday Thursday Friday Saturday"
    ),
    "uuid": "FromInt MD5 Parse SHA1 ToInt URN Valid Variant Version ToString ns",
    # The packages of `cue cmd` (commands have effects: nothing for export).
    "tool": "",
    "tool/cli": "",
    "tool/exec": "",
    "tool/file": "",
    "tool/http": "",
    "tool/os": "",
}

_MONTHS = "January February March April May June July August September October November December"
_DAYS = "Sunday Monday Tuesday Wednesday Thursday Friday Saturday"

_TIME_CONSTS: dict[str, object] = {
    "Nanosecond": make_int(1),
    "Microsecond": make_int(1000),
    "Millisecond": make_int(1000000),
    "Second": make_int(1000000000),
    "Minute": make_int(60000000000),
    "Hour": make_int(3600000000000),
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
    "RFC3339Date": "2006-01-02",
    "Kitchen": "3:04PM",
    "Kitchen24": "15:04",
    **{m: make_int(i + 1) for i, m in enumerate(_MONTHS.split())},
    **{d: make_int(i) for i, d in enumerate(_DAYS.split())},
}

IMPLEMENTED: dict[str, dict[str, object]] = {
    **_pkg_math.PACKAGES,
    **_pkg_text.PACKAGES,
    **_pkg_path.PACKAGES,
    **_pkg_encoding.PACKAGES,
    **_pkg_misc.PACKAGES,
    **_pkg_tabwriter.PACKAGES,
    **_pkg_template.PACKAGES,
    **_pkg_yaml.PACKAGES,
    "list": {**_pkg_math.PACKAGES["list"], **_pkg_misc.LIST_MEMBERS},
    "time": {**_pkg_time.TIME_FUNCS, **_TIME_CONSTS},
    "net": {**_pkg_net.NET_FUNCS, "IPv4len": make_int(4), "IPv6len": make_int(16)},
}


def member(path: str, name: str, pos: Pos) -> object:
    """The value of ``name`` in the imported package ``path``."""
    names = STDLIB.get(path)
    if names is None:
        raise unsupported(
            pos, f'package "{path}" (only the standard packages of CUE can be imported)'
        )
    value = IMPLEMENTED.get(path, {}).get(name)
    if value is not None:
        return value
    if name in names.split() or not names:
        raise unsupported(
            pos,
            f'{path.rsplit("/", 1)[-1]}.{name} (a member of CUE\'s package "{path}" that '
            "the built-in evaluator does not implement)",
        )
    return error(f"undefined field: {name} (package {path} has no member {name})", pos)


__all__ = ["IMPLEMENTED", "STDLIB", "member"]
