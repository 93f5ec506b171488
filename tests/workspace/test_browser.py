"""The workspace in a real browser: Debian's Chromium, headless, driven by Playwright (no
browser download). One browser for the whole session; the server runs in a thread of its own
(its own event loop) beside the fake Bot API, so the tests use Playwright's synchronous API.

Each page is also photographed at desktop and phone width, into KVISA_SCREENSHOTS when set
(docs/screenshots/ holds a set made so), else into a folder of the session's temporary
directory (the path is printed)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kvisa.bot.clock import FixedClock
from kvisa.bot.server import Server
from kvisa.bot.settings import Settings
from kvisa.bot.workspace.accounts import StaffStore
from kvisa.identity import UserKey
from tests.broadcasts.conftest import applicant
from tests.channels.telegram.conftest import Telegram, interview
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.support import ACADEMIC, NOON_SHANGHAI, free_port
from tests.workspace.conftest import PASSWORD, STAFF

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)

if Path(CHROMIUM).exists():
    from playwright.sync_api import Browser, Page, expect, sync_playwright


class LiveAgency:
    """`kvisa serve` and the fake Bot API on an event loop in a thread of their own."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake = FakeBotApi()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server: Server | None = None

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    async def _start(self) -> None:
        await self.fake.start()
        settings = Settings.from_env(
            {
                "KVISA_DATA_DIR": str(self.data_dir),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": self.fake.base_url,
                "KVISA_HTTP_PORT": str(self.port),
                "KVISA_AGENCY_NAME": "Shanghai K Agency",
                "KVISA_AGENCY_NAME_ZH": "上海K签代理",
            }
        )
        self.server = Server(settings, clock=FixedClock(NOON_SHANGHAI))
        await self.server.start()
        assert self.server.storage is not None
        store = StaffStore(self.server.storage)
        for name, role in STAFF.items():
            await store.add(name, role, PASSWORD, NOON_SHANGHAI)

    def start(self) -> None:
        self.run(self._start())

    @property
    def tg(self) -> Telegram:
        assert self.server is not None
        return Telegram(self.fake, self.server, webhook=False)

    def store(self, chat_id: int, **kwargs: Any) -> str:
        async def stored() -> str:
            assert self.server is not None and self.server.workspace is not None
            user, data = UserKey("telegram", str(chat_id)), applicant(**kwargs)
            await self.server.workspace.engine.storage.put(user, data, expected_version=0)
            await self.server.workspace.applicants.refresh(user, data)
            return str(self.server.workspace.applicants.ref(user))

        return self.run(stored())

    def stop(self) -> None:
        async def stopped() -> None:
            if self.server is not None:
                await self.server.stop()
            await self.fake.stop()

        try:
            self.run(stopped())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # One browser for every browser test (they are all in this module). Not session-scoped:
    # Playwright's synchronous API keeps an event loop of its own running in this thread while
    # it lives, and the asyncio tests collected after this module need the thread free.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("KVISA_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"workspace screenshots: {folder}")
    return folder


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveAgency]:
    agency = LiveAgency(tmp_path / "var")
    agency.start()
    yield agency
    agency.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def photograph(page: Page, shots: Path, name: str) -> None:
    """The page as it is, at desktop and at phone width."""
    page.wait_for_load_state("networkidle")  # the timeline picture, the recipient count
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def sign_in(page: Page, live: LiveAgency, name: str) -> None:
    page.goto(live.base + "/agency/")
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#signin button[type="submit"]')
    expect(page.locator("#signout")).to_be_visible()


