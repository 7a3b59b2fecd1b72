"""The shell as a user meets it, in real Chromium (browser mode): themes, and every screen in Portuguese."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.app.accessibility import accessibility_problems
from tests.app.language import english_left

pytestmark = pytest.mark.slow

SCREENS = {"chat": "[data-testid=messages][data-state=idle]", "memory": "h1", "training": "h1", "models": "h1",
           "network": "h1", "settings": "h1"}
DARK_BG, LIGHT_BG = "rgb(15, 18, 24)", "rgb(246, 247, 249)"
SIZES = ((900, 700), (1400, 900), (1920, 1080))

KEYS = """async () => {
  const i18n = await import(new URL("js/i18n.js", document.baseURI).href);
  return [Object.keys(i18n.catalog("en")), Object.keys(i18n.catalog("pt-BR"))];
}"""


def overflow(page) -> list[str]:
    """What sticks out sideways (cut off, or a page that scrolls horizontally)."""
    return page.evaluate("""() => {
      const wide = [];
      if (document.documentElement.scrollWidth > window.innerWidth) wide.push(`page ${document.documentElement.scrollWidth}px`);
      const screen = document.getElementById("screen");
      if (screen.scrollWidth > screen.clientWidth + 1) wide.push(`screen ${screen.scrollWidth}px > ${screen.clientWidth}px`);
      return wide;
    }""")


def open_screen(page, name: str) -> None:
    page.click(f"#nav button[data-screen={name}]")
    page.wait_for_selector(f"#screen[data-screen={name}] {SCREENS[name]}")


def background(page) -> str:
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


def test_first_start_guide_themes_and_no_screen_stays_english(page, artifacts_dir):
    page.emulate_media(color_scheme="dark")
    assert background(page) == DARK_BG, "the default theme follows the system"
    page.emulate_media(color_scheme="light")
    assert background(page) == LIGHT_BG

    icon = page.evaluate("""async () => { const link = document.querySelector("link[rel=icon]");
      const answer = await fetch(link.href); return [answer.status, answer.headers.get("content-type")]; }""")
    assert icon == [200, "image/svg+xml"], "the window and the tab show our icon"

    open_screen(page, "chat")
    guide = page.locator("[data-testid=first-run]")
    expect(guide).to_contain_text("Bring your history in")  # a first start: nothing imported yet
    guide.get_by_role("button", name="Import →").click()
    page.wait_for_selector("#screen[data-screen=memory] h1")
    expect(page.locator("[data-testid=memory-how-to-export]")).to_contain_text("Settings → Data controls → Export data")
    open_screen(page, "training")
    expect(page.locator("[data-testid=train-no-runs]")).to_contain_text("then press Train")

    for width, height in SIZES:  # the light theme, in English, at three window sizes
        page.set_viewport_size({"width": width, "height": height})
        for name in SCREENS:
            open_screen(page, name)
            assert accessibility_problems(page) == [], f"{name} at {width}×{height}"
            assert overflow(page) == [], f"{name} at {width}×{height}"
            page.screenshot(path=str(artifacts_dir / f"en-light-{name}-{width}x{height}.png"))
    page.set_viewport_size({"width": 1200, "height": 800})

    english, portuguese = page.evaluate(KEYS)
    from tests.test_errors import all_error_classes

    codes = {cls.code for cls in all_error_classes()} | {"internal_error", "stalled", "mismatch", "transfer"}
    assert {c for c in codes if f"error.{c}" not in portuguese} == set(), "every error code the UI can show has Portuguese text"
    assert set(english) <= set(portuguese), f"keys with no Portuguese text: {sorted(set(english) - set(portuguese))}"
    assert {k for k in set(portuguese) - set(english) if not k.startswith(("error.", "status."))} == set(), \
        "Portuguese-only keys translate the server's own words (error codes, job statuses), which English shows as they are"

    open_screen(page, "settings")
    page.select_option("#s-language", "pt-BR")
    page.select_option("#s-theme", "dark")
    page.click("[data-testid=settings-save]")
    expect(page.locator("#screen h1")).to_have_text("Configurações")  # the screen itself, without navigating away
    expect(page.locator("[data-testid=settings-status]")).to_have_text("Salvo.")
    assert background(page) == DARK_BG, "a fixed theme wins over the system's"
    assert page.locator("html").get_attribute("lang") == "pt-BR"
    expect(page.locator("#bridge-status")).to_have_text("Conectado · navegador")  # the status line switches too

    for width, height in SIZES:  # Portuguese runs longer than English: nothing may be cut off at any size
        page.set_viewport_size({"width": width, "height": height})
        for name in SCREENS:
            open_screen(page, name)
            assert overflow(page) == [], f"{name} in Portuguese at {width}×{height}"
            page.screenshot(path=str(artifacts_dir / f"pt-BR-dark-{name}-{width}x{height}.png"))
            if width == 1400:
                assert english_left(page) == [], f"English left on the {name} screen"
                assert accessibility_problems(page) == [], f"{name} in the dark theme"
    page.set_viewport_size({"width": 1200, "height": 800})

    open_screen(page, "settings")
    page.select_option("#s-theme", "light")
    page.click("[data-testid=settings-save]")
    expect(page.locator("[data-testid=settings-status]")).to_have_text("Salvo.")
    page.emulate_media(color_scheme="dark")
    assert background(page) == LIGHT_BG
    page.screenshot(path=str(artifacts_dir / "settings-light.png"), full_page=True)


def test_deleting_asks_in_place_with_the_safe_answer_focused(page):
    open_screen(page, "models")
    rows = page.locator("[data-testid=model-row]")
    before = rows.count()
    assert before >= 1
    page.click("[data-testid=model-create]")  # no name: a plain message, not a validation dump
    expect(page.locator("#toast")).to_have_text("Give the new model a name first.")
    rows.first.locator("[data-testid=model-delete]").click()
    question = rows.first.locator("[data-testid=confirm]")
    expect(question).to_contain_text("Its file is not deleted")
    assert page.evaluate("() => document.activeElement.dataset.testid") == "confirm-no", "Enter keeps the model"
    page.keyboard.press("Enter")
    expect(rows).to_have_count(before)
    expect(rows.first.locator("[data-testid=model-delete]")).to_be_visible()
    rows.first.locator("[data-testid=model-delete]").click()
    rows.first.locator("[data-testid=confirm-yes]").click()
    expect(rows).to_have_count(before - 1)


def test_the_keyboard_alone_moves_between_screens_and_lands_in_them(page):
    page.focus("#nav button[data-screen=memory]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen[data-screen=memory] h1")
    expect(page.locator("#screen h1")).to_be_focused()  # a screen reader announces the new screen
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.getElementById('screen').contains(document.activeElement)"), "Tab goes on inside it"
    page.focus("#nav button[data-screen=chat]")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=chat-input]")).to_be_focused()  # Chat: straight to typing
    page.keyboard.type("Hello")
    assert page.input_value("[data-testid=chat-input]") == "Hello"
