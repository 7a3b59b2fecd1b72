"""Browser mode in real headless Chromium (Debian's), driven by Playwright, against the real server."""

import json

import httpx
import pytest
from playwright.sync_api import expect

from tests.app.accessibility import accessibility_problems
from tests.app.language import english_left, switch_to_portuguese
from tests.conftest import wait_for

pytestmark = pytest.mark.slow  # real Chromium


def test_navigation_and_bridge_round_trip(page, layout):
    assert "browser" in page.inner_text("#bridge-status")
    assert page.get_attribute("#bridge-status", "data-state") == "ok"
    assert "token" not in page.url, "the token must not stay in the address bar"
    for screen in ("memory", "training", "models", "network", "chat"):
        page.click(f"#nav button[data-screen={screen}]")
        page.wait_for_selector(f"#screen[data-screen={screen}]")
        assert page.is_visible(f"#nav button.active[data-screen={screen}]")
    page.click("#nav button[data-screen=settings]")
    page.wait_for_selector("[data-testid=data-dir]")
    assert str(layout.root) in page.inner_text("[data-testid=data-dir]")


def test_settings_switch_language_to_portuguese(page, layout):
    page.click("#nav button[data-screen=settings]")
    page.wait_for_selector("#s-language")
    page.select_option("#s-language", "pt-BR")
    page.click("[data-testid=settings-save]")
    page.wait_for_selector("[data-testid=settings-status].ok")
    assert page.inner_text("#nav button[data-screen=settings]") == "Configurações"
    assert json.loads(layout.settings_file.read_text())["language"] == "pt-BR"


def test_invalid_setting_shows_the_error(page, layout):
    page.click("#nav button[data-screen=settings]")
    page.wait_for_selector("#s-ollama_host")
    page.fill("#s-ollama_host", "not a url")
    page.click("[data-testid=settings-save]")
    page.wait_for_selector("[data-testid=settings-status].error")
    assert "ollama_host" in page.inner_text("[data-testid=settings-status]")
    assert not layout.settings_file.exists()


def test_requests_without_token_or_with_foreign_host_are_refused(server):
    base = f"http://127.0.0.1:{server.config.port}"
    token = {"X-Orch-Token": server.config.token}
    ok = httpx.post(f"{base}/api/ping", json={"args": ["x"]}, headers=token)
    assert ok.status_code == 200 and ok.json()["data"]["reply"] == "pong: x"
    assert "script-src 'self'" in ok.headers["content-security-policy"]

    assert httpx.post(f"{base}/api/ping", json={"args": ["x"]}).status_code == 401
    assert httpx.post(f"{base}/api/ping", json={"args": ["x"]}, headers={"X-Orch-Token": "wrong"}).status_code == 401
    foreign = httpx.post(f"{base}/api/ping", json={"args": ["x"]}, headers={**token, "Host": "evil.example:80"})
    assert foreign.status_code == 403
    assert httpx.get(f"{base}/", headers={"Host": "attacker.test"}).status_code == 403
    assert httpx.get(f"{base}/events").status_code == 401
    assert httpx.post(f"{base}/upload?name=x", content=b"data").status_code == 401
    unknown = httpx.post(f"{base}/api/_attach_window", json={"args": []}, headers=token)
    assert unknown.status_code == 404


def test_upload_lands_in_the_uploads_dir_with_a_safe_name(server, layout):
    base = f"http://127.0.0.1:{server.config.port}"
    answer = httpx.post(f"{base}/upload?name=../../evil.json", content=b"{}", headers={"X-Orch-Token": server.config.token}).json()
    stored = answer["data"]["upload"]
    assert stored.endswith("-evil.json") and "/" not in stored
    assert (layout.uploads_dir / stored).read_bytes() == b"{}"


