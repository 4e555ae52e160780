"""Human-written dates → ISO ``YYYY-MM-DD``, generated from Babel's CLDR date formats (English locales).

What the generator writes, so the model learns to read dates as people type them:
- CLDR full / long / medium patterns of the English locales (``Thursday, March 4, 2021``, ``4 Mar 2021``, ...)
  and further month-name patterns (``04-Mar-2021``, ``Mar 4 '21``, ``2021 March 4``);
- ordinals (``4th of March 2021``, ``March 4th, 2021``);
- numeric dates with ``/``, ``.``, ``-`` or spaces, padded or not, 4- or 2-digit years, and ISO-style ``2021-03-04``;
- lower, upper and as-written case, abbreviations with and without a dot, commas sometimes left out.

Conventions for what is ambiguous, as CLDR's locales write numeric dates (``separator_orders``): a date with
**slashes** is read in the order of the chosen locale's CLDR short date pattern (``locale``: ``en_US`` writes
``M/d/yy``, so ``12/4/79`` is 4 December 1979; ``en_GB`` writes ``dd/MM/y``, day first); a date with **dots,
hyphens or spaces** in the order most locales that write that separator use, day first (``01.03.76`` is 1 March
1976 under every locale; ``dot_order``, ``hyphen_order`` and ``space_order`` override it); an order that makes a date
impossible is read the only way it can be (``25/12/2021`` and ``12.25.2021`` are 25 December); a date with a 4-digit
year first (``2021-03-04``, ``2021/03/04``) is read year, month, day; a 2-digit year means 1950-2049. Word dates come
from all the English locales whatever the chosen one.
"""

from __future__ import annotations

import collections
import datetime
import functools
import random
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Optional

from babel.dates import format_date, get_date_format
from babel.localedata import locale_identifiers
from num2words import num2words

LOCALES = ("en_US", "en_GB", "en_IE", "en_AU", "en_CA", "en_IN", "en_ZA")
EXTRA_PATTERNS = (
    "d MMMM y",
    "d MMM y",
    "MMMM d y",
    "MMM d y",
    "d MMMM, y",
    "MMM d, yy",
    "d MMM yy",
    "dd-MMM-y",
    "dd-MMM-yy",
    "d-MMM-y",
    "MMM d ''yy",
    "d MMM ''yy",
    "y MMMM d",
    "y MMM d",
    "y-MMM-dd",
    "EEE d MMM y",
    "EEE, MMM d, y",
    "EEE MMM d y",
    "EEEE d MMMM y",
    "EEEE MMMM d y",
    "dd MMMM y",
)
ORDINAL_PATTERNS = (
    "{ord} {MMMM} {y}",
    "{ord} of {MMMM} {y}",
    "{ord} of {MMMM}, {y}",
    "{MMMM} {ord}, {y}",
    "{MMMM} {ord} {y}",
    "{MMM} {ord} {y}",
    "{ord} {MMM} {y}",
    "the {ord} of {MMMM} {y}",
    "{EEEE} {ord} {MMMM} {y}",
    "{EEEE}, {MMMM} {ord}, {y}",
    "{EEEE} the {ord} of {MMMM} {y}",
    "{MMMM} the {ord}, {y}",
)
NUMERIC_SEPARATORS = ("/", ".", "-", " ")


def numeric_order(locale: str) -> str:
    """The order of day, month and year in a locale's CLDR short date pattern: ``mdy`` (en_US ``M/d/yy``), ``dmy``
    (en_GB ``dd/MM/y``) or ``ymd`` (en_CA ``y-MM-dd``)."""
    pattern = get_date_format("short", locale).pattern
    first = {letter: pattern.find(letter) for letter in "dMy"}
    return "".join(sorted("dmy", key=lambda c: first["M" if c == "m" else c]))


NUMERIC_PATTERN = re.compile(r"([dMy]+)([^dMy]+)([dMy]+)\2([dMy]+)")


