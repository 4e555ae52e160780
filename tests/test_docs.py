"""The documentation site builds strictly, its component reference lists every registered name (generated from the
registries), and the README's links point at pages that exist."""

import os
import re
import subprocess
import sys

from tests.conftest import ROOT


def test_the_site_builds_strictly_and_its_reference_lists_every_registered_component(tmp_path):
    from eeap.config.registry import REGISTRIES

    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    reference = (tmp_path / "site" / "reference" / "components" / "index.html").read_text(encoding="utf-8")
    headings = set(re.findall(r'<h3 id="[^"]*"><code>([^<]+)</code>', reference))
    kinds = set(re.findall(r'<h2 id="([^"]+)">', reference))
    for kind, registry in REGISTRIES.items():
        assert registry.kind in kinds
        missing = set(registry.names()) - headings
        assert not missing, f"{kind}: {sorted(missing)} not in the reference"
    assert not (tmp_path / "site" / "hooks.py").exists()


def test_the_readme_is_a_front_page_whose_links_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", readme)
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).exists(), link
    assert "```bash\npython train.py configs/translation/dates.yaml\n```" in readme  # the two commands
    assert "```bash\npython -m pytest\n```" in readme
