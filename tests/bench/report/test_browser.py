"""The HTML report of a real run, opened in a real headless Chromium: the file is self-contained (every image an
inline PNG that decodes, nothing fetched), its summary tables sort and filter as the template's contract says, the
console stays free of errors, and a phone-width window does not scroll sideways.

Debian's `chromium` and `chromium-driver` packages drive it (CI's .ci/run installs them); Selenium is given both
paths, so it never downloads a browser or a driver. Screenshots land in the test's tmp_path and, when the
BENCH_SCREENSHOTS environment variable names a folder, are copied there too (the docs' pictures come from there).
BENCH_REPORT_HTML names an existing report.html to check instead of making a run: a template change is checked in
seconds that way.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from bench.store.database import read_store
from tests.bench.conftest import run_subprocess, write_fast_toml

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDE = (1280, 900)
PHONE = (390, 844)

# Three families (baseline, unstructured, channel) on two engines: every filter has something to choose.
COMPRESSORS = ["none", "prune.unstructured:sparsity=0.5", "prune.channel:macs_removed=0.5"]

# The contract's sort keys: these sort last in both directions.
MISSING = {"", "-", "n/a", "\u2013", "\u2014"}


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html of a tiny two-engine digits_cnn run, written by `python -m bench report --format html`."""
    given = os.environ.get("BENCH_REPORT_HTML")
    if given:
        return Path(given).resolve()
    directory = tmp_path_factory.mktemp("browser-run")
    store = directory / "results" / "bench.sqlite"
    run = run_subprocess(
        "run", "--config", str(write_fast_toml(directory)), "--models", "digits_cnn", "--compressors", *COMPRESSORS,
        "--engines", "torchscript,onnxruntime", "--budget", "0.2", "--finetune-steps", "5", "--no-layers",
        "--store", str(store),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with read_store(store) as opened:
        run_id = opened.run().run_id
    report = run_subprocess("report", run_id, "--store", str(store), "--format", "html")
    assert report.returncode == 0, report.stderr
    path = store.parent / "runs" / run_id / "report.html"
    assert path.is_file(), f"no {path}: {report.stdout}"
    return path


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.skip(f"needs Debian's chromium and chromium-driver packages: {', '.join(missing)} absent")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size={},{}".format(*WIDE)):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to start its sandbox as root.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager, should anything call it, must not go online.
        chrome = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def page(driver: webdriver.Chrome, report_html: Path) -> webdriver.Chrome:
    """The report freshly loaded in a wide window, its images decoded, the console log emptied before it loads."""
    driver.set_window_size(*WIDE)
    driver.get_log("browser")
    driver.get(report_html.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"
        )
    )
    return driver


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver: webdriver.Chrome, directory: Path, name: str) -> Path:
    path = directory / name
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    assert path.stat().st_size > 0
    collect = os.environ.get("BENCH_SCREENSHOTS")
    if collect:
        Path(collect).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(collect) / name)
    print(f"screenshot {path}")
    return path


def summary_table(driver: webdriver.Chrome) -> WebElement:
    tables = driver.find_elements(By.CSS_SELECTOR, "section.model table.sortable.filterable[id^='summary-']")
    assert tables, "no summary table (section.model table.sortable.filterable#summary-<slug>)"
    return tables[0]


def column_keys(driver: webdriver.Chrome, table: WebElement, column: int) -> list[str]:
    """Sort keys of a column, top to bottom as the browser shows them: data-sort if present, else the text."""
    keys = driver.execute_script(
        """const [table, column] = arguments;
        return Array.from(table.tBodies).flatMap(b => Array.from(b.rows)).map(row => {
          const cell = row.cells[column];
          if (!cell) return "";
          return (cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent)
            .replace(/\\s+/g, " ").trim();
        });""",
        table,
        column,
    )
    return [str(key) for key in keys]


