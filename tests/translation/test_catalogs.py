"""The real corpus from installed gettext catalogs: what is read, how catalogs are split, no string in two splits."""

from pathlib import Path

import polib
import pytest

from eeap.config.registry import DATA
from eeap.errors import DataError
from eeap.tasks.translation.catalogs import Catalog, find_catalogs, near_key, split_catalogs
from eeap.training.run import main
from tests.conftest import ROOT

PO_DE = ROOT / "configs" / "translation" / "po_de.yaml"


def write_catalog(folder: Path, entries: list[polib.POEntry], language: str = "de", name: str = "django") -> Path:
    path = folder / language / "LC_MESSAGES" / f"{name}.po"
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog = polib.POFile()
    for entry in entries:
        catalog.append(entry)
    catalog.save(str(path))
    return path


def test_near_key_ignores_case_punctuation_markup_and_placeholders():
    assert near_key("Delete %(name)s.") == "delete #"
    assert near_key("delete {name}") == "delete #"
    assert near_key("<b>Delete</b> %s!") == "delete #"
    assert near_key("Select %(count)d of %(total)d") == "select # of #"
    assert near_key("Add&nbsp;another") == "add another"
    assert near_key("Save") != near_key("Save as new")


def test_catalog_reads_translated_entries_on_one_line(tmp_path):
    write_catalog(
        tmp_path,
        [
            polib.POEntry(msgid="Save", msgstr="Speichern"),
            polib.POEntry(msgid="Open", msgstr=""),  # untranslated
            polib.POEntry(msgid="Close", msgstr="Schließen", flags=["fuzzy"]),  # a guess, not a translation
            polib.POEntry(msgid="Gone", msgstr="Weg", obsolete=True),
            polib.POEntry(msgid="%(size)s", msgstr="%(size)s"),  # no letter in the source
            polib.POEntry(msgid="Two\nlines  here", msgstr="Zwei\nZeilen"),
            polib.POEntry(
                msgid="%(count)s item",
                msgid_plural="%(count)s items",
                msgstr_plural={0: "%(count)s Eintrag", 1: "%(count)s Einträge"},
            ),
        ],
    )
    catalog = Catalog("app", (tmp_path / "de" / "LC_MESSAGES" / "django.po",))
    assert catalog.pairs() == [
        ("Save", "Speichern"),
        ("Two lines here", "Zwei Zeilen"),
        ("%(count)s item", "%(count)s Eintrag"),
        ("%(count)s items", "%(count)s Einträge"),
    ]


def test_split_keeps_catalogs_whole_and_big_ones_in_train():
    """120 pairs: one catalog of 100 and four of 5; each held-out share is 12, and a catalog may take a split to
    at most 18. The big one can only train; test takes three small ones (5, 10, 15: under 12 before each), val the
    fourth. One small catalog's string is a near-duplicate of a training string and is left out of its split."""
    big = [(f"Train string {i}", f"Satz {i}") for i in range(99)] + [("Save changes", "Änderungen speichern")]
    small = {f"app{k}": [(f"App {k} string {i}", f"App {k} Satz {i}") for i in range(5)] for k in range(4)}
    small["app2"][0] = ("save changes!", "Änderungen speichern!")
    for seed in range(5):
        split = split_catalogs([("big", big), *small.items()], 0.1, 0.1, seed)
        assert split.catalogs["train"] == ["big"]
        assert len(split.catalogs["test"]) == 3 and len(split.catalogs["val"]) == 1
        assert sorted(split.catalogs["test"] + split.catalogs["val"]) == sorted(small)
        assert len(split.splits["train"]) == 100
        held = "test" if "app2" in split.catalogs["test"] else "val"
        assert split.duplicates == {"train": 0, "val": int(held == "val"), "test": int(held == "test")}
        assert len(split.splits["test"]) == 15 - (held == "test")
        assert len(split.splits["val"]) == 5 - (held == "val")
        assert ("save changes!", "Änderungen speichern!") not in split.splits[held]


def test_split_leaves_no_near_duplicate_in_two_splits():
    catalogs = [
        ("a", [("Save", "Speichern"), ("Delete %(name)s", "%(name)s löschen"), ("Save", "Speichern")]),
        ("b", [("save.", "Sichern"), ("Delete {name}", "{name} löschen"), ("Help", "Hilfe"), ("help", "Hilfe")]),
        ("c", [("Help!", "Hilfe!"), ("Log out", "Abmelden")]),
    ]
    for seed in range(10):
        split = split_catalogs(catalogs, 0.3, 0.3, seed)
        keys = {name: {near_key(s) for s, _ in pairs} for name, pairs in split.splits.items()}
        assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
        for name in ("val", "test"):  # one pair per key in a held-out split
            assert len(keys[name]) == len(split.splits[name])
        assert len(set(split.splits["train"])) == len(split.splits["train"])  # each distinct pair once
        kept = sum(len(p) for p in split.splits.values()) + sum(split.duplicates.values())
        assert kept == sum(len(p) for _, p in catalogs)


