"""Translation data: the date generator, number words, the user's files, tokenizers."""

import collections
import datetime
import re

import polib
import pytest
from babel.dates import format_date
from num2words import num2words

import eeap  # noqa: F401
from eeap.config.registry import DATA
from eeap.data.text import Tokenizer, fit_tokenizer
from eeap.errors import DataError
from eeap.tasks.translation.dates import (
    LOCALES,
    DateGenerator,
    cldr_patterns,
    cldr_separator_counts,
    numeric_pattern,
    read_numeric,
    separator_orders,
)
from tests.conftest import ROOT


@pytest.mark.parametrize("locale", LOCALES)
def test_dates_are_seeded_valid_and_follow_the_conventions(locale):
    pairs = DateGenerator(7, locale=locale).pairs(3000)
    assert pairs == DateGenerator(7, locale=locale).pairs(3000) and pairs != DateGenerator(8, locale=locale).pairs(3000)
    orders = separator_orders(locale)
    ambiguous_in_order = collections.Counter()
    for text, iso in pairs:
        day = datetime.date.fromisoformat(iso)
        numbers = re.fullmatch(r"(\d{1,4})([/.\- ])(\d{1,2})\2(\d{1,4})", text)
        if numbers:
            assert read_numeric(text, locale) == day, text
            a, separator, b, c = numbers.groups()
            if len(a) != 4 and max(int(a), int(b)) <= 12 and a != b:
                ambiguous_in_order[separator] += 1
                first = day.month if orders[separator] == "mdy" else day.day
                assert int(a) == first, (text, iso)  # an ambiguous date is written in its separator's order
            if len(a) != 4 and len(c) == 2:
                assert 1950 <= day.year <= 2049 and int(c) == day.year % 100
    assert all(ambiguous_in_order[separator] > 10 for separator in "/.- ")
    texts = [t for t, _ in pairs]
    assert any(t.isupper() for t in texts) and any(t.islower() for t in texts)
    assert any(re.search(r"\d(st|nd|rd|th)\b", t, re.I) for t in texts)


@pytest.mark.parametrize("locale", LOCALES)
def test_numeric_dates_read_as_babel_writes_them_for_each_locale(locale):
    """CLDR's short format of each locale (babel.dates.format_date(d, "short")) reads back to its date; the generator
    writes that format too."""
    day = datetime.date(1950, 1, 1)
    while day.year < 2050:
        assert read_numeric(format_date(day, "short", locale=locale), locale) == day
        day += datetime.timedelta(days=37)
    pairs = DateGenerator(3, locale=locale).pairs(2000)
    assert sum(t == format_date(datetime.date.fromisoformat(i), "short", locale=locale) for t, i in pairs) > 30


def test_us_and_british_dates_differ_only_where_they_should():
    assert read_numeric("12/4/79", "en_US") == datetime.date(1979, 12, 4)
    assert read_numeric("12/4/79", "en_GB") == datetime.date(1979, 4, 12)
    assert read_numeric("25/12/2021", "en_US") == read_numeric("12/25/2021", "en_GB") == datetime.date(2021, 12, 25)
    assert read_numeric("2021-03-04", "en_US") == read_numeric("2021-03-04", "en_GB") == datetime.date(2021, 3, 4)
    assert read_numeric("2021/03/04", "en_US") == read_numeric("2021.03.04", "en_US") == datetime.date(2021, 3, 4)