def test_memory_screen_imports_an_upload_and_searches(page, tmp_path, artifacts_dir):
    from tests.export_factory import every_content_type_conversation, simple_conversation, write_chatgpt_export

    export = write_chatgpt_export(tmp_path / "chatgpt-export.zip", [
        every_content_type_conversation(),
        simple_conversation("<img src=x onerror=alert(1)>", "How do I prune roses?", "Prune roses in late winter above an outward bud.", "roses"),
    ])
    page.click("#nav button[data-screen=memory]")
    page.wait_for_selector("[data-testid=import-file]")
    page.set_input_files("[data-testid=import-file]", str(export))
    page.wait_for_selector("[data-testid=import-status].ok")
    assert "2 new" in page.inner_text("[data-testid=import-status]")
    page.wait_for_selector("[data-testid=memory-stats] svg rect")
    assert "2 conversations" in page.inner_text("[data-testid=memory-stats]")

    assert "chatgpt-export.zip" in page.inner_text("[data-testid=memory-stats]"), "the source is named by the user's file name"

    page.fill("[data-testid=search-input]", "when should I cut back rose bushes")
    page.click("[data-testid=search-button]")
    page.wait_for_selector("[data-testid=hit-group]")
    first = page.inner_text("[data-testid=hit-group] >> nth=0")
    assert "<img src=x onerror=alert(1)>" in first, "imported text is shown as text"
    assert page.locator("[data-testid=search-results] img").count() == 0, "and never parsed as HTML"
    titles = page.locator("[data-testid=hit-group] .meta strong").all_inner_texts()
    assert len(titles) == len(set(titles)), "hits are grouped by conversation"
    page.click("[data-testid=open-conversation] >> nth=0")
    page.wait_for_selector("[data-testid=conversation-view] .message.matched")
    opened = page.inner_text("[data-testid=conversation-view]")
    assert "How do I prune roses?" in opened and "Prune roses in late winter" in opened
    page.screenshot(path=str(artifacts_dir / "memory-screen.png"))

    not_an_export = tmp_path / "settings.json"
    not_an_export.write_text('{"theme": "dark"}')
    page.set_input_files("[data-testid=import-file]", str(not_an_export))
    page.wait_for_selector("[data-testid=import-status].error")
    assert "not a ChatGPT export" in page.inner_text("[data-testid=import-status]")


def test_chat_streams_an_answer_with_memory_sources(page, layout, tmp_path, artifacts_dir):
    from backend.memory.embeddings import get_embedder
    from backend.memory.ingest import import_path
    from backend.memory.store import get_store
    from tests.export_factory import simple_conversation, write_chatgpt_export

    export = write_chatgpt_export(tmp_path / "export.zip", [
        simple_conversation("My dog", "My dog is called **Biscuit** <script>alert(1)</script>", "What a lovely name!", "dog")])
    import_path(get_store(layout), export, get_embedder())
    page.click("#nav button[data-screen=chat]")
    page.wait_for_selector("[data-testid=chat-input]")
    page.fill("[data-testid=chat-input]", "What is my dog called?")
    page.click("[data-testid=chat-send]")
    page.wait_for_selector("[data-testid=msg-assistant] [data-testid=source]")
    assert page.inner_text("[data-testid=msg-user] .plain") == "What is my dog called?"
    assert page.inner_text("[data-testid=msg-assistant] .markdown").strip()
    page.click("[data-testid=source]")
    page.wait_for_selector("[data-testid=memory-viewer]:not([hidden]) .msg")
    viewer = page.locator("[data-testid=memory-viewer]")
    assert "<script>alert(1)</script>" in viewer.inner_text(), "remembered text is shown as text"
    assert viewer.locator("script").count() == 0 and viewer.locator("strong").first.inner_text() in ("My dog", "Biscuit")
    assert page.locator("[data-testid=chat-history] button").count() >= 2
    page.screenshot(path=str(artifacts_dir / "chat-screen.png"))


