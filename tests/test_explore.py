"""``eeap explore``: the page of a trained date translator, started as a user starts it, reached through Gradio's own
client and through Debian's Chromium (driven by Playwright); its answers are ``eeap predict``'s."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eeap import build
from eeap.config.loader import load_config
from tests.conftest import DATES, QUIET, TINY_DATES

pytest.importorskip("gradio", reason="the explore extra (pip install 'eeap[explore]')")

MAX_CHARS = 40
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from eeap.config.loader import load_config
    from eeap.training.run import train

    folder = tmp_path_factory.mktemp("explore")
    shown = ["logger.use=[csv]", "model.plot_examples=2"]  # the run page reads its figures and metrics
    metrics = train(load_config(DATES, [*TINY_DATES, *shown, "trainer.max_epochs=2", f"run_dir={folder / 'run'}"]))
    return Path(metrics["best_checkpoint"])


@pytest.fixture(scope="module")
def dot_checkpoint(tmp_path_factory) -> Path:
    """A second date translator, with general (bilinear) attention, for the side-by-side page."""
    from eeap.config.loader import load_config
    from eeap.training.run import train

    folder = tmp_path_factory.mktemp("explore-dot")
    overrides = [*TINY_DATES, "trainer.max_epochs=1", "model.attend.type=general", f"run_dir={folder / 'run'}"]
    return Path(train(load_config(DATES, overrides))["best_checkpoint"])


def start(*targets: str):
    """``eeap explore TARGET...`` in its own process, as a user starts it: the process, its port."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "eeap", "explore", *targets, "--port", str(port), "--max-chars", "40"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while True:
        assert server.poll() is None, server.stderr.read()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert time.time() < deadline, "the page did not come up"
            time.sleep(0.3)
    return server, port


@pytest.fixture(scope="module")
def page(checkpoint):
    """The page of one model, given as its run folder; its address, port and process."""
    server, port = start(str(checkpoint.parent.parent))
    yield f"http://127.0.0.1:{port}/", port, server
    server.terminate()
    server.wait(timeout=30)


