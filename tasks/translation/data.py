"""Translation data: generated dates (the default), number words, or the user's own parallel files."""

from __future__ import annotations

import random
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal, Optional, Sequence, Union, cast

from eeap.config.registry import DATA, Fraction, NonNegativeInt, PositiveInt
from eeap.data.base import CachedFiles, DataModule, demo_import
from eeap.data.text import BOS, EOS, PAD, fit_tokenizer, pad
from eeap.errors import DataError
from eeap.tasks.translation.catalogs import CatalogSplit
from eeap.tasks.translation.files import Pairs, read_pairs, stream_pairs
from eeap.tasks.translation.info import TranslationInfo

if TYPE_CHECKING:
    import numpy as np


def target_batch(examples: list[dict]) -> dict:
    """The target side of a batch: tgt_in = BOS + y, tgt_out = y + EOS (batch, tgt_len), and the target texts."""
    return {
        "tgt_in": pad([[BOS] + e["tgt"] for e in examples]),
        "tgt_out": pad([e["tgt"] + [EOS] for e in examples]),
        "tgt_text": [e["tgt_text"] for e in examples],
    }


class TranslationData(DataModule):
    """Base of translation data: a source's ``make_splits`` gives its (source, target) text pairs to ``tokenized``,
    which fits the tokenizers on the train split and encodes every split.

    # Parameters
    seed: supplied from the run's seed.
    batch_size, eval_batch_size: sentences per training / evaluation batch.
    src_tokenizer, tgt_tokenizer: ``char``, ``word`` or ``subword`` (sentencepiece, trained on the train split).
    vocab_size: the largest vocabulary (word, subword).
    min_freq: pieces seen fewer times in training become <unk> (char, word).
    max_src_len, max_tgt_len: longer training pairs are left out (with a warning); longer inputs to
        ``predict.py`` are refused.
    test_file: evaluate on this parallel file (TSV, CSV, .po) instead of the built-in test split.
    num_workers: DataLoader worker processes.
    bucket: batch training sentences of similar source length (far less padding, faster); evaluation splits are
        sorted by length for the same reason.
    on_bad_line: a line of a data file that is not UTF-8 or lacks a column: ``error`` stops with one line naming
        the file and the line; ``skip`` leaves it out, counts such lines and shows the first few.
    split_seed: the seed that draws the held-out splits where a source draws them (``parallel`` without val / test
        files, ``gettext``'s catalogs); unset, the run's seed. Set it to compare seeds on one test split.
    """

    info_class = TranslationInfo

    def __init__(
        self,
        seed: int,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt = 256,
        src_tokenizer: Literal["char", "word", "space", "subword"] = "char",
        tgt_tokenizer: Literal["char", "word", "space", "subword"] = "char",
        vocab_size: PositiveInt = 8000,
        min_freq: PositiveInt = 1,
        max_src_len: PositiveInt = 64,
        max_tgt_len: PositiveInt = 64,
        test_file: Optional[str] = None,
        num_workers: NonNegativeInt = 0,
        bucket: bool = True,
        on_bad_line: Literal["error", "skip"] = "error",
        split_seed: Optional[NonNegativeInt] = None,
    ) -> None:
        super().__init__(seed, batch_size, eval_batch_size, num_workers)
        self.on_bad_line = on_bad_line
        self.split_seed = seed if split_seed is None else split_seed
        self.src_kind, self.tgt_kind = src_tokenizer, tgt_tokenizer
        self.vocab_size, self.min_freq = vocab_size, min_freq
        self.max_src_len, self.max_tgt_len = max_src_len, max_tgt_len
        self.test_file = test_file
        self.bucket = bucket

    def tokenized(self, train: Pairs, val: Pairs, test: Pairs) -> tuple[dict[str, list], TranslationInfo]:
        """Fit the tokenizers on the train pairs and encode every split: the splits and the info.

        Pairs with an empty side, or longer than max_src_len / max_tgt_len pieces, are left out with a warning.
        """
        if self.test_file:
            test = read_pairs(self.test_file, "data.test_file", self.on_bad_line)
        train = [(s.strip(), t.strip()) for s, t in train]
        fit_on = [(s, t) for s, t in train if s and t]
        if not fit_on:
            raise DataError(
                f"data: each of the {len(train)} train pairs has an empty side; nothing to train on"
                if train
                else "data: the train split is empty"
            )
        source = fit_tokenizer(self.src_kind, [s for s, _ in fit_on], self.vocab_size, self.min_freq)
        target = fit_tokenizer(self.tgt_kind, [t for _, t in fit_on], self.vocab_size, self.min_freq)
        info = TranslationInfo(source, target, self.max_src_len, self.max_tgt_len)
        splits = {}
        for name, pairs in (("train", train), ("val", val), ("test", test)):
            splits[name] = self.encode(pairs, name, info)
            if self.bucket and name != "train":
                splits[name].sort(key=lambda e: len(e["src"]))
        return splits, info

    def encode(self, pairs: Pairs, split: str, info: TranslationInfo) -> list[dict]:
        """Encoded examples of one split, without empty or over-long pairs."""
        examples, empty, long = [], 0, 0
        for s, t in pairs:
            s, t = s.strip(), t.strip()
            src, tgt = info.source.encode(s), info.target.encode(t)
            if not src or not tgt:
                empty += 1
            elif len(src) > self.max_src_len or len(tgt) > self.max_tgt_len:
                long += 1
            else:
                examples.append({"src": src, "tgt": tgt, "src_text": s, "tgt_text": t})
        if empty or long:
            warnings.warn(
                f"data: left out {empty} {split} pairs with an empty side and {long} longer than "
                f"max_src_len={self.max_src_len} / max_tgt_len={self.max_tgt_len}",
                stacklevel=2,
            )
        if not examples:
            raise DataError(f"data: the {split} split is empty")
        return examples

    def collate(self, examples: list[dict]) -> dict:
        """src (batch, src_len), src_mask, tgt_in = BOS + y, tgt_out = y + EOS (batch, tgt_len), and the texts."""
        src = pad([e["src"] for e in examples])
        return {
            "src": src,
            "src_mask": src != PAD,
            "src_text": [e["src_text"] for e in examples],
            **target_batch(examples),
        }

    def lengths(self, split: str) -> Optional[np.ndarray]:
        from eeap.data.prepared import column_lengths

        return column_lengths(self.splits[split], "src") if self.bucket else None