def test_models_screen_lists_and_creates_models(page):
    page.click("#nav button[data-screen=models]")
    page.wait_for_selector("[data-testid=model-row]")
    assert "Embedded engine" in page.inner_text("[data-testid=models-engine]")
    assert "smollm2:latest" in page.inner_text("[data-testid=models-table]")
    page.fill("[data-testid=model-name]", "pirate")
    page.fill("[data-testid=model-system]", "Talk like a pirate.")
    page.click("[data-testid=model-create]")
    page.wait_for_selector("text=pirate:latest")
    page.fill("[data-testid=model-name]", "../evil")
    page.click("[data-testid=model-create]")
    page.wait_for_selector("#toast:not([hidden])")
    assert "invalid model name" in page.inner_text("#toast")


def test_training_screen_previews_trains_saves_and_deploys(page, server, layout, base_in_layout, tmp_path, artifacts_dir):
    from backend.inference.engine import get_connection
    from backend.memory.embeddings import get_embedder
    from backend.memory.ingest import import_path
    from backend.memory.store import get_store
    from tests.export_factory import simple_conversation, write_chatgpt_export

    export = write_chatgpt_export(tmp_path / "export.zip", [
        simple_conversation(f"Sum {i}", f"What is {i} plus {i}?", f"Arr matey, {i} plus {i} be {2 * i}!", f"s{i}") for i in range(60)])
    import_path(get_store(layout), export, get_embedder())
    page.click("#nav button[data-screen=training]")
    page.wait_for_selector("[data-testid=train-preview-button]")
    page.click("[data-testid=train-preview-button]")
    page.click("[data-testid=train-preview-job-cancel]")  # a preview can be called off, and says so at once
    assert "Preview cancelled" in page.inner_text("[data-testid=train-preview-ended]")
    assert page.is_enabled("[data-testid=train-preview-button]") and page.is_hidden("[data-testid=train-preview-job]")
    page.click("[data-testid=train-preview-button]")
    page.wait_for_selector("[data-testid=train-preview] pre")
    assert "training and" in page.inner_text("[data-testid=train-preview]")
    assert "<|im_start|>assistant" in page.inner_text("[data-testid=train-preview] pre >> nth=0")
    assert "Plan: " in page.inner_text("[data-testid=train-estimate]"), "the plan of the defaults is shown before training"
    assert "Runs on this computer's processor (" in page.inner_text("[data-testid=train-cost]"), \
        "the path, memory and disk of the run are said before it starts"
    page.screenshot(path=str(artifacts_dir / "training-preview.png"), full_page=True)

    page.fill("[data-testid=train-epochs]", "1")
    page.fill("[data-testid=train-lr]", "0.001")
    page.click("[data-testid=train-preview-button]")
    page.wait_for_selector("[data-testid=train-estimate]:has-text('1× over')")
    shown = page.inner_text("[data-testid=train-estimate]")
    page.fill("[data-testid=train-name]", "pirate-ui")
    page.click("[data-testid=train-start]")
    page.wait_for_selector("[data-testid=train-plan-running]:has-text('Plan: ')")
    assert page.inner_text("[data-testid=train-plan-running]") == shown, "the plan that runs is the plan that was shown"
    assert page.is_disabled("[data-testid=train-start]"), "no second run while one trains"
    page.click("#nav button[data-screen=memory]")
    page.wait_for_selector("#screen[data-screen=memory] h1")
    page.click("#nav button[data-screen=training]")
    page.wait_for_selector("[data-testid=train-start]")
    assert page.input_value("[data-testid=train-name]") == "pirate-ui" and page.input_value("[data-testid=train-epochs]") == "1", \
        "leaving the screen keeps the form"
    page.wait_for_selector("[data-testid=loss-chart] path")
    page.wait_for_selector("[data-testid=train-status].ok")
    assert "Clearly learned" in page.inner_text("[data-testid=train-verdict]")
    assert page.locator("[data-testid=train-samples] mark.added").count() > 0, "the changed words are marked"
    page.screenshot(path=str(artifacts_dir / "training-screen.png"), full_page=True)
    assert accessibility_problems(page) == [], "the Training screen with a run, its chart and its evaluation"
    page.click("text=Save as adapter")
    page.wait_for_selector("[data-testid=adapter-row]")
    page.click("[data-testid=adapter-deploy]")
    page.click("[data-testid=deploy-job-cancel]")
    assert "no model was left behind" in page.inner_text("[data-testid=deploy-status]")
    assert wait_for(lambda: not [j for j in server.api.list_jobs()["data"] if j["kind"] == "deploy" and j["state"] in ("queued", "running")])
    assert "pirate-ui:latest" not in [m.model for m in get_connection(layout).client.list().models], "a cancelled deploy leaves no model"
    page.click("[data-testid=adapter-deploy]")
    page.wait_for_selector("[data-testid=deploy-status].ok:has-text('pirate-ui')")
    page.click("[data-testid=train-chat-with]")
    page.wait_for_selector("[data-testid=messages][data-state=idle]")
    expect(page.locator("[data-testid=chat-model][data-loaded=true]")).to_have_value("pirate-ui:latest")  # one click from chatting
    switch_to_portuguese(page)  # the screen with a finished run, its evaluation and adapters, in Portuguese
    page.click("#nav button[data-screen=training]")
    page.wait_for_selector("[data-testid=adapter-row]")
    page.click("[data-testid=run-show]")
    expect(page.locator("[data-testid=train-verdict]")).to_contain_text("Aprendeu")
    assert english_left(page) == []
    page.screenshot(path=str(artifacts_dir / "pt-BR-training-finished.png"), full_page=True)