def test_gettext_data_over_django(capsys):
    """Django's own German catalogs (installed with the demos): splits by app, no key in two splits, tokenized."""
    data = DATA.build(
        {"type": "gettext", "packages": ["django"], "src_tokenizer": "subword", "vocab_size": 300}, "data", seed=0
    )
    split = data.corpus()
    names = [name for names in split.catalogs.values() for name in names]
    assert len(names) == len(set(names)) and "django/contrib/admin" in names
    keys = {name: {near_key(s) for s, _ in pairs} for name, pairs in split.splits.items()}
    assert not keys["train"] & (keys["val"] | keys["test"]) and not keys["val"] & keys["test"]
    assert all(split.splits[name] for name in ("train", "val", "test"))
    data.prepare()
    assert "data 'gettext' (de): train" in capsys.readouterr().out
    example = data.splits["train"][0]
    assert data.info().source.decode(example["src"]) == example["src_text"]


def test_split_seed_holds_the_same_catalogs_out_whatever_the_run_seed():
    """po_de.yaml compares seeds on one test split: split_seed fixes the held-out apps; unset, the run's seed draws."""

    def held_out(seed: int, **settings) -> dict:
        section = {"type": "gettext", "packages": ["django"], **settings}
        split = DATA.build(section, "data", seed=seed).corpus()
        return {name: sorted(split.catalogs[name]) for name in ("val", "test")}

    drawn = {seed: held_out(seed) for seed in range(4)}
    assert len({repr(d) for d in drawn.values()}) > 1  # the run's seed draws the split
    assert all(held_out(seed, split_seed=0) == drawn[0] for seed in (1, 2, 3))
    assert held_out(0, split_seed=2) == drawn[2]


def test_gettext_data_errors(tmp_path):
    with pytest.raises(DataError, match="data.packages: 'no_such_package' is not an installed Python package"):
        find_catalogs(["no_such_package"], [], "de")
    with pytest.raises(DataError, match="data.language: package 'django' has no 'xx' catalogs; it has: .*de, .*fr"):
        find_catalogs(["django"], [], "xx")
    with pytest.raises(DataError, match="data.locale_dirs: not a folder: nowhere"):
        find_catalogs([], ["nowhere"], "de")
    with pytest.raises(DataError, match="data.locale_dirs: no de/LC_MESSAGES folder in"):
        find_catalogs([], [str(tmp_path)], "de")
    write_catalog(tmp_path / "one", [polib.POEntry(msgid="Save", msgstr="Speichern")])
    data = DATA.build({"type": "gettext", "packages": [], "locale_dirs": [str(tmp_path / "one")]}, "data", seed=0)
    with pytest.raises(
        DataError,
        match=r"data: no catalog fits the val split: it takes whole catalogs of at most 1.5 × data.val_fraction of the 1 pairs in 1 catalogs",
    ):
        data.corpus()


def test_locale_dirs_are_catalogs(tmp_path):
    for k in range(5):
        write_catalog(
            tmp_path / f"app{k}", [polib.POEntry(msgid=f"Word {k} {i}", msgstr=f"Wort {k} {i}") for i in range(4)]
        )
    data = DATA.build(
        {
            "type": "gettext",
            "packages": [],
            "locale_dirs": [str(tmp_path / f"app{k}") for k in range(5)],
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        },
        "data",
        seed=0,
    )
    split = data.corpus()
    assert [len(split.splits[name]) for name in ("train", "val", "test")] == [12, 4, 4]


def test_po_de_config_trains_and_refuses_a_missing_package(capsys, tmp_path):
    """The shipped config (its packages come with the po-corpus extra, in dev): one step of training and testing."""
    code = main(
        [str(PO_DE), "logger=none", "trainer.fast_dev_run=true", "data.vocab_size=500", f"run_dir={tmp_path}/a"]
    )
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()  # the run's own lines (its run folder, a line a validation)
    code = main([str(PO_DE), "data.packages=[django, wagtial]", f"run_dir={tmp_path}/b"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(
        "error: data.packages: 'wagtial' is not an installed Python package (pip install 'eeap[po-corpus]'"
    )


def test_po_de_transformer_config_is_whole():
    """The Transformer variant's every section checks out before any data is read."""
    from omegaconf import OmegaConf

    from eeap.config.loader import check_config, load_config

    cfg = load_config(ROOT / "configs" / "translation" / "po_de_transformer.yaml", ["logger=none"])
    run = check_config(OmegaConf.to_container(cfg, resolve=True))
    assert run.name == "po_de_transformer" and run.data["type"] == "gettext"
    assert run.model["predict"]["type"] == "transformer_decoder" and run.model["encode"]["layers"] == 3
