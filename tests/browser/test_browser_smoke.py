"""The browser fixture itself: a page from disk renders, and a JS error is seen as a console error."""

from __future__ import annotations

from pathlib import Path

from tests.browser.conftest import console_errors


def test_a_page_from_disk_renders_and_its_console_errors_are_read(browser, tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        "<!doctype html><html><body><h1 id='t'>hello &lt;b&gt;</h1>"
        "<script>document.title = 'ok'; undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    browser.get(page.as_uri())
    assert browser.title == "ok"
    assert browser.find_element("id", "t").text == "hello <b>"
    errors = console_errors(browser)
    assert len(errors) == 1 and "undefinedFunction" in errors[0]