def predicted(checkpoint: Path, text: str, beam: int | None = None) -> dict:
    """``eeap predict --format jsonl --attention``'s record for one input (with the model's beam by default)."""
    search = ["--beam", str(beam), "--n-best", str(min(beam, 5))] if beam is not None else []
    done = subprocess.run(
        [sys.executable, "-m", "eeap", "predict", str(checkpoint), "--format", "jsonl", "--attention", *search],
        input=text + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(done.stdout)
    del record["line"], record["input"]
    return record


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


@contextlib.contextmanager
def chromium(url: str, height: int = 1000):
    """A page of Debian's Chromium (driven by Playwright) open at ``url``; the test fails under CI without Chromium
    (``.ci/run`` installs it) and is skipped elsewhere."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("Chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            view = browser.new_page(viewport={"width": 1200, "height": height})
            view.goto(url, wait_until="networkidle")
            yield view
        finally:
            browser.close()


@pytest.mark.parametrize(("text", "beam"), [("March 5, 2021", 1), ("12/25/2023", 3), ("1 Jan 1999", 5)])
def test_the_page_answers_as_eeap_predict_does(page, checkpoint, text, beam):
    url, _, _ = page
    output, score, best, table, message, record = client(url).predict(text, beam, "mean", 1, api_name="/translate")
    assert record == predicted(checkpoint, text, beam)
    assert output == record["output"] and score == record["score"] and message == ""
    ranked = record.get("n_best", [record])  # beam 1: the one output
    assert [row[1:] for row in best["data"]] == [[h["output"], h["score"]] for h in ranked]
    # the table: a row per output piece (and the end), a cell per source piece, weights as predict gives them
    weights = [float(w) for w in re.findall(r'data-weight="([0-9.]+)"', table)]
    assert len(record["output_pieces"]) == len(record["attention"])
    assert len(weights) == len(record["attention"]) * len(record["source_pieces"])
    assert record["source_pieces"] == list(text)  # the date translator reads characters
    assert weights == pytest.approx([w for row in record["attention"] for w in row], abs=1e-4)


@pytest.mark.parametrize("hypothesis", [2, 3])
def test_each_of_the_n_best_shows_its_own_alignment(page, checkpoint, hypothesis):
    url, _, _ = page
    *_, table, message, record = client(url).predict("12/25/2023", 3, "mean", hypothesis, api_name="/translate")
    assert record == predicted(checkpoint, "12/25/2023", 3) and message == ""
    chosen = record["n_best"][hypothesis - 1]
    assert chosen["output"] != record["output"] and f"hypothesis {hypothesis} of 3" in table
    weights = [float(w) for w in re.findall(r'data-weight="([0-9.]+)"', table)]
    assert weights == pytest.approx([w for row in chosen["attention"] for w in row], abs=1e-4)
    rows = re.findall(r'<th class="out">(.*?)</th>', table)
    assert rows == [piece.replace("<", "&lt;").replace(">", "&gt;") for piece in chosen["output_pieces"]]


def test_the_page_streams_the_output_as_it_decodes(checkpoint):
    from eeap.model.checkpoints import load_task
    from eeap.serving.explore import Explorer, serve

    explorer = Explorer(load_task(checkpoint).eval(), str(checkpoint), MAX_CHARS)
    explorer.every = 0.0  # every step's output: a date decodes faster than the page's 0.1 s between updates
    parts = list(explorer.stream("March 5, 2021", 1))
    *partial, final = parts
    assert final[5] == explorer.answer("March 5, 2021", 1)[5] == predicted(checkpoint, "March 5, 2021", 1)
    shown = [part[0] for part in partial]
    assert len(shown) >= 5 and shown[0] == final[0][:1]  # one character a step
    assert all(later.startswith(earlier) for earlier, later in zip(shown, shown[1:]))  # greedy: each extends the last
    assert shown[-1] == final[0]
    port = free_port()
    app = serve([explorer], "127.0.0.1", port, block=False)
    try:  # through the page's queue, each update reaches the client
        job = client(f"http://127.0.0.1:{port}/").submit("March 5, 2021", 1, "mean", 1, api_name="/translate")
        assert job.result(timeout=60)[5] == final[5]
        assert [update[0] for update in job.outputs()] == [part[0] for part in parts]
    finally:
        app.close()


def test_a_failed_decode_reaches_the_page_after_its_updates():
    from eeap.serving.explore import streamed

    def work(progress):
        progress(["19"])
        raise RuntimeError("out of memory")

    updates = streamed(work, lambda outputs: (outputs[0],), 0.0)
    assert next(updates) == ("19",)
    with pytest.raises(RuntimeError, match="out of memory"):
        next(updates)


def test_the_table_shows_what_hard_local_and_gated_attention_decided():
    from eeap.serving.explore import alignment_table

    base = {"source_pieces": ["a", "b", "c"], "output_pieces": ["x", "</s>"]}
    hard = alignment_table(
        {
            **base,
            "attention": [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
            "attention_details": {"choice": [1, 0], "probability": [[0.2, 0.7, 0.1], [0.5, 0.3, 0.2]]},
        }
    )
    assert re.findall(r'class="w chosen" data-weight="([0-9.]+)"', hard) == ["1.0000", "1.0000"]
    assert "rgba(31, 119, 180, 0.700)" in hard and "(probability 0.2000)" in hard  # shaded by what it drew from
    assert re.findall(r'<td class="note">(.*?)</td>', hard) == ["→ b", "→ a"]
    local = alignment_table(
        {
            **base,
            "attention": [[0.4, 0.6, 0.0], [0.0, 0.3, 0.7]],
            "attention_details": {"centre": [0.5, 2.2], "first": [0, 1], "last": [1, 2]},
        }
    )
    assert local.count('class="w outside"') == 2 and "(outside the window)" in local
    assert re.findall(r'<td class="note">(.*?)</td>', local) == ["p = 0.50, [0, 1]", "p = 2.20, [1, 2]"]
    gated = alignment_table(
        {
            **base,
            "attention": [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]],
            "attention_details": {"gate": [[0.1, 0.9, 0.2], [0.8, 0.6, 0.3]], "open": [[0, 1, 0], [1, 1, 0]]},
        }
    )
    assert gated.count('class="w shut"') == 3 and gated.count(">×</td>") == 3 and "(gate 0.9000, open)" in gated
    assert re.findall(r'<td class="note">(.*?)</td>', gated) == ["1 open", "2 open"]
    assert 'class="note"' not in alignment_table({**base, "attention": [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]})


@pytest.mark.parametrize(
    ("attend", "shows"),
    [
        ("{type: hard}", 'class="w chosen"'),
        ("{type: local, window: 1}", "outside the window"),
        ("{type: gated}", "open"),
    ],
)
def test_a_hard_local_or_gated_models_page_shows_what_its_attention_decided(attend, shows):
    from eeap.serving.explore import Explorer
    from tests.attend.test_notes import SMALL

    module, _ = build(load_config(DATES, [*QUIET, *SMALL, f"model.attend={attend}"]))
    explorer = Explorer(module.model.eval(), "untrained", MAX_CHARS)
    *_, table, message, record = explorer.answer("4 March 2021", 3, "mean", 2)
    chosen = record["n_best"][1]
    assert message == "" and set(chosen["attention_details"]) and "hypothesis 2 of 3" in table
    assert table.count('<td class="note">') == len(chosen["attention"]) and shows in table


def test_a_transformers_page_shows_each_layer_and_head():
    from eeap.serving.explore import Explorer
    from tests.conftest import ROOT

    config = ROOT / "configs" / "translation" / "dates_transformer.yaml"
    sizes = ["data.train_size=64", "data.val_size=8", "data.test_size=8", "model.attend.average_heads=false"]
    module, _ = build(load_config(config, [*QUIET, *sizes]))
    explorer = Explorer(module.model.eval(), "untrained", MAX_CHARS)
    each = ["mean", "head 1", "head 2", "head 3", "head 4"]
    assert explorer.views() == each + [f"layer {layer} {view}" for layer in (1, 2) for view in each]
    *_, table, message, record = explorer.answer("4 March 2021", 1, "layer 1 head 2")
    weights = [float(w) for w in re.findall(r'data-weight="([0-9.]+)"', table)]
    assert weights == pytest.approx([w for row in record["attention_layers"][0][1] for w in row], abs=1e-4)
    assert message == "" and "layer 1 head 2" in table


def test_bad_input_gets_a_message_in_the_page_and_the_server_keeps_serving(page):
    url, _, server = page
    reach = client(url)
    empty = reach.predict("   ", 1, "mean", 1, api_name="/translate")
    assert empty[0] == "" and empty[4] == "Type something first."
    long = reach.predict("9" * (MAX_CHARS + 1), 1, "mean", 1, api_name="/translate")
    assert long[4] == f"The input is {MAX_CHARS + 1} characters long; this page takes at most {MAX_CHARS}."
    assert reach.predict("March 5, 2021", 1, "mean", 1, api_name="/translate")[0] != ""
    assert server.poll() is None


def test_eight_requests_at_once_are_all_answered(page):
    url, _, _ = page
    reach = client(url)
    texts = [f"March {day}, 2021" for day in range(1, 9)]
    jobs = [reach.submit(text, 2, "mean", 1, api_name="/translate") for text in texts]
    answers = [job.result(timeout=120) for job in jobs]
    alone = [reach.predict(text, 2, "mean", 1, api_name="/translate")[5] for text in texts]
    assert [answer[5] for answer in answers] == alone  # each its own input's answer, none lost


def test_the_page_listens_on_this_machine_only(page):
    _, port, _ = page
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if Path(table).is_file():
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    listening.append(local.rsplit(":", 1)[0])
    assert listening == ["0100007F"]  # 127.0.0.1, and nothing else


def test_a_person_types_a_date_in_chromium_and_sees_its_alignment(page, checkpoint, tmp_path):
    url, _, _ = page
    with chromium(url) as view:
        view.locator("#eeap-input textarea, #eeap-input input").first.fill("March 5, 2021")
        view.get_by_role("button", name="Translate").click()
        view.wait_for_selector("#eeap-alignment table.eeap-alignment td.w", timeout=60_000)
        output = view.locator("#eeap-output textarea, #eeap-output input").first.input_value()
        cells = view.locator("#eeap-alignment td.w")
        expected = predicted(checkpoint, "March 5, 2021")  # the page starts at the model's own beam
        assert output == expected["output"]
        assert cells.count() == len("March 5, 2021") * len(expected["attention"])  # each piece and the end
        title = cells.first.get_attribute("title")
        assert title is not None and re.search(r"← M: [01]\.\d{4}$", title)  # hover shows the weight
        view.screenshot(path=str(tmp_path / "explore-translation.png"), full_page=True)
        # choosing the n best's second row shows that hypothesis' own alignment
        view.locator('#eeap-best [data-testid="cell-1-1"]').click()  # Gradio's grid: row 1, column 1
        view.wait_for_function(
            "document.querySelector('#eeap-alignment caption').textContent.includes('hypothesis 2 of 3')",
            timeout=60_000,
        )
        second = predicted(checkpoint, "March 5, 2021", 3)["n_best"][1]
        assert view.locator("#eeap-alignment tr th.out").count() == len(second["output_pieces"])
    assert (tmp_path / "explore-translation.png").stat().st_size > 10_000


def test_what_explore_refuses_is_one_line(tmp_path, checkpoint, page):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "eeap", "explore", *args], capture_output=True, text=True)

    missing = run(str(tmp_path / "nothing.ckpt"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    assert "not found; give a checkpoint (.ckpt), a model folder or a run folder" in missing.stderr
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    empty = run(str(tmp_path / "run"))
    assert empty.returncode == 2 and "a run folder without checkpoints" in empty.stderr
    port = run(str(checkpoint), "--port", "70000")
    assert port.returncode == 2 and "--port must be between 1 and 65535" in port.stderr
    _, taken, _ = page
    busy = run(str(checkpoint), "--port", str(taken))  # the page's own port
    assert (
        busy.returncode == 2
        and busy.stdout == ""
        and busy.stderr
        == (
            f"error: --host 127.0.0.1 --port {taken}: cannot listen there (Cannot find empty port in range: "
            f"{taken}-{taken})\n"
        )
    )


def test_the_alignment_table_shows_one_head_or_their_mean():
    from eeap.serving.explore import alignment_table

    record = {
        "attention": [[0.5, 0.5]],
        "attention_heads": [[[1.0, 0.0]], [[0.0, 1.0]]],
        "source_pieces": ["a", " "],
        "output_pieces": ["<x>"],
    }
    mean = alignment_table(record)
    assert mean.count('data-weight="0.5000"') == 2 and 'title="&lt;x&gt; ← ␣: 0.5000"' in mean  # escaped, spaces shown
    second = alignment_table(record, "head 2")
    assert re.findall(r'data-weight="([0-9.]+)"', second) == ["0.0000", "1.0000"]
    assert "no attention" in alignment_table({"attention": []})
    layered = {
        **record,
        "attention_layers": [[[[0.2, 0.8]], [[0.6, 0.4]]], [[[1.0, 0.0]], [[0.0, 1.0]]]],  # (layer, head, out, src)
    }
    first = alignment_table(layered, "layer 1 head 2")
    assert re.findall(r'data-weight="([0-9.]+)"', first) == ["0.6000", "0.4000"] and "layer 1 head 2" in first
    assert re.findall(r'data-weight="([0-9.]+)"', alignment_table(layered, "layer 1 mean")) == ["0.4000", "0.6000"]
    beyond = alignment_table(layered, "layer 3 mean")
    assert "mean (this model has 2 attending layers)" in beyond and beyond.count('data-weight="0.5000"') == 2


def test_two_models_side_by_side_answer_the_same_input_each_as_predict_does(checkpoint, dot_checkpoint):
    server, port = start(str(checkpoint), str(dot_checkpoint))
    try:
        answers = client(f"http://127.0.0.1:{port}/").predict("July 4, 1976", 2, "mean", 1, api_name="/translate")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(answers) == 12  # output, score, n best, alignment, message, record: a model each
    assert answers[5] == predicted(checkpoint, "July 4, 1976", 2)
    assert answers[11] == predicted(dot_checkpoint, "July 4, 1976", 2)
    assert answers[5]["attention"] != answers[11]["attention"]  # additive and general attention look differently


@pytest.fixture(scope="module")
def caption_checkpoint(tmp_path_factory) -> Path:
    """A small captioner of the generated scenes (configs/captioning/karpathy.yaml, shrunk)."""
    from eeap.config.loader import load_config
    from eeap.training.run import train
    from tests.captioning.test_photos import KARPATHY, SMALL
    from tests.conftest import QUIET

    folder = tmp_path_factory.mktemp("explore-caption")
    overrides = [*QUIET, *SMALL, f"data.root={folder / 'scenes'}", "trainer.max_epochs=1", f"run_dir={folder / 'run'}"]
    return Path(train(load_config(KARPATHY, overrides))["best_checkpoint"])


@pytest.fixture(scope="module")
def caption_page(caption_checkpoint):
    server, port = start(str(caption_checkpoint))
    yield f"http://127.0.0.1:{port}/", port, server
    server.terminate()
    server.wait(timeout=30)


def scene_image(checkpoint: Path) -> Path:
    """One of the scenes the captioner was trained on (the page offers them too)."""
    return sorted((checkpoint.parent.parent.parent / "scenes" / "images").glob("*.png"))[-1]


def predicted_file(checkpoint: Path, image: Path, beam: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "eeap", "predict", str(checkpoint), "--format", "jsonl", "--attention"]
        + ["--beam", str(beam), "--n-best", str(min(beam, 5))],
        input=f"{image}\n",
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(done.stdout)
    del record["line"], record["input"]
    return record


@pytest.mark.parametrize("beam", [1, 3])
def test_the_caption_page_answers_as_eeap_predict_does(caption_page, caption_checkpoint, beam):
    from gradio_client import handle_file

    url, _, _ = caption_page
    image = scene_image(caption_checkpoint)
    caption, score, best, words, message, record = client(url).predict(
        handle_file(str(image)), beam, 1, api_name="/caption"
    )
    assert record == predicted_file(caption_checkpoint, image, beam)
    assert caption == record["output"] and score == record["score"] and message == ""
    assert [row[1:] for row in best["data"]] == [[h["output"], h["score"]] for h in record.get("n_best", [record])]
    # a panel per word (and the end), captioned by it; the attention rows are over the model's grid of cells
    assert [panel["caption"] for panel in words] == record["output_pieces"]
    assert all(len(row) == 16 and abs(sum(row) - 1) < 1e-3 for row in record["attention"])  # 32 / 8: 4 × 4 cells


def test_each_caption_of_the_n_best_shows_where_its_own_words_looked(caption_page, caption_checkpoint):
    from gradio_client import handle_file

    url, _, _ = caption_page
    image = scene_image(caption_checkpoint)
    *_, words, message, record = client(url).predict(handle_file(str(image)), 3, 2, api_name="/caption")
    second = record["n_best"][1]
    assert message == "" and second["output"] != record["output"]
    assert [panel["caption"] for panel in words] == second["output_pieces"]
    assert len(second["attention"]) == len(second["output_pieces"])


def test_the_attention_overlay_is_red_where_a_word_looked():
    import numpy as np

    from eeap.serving.explore import attention_overlay

    image = np.full((8, 8, 3), 0.5)
    shown = attention_overlay(image, [1.0, 0.0, 0.0, 0.0], (2, 2))  # all on the top-left cell
    assert shown.shape == (8, 8, 3) and shown.dtype == np.uint8
    assert shown[0, 0, 0] > 200 and shown[0, 0, 1] < 60  # red over the looked-at corner
    assert tuple(shown[7, 7]) == (128, 128, 128)  # the far corner untouched


def test_bad_uploads_get_a_message_and_the_caption_page_keeps_serving(caption_page, caption_checkpoint, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    url, _, server = caption_page
    reach = client(url)
    assert reach.predict(None, 1, 1, api_name="/caption")[4] == "Upload an image first."
    (tmp_path / "notes.png").write_text("not an image at all")
    answer = reach.predict(handle_file(str(tmp_path / "notes.png")), 1, 1, api_name="/caption")
    assert answer[0] == "" and "not an image this page can read" in answer[4]
    Image.new("L", (6400, 6400)).save(tmp_path / "huge.png")  # 41 million pixels, a small file
    assert (
        "this page takes at most 40,000,000 pixels"
        in reach.predict(handle_file(str(tmp_path / "huge.png")), 1, 1, api_name="/caption")[4]
    )
    good = reach.predict(handle_file(str(scene_image(caption_checkpoint))), 1, 1, api_name="/caption")
    assert good[0] != "" and good[4] == "" and server.poll() is None
    import eeap.serving.explore

    assert not Path(eeap.serving.explore.__file__).with_suffix(".pyi").exists()  # Gradio wrote nothing beside it


def test_a_person_uploads_a_photo_in_chromium_and_sees_each_words_attention(caption_page, caption_checkpoint, tmp_path):
    url, _, _ = caption_page
    image = scene_image(caption_checkpoint)
    with chromium(url, height=1100) as view:
        view.locator("#eeap-image input[type=file]").set_input_files(str(image))
        view.wait_for_selector("#eeap-image img", timeout=60_000)
        view.get_by_role("button", name="Caption").click()
        view.wait_for_selector("#eeap-words img", timeout=60_000)
        caption = view.locator("#eeap-caption textarea, #eeap-caption input").first.input_value()
        expected = predicted_file(caption_checkpoint, image, 2)  # the page starts at the model's own beam
        assert caption == expected["output"]
        assert view.locator("#eeap-words img").count() >= 1
        view.screenshot(path=str(tmp_path / "explore-captioning.png"), full_page=True)
    assert (tmp_path / "explore-captioning.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def classifier_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A text classifier (text_file.yaml on a small TSV) and an image classifier (digits.yaml), briefly trained."""
    from eeap.config.loader import load_config
    from eeap.training.run import train
    from tests.conftest import QUIET, ROOT

    folder = tmp_path_factory.mktemp("explore-classify")
    (folder / "t.tsv").write_text("".join(f"nice day {i}\tpos\nawful day {i}\tneg\n" for i in range(40)))
    configs = ROOT / "configs" / "classification"
    text = [*QUIET, f"data.path={folder / 't.tsv'}", "trainer.max_epochs=3", f"run_dir={folder / 'text'}"]
    digits = [*QUIET, "trainer.max_epochs=2", f"run_dir={folder / 'digits'}"]
    return {
        "text": Path(train(load_config(configs / "text_file.yaml", text))["best_checkpoint"]),
        "image": Path(train(load_config(configs / "digits.yaml", digits))["best_checkpoint"]),
    }


def test_the_classification_pages_answer_as_eeap_predict_does(classifier_checkpoints, tmp_path):
    import numpy as np
    from gradio_client import handle_file
    from PIL import Image
    from sklearn.datasets import load_digits

    digit = tmp_path / "digit.png"
    Image.fromarray((load_digits().images[3] * 255 / 16).astype(np.uint8)).save(digit)
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8)).save(tmp_path / "big.png")
    for kind, given, sent in [
        ("text", "an awful day", "an awful day"),
        ("image", str(digit), handle_file(str(digit))),
    ]:
        checkpoint = classifier_checkpoints[kind]
        server, port = start(str(checkpoint))
        try:
            reach = client(f"http://127.0.0.1:{port}/")
            label, probability, classes, attention, message, record = reach.predict(sent, api_name="/classify")
            if kind == "image":  # the wrong size, in the page, and the server keeps serving
                wrong = reach.predict(handle_file(str(tmp_path / "big.png")), api_name="/classify")
                assert wrong[0] == "" and "image is 9×9 (H×W), expected 8×8" in wrong[4]
                assert "Upload an image first." == reach.predict(None, api_name="/classify")[4]
            else:
                assert reach.predict("", api_name="/classify")[4] == "Type something first."
        finally:
            server.terminate()
            server.wait(timeout=30)
        done = subprocess.run(
            [sys.executable, "-m", "eeap", "predict", str(checkpoint), "--format", "jsonl", "--attention"]
            + ["--n-best", str(len(record["n_best"]))],
            input=given + "\n",
            capture_output=True,
            text=True,
            check=True,
        )
        expected = json.loads(done.stdout)
        del expected["line"], expected["input"]
        assert record == expected and label == record["output"] and probability == record["score"]
        assert [row[1:] for row in classes["data"]] == [[h["output"], h["score"]] for h in record["n_best"]]
        assert abs(sum(h["score"] for h in record["n_best"]) - 1) < 1e-4  # every class's probability
        if kind == "text":  # each token shaded by its pooling weight
            weights = [float(w) for w in re.findall(r'data-weight="([0-9.]+)"', attention)]
            assert weights == pytest.approx(record["attention"], abs=1e-4)
            assert record["source_pieces"][:3] == ["<unk>", "awful", "day"]  # "an" is not in its vocabulary
            assert "not in the vocabulary" in message
        else:  # the overlay: the image as the model read it (8 × 8)
            from PIL import Image as Opened

            assert Opened.open(attention).size == (8, 8) and message == ""