@DATA.register("dates")
class DatesData(TranslationData):
    """Human-written dates → ISO dates (see ``tasks/translation/dates.py``); val and test inputs are unseen in train.

    # Parameters
    train_size, val_size, test_size: pairs per split.
    locale: the English locale whose CLDR short date pattern orders numeric dates written with slashes: en_US (the
        default) reads ``12/4/79`` month first (4 December 1979); en_GB, en_IE, en_AU and en_IN day first (12 April);
        en_CA and en_ZA write year first (``1979-12-04``) and read the other slashed dates day first.
    dot_order, hyphen_order, space_order: the order of numeric dates written with dots (``12.4.79``), hyphens or
        spaces, ``dmy`` or ``mdy``; null (the default): as most of CLDR's locales that write that separator, day
        first for all three (``tasks/translation/dates.py``, ``separator_orders``).
    (and every TranslationData parameter)
    """

    def __init__(
        self,
        seed: int,
        train_size: PositiveInt = 20000,
        val_size: PositiveInt = 1000,
        test_size: PositiveInt = 1000,
        locale: Literal["en_US", "en_GB", "en_IE", "en_AU", "en_CA", "en_IN", "en_ZA"] = "en_US",
        dot_order: Optional[Literal["dmy", "mdy"]] = None,
        hyphen_order: Optional[Literal["dmy", "mdy"]] = None,
        space_order: Optional[Literal["dmy", "mdy"]] = None,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.sizes = (train_size, val_size, test_size)
        self.locale = locale
        self.orders = {".": dot_order, "-": hyphen_order, " ": space_order}

    def make_splits(self) -> tuple[dict[str, list], TranslationInfo]:
        demo_import("babel", "data 'dates'")
        demo_import("num2words", "data 'dates'")
        from eeap.tasks.translation.dates import DateGenerator

        generator = DateGenerator(self.seed, locale=self.locale, orders=self.orders)
        train = generator.pairs(self.sizes[0])
        seen = {s for s, _ in train}
        val = generator.pairs(self.sizes[1], exclude=seen)
        test = generator.pairs(self.sizes[2], exclude=seen | {s for s, _ in val})
        return self.tokenized(train, val, test)


@DATA.register("number_words")
class NumberWordsData(TranslationData):
    """Numbers written out in one language → the same number in another, with num2words (en → de reorders:
    seventy-one → einundsiebzig). Val and test numbers never occur in training.

    # Parameters
    source_lang, target_lang: num2words language codes.
    max_number: numbers are drawn from 0..max_number.
    val_size, test_size: held-out numbers; the rest of 0..max_number (up to train_size) trains.
    """

    def __init__(
        self,
        seed: int,
        source_lang: str = "en",
        target_lang: str = "de",
        max_number: PositiveInt = 9999,
        train_size: PositiveInt = 8000,
        val_size: PositiveInt = 500,
        test_size: PositiveInt = 500,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        CONVERTER_CLASSES = demo_import("num2words", "data 'number_words'").CONVERTER_CLASSES
        for key, lang in (("source_lang", source_lang), ("target_lang", target_lang)):
            if lang not in CONVERTER_CLASSES:
                raise DataError(
                    f"data.{key}: num2words has no language '{lang}'. "
                    f"Valid options: {', '.join(sorted(CONVERTER_CLASSES))}"
                )
        if train_size + val_size + test_size > max_number + 1:
            raise DataError(
                f"data: train_size + val_size + test_size ({train_size + val_size + test_size}) "
                f"exceeds the {max_number + 1} numbers in 0..max_number"
            )
        self.langs = (source_lang, target_lang)
        self.max_number = max_number
        self.sizes = (train_size, val_size, test_size)

    def make_splits(self) -> tuple[dict[str, list], TranslationInfo]:
        from num2words import num2words

        numbers = random.Random(self.seed).sample(range(self.max_number + 1), sum(self.sizes))
        pairs = [(num2words(n, lang=self.langs[0]), num2words(n, lang=self.langs[1])) for n in numbers]
        a, b = self.sizes[0], self.sizes[0] + self.sizes[1]
        return self.tokenized(pairs[:a], pairs[a:b], pairs[b:])


@DATA.register("parallel")
class ParallelData(CachedFiles, TranslationData):
    """The user's parallel data. Each of train / val / test is a ``.tsv`` or ``.csv`` file (source, target columns),
    a gettext ``.po`` file (msgid → msgstr), or ``{source: a.txt, target: b.txt}`` (aligned lines). Without val or
    test, that share of the train pairs is held out (after a seeded shuffle).

    # Parameters
    train, val, test: as above.
    val_fraction, test_fraction: held-out shares when val / test are not given.
    cache, cache_dir: see ``CachedFiles`` (the tokenizers trained and the pairs encoded, kept for the next run).
    """

    def __init__(
        self,
        seed: int,
        train: Union[str, dict],
        val: Union[str, dict, None] = None,
        test: Union[str, dict, None] = None,
        val_fraction: Fraction = 0.05,
        test_fraction: Fraction = 0.05,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.paths = {"train": train, "val": val, "test": test}
        self.fractions = {"val": val_fraction, "test": test_fraction}

    def data_files(self) -> list[Path]:
        specs = [*self.paths.values(), self.test_file]
        paths = [p for spec in specs if spec for p in (spec.values() if isinstance(spec, dict) else [spec])]
        return [Path(p) for p in paths if Path(p).is_file()]

    def write_prepared(self, folder: Path) -> bool:
        """Prepare straight into a cache folder, streaming a TSV/CSV train file instead of holding it: a pass counts
        its pairs, the held-out shares are drawn as ``make_splits`` draws them (the same seeded shuffle, of line
        numbers), the tokenizers are fitted on the train lines as they stream past, and one more pass encodes the
        pairs, each split sorted on disk (``SortedRows``) into ``make_splits``' order (train in the shuffled order,
        val and test by length when bucketing): the same examples as ``make_splits``, in memory that does not grow
        with the file. The train data is a TSV/CSV file or
        two aligned text files; False where it is a ``.po`` file (gettext catalogs are small: read whole)."""
        import numpy as np
        import torch

        from eeap.data.prepared import SortedRows, release_freed_memory, write_rows

        spec = cast(Union[str, dict], self.paths["train"])  # train is required
        if not isinstance(spec, dict) and Path(spec).suffix.lower() not in (".tsv", ".csv", ".txt"):
            return False  # a .po file: read whole (or an unknown format, which make_splits refuses)

        def rows(quiet: bool = True) -> Iterator[tuple[int, str, str]]:  # (index among the rows, source, target)
            with warnings.catch_warnings():
                if quiet:  # bad lines are reported by the first pass only
                    warnings.simplefilter("ignore")
                for index, (_, source, target) in enumerate(stream_pairs(spec, "data.train", self.on_bad_line)):
                    yield index, source, target

        total = sum(1 for _ in rows(quiet=False))
        order = list(range(total))
        random.Random(self.split_seed).shuffle(order)  # the permutation make_splits' shuffle applies to the pairs
        rank = np.empty(total, dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(total)
        del order
        held = {}  # split -> pairs read from its own file
        bounds, start = {}, 0
        for name in ("val", "test"):
            if self.paths[name] is not None:
                held[name] = read_pairs(self.paths[name], f"data.{name}", self.on_bad_line)
            else:
                count = max(1, int(total * self.fractions[name]))
                bounds[name], start = (start, start + count), start + count
        if self.test_file:
            held["test"] = read_pairs(self.test_file, "data.test_file", self.on_bad_line)
        split_of = np.full(total, 2, dtype=np.int8)  # (total,) 0 val, 1 test, 2 train: by the line's rank
        for number, name in enumerate(("val", "test")):
            if name in bounds:
                split_of[(rank >= bounds[name][0]) & (rank < bounds[name][1])] = number
        names = ("val", "test", "train")

        def train_side(side: int) -> Iterator[str]:
            for index, *pair in rows():
                s, t = pair[0].strip(), pair[1].strip()
                if split_of[index] == 2 and s and t:
                    yield (s, t)[side]

        if next(train_side(0), None) is None:  # as tokenized() says it
            count = int((split_of == 2).sum())
            raise DataError(
                f"data: each of the {count} train pairs has an empty side; nothing to train on"
                if count
                else "data: the train split is empty"
            )
        source = fit_tokenizer(self.src_kind, train_side(0), self.vocab_size, self.min_freq)
        target = fit_tokenizer(self.tgt_kind, train_side(1), self.vocab_size, self.min_freq)
        release_freed_memory()  # the tokenizers' training is done: its heap goes back, not into the training run
        info = TranslationInfo(source, target, self.max_src_len, self.max_tgt_len)
        torch.save(info.state(), folder / "info.pt")
        # each split in make_splits' order: train in the shuffled order, val and test by length when bucketing
        # (ties in the shuffled order); sorted on disk (SortedRows), so memory does not grow with the corpus
        by_length = {name: name != "train" and self.bucket for name in names}
        sorted_rows = {name: SortedRows(folder / "_build" / name) for name in names}
        dropped = {name: {"empty": 0, "long": 0} for name in names}
        span = max([total, *(len(pairs) for pairs in held.values())]) + 1  # positions are below it

        def add(name: str, position: int, s: str, t: str) -> None:
            s, t = s.strip(), t.strip()
            src, tgt = info.source.encode(s), info.target.encode(t)
            if not src or not tgt:
                dropped[name]["empty"] += 1
            elif len(src) > self.max_src_len or len(tgt) > self.max_tgt_len:
                dropped[name]["long"] += 1
            else:
                key = len(src) * span + position if by_length[name] else position
                sorted_rows[name].add(key, {"src": src, "tgt": tgt, "src_text": s, "tgt_text": t})

        for index, s, t in rows():
            name = names[split_of[index]]
            if name not in held:
                add(name, int(rank[index]), s, t)
        for name, pairs in held.items():
            for position, (s, t) in enumerate(pairs):
                add(name, position, s, t)
        for name in ("train", "val", "test"):
            if dropped[name]["empty"] or dropped[name]["long"]:
                warnings.warn(
                    f"data: left out {dropped[name]['empty']} {name} pairs with an empty side and "
                    f"{dropped[name]['long']} longer than max_src_len={self.max_src_len} / "
                    f"max_tgt_len={self.max_tgt_len}",
                    stacklevel=2,
                )
            if sorted_rows[name].count == 0:
                raise DataError(f"data: the {name} split is empty")
            write_rows(folder / f"{name}.arrow", sorted_rows[name].tables())
        shutil.rmtree(folder / "_build", ignore_errors=True)
        return True

    def make_splits(self) -> tuple[dict[str, list], TranslationInfo]:
        splits = {
            name: read_pairs(spec, f"data.{name}", self.on_bad_line)
            for name, spec in self.paths.items()
            if spec is not None
        }
        train = splits["train"]
        random.Random(self.split_seed).shuffle(train)
        total = len(train)
        for name in ("val", "test"):
            if name not in splits:
                count = max(1, int(total * self.fractions[name]))
                splits[name], train = train[:count], train[count:]
        return self.tokenized(train, splits["val"], splits["test"])


@DATA.register("gettext")
class GettextData(TranslationData):
    """Real English → ``language`` translations from installed packages' gettext catalogs (see
    ``tasks/translation/catalogs.py``): each ``locale`` folder is a catalog, splits are whole catalogs, and no
    string, or near-duplicate of one, is in two splits. Offline: the catalogs come with the packages
    (``pip install 'eeap[po-corpus]'`` for Wagtail's, allauth's and Sphinx's beside Django's).

    # Parameters
    packages: installed Python packages (import names) whose ``locale`` folders are read.
    locale_dirs: more folders laid out as ``<lang>/LC_MESSAGES/*.po``, each one catalog.
    language: the target language's folder name (``de``, ``fr``, ``pt_BR``, ...).
    val_fraction, test_fraction: the share of the pairs that the held-out catalogs hold, about.
    (and every TranslationData parameter)
    """

    def __init__(
        self,
        seed: int,
        packages: Sequence[str] = ("django",),
        locale_dirs: Sequence[str] = (),
        language: str = "de",
        val_fraction: Fraction = 0.1,
        test_fraction: Fraction = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.packages, self.locale_dirs, self.language = list(packages), list(locale_dirs), language
        self.fractions = (val_fraction, test_fraction)

    def corpus(self) -> CatalogSplit:
        """The catalogs read and split (without tokenizing): what ``make_splits`` trains on, for inspection and for
        writing the same splits for another toolkit."""
        from eeap.tasks.translation.catalogs import find_catalogs, split_catalogs

        catalogs = find_catalogs(self.packages, self.locale_dirs, self.language)
        split = split_catalogs([(c.name, c.pairs()) for c in catalogs], *self.fractions, self.split_seed)
        for name in ("val", "test"):
            if not split.catalogs[name]:
                total = sum(len(pairs) for pairs in split.splits.values()) + sum(split.duplicates.values())
                raise DataError(
                    f"data: no catalog fits the {name} split: it takes whole catalogs of at most 1.5 × "
                    f"data.{name}_fraction of the {total} pairs in {len(catalogs)} catalogs; add packages or "
                    f"locale_dirs, or raise data.{name}_fraction"
                )
        return split

    def make_splits(self) -> tuple[dict[str, list], TranslationInfo]:
        split = self.corpus()
        print(f"data 'gettext' ({self.language}): {split.summary()}")
        return self.tokenized(split.splits["train"], split.splits["val"], split.splits["test"])
