"""The dashboard in a real headless browser: Debian's chromium driven by Selenium through the
system chromedriver (nothing downloaded). The page is loaded while a daemon works a batch; it
must show the depth falling to 0 and the batch's timeline growing to every task, and an action
sent without the token must fail on the page, changing nothing.

Skips, saying why, where no chromium and chromedriver are installed (scripts/browser-test.sh
installs them with apt and runs this; .ci/run installs them when apt is there)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from blpopq.embedded import RedisServer, free_port
from blpopq.protocol import Protocol

from ..helpers import Daemon, cli_env, prev_hash, run_cli
from ..integration.test_dead import target


def _binary(variable: str, name: str) -> str | None:
    return (
        os.environ.get(variable)
        or shutil.which(name)
        or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    )


CHROMIUM = _binary("BLPOPQ_CHROMIUM", "chromium")
CHROMEDRIVER = _binary("BLPOPQ_CHROMEDRIVER", "chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no chromium and chromedriver installed (Debian: apt-get install chromium "
    "chromium-driver, or run scripts/browser-test.sh as root)",
)
TOKEN = "browser-test-token"
TASKS = 30


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1300", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def tasks_drawn(driver: WebDriver) -> int:
    timeline = driver.find_element(By.ID, "timeline")
    return int(timeline.get_attribute("data-tasks") or 0)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what} within {timeout} s")
        time.sleep(0.05)


def instructions(tmp_path: Path) -> Path:
    """TASKS mine requests, every tier, hard enough (2**16 attempts on hashlib) that one
    worker takes a few seconds over them: the page, read every second, sees them go."""
    tiers = ("comun", "vip", "alto")
    lines = [f"{tiers[n % 3]} c{n} mine {prev_hash(n)} 16" for n in range(TASKS)]
    path = tmp_path / "browser.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_dashboard_shows_a_run_and_refuses_an_action_without_the_token(
    browser: WebDriver, redis_server: RedisServer, namespace: str, protocol: Protocol,
    tmp_path: Path,
) -> None:  # fmt: skip
    driver = browser
    produced = run_cli(
        "blpopq-produce", str(instructions(tmp_path)), *target(redis_server, namespace)
    )
    assert produced.returncode == 0, produced.stderr
    port = free_port()
    env = cli_env(BLPOPQ_WEB_TOKEN=TOKEN)
    with Daemon("web", "--port", str(port), *target(redis_server, namespace),
                command="blpopq", env=env) as web:  # fmt: skip
        web.wait_for_line("serving namespace")
        driver.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: text(driver, "depth-total") == str(TASKS), f"{TASKS} waiting")
        assert tasks_drawn(driver) == 0

        # An action without the token: refused on the page, and nothing is cancelled.
        driver.find_element(By.ID, "cancel-last").click()
        wait_for(lambda: "refused (401)" in text(driver, "message"), "the refusal")
        assert "token is missing or wrong" in text(driver, "message")
        assert sum(protocol.length(k) for k in protocol.keys.tiers) == TASKS

        seen: list[tuple[int, int]] = []
        with Daemon("--workers", "1", "--kernel", "hashlib", "--block-timeout", "0.5",
                    *target(redis_server, namespace)) as daemon:  # fmt: skip
            daemon.wait_ready()

            def finished() -> bool:
                depth, drawn = int(text(driver, "depth-total")), tasks_drawn(driver)
                if not seen or seen[-1] != (depth, drawn):
                    seen.append((depth, drawn))
                    if 0 < depth < TASKS and os.environ.get("BLPOPQ_SCREENSHOT"):
                        driver.save_screenshot(os.environ["BLPOPQ_SCREENSHOT"])
                return depth == 0 and drawn == TASKS

            wait_for(finished, "every task done and drawn", timeout=120)
            assert daemon.stop() == 0
        depths, drawn = [d for d, _ in seen], [n for _, n in seen]
        assert depths == sorted(depths, reverse=True) and depths[-1] == 0
        assert drawn == sorted(drawn) and drawn[-1] == TASKS
        assert len(seen) >= 2  # it was seen going, not only gone
        assert text(driver, "timeline-count").startswith(f"{TASKS} results")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#timeline rect.bar")) == TASKS

        # With the token, the same button works (nothing is left waiting to cancel).
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "cancel-last").click()
        wait_for(lambda: "cancelled 0 waiting tasks" in text(driver, "message"), "the cancel")
        web.signal()
        assert web.process.wait(30) == 0, web.log
    print(f"browser saw (depth, tasks drawn): {seen}")
