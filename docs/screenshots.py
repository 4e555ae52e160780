"""Redraw the screenshots of ``eeap explore`` that the README and docs/explore.md show: each task's page, for a model
trained briefly for the purpose (a shipped config, shrunk where it takes long), opened in Debian's Chromium through
Playwright as a person would use it. Needs the ``explore`` extra and ``apt-get install chromium``.

    python docs/screenshots.py                              # every page, into docs/assets/explore-<page>.png
    python docs/screenshots.py classification segmentation  # some of them
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ASSETS = Path(__file__).resolve().parent / "assets"
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]


def train(config: str, overrides: list[str], folder: Path) -> str:
    """A shipped config (by name) trained into ``folder``; its best checkpoint."""
    from eeap.config.loader import find_config, load_config
    from eeap.training.run import train as run

    return str(
        run(load_config(find_config(config), [*QUIET, *overrides, f"run_dir={folder / 'run'}"]))["best_checkpoint"]
    )


def digit(folder: Path) -> Path:
    """A handwritten 3 from scikit-learn's digits (the data digits.yaml trains on), as a PNG."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    three = int(np.flatnonzero(digits.target == 3)[-1])  # the data set's last 3
    path = folder / "digit.png"
    Image.fromarray((digits.images[three] * 255 / 16).astype(np.uint8)).save(path)
    return path


def shapes_image(folder: Path) -> Path:
    """A shapes image the model has not seen (its generator, another seed), as a PNG."""
    import numpy as np
    from PIL import Image

    from eeap.tasks.segmentation.data import make_shapes

    ((image, _),) = make_shapes(1, 64, ["circle", "rectangle", "triangle"], True, 3, 0.05, seed=7)
    path = folder / "shapes.png"
    Image.fromarray((image.transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)).save(path)
    return path


def scene(folder: Path) -> Path:
    """One of the generated scenes the captioner read (the last test image)."""
    return sorted((folder / "scenes" / "images").glob("*.png"))[-1]


def type_date(view: Any, folder: Path) -> None:
    view.locator("#eeap-input textarea, #eeap-input input").first.fill("5 March 2021")
    view.get_by_role("button", name="Translate").click()
    view.wait_for_selector("#eeap-alignment table.eeap-alignment td.w", timeout=120_000)


def upload(button: str, image: Callable[[Path], Path], done: str) -> Callable[[Any, Path], None]:
    def act(view: Any, folder: Path) -> None:
        view.locator("#eeap-image input[type=file]").set_input_files(str(image(folder)))
        view.wait_for_selector("#eeap-image img", timeout=60_000)
        view.get_by_role("button", name=button).click()
        view.wait_for_selector(done, timeout=120_000)

    return act


PAGES: dict[str, tuple[str, list[str], Callable[[Any, Path], None]]] = {
    "translation": ("translation/dates", [], type_date),
    "captioning": (
        "captioning/karpathy",
        [
            "data.train_size=600",
            "data.val_size=60",
            "data.test_size=60",
            "trainer.max_epochs=8",
            "data.root={folder}/scenes",
        ],
        upload("Caption", scene, "#eeap-words img"),
    ),
    "classification": (
        "classification/digits",
        ["trainer.max_epochs=15"],
        upload("Classify", digit, "#eeap-attention img"),
    ),
    "segmentation": (
        "segmentation/shapes",
        ["data.train_size=400", "trainer.max_epochs=8"],
        upload("Segment", shapes_image, "#eeap-gates img"),
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot(name: str, chromium: str) -> Path:
    """Train the page's model, serve its page with ``eeap explore``, use it in Chromium, keep the screenshot."""
    from playwright.sync_api import sync_playwright

    config, overrides, act = PAGES[name]
    with tempfile.TemporaryDirectory(prefix=f"eeap-screenshot-{name}-") as where:
        folder = Path(where)
        checkpoint = train(config, [o.format(folder=folder) for o in overrides], folder)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "eeap", "explore", checkpoint, "--port", str(port)])
        try:
            deadline = time.time() + 180
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if server.poll() is not None or time.time() > deadline:
                        raise SystemExit(f"error: eeap explore {checkpoint} did not come up") from None
                    time.sleep(0.5)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
                try:
                    view = browser.new_page(viewport={"width": 1200, "height": 900})
                    view.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
                    act(view, folder)
                    view.wait_for_timeout(500)  # images finish drawing
                    target = ASSETS / f"explore-{name}.png"
                    view.screenshot(path=str(target), full_page=True)
                finally:
                    browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", choices=[[], *PAGES], default=list(PAGES), metavar="PAGE")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: Chromium is not installed; apt-get install chromium", file=sys.stderr)
        return 1
    for name in args.pages or list(PAGES):
        print(f"{name}: {screenshot(name, chromium)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
