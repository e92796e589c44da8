"""The page's terminal rendering (static/js/ansi.js), unit-tested by node, and static/ansi.css
as the palette in ansi.js gives it. Node is skipped when missing, except under ``CI=true``."""
import os
import shutil
import subprocess

import pytest

from tests.support import ROOT

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None and os.environ.get("CI") != "true",
                                reason="node is not installed (it runs the page's JS tests)")


def node(*args):
    assert NODE is not None, "CI=true: install node to run the page's JS unit tests"
    return subprocess.run([NODE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@needs_node
def test_ansi_js_unit_tests_pass():
    result = node("--test", "tests/js/test_ansi.mjs")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_node
def test_ansi_css_is_what_its_generator_prints():
    result = node("tests/js/make_ansi_css.mjs")
    assert result.returncode == 0, result.stderr
    assert (ROOT / "static" / "ansi.css").read_text() == result.stdout, \
        "run: node tests/js/make_ansi_css.mjs > static/ansi.css"
