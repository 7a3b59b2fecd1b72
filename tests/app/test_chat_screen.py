"""The Chat screen's states in real Chromium against the real bridge and engine (browser mode):
what the user sees while an answer streams, stopping it, and the clicks that used to jam it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.app.accessibility import accessibility_problems
from tests.app.language import english_left, switch_to_portuguese

pytestmark = pytest.mark.slow

LONG = {"chat_max_tokens": 1500}


def open_chat(page):
    page.click("#nav button[data-screen=chat]")
    page.wait_for_selector("[data-testid=messages][data-state=idle]")


def rows(page) -> int:
    return page.locator("[data-testid=chat-row]").count()


def test_your_message_shows_at_once_with_its_line_breaks_and_escape_stops_the_answer(page, layout, artifacts_dir):
    from backend.config import update_settings

    update_settings(LONG, layout)
    open_chat(page)
    page.fill("[data-testid=chat-input]", "Write a very long story about a lighthouse.\nMake it at least ten paragraphs.")
    page.click("[data-testid=chat-send]")
    page.wait_for_selector("[data-testid=msg-streaming]")
    mine = page.locator("[data-testid=msg-user] .plain")
    assert mine.inner_text() == "Write a very long story about a lighthouse.\nMake it at least ten paragraphs.", "shown as typed, at once"
    page.wait_for_selector("[data-testid=messages][data-state=streaming]")
    expect(page.locator("[data-testid=msg-streaming]")).to_have_text(re.compile(r"\w+\W+\w+\W+\w+\W+\w+"))
    assert page.is_disabled("[data-testid=chat-send]") and page.is_disabled("[data-testid=chat-regenerate]")
    page.screenshot(path=str(artifacts_dir / "chat-streaming.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("[data-testid=messages][data-state=idle]")
    assert page.locator("[data-testid=msg-stopped]").count() == 1, "the answer is marked as stopped"
    assert page.locator("[data-testid=msg-user]").count() == 1 and page.is_enabled("[data-testid=chat-send]")
    assert accessibility_problems(page) == [], "the Chat screen with messages and a chat in the list"
    page.emulate_media(color_scheme="dark")
    assert accessibility_problems(page) == [], "and in the dark theme"
    switch_to_portuguese(page)  # the same chat, stopped answer and all, in Portuguese
    open_chat(page)
    assert page.locator("[data-testid=msg-stopped]").count() == 1
    assert english_left(page) == []
    page.screenshot(path=str(artifacts_dir / "pt-BR-chat-stopped.png"))


def test_a_new_chat_is_a_draft_regenerate_cannot_jam_it_and_memory_follows_settings(page, layout):
    from backend.config import update_settings

    update_settings({"memory_enabled": True}, layout)
    open_chat(page)
    assert page.is_checked("[data-testid=chat-memory]"), "'Use memory' starts as Settings say"
    assert page.is_disabled("[data-testid=chat-regenerate]"), "nothing to regenerate in an empty chat"
    for _ in range(3):
        page.click("[data-testid=chat-new]")
    assert rows(page) == 0, "empty chats are not stored"
    page.fill("[data-testid=chat-input]", "Say hi.")
    page.click("[data-testid=chat-send]")
    page.wait_for_selector("[data-testid=msg-assistant]")
    page.wait_for_selector("[data-testid=messages][data-state=idle]")
    assert rows(page) == 1 and page.is_enabled("[data-testid=chat-regenerate]")
    page.click("[data-testid=chat-regenerate]")
    page.wait_for_selector("[data-testid=messages][data-state=idle]")
    page.wait_for_selector("[data-testid=msg-assistant]")
    assert page.locator("[data-testid=msg-user]").count() == 1 and page.locator("[data-testid=msg-assistant]").count() == 1


def test_deleting_a_chat_asks_first(page, layout):
    open_chat(page)
    page.fill("[data-testid=chat-input]", "Remember this chat.")
    page.click("[data-testid=chat-send]")
    page.wait_for_selector("[data-testid=msg-assistant]")
    page.wait_for_selector("[data-testid=messages][data-state=idle]")
    page.click("[data-testid=chat-delete]")
    assert "Remember this chat." in page.inner_text("[data-testid=chat-delete-confirm]")
    page.click("[data-testid=chat-delete-no]")
    assert rows(page) == 1, "cancelled: still there"
    page.click("[data-testid=chat-delete]")
    page.click("[data-testid=chat-delete-yes]")
    expect(page.locator("[data-testid=chat-row]")).to_have_count(0)
    expect(page.locator("[data-testid=first-run]")).to_have_count(1)  # nothing imported: the first-start guide
