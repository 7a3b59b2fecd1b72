"""Google Gemini (Takeout "My Activity" for Gemini Apps): prompts and answers become conversations."""

from backend.importers import gemini
from backend.memory.ingest import detect_source
from tests.export_factory import gemini_entry, write_gemini_takeout

ENTRIES = [
    gemini_entry("How do I repot a monstera?", "<p>Repot it in <b>spring</b>.</p><ul><li>Use a pot 5 cm wider.</li>"
                 "<li>Water after repotting.</li></ul><script>alert(1)</script>", "2025-10-12T14:03:11.123Z"),
    gemini_entry("And how often should I water it?", "<p>Every <i>7 to 10 days</i>, when the top soil is dry.</p>",
                 "2025-10-12T14:10:00Z", files=["plant.jpg"]),
    gemini_entry("Write a haiku about Lisbon trams", "<p>Yellow tram climbing<br>Alfama's narrow stone lanes<br>"
                 "bells in the warm dusk</p>", "2025-10-13T09:00:00Z"),
    {"header": "Gemini Apps", "title": "Gave feedback: Good response", "time": "2025-10-13T09:01:00Z", "products": ["Gemini Apps"]},
]


def test_takeout_zip_is_detected_and_grouped_into_sessions(tmp_path):
    export = write_gemini_takeout(tmp_path / "takeout-20251101.zip", ENTRIES)
    assert detect_source(export) == "gemini"
    conversations = list(gemini.iter_conversations(export))
    assert [c.title for c in conversations] == ["How do I repot a monstera?", "Write a haiku about Lisbon trams"]
    repot = conversations[0]
    assert [(m.role, m.trainable, m.searchable) for m in repot.messages] == [("user", True, True), ("assistant", True, True)] * 2
    assert repot.messages[1].text == "Repot it in spring.\n\n- Use a pot 5 cm wider.\n- Water after repotting."
    assert "alert" not in repot.messages[1].text and "<" not in repot.messages[1].text
    assert repot.messages[2].text == "And how often should I water it?\n[file: plant.jpg]"
    assert conversations[1].messages[1].text == "Yellow tram climbing\nAlfama's narrow stone lanes\nbells in the warm dusk"


def test_translated_takeout_names_and_a_bare_file_are_read(tmp_path):
    translated = write_gemini_takeout(tmp_path / "takeout.zip", ENTRIES, folder="Takeout/Minha atividade/Apps do Gemini",
                                      file_name="MinhaAtividade.json")
    assert detect_source(translated) == "gemini" and len(list(gemini.iter_conversations(translated))) == 2
    bare = write_gemini_takeout(tmp_path / "MyActivity.json", ENTRIES)
    assert detect_source(bare) == "gemini"