def numeric_pattern(pattern: str) -> Optional[tuple[str, str]]:
    """The separator and order (``dmy``, ``mdy``, ``ymd``) of a CLDR date pattern that writes a date as three
    numbers between one of the four separators (``dd.MM.yy``, ``M/d/yy``, ``y-MM-dd``, ``d MM y``), or None. A
    separator written with a space or a right-to-left mark beside it (Czech ``d. M. y``, Arabic ``d‏/M‏/y``) counts as
    the dot or the slash; patterns with other marks (``y年M月d日``, Hungarian ``y. MM. dd.``) are not of these."""
    found = NUMERIC_PATTERN.fullmatch(pattern)
    if not found or "MMM" in pattern:
        return None
    separator = found.group(2).replace("\u200f", "")
    separator = separator if separator == " " else separator.strip()
    if separator not in NUMERIC_SEPARATORS:
        return None
    order = "".join({"d": "d", "M": "m", "y": "y"}[field[0]] for field in found.group(1, 3, 4))
    return separator, order


@functools.cache
def cldr_separator_counts() -> dict[str, dict[str, int]]:
    """For each separator, how many of CLDR's locales (babel's, regional variants included) write all-numeric dates
    with it in each order, in their short or medium pattern (a locale counts once per separator and order)."""
    seen: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
    for locale in locale_identifiers():
        for width in ("short", "medium"):
            found = numeric_pattern(get_date_format(width, locale).pattern)
            if found:
                seen[locale].add(found)
    counts: dict[str, collections.Counter] = {separator: collections.Counter() for separator in NUMERIC_SEPARATORS}
    for pairs in seen.values():
        for separator, order in pairs:
            counts[separator][order] += 1
    return {separator: dict(counter) for separator, counter in counts.items()}


def majority_order(separator: str) -> str:
    """The order (``dmy`` or ``mdy``) in which most locales that write ``separator`` put a date that does not start
    with its year; day first where none do either."""
    counts = cldr_separator_counts()[separator]
    return "mdy" if counts.get("mdy", 0) > counts.get("dmy", 0) else "dmy"


def separator_orders(locale: str, overrides: Optional[Mapping[str, Optional[str]]] = None) -> dict[str, str]:
    """The order (``dmy`` or ``mdy``) in which a numeric date that does not start with a 4-digit year is written and
    read, for each separator: slashes as ``locale``'s short pattern (a year-first locale reads them day first), the
    others as most locales writing them (``majority_order``); ``overrides`` ({separator: order or None}) win."""
    own = numeric_order(locale)
    orders = {separator: majority_order(separator) for separator in NUMERIC_SEPARATORS}
    orders["/"] = own if own != "ymd" else "dmy"
    for separator, order in (overrides or {}).items():
        if order is not None:
            orders[separator] = order
    return orders


def read_numeric(text: str, locale: str, orders: Optional[Mapping[str, str]] = None) -> datetime.date:
    """An all-numeric date as the generator's convention reads it under ``locale`` (see the module's docstring);
    ``orders``: ``separator_orders``' (by default, ``locale``'s without overrides)."""
    numbers = re.fullmatch(r"(\d{1,4})([/.\- ])(\d{1,2})\2(\d{1,4})", text.strip())
    if not numbers:
        raise ValueError(f"not an all-numeric date: {text!r}")
    a, separator, b, c = numbers.groups()
    if len(a) == 4:
        return datetime.date(int(a), int(b), int(c))
    if int(a) > 31 and len(c) <= 2:  # no day or month: a 2-digit year first (76/03/01), the only way it reads
        return datetime.date(two_digit_year(int(a)), int(b), int(c))
    order = (orders or separator_orders(locale))[separator]
    values = dict(zip(order, (int(a), int(b), int(c))))
    if values["m"] > 12:  # the order makes it impossible: the other order
        values["d"], values["m"] = values["m"], values["d"]
    year = values["y"] if len(c) == 4 else two_digit_year(values["y"])
    return datetime.date(year, values["m"], values["d"])


def two_digit_year(year: int) -> int:
    """A 2-digit year's full year: 1950-2049."""
    return 1900 + year if year >= 50 else 2000 + year


def cldr_patterns() -> list[str]:
    """The distinct full, long and medium date patterns of the English locales used."""
    found = {get_date_format(width, locale).pattern for locale in LOCALES for width in ("full", "long", "medium")}
    return sorted(found)


