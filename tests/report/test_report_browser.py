"""The report in a real browser: headless Chromium (Debian's chromium + chromium-driver, driven by
selenium) opens report.html of both tasks and checks what a person would see — every image decoded,
the rows, the threshold line, a sortable table, no console errors — and saves a screenshot.

`make test` installs Chromium where it runs as root on Debian; elsewhere this test skips and says why.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


def _browser():
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("headless Chromium not found (chromium and chromedriver on PATH; Debian: apt-get install chromium "
                    "chromium-driver, which `make test` does when it runs as root)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install 'fprt[dev]')")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1800",
                "--allow-file-access-from-files"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


def _open(browser, html, shot):
    browser.get(html.as_uri())
    browser.execute_script("return document.readyState")
    # every image decoded: the page's own data URIs, nothing fetched from anywhere
    sizes = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.getAttribute('src').slice(0, 5)])")
    assert sizes and all(c and w > 0 and src == "data:" for c, w, src in sizes), sizes
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    return len(sizes)


def test_membership_report_in_chromium(browser, membership_run, tmp_path):
    from fprt.runtime.report import write_report

    out, _, labels = membership_run
    r = write_report(out, top=4, labels=labels)
    n_images = _open(browser, r.html, tmp_path / "membership.png")
    assert n_images == r.images
    q = browser.execute_script
    assert q("return document.querySelectorAll('#membership-table tbody tr').length") == 8
    assert q("return document.querySelectorAll('#top-list .match').length") == 4
    assert q("return document.querySelectorAll('#bottom-list .match').length") == 4
    # the threshold: a drawn line in the histogram and its value in words
    line = q("const g = document.querySelector('#histogram svg #threshold-line'); "
             "if (!g) return null; const b = g.getBBox(); return [b.height, g.querySelectorAll('path').length]")
    assert line is not None and line[0] > 10 and line[1] >= 1
    assert q("return document.getElementById('threshold').dataset.threshold") is not None
    assert q("return document.querySelector('#roc svg #roc-curve') !== null")
    # sorting the table by score (click twice: descending, then ascending)
    header = browser.find_element("css selector", "#membership-table th:nth-child(5)")
    header.click()
    header.click()
    values = q("return Array.from(document.querySelectorAll('#membership-table tbody tr td:nth-child(5)')).map(td => +td.dataset.v)")
    assert values == sorted(values, reverse=True) or values == sorted(values)
    assert len(set(values)) > 1


def test_subsets_report_in_chromium(browser, subsets_runs, tmp_path):
    from fprt.runtime.report import write_report

    r = write_report(subsets_runs["knn"], per_class=2, labels=subsets_runs["labels"])
    _open(browser, r.html, tmp_path / "subsets.png")
    q = browser.execute_script
    assert q("return document.querySelectorAll('#subsets-table tbody tr').length") == r.rows_shown
    assert q("return document.querySelectorAll('#subset-list .match').length") == r.rows_shown
    assert q("return document.querySelectorAll('#confusion tbody tr').length") == 3 + 1  # subsets + precision


def test_the_browser_checks_catch_a_broken_page(browser, tmp_path):
    """The checks above can fail: a page with an undecodable image, or one that logs an error, does not pass."""
    bad_image = tmp_path / "bad.html"
    bad_image.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA" alt="x"></body></html>')
    with pytest.raises(AssertionError):
        _open(browser, bad_image, tmp_path / "bad.png")
    browser.get_log("browser")  # drop what the broken image logged
    ok_png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
    console = tmp_path / "console.html"
    console.write_text(f'<!DOCTYPE html><html><body style="height:900px;background:repeating-linear-gradient(45deg,#000,#fff 9px)">'
                       f'<img src="data:image/png;base64,{ok_png}" alt="x"><script>console.error("boom")</script></body></html>')
    with pytest.raises(AssertionError, match="boom"):
        _open(browser, console, tmp_path / "console.png")
