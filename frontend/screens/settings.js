import { h } from "../js/dom.js";
import { LANGUAGES, setLanguage } from "../js/i18n.js";

export async function render({ root, bridge, t, showError }) {
  const [settings, info] = await Promise.all([bridge.call("get_settings"), bridge.call("app_info")]);
  const values = settings.values;
  const inputs = {};
  const field = (name, control) => { inputs[name] = control; return [h("label", { for: `s-${name}` }, t(`settings.${name}`)), control]; };
  const status = h("span", { class: "muted", "data-testid": "settings-status" });

  const language = h("select", { id: "s-language" },
    ...Object.entries(LANGUAGES).map(([code, label]) => h("option", { value: code, selected: code === values.language }, label)));
  const form = h("div", { class: "card" },
    field("language", language),
    field("ollama_host", h("input", { id: "s-ollama_host", value: values.ollama_host })),
    field("chat_model", h("input", { id: "s-chat_model", value: values.chat_model })),
    field("embedding_model", h("input", { id: "s-embedding_model", value: values.embedding_model })),
    field("memory_top_k", h("input", { id: "s-memory_top_k", type: "number", min: 1, max: 50, value: values.memory_top_k })),
    h("label", {}, h("input", { id: "s-memory_enabled", type: "checkbox", checked: values.memory_enabled }), " ", t("settings.memory_enabled")),
    field("system_prompt", h("textarea", { id: "s-system_prompt", rows: 3 }, values.system_prompt)),
  );
  inputs.memory_enabled = form.querySelector("#s-memory_enabled");
  inputs.system_prompt.value = values.system_prompt;

  const save = h("button", { class: "primary", "data-testid": "settings-save", onclick: async () => {
    const changes = {
      language: inputs.language.value, ollama_host: inputs.ollama_host.value.trim(), chat_model: inputs.chat_model.value.trim(),
      embedding_model: inputs.embedding_model.value.trim(), memory_top_k: Number.parseInt(inputs.memory_top_k.value, 10),
      memory_enabled: inputs.memory_enabled.checked, system_prompt: inputs.system_prompt.value,
    };
    try {
      const saved = await bridge.call("save_settings", changes);
      setLanguage(saved.language);
      status.className = "ok";
      status.textContent = t("common.saved");
    } catch (error) { status.className = "error"; status.textContent = error.message; showError(error); }
  } }, t("common.save"));

  root.append(
    h("h1", {}, t("settings.title")), form, h("div", { class: "row" }, save, status),
    h("h2", {}, t("settings.data_dir")), h("div", { class: "card muted", "data-testid": "data-dir" }, info.data_dir, ` · v${info.version} · ${info.mode}`),
  );
}