@pytest.mark.parametrize("locale", LOCALES)
def test_dots_hyphens_and_spaces_are_day_first_whatever_the_locale(locale):
    """Only slashes follow the locale: ``01.03.76`` and ``5 10 86`` are day first under en_US too (they were read
    month first), and an order that makes the date impossible is read the only way it can be."""
    assert read_numeric("01.03.76", locale) == datetime.date(1976, 3, 1)
    assert read_numeric("5 10 86", locale) == datetime.date(1986, 10, 5)
    assert read_numeric("04-03-21", locale) == datetime.date(2021, 3, 4)
    assert read_numeric("12.31.99", locale) == read_numeric("31 12 99", locale) == datetime.date(1999, 12, 31)
    mdy = {".": "mdy", "-": None, " ": "mdy"}
    assert read_numeric("01.03.76", locale, separator_orders(locale, mdy)) == datetime.date(1976, 1, 3)
    assert read_numeric("04-03-21", locale, separator_orders(locale, mdy)) == datetime.date(2021, 3, 4)
    text, _ = DateGenerator(0, locale=locale, orders=mdy).numeric_date()  # the generator writes what it reads
    pairs = DateGenerator(5, locale=locale, orders=mdy).pairs(3000)
    dotted = [(t, i) for t, i in pairs if re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{2,4}", t)]
    assert dotted and all(read_numeric(t, locale, separator_orders(locale, mdy)).isoformat() == i for t, i in dotted)


def test_separator_orders_follow_every_cldr_locale_that_writes_numeric_dates():
    """Every locale babel knows whose short or medium date pattern is numeric with one of the four separators: its
    dates read back to themselves (slashes under that locale), except the orders that are the minority for their
    separator, which are exactly those ``cldr_separator_counts`` reports."""
    from babel.dates import format_date, get_date_format
    from babel.localedata import locale_identifiers

    counts = cldr_separator_counts()
    assert counts["."].get("dmy", 0) > 100 and counts["."].get("mdy", 0) == 0  # dots: day first (or year first)
    assert counts["-"].get("dmy", 0) > 50 and counts["-"].get("mdy", 0) == 0
    assert counts[" "].get("dmy", 0) > 0 and counts[" "].get("mdy", 0) == 0
    assert counts["/"].get("mdy", 0) > 50 and counts["/"].get("dmy", 0) > 500  # slashes: both; the locale decides
    misread: collections.Counter = collections.Counter()
    checked = 0
    for locale in locale_identifiers():
        patterns = {get_date_format(width, locale).pattern for width in ("short", "medium")}
        for pattern in sorted(patterns):
            found = numeric_pattern(pattern)
            if found is None:
                continue
            separator, order = found
            orders = separator_orders("en_US" if separator != "/" else locale)
            if separator == "/" and order != "ymd":
                orders = {**orders, "/": order}  # slashes follow the chosen locale (LOCALES are English only)
            for day in (datetime.date(1976, 3, 1), datetime.date(2021, 12, 25), datetime.date(1999, 7, 4)):
                text = format_date(day, pattern, locale=locale).replace("\u200f", "").replace(". ", ".")
                checked += 1
                try:
                    right = read_numeric(text, locale if locale in LOCALES else "en_US", orders) == day
                except ValueError:
                    right = False
                if not right:
                    misread[(locale, order, pattern)] += 1
    assert checked > 2000
    # what is misread: only a 2-digit year written first with a day that could be one (yy/MM/dd: 21/12/25 reads as
    # 21 December 2025; 76/03/01 reads as 1976), as documented
    assert misread and all(order == "ymd" and pattern.startswith("yy") for (_, order, pattern) in misread), misread
    assert sum(misread.values()) == len(misread)  # one date of the three per such pattern: 2021-12-25


def test_cldr_patterns_come_from_babel():
    patterns = cldr_patterns()
    assert "MMMM d, y" in patterns and "EEEE, d MMMM y" in patterns  # en_US long, en_GB full


def test_dates_splits_do_not_overlap():
    data = DATA.build({"type": "dates", "train_size": 500, "val_size": 100, "test_size": 100}, "data", seed=0)
    data.prepare()
    train = {e["src_text"] for e in data.splits["train"]}
    assert not train & {e["src_text"] for e in data.splits["val"]}
    assert not train & {e["src_text"] for e in data.splits["test"]}


def test_number_words_pairs_and_held_out_numbers():
    data = DATA.build(
        {
            "type": "number_words",
            "max_number": 999,
            "train_size": 300,
            "val_size": 50,
            "test_size": 50,
            "src_tokenizer": "word",
        },
        "data",
        seed=0,
    )
    splits, _ = data.make_splits()
    pairs = {name: [(e["src_text"], e["tgt_text"]) for e in examples] for name, examples in splits.items()}
    inverse = {num2words(n, lang="en"): n for n in range(1000)}
    for s, t in pairs["train"] + pairs["val"] + pairs["test"]:
        assert t == num2words(inverse[s], lang="de")
    assert num2words(71, lang="de") == "einundsiebzig"
    assert not {s for s, _ in pairs["train"]} & {s for s, _ in pairs["test"]}
    with pytest.raises(DataError, match="num2words has no language 'xx'"):
        DATA.build({"type": "number_words", "target_lang": "xx"}, "data", seed=0)


def test_parallel_files_in_every_format(tmp_path):
    (tmp_path / "a.tsv").write_text("hello\thallo\n\nworld\twelt\n")
    (tmp_path / "a.csv").write_text('"hello, you",hallo\n')
    (tmp_path / "src.txt").write_text("one\ntwo\n")
    (tmp_path / "tgt.txt").write_text("eins\nzwei\n")
    catalog = polib.POFile()
    catalog.append(polib.POEntry(msgid="Save", msgstr="Speichern"))
    catalog.append(polib.POEntry(msgid="Open", msgstr=""))  # untranslated: left out
    catalog.save(str(tmp_path / "de.po"))
    from eeap.tasks.translation.files import read_pairs

    assert read_pairs(str(tmp_path / "a.tsv"), "x") == [("hello", "hallo"), ("world", "welt")]
    assert read_pairs(str(tmp_path / "a.csv"), "x") == [("hello, you", "hallo")]
    assert read_pairs({"source": str(tmp_path / "src.txt"), "target": str(tmp_path / "tgt.txt")}, "x") == [
        ("one", "eins"),
        ("two", "zwei"),
    ]
    assert read_pairs(str(tmp_path / "de.po"), "x") == [("Save", "Speichern")]


def test_parallel_file_errors(tmp_path):
    from eeap.tasks.translation.files import read_pairs

    (tmp_path / "bad.tsv").write_text("a\tb\nonly one column\n")
    with pytest.raises(DataError, match=r"bad.tsv line 2 has 1 column \('only one column'\), expected 2"):
        read_pairs(str(tmp_path / "bad.tsv"), "data.train")
    with pytest.raises(DataError, match="data.train: file not found: nope.tsv"):
        read_pairs("nope.tsv", "data.train")
    (tmp_path / "one.txt").write_text("a\n")
    (tmp_path / "two.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="has 1 lines but .* has 2"):
        read_pairs({"source": str(tmp_path / "one.txt"), "target": str(tmp_path / "two.txt")}, "data.train")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="unknown format"):
        read_pairs(str(tmp_path / "x.json"), "data.train")


def test_parallel_holds_out_val_and_test_and_drops_bad_pairs(tmp_path):
    lines = [f"w{i}\tv{i}" for i in range(100)] + ["\tempty source", "x" * 80 + "\tlong"]
    (tmp_path / "all.tsv").write_text("\n".join(lines) + "\n")
    data = DATA.build(
        {
            "type": "parallel",
            "train": str(tmp_path / "all.tsv"),
            "val_fraction": 0.1,
            "test_fraction": 0.2,
            "max_src_len": 20,
        },
        "data",
        seed=0,
    )
    with pytest.warns(UserWarning, match="left out"):
        data.prepare()
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sizes["val"] == 10 and sizes["test"] == 20 and sum(sizes.values()) == 100


def test_parallel_split_seed_fixes_the_held_out_pairs(tmp_path):
    (tmp_path / "all.tsv").write_text("".join(f"w{i}\tv{i}\n" for i in range(100)))

    def held_out_test(seed: int, **settings) -> list[str]:
        section = {"type": "parallel", "train": str(tmp_path / "all.tsv"), "test_fraction": 0.1, **settings}
        data = DATA.build(section, "data", seed=seed)
        data.prepare()
        return sorted(e["src_text"] for e in data.splits["test"])

    assert held_out_test(0) != held_out_test(1)  # unset, the run's seed draws the held-out pairs
    assert held_out_test(1, split_seed=0) == held_out_test(0) and held_out_test(0, split_seed=1) == held_out_test(1)


@pytest.mark.parametrize("kind", ["char", "word", "space", "subword"])
def test_tokenizers_round_trip_through_their_state(kind):
    texts = ["the quick brown fox", "jumps over the lazy dog", "the dog sleeps"] * 30
    tokenizer = fit_tokenizer(kind, texts, vocab_size=40)
    restored = Tokenizer.from_state(tokenizer.state())
    for text in ("the lazy fox", "dog over quick"):
        ids = tokenizer.encode(text)
        assert restored.encode(text) == ids and restored.decode(ids) == text


def test_collate_pads_and_adds_bos_eos():
    data = DATA.build({"type": "dates"}, "data", seed=0)
    batch = data.collate(
        [
            {"src": [5, 6, 7], "tgt": [8], "src_text": "a", "tgt_text": "b"},
            {"src": [5], "tgt": [8, 9], "src_text": "c", "tgt_text": "d"},
        ]
    )
    assert batch["src"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["src_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["tgt_in"].tolist() == [[2, 8, 0], [2, 8, 9]] and batch["tgt_out"].tolist() == [[8, 3, 0], [8, 9, 3]]


def test_the_hand_typed_numeric_dates_follow_the_generators_convention():
    """The numeric dates of ``tests/data/human_dates.tsv`` (dots, spaces, hyphens and slashes, 2- and 4-digit years,
    both orders) are what the generator's convention reads them as, under the default locale."""
    lines = [line.split("\t") for line in (ROOT / "tests" / "data" / "human_dates.tsv").read_text().splitlines()]
    numeric = [(text, iso) for text, iso in lines if re.fullmatch(r"[\d/.\- ]+", text)]
    assert len(numeric) >= 25 and {" ", ".", "-", "/"} <= {c for text, _ in numeric for c in text if not c.isdigit()}
    assert all(read_numeric(text, "en_US").isoformat() == iso for text, iso in numeric)