def test_sign_in_search_a_case_and_tick_an_item(live: LiveAgency, page: Page, shots: Path) -> None:
    user = live.tg.user(301)
    live.run(interview(user, **ACADEMIC))
    live.store(302, park="zhangjiang")
    page.goto(live.base + "/agency/")
    photograph(page, shots, "sign-in")
    sign_in(page, live, "aaron")
    expect(page.locator("h1")).to_contain_text("Cases")
    photograph(page, shots, "cases")
    page.fill('input[name="search"]', "telegram:301")
    page.click('#case-filters button[type="submit"]')
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    assert "telegram:301" not in page.url  # the search went in the body
    page.click("text=telegram:301")
    expect(page.locator("h1")).to_have_text("telegram:301")
    photograph(page, shots, "case")
    first = page.locator("button.tick").first
    item = first.get_attribute("data-item")
    expect(first).to_have_attribute("aria-pressed", "false")
    first.click()
    expect(page.locator(f'button.tick[data-item="{item}"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    state = live.run(user.state())
    assert state is not None and item in state["ticked"]


def test_answer_a_handed_over_conversation(live: LiveAgency, page: Page, shots: Path) -> None:
    user = live.tg.user(303)
    live.run(interview(user, **ACADEMIC))
    live.run(user.send("/human"))
    live.run(user.send("Does the K visa allow my spouse to work?"))
    sign_in(page, live, "aaron")
    page.click('nav >> text="Conversations"')
    expect(page.locator(".conversation")).to_contain_text("spouse to work")
    photograph(page, shots, "conversations")
    page.click("button.claim")
    expect(page.locator(".conversation .badge")).to_contain_text("with aaron")
    page.fill(
        'form.reply textarea[name="text"]', "No: your spouse needs a work permit of their own."
    )
    page.click('form.reply button[type="submit"]')
    expect(page.locator("ol.transcript li.staff")).to_contain_text("work permit of their own")

    async def reached() -> None:
        await live.fake.wait_for(
            lambda: any("work permit of their own" in m.text for m in live.fake.messages[303])
        )

    live.run(reached())
    assert live.fake.messages[303][-1].text.startswith("Shanghai K Agency:")


def test_compose_send_a_broadcast_and_watch_it_finish(
    live: LiveAgency, page: Page, shots: Path
) -> None:
    for chat in range(401, 406):
        live.store(chat, park="lingang")
    live.store(406, park="zhangjiang")
    sign_in(page, live, "ada")
    page.click('nav >> text="Broadcasts"')
    page.fill('textarea[name="en"]', "Lingang opens a new service hall on 1 December.")
    page.fill('textarea[name="zh"]', "临港新服务大厅12月1日启用。")
    page.select_option('select[name="park"]', ["lingang"])
    expect(page.locator("#recipients")).to_contain_text("5")
    expect(page.locator("#preview-zh")).to_contain_text("临港新服务大厅")
    expect(page.locator("#preview-en")).to_contain_text("Policy update from Shanghai K Agency")
    photograph(page, shots, "broadcasts")
    page.click("#send")
    status = page.locator(".broadcast [data-status]").first
    expect(status).to_have_attribute("data-state", "done", timeout=20_000)
    expect(status).to_contain_text("5/5")
    received = [c for c in range(401, 407) if live.fake.messages[c]]
    assert received == [401, 402, 403, 404, 405]


def test_upload_a_batch_and_download_every_row(
    live: LiveAgency, page: Page, shots: Path, tmp_path: Path
) -> None:
    upload = tmp_path / "candidates.csv"
    header = (
        "id,degree,degree_field_stem,degree_from_recognized,stem_work_at_recognized,"
        "birth_date,passport_expiry,planned_application,residence_country,plan,park\n"
    )
    upload.write_text(
        header
        + "A1,master,true,true,false,1998-04-27,2031-01-01,2026-12-01,DE,employed,lingang\n"
        + "A2,bachelor,true,false,false,1990-01-01,2031-01-01,2026-12-01,FR,employed,other\n"
        + "A3,master,true,true,false,not a date,2031-01-01,2026-12-01,DE,employed,lingang\n",
        encoding="utf-8",
    )
    sign_in(page, live, "aaron")
    page.click('nav >> text="Batch"')
    photograph(page, shots, "batch")
    page.set_input_files('input[name="file"]', str(upload))
    page.click('#batch button[type="submit"]')
    expect(page.locator("table.list tbody tr")).to_have_count(3)
    expect(page.locator("tr.problem-row")).to_have_count(1)
    photograph(page, shots, "batch-results")
    with page.expect_download() as download:
        page.click("#download-csv")
    saved = tmp_path / "results.csv"
    download.value.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert [row[1] for row in rows[1:]] == ["A1", "A2", "A3"]  # every row, in order
    assert rows[3][8] == "birth_date" or "birth" in rows[3][8]
    with page.expect_download() as workbook:
        page.click("#download-xlsx")
    assert workbook.value.suggested_filename == "assessment.xlsx"


def test_a_viewer_is_refused_a_broadcast(live: LiveAgency, page: Page, shots: Path) -> None:
    sign_in(page, live, "vera")
    page.click('nav >> text="Broadcasts"')
    expect(page.locator("main")).to_contain_text("Only admins can send broadcasts.")
    assert page.locator("#compose").count() == 0
    status = page.evaluate(
        """async () => {
            const csrf = document.querySelector('input[name="csrf"]').value;
            const body = new URLSearchParams({csrf, en: "News", zh: "新闻"});
            const answer = await fetch("/agency/broadcasts", {method: "POST", body});
            return answer.status;
        }"""
    )
    assert status == 403
    page.goto(live.base + "/agency/staff")
    expect(page.locator(".problem")).to_contain_text("Your role does not allow this.")


def test_a_stale_csrf_token_is_refused(live: LiveAgency, page: Page, browser: Browser) -> None:
    ref = live.store(501)
    sign_in(page, live, "aaron")
    page.goto(f"{live.base}/agency/cases/{ref}")
    # Meanwhile the session is renewed in another tab: the form in this one is stale.
    other = page.context.new_page()
    other.goto(live.base + "/agency/cases")
    other.click("#signout")
    sign_in(other, live, "aaron")
    page.fill('textarea[name="note"]', "A note from an old tab")
    page.click('#notes button[type="submit"]')
    expect(page.locator(".problem")).to_contain_text("This form has expired")
    assert re.search(r"/agency/cases/[0-9a-f]{20}/notes$", page.url)


def test_photograph_the_other_pages_in_both_languages(
    live: LiveAgency, page: Page, shots: Path
) -> None:
    live.store(601, events={"entered": "2026-11-20"})
    live.store(602, events={"entered": "2026-10-01"})
    sign_in(page, live, "ada")
    page.click('nav >> text="Deadlines"')
    expect(page.locator("table.list")).to_contain_text("overdue")
    photograph(page, shots, "deadlines")
    page.click('nav >> text="Staff"')
    expect(page.locator("table.audit")).to_contain_text("sign-in")
    photograph(page, shots, "staff")
    page.click("header form button[name=lang]")
    expect(page.locator("h1")).to_contain_text("工作人员")
    page.click('nav >> text="案例"')
    photograph(page, shots, "cases-zh")