@pytest.fixture(scope="module")
def shapes_checkpoint(tmp_path_factory) -> str:
    """An Attention U-Net on shapes (shapes.yaml, shrunk), briefly trained."""
    from eeap.config.loader import load_config
    from eeap.training.run import train
    from tests.conftest import QUIET, ROOT

    folder = tmp_path_factory.mktemp("explore-shapes")
    overrides = [*QUIET, "data.train_size=8", "data.val_size=4", "data.test_size=4", "data.image_size=32"]
    config = ROOT / "configs" / "segmentation" / "shapes.yaml"
    return train(load_config(config, [*overrides, "trainer.max_epochs=1", f"run_dir={folder / 'run'}"]))[
        "best_checkpoint"
    ]


def shape_picture(folder: Path) -> Path:
    """A red rectangle on black, 40 × 36: not the training size (a segmentation model takes any)."""
    import numpy as np
    from PIL import Image

    picture = np.zeros((40, 36, 3), dtype=np.uint8)
    picture[8:24, 10:30] = (230, 60, 60)
    Image.fromarray(picture).save(folder / "shape.png")
    return folder / "shape.png"


def test_a_person_uploads_a_digit_and_a_shapes_image_in_chromium(classifier_checkpoints, shapes_checkpoint, tmp_path):
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digit = tmp_path / "digit.png"
    Image.fromarray((load_digits().images[3] * 255 / 16).astype(np.uint8)).save(digit)
    pages = [
        (classifier_checkpoints["image"], digit, "Classify", "#eeap-attention img", "classification"),
        (shapes_checkpoint, shape_picture(tmp_path), "Segment", "#eeap-gates img", "segmentation"),
    ]
    for checkpoint, image, button, drawn, name in pages:
        server, port = start(str(checkpoint))
        try:
            with chromium(f"http://127.0.0.1:{port}/") as view:
                view.locator("#eeap-image input[type=file]").set_input_files(str(image))
                view.wait_for_selector("#eeap-image img", timeout=60_000)
                view.get_by_role("button", name=button).click()
                view.wait_for_selector(drawn, timeout=60_000)
                if name == "classification":  # the class predict gives, every class's probability
                    shown = view.locator("#eeap-class textarea, #eeap-class input").first.input_value()
                    done = subprocess.run(
                        [sys.executable, "-m", "eeap", "predict", str(checkpoint)],
                        input=f"{image}\n",
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    assert shown == done.stdout.strip()
                else:  # the prediction over the image, a map per gate, the mask
                    assert view.locator("#eeap-over img").count() == 1 and view.locator("#eeap-mask img").count() == 1
                    assert view.locator("#eeap-gates img").count() >= 1
                view.screenshot(path=str(tmp_path / f"explore-{name}.png"), full_page=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert (tmp_path / f"explore-{name}.png").stat().st_size > 10_000


def test_the_segmentation_page_draws_the_mask_predict_writes_and_each_gate(shapes_checkpoint, tmp_path):
    import numpy as np
    from gradio_client import handle_file
    from PIL import Image

    checkpoint = shapes_checkpoint
    shape_picture(tmp_path)
    server, port = start(checkpoint)
    try:
        reach = client(f"http://127.0.0.1:{port}/")
        mask, over, gates, message, summary = reach.predict(
            handle_file(str(tmp_path / "shape.png")), api_name="/segment"
        )
        (tmp_path / "text.png").write_text("no image")
        assert "not an image" in reach.predict(handle_file(str(tmp_path / "text.png")), api_name="/segment")[3]
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'shape.png'}\n")
    subprocess.run(
        [sys.executable, "-m", "eeap", "predict", checkpoint, "--input", str(tmp_path / "list.txt")]
        + ["--out-dir", str(tmp_path / "masks")],
        check=True,
        capture_output=True,
    )
    written = np.asarray(Image.open(tmp_path / "masks" / "00001_shape.png"))
    assert np.array_equal(np.asarray(Image.open(mask)), written) and message == ""
    assert summary["size"] == [40, 36] and len(gates) == len(summary["gates"]) >= 1
    assert [panel["caption"].split(":")[0] for panel in gates] == [f"gate {i}" for i in range(1, len(gates) + 1)]
    assert Image.open(over).size == (36, 40)


def test_a_run_folders_page_shows_its_training_from_the_folder_alone(page, checkpoint):
    from PIL import Image

    from eeap.serving.explore import RunView

    url, _, _ = page
    run = checkpoint.parent.parent
    view = RunView(run)
    assert view.examples == [0, 1] and len(view.steps) >= 2 and view.curve is not None  # 2 epochs, validated twice
    headers, rows = view.metrics()
    assert "val/exact_match" in headers and [row[0] for row in rows] == view.steps
    reach = client(url)
    between = (view.steps[0] + view.steps[1]) // 2 + 1  # a step between validations shows the nearest one
    for step in (view.steps[0], between):
        path, what = reach.predict(1, step, api_name="/run_figure")
        nearest = min(view.steps, key=lambda s: abs(s - step))
        assert what == f"example 1 at step {nearest}"
        expected = run / "figures" / f"val_attention_1-step{nearest:07d}.png"
        assert Image.open(path).size == Image.open(expected).size
        assert list(Image.open(path).convert("RGB").getdata()) == list(Image.open(expected).convert("RGB").getdata())