def number(key: str) -> float | None:
    """The numeric reading of a key as report.js has it: thousands separators and leading symbols ignored, and
    none when the key starts with a letter (a label such as "fp32 baseline" is text)."""
    stripped = re.sub(r"^[^0-9A-Za-z+\-.]+", "", re.sub(r"(\d),(?=\d{3}(?!\d))", r"\1", key))
    match = re.match(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", stripped)
    return float(match.group(0)) if match else None


def numeric_column(driver: webdriver.Chrome, table: WebElement) -> int:
    """The first column whose keys are all numbers (or missing), with at least two distinct ones."""
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    for column in range(len(headers)):
        present = [key for key in column_keys(driver, table, column) if key.lower() not in MISSING]
        values = [number(key) for key in present]
        if values and None not in values and len(set(values)) > 1:
            return column
    raise AssertionError(f"no numeric column with two distinct values among {[h.text for h in headers]}")


def sorted_as_contract(keys: list[str], descending: bool) -> bool:
    present = [key for key in keys if key.lower() not in MISSING]
    missing_at_end = keys[len(present) :] == [key for key in keys if key.lower() in MISSING]
    values = [number(key) for key in present]
    numbers = [value for value in values if value is not None]
    assert len(numbers) == len(values), f"not all numbers: {present}"
    return missing_at_end and numbers == sorted(numbers, reverse=descending)


def test_self_contained_and_images_decode(page: webdriver.Chrome, tmp_path: Path) -> None:
    images = page.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src') || '', i.complete, i.naturalWidth])"
    )
    assert images, "the report has no figures"
    for src, complete, width in images:
        assert src.startswith("data:image/png;base64,"), f"image not inline: {src[:80]}"
        assert complete and width > 0, f"image did not decode: {src[:80]}"
    print(f"{len(images)} inline images decoded")
    fetching = page.execute_script(
        """return Array.from(document.querySelectorAll(`script[src], link[href], img[src], iframe[src],
             source[src], audio[src], video[src], embed[src], object[data]`
           )).map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('data'))
             .filter(u => /^(https?:)?\\/\\//i.test(u.trim()));"""
    )
    assert fetching == [], f"elements that would fetch from the network: {fetching}"
    styles = page.execute_script("return Array.from(document.querySelectorAll('style')).map(s => s.textContent)")
    assert styles, "report.css is not inlined in a <style>"
    for style in styles:
        assert not re.search(r"(url\(\s*['\"]?|@import\s+['\"])(https?:)?//", style), "a style fetches from the network"
    resources = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [name for name in resources if not name.startswith(("data:", "file:"))] == [], resources
    screenshot(page, tmp_path, "report-first-screen.png")
    assert console_errors(page) == []


def test_summary_table_sorts_by_click_and_keyboard(page: webdriver.Chrome) -> None:
    table = summary_table(page)
    column = numeric_column(page, table)
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    header = headers[column]
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", table)
    header.click()
    ascending = column_keys(page, table, column)
    assert header.get_attribute("aria-sort") == "ascending"
    assert sorted_as_contract(ascending, descending=False), ascending
    header.click()
    descending = column_keys(page, table, column)
    assert header.get_attribute("aria-sort") == "descending"
    assert sorted_as_contract(descending, descending=True), descending
    print(f"sorted by {header.text!r}: {ascending} then {descending}")

    other = headers[0] if column else headers[1]
    other.send_keys(Keys.ENTER)  # Sorting is reachable from the keyboard: the headers take focus.
    assert other.get_attribute("aria-sort") == "ascending"
    assert header.get_attribute("aria-sort") is None, "the previously sorted header kept aria-sort"
    first = column_keys(page, table, headers.index(other))
    other.send_keys(Keys.ENTER)
    assert other.get_attribute("aria-sort") == "descending"
    assert sorted(column_keys(page, table, headers.index(other))) == sorted(first), "sorting lost or duplicated rows"
    assert console_errors(page) == []


def visible_rows(page: webdriver.Chrome, table: WebElement) -> list[dict[str, str]]:
    rows = page.execute_script(
        """return Array.from(arguments[0].tBodies).flatMap(b => Array.from(b.rows))
             .map(r => ({hidden: r.hidden ? "yes" : "", family: r.dataset.family || "",
                         engine: r.dataset.engine || ""}));""",
        table,
    )
    return [dict(row) for row in rows]


