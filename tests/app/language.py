"""The UI's language as a user sees it, in a Playwright page: switching it, and English left behind."""

from __future__ import annotations

from playwright.sync_api import expect

# Text nodes and labelling attributes whose text is an English message that has a different Portuguese one.
UNTRANSLATED = """async () => {
  const i18n = await import(new URL("js/i18n.js", document.baseURI).href);
  const en = i18n.catalog("en"), pt = i18n.catalog("pt-BR");
  const english = new Map(Object.entries(en).filter(([k, v]) => pt[k] && pt[k] !== v && !v.includes("{")).map(([k, v]) => [v.trim(), k]));
  const found = [];
  const shell = document.getElementById("shell");
  const walker = document.createTreeWalker(shell, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    if (english.has(text)) found.push(`${english.get(text)}: ${text}`);
  }
  for (const el of shell.querySelectorAll("[placeholder], [aria-label], [title]")) {
    for (const name of ["placeholder", "aria-label", "title"]) {
      const text = (el.getAttribute(name) || "").trim();
      if (english.has(text)) found.push(`${english.get(text)} (${name}): ${text}`);
    }
  }
  return found;
}"""


def english_left(page) -> list[str]:
    """Catalog text shown in English although the UI's language has its own words for it."""
    return page.evaluate(UNTRANSLATED)


def switch_to_portuguese(page) -> None:
    """Through Settings, as a user does; the screens drawn after it are in Portuguese."""
    page.click("#nav button[data-screen=settings]")
    page.select_option("#s-language", "pt-BR")
    page.click("[data-testid=settings-save]")
    expect(page.locator("#screen h1")).to_have_text("Configurações")