def test_an_unchanged_model_is_explained_with_what_to_try(page, layout, base_in_layout):
    """A run whose learning rate is far too small: the screen says nothing changed and what to change."""
    from backend.jobs import JobRegistry
    from backend.training.config import TrainConfig
    from backend.training.runs import prepare_run, run_training
    from tests.training.conftest import pirate_conversations

    job_dir = prepare_run(layout, TrainConfig(max_steps=2, learning_rate=1e-7, rank=4, alpha=8, sample_prompts=1,
                                              validation_percent=20), pirate_conversations(24))
    registry = JobRegistry()
    assert registry.wait(registry.start("train", "t", lambda ctx: run_training(ctx, job_dir)), timeout=600).state == "succeeded"
    page.click("#nav button[data-screen=training]")
    page.click("[data-testid=run-show]")
    assert "Nearly unchanged" in page.inner_text("[data-testid=train-verdict]")
    assert "learning rate" in page.inner_text("[data-testid=train-advice]")
    assert page.is_visible("[data-testid=train-same-replies]"), "identical sample replies are pointed out"


def test_compare_two_adapters_on_the_same_prompts(page, layout, base_in_layout, styled_adapters):
    from tests.conftest import install_adapters

    install_adapters(layout, styled_adapters, "pirate", "surfer")
    page.click("#nav button[data-screen=training]")
    page.wait_for_selector("[data-testid=compare-pick][value=surfer]")
    page.click("[data-testid=compare-start]")
    assert "one to three" in page.inner_text("[data-testid=compare-result]"), "nothing picked: say how many to pick"
    page.check("[data-testid=compare-pick][value=pirate]")
    page.check("[data-testid=compare-pick][value=surfer]")
    page.fill("[data-testid=compare-prompts]", "What is 3 plus 3?\nWhat is 5 plus 5?")
    page.click("[data-testid=compare-start]")
    page.wait_for_selector("[data-testid=compare-result] table")
    table = page.inner_text("[data-testid=compare-result] table")
    assert "pirate" in table and "surfer" in table and "Arr matey" in table and "Dude" in table
    assert page.locator("[data-testid=compare-result] mark.added").count() > 0