def test_family_and_engine_filters_hide_rows_and_count_them(page: webdriver.Chrome, tmp_path: Path) -> None:
    table = summary_table(page)
    slug = table.get_attribute("id")
    bar = page.find_element(By.CSS_SELECTOR, f"div.filters[data-for='{slug}']")
    count = bar.find_element(By.CSS_SELECTOR, "span.count")
    rows = visible_rows(page, table)
    total = len(rows)
    assert count.text == f"{total} of {total} rows"
    assert not any(row["hidden"] for row in rows)

    family = Select(bar.find_element(By.CSS_SELECTOR, "select[data-filter='family']"))
    values = [option.get_attribute("value") or "" for option in family.options]
    assert values[0] == "" and family.options[0].text == "all"
    assert sorted(values[1:]) == sorted({row["family"] for row in rows}), values
    assert len(values) > 2, f"the run should have rows of several families: {values}"
    # The family with the most rows makes the telling picture: its variants ranked by speedup.
    sizes = {value: sum(row["family"] == value for row in rows) for value in values[1:] if value != "baseline"}
    chosen = max(sorted(sizes), key=lambda value: sizes[value])
    family.select_by_value(chosen)
    rows = visible_rows(page, table)
    assert all(bool(row["hidden"]) == (row["family"] != chosen) for row in rows), rows
    shown = sum(not row["hidden"] for row in rows)
    assert 0 < shown < total
    assert count.text == f"{shown} of {total} rows"
    print(f"family {chosen!r}: {count.text}")

    engine = Select(bar.find_element(By.CSS_SELECTOR, "select[data-filter='engine']"))
    engines = [option.get_attribute("value") or "" for option in engine.options][1:]
    assert engines, "the engine filter has no values"
    engine.select_by_value(engines[0])
    rows = visible_rows(page, table)
    expected = [row["family"] == chosen and row["engine"] == engines[0] for row in rows]
    assert [not row["hidden"] for row in rows] == expected, "filters do not combine with AND"
    assert count.text == f"{sum(expected)} of {total} rows"

    engine.select_by_value("")
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    speedup = [index for index, th in enumerate(headers) if th.text.strip().startswith("speedup")]
    header = headers[speedup[0] if speedup else numeric_column(page, table)]
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    rows = visible_rows(page, table)
    assert all(bool(row["hidden"]) == (row["family"] != chosen) for row in rows), "sorting lost the filter"
    page.execute_script("arguments[0].scrollIntoView({block: 'start'})", bar)
    screenshot(page, tmp_path, "report-summary-sorted-filtered.png")

    family.select_by_value("")
    assert not any(row["hidden"] for row in visible_rows(page, table))
    assert count.text == f"{total} of {total} rows"
    assert console_errors(page) == []


def test_phone_width_scrolls_tables_not_the_page(page: webdriver.Chrome, report_html: Path, tmp_path: Path) -> None:
    page.set_window_size(*PHONE)
    page.get(report_html.as_uri())
    WebDriverWait(page, 30).until(lambda d: d.execute_script("return document.readyState === 'complete'"))
    width, inner = page.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner + 1, f"the page scrolls sideways on a phone: {width} px in a {inner} px window"
    outside = page.execute_script(
        "return Array.from(document.querySelectorAll('table')).filter(t => !t.closest('.table-wrap')).length"
    )
    assert outside == 0, "tables outside a .table-wrap"
    overflow = page.execute_script("return getComputedStyle(document.querySelector('.table-wrap')).overflowX")
    assert overflow in ("auto", "scroll")
    images = page.execute_script(
        "return Array.from(document.images).filter(i => i.getBoundingClientRect().right > window.innerWidth + 1).length"
    )
    assert images == 0, "figures wider than the phone's screen"
    print(f"phone: page {width} px wide in a {inner} px window")
    screenshot(page, tmp_path, "report-phone.png")
    page.execute_script("arguments[0].scrollIntoView({block: 'start'})", summary_table(page))
    screenshot(page, tmp_path, "report-phone-summary.png")
    assert console_errors(page) == []