class DateGenerator:
    """Draws (human-written date, ISO date) pairs; the same seed gives the same pairs.

    # Parameters
    seed: random seed.
    first_year, last_year: range of years for 4-digit-year formats (2-digit years are drawn from 1950-2049).
    locale: whose CLDR short pattern orders numeric dates with slashes (``en_US``: month first; ``en_GB``: day first).
    orders: {separator: ``dmy`` or ``mdy``} overriding ``separator_orders``' choice for dots, hyphens or spaces.
    """

    def __init__(
        self,
        seed: int = 0,
        first_year: int = 1600,
        last_year: int = 2399,
        locale: str = "en_US",
        orders: Optional[Mapping[str, Optional[str]]] = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.first_year, self.last_year, self.locale = first_year, last_year, locale
        self.word_patterns = cldr_patterns() + list(EXTRA_PATTERNS)
        self.orders = separator_orders(locale, orders)  # of dates not starting with a 4-digit year

    def date(self, two_digit_year: bool) -> datetime.date:
        first, last = (1950, 2049) if two_digit_year else (self.first_year, self.last_year)
        start = datetime.date(first, 1, 1).toordinal()
        end = datetime.date(last, 12, 31).toordinal()
        return datetime.date.fromordinal(self.rng.randint(start, end))

    def word_date(self) -> tuple[str, datetime.date]:
        pattern = self.rng.choice(self.word_patterns)
        two_digit = bool(re.search(r"(?<!y)yy(?!y)", pattern))
        day = self.date(two_digit)
        locale = self.rng.choice(LOCALES)
        text = format_date(day, pattern, locale=locale)
        if "MMM" in pattern and "MMMM" not in pattern and self.rng.random() < 0.3:
            abbreviation = format_date(day, "MMM", locale=locale)
            text = text.replace(abbreviation, abbreviation.rstrip(".") + ".", 1)
        return text, day

    def ordinal_date(self) -> tuple[str, datetime.date]:
        day = self.date(False)
        locale = self.rng.choice(LOCALES)
        fields = {f: format_date(day, f, locale=locale) for f in ("MMMM", "MMM", "EEEE")}
        text = self.rng.choice(ORDINAL_PATTERNS).format(ord=num2words(day.day, to="ordinal_num"), y=day.year, **fields)
        return text, day

    def numeric_date(self) -> tuple[str, datetime.date]:
        if self.rng.random() < 0.2:  # the locale's own short format, as CLDR writes it
            day = self.date(True)
            return format_date(day, "short", locale=self.locale), day
        separator = self.rng.choice(NUMERIC_SEPARATORS)
        main = self.orders[separator]
        other = "dmy" if main == "mdy" else "mdy"
        order = self.rng.choice((main, main, other, "ymd"))
        two_digit = order != "ymd" and self.rng.random() < 0.35
        day = self.date(two_digit)
        if order == other and day.day <= 12:
            order = main  # the other order only where the day shows it
        pad = self.rng.random() < 0.6
        parts = {
            "d": f"{day.day:02d}" if pad else str(day.day),
            "m": f"{day.month:02d}" if pad else str(day.month),
            "y": f"{day.year % 100:02d}" if two_digit else str(day.year),
        }
        return separator.join(parts[c] for c in order), day

    def sample(self) -> tuple[str, str]:
        """One (human-written, ISO) pair."""
        kind = self.rng.random()
        if kind < 0.55:
            text, day = self.word_date()
        elif kind < 0.7:
            text, day = self.ordinal_date()
        else:
            text, day = self.numeric_date()
        if "," in text and self.rng.random() < 0.2:
            text = text.replace(",", "")
        case = self.rng.random()
        if case < 0.15:
            text = text.lower()
        elif case < 0.25:
            text = text.upper()
        return text, day.isoformat()

    def pairs(self, count: int, exclude: AbstractSet[str] = frozenset()) -> list[tuple[str, str]]:
        """``count`` distinct pairs whose human-written side is not in ``exclude``."""
        seen = set(exclude)
        out: list[tuple[str, str]] = []
        while len(out) < count:
            text, iso = self.sample()
            if text not in seen:
                seen.add(text)
                out.append((text, iso))
        return out
