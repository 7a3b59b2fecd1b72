import { h } from "../js/dom.js";
import { LANGUAGES, extend, setLanguage } from "../js/i18n.js";

extend("en", {
  "settings.theme": "Theme", "settings.theme_system": "Same as the system", "settings.theme_light": "Light",
  "settings.theme_dark": "Dark",
  "settings.chat_max_tokens": "Longest chat reply (tokens)", "settings.multilingual": "multilingual",
  "settings.english_only": "English only", "settings.embedding_hint": "For memory in Portuguese or other languages, pick a multilingual embedding model (add one, such as bge-m3 or multilingual-e5, under Models). Changing it re-embeds your memory.",
});
extend("pt-BR", {
  "settings.theme": "Tema", "settings.theme_system": "Igual ao do sistema", "settings.theme_light": "Claro",
  "settings.theme_dark": "Escuro",
  "settings.chat_max_tokens": "Resposta de conversa mais longa (tokens)", "settings.multilingual": "multilíngue",
  "settings.english_only": "só inglês", "settings.embedding_hint": "Para memória em português ou outras línguas, escolha um modelo de embeddings multilíngue (adicione um, como bge-m3 ou multilingual-e5, em Modelos). Trocar de modelo recalcula a memória.",
});

function embeddingOptions(models, current, t) {
  const known = models.some((m) => m.name === current) ? models : [...models, { name: current, kind: "folder", multilingual: null }];
  return known.map((m) => h("option", { value: m.name, selected: m.name === current },
    `${m.name}${m.multilingual === null ? "" : ` (${t(m.multilingual ? "settings.multilingual" : "settings.english_only")})`}`));
}

export async function render({ root, bridge, t, showError, rerender, applyTheme }) {
  const [settings, info] = await Promise.all([bridge.call("get_settings"), bridge.call("app_info")]);
  const values = settings.values;
  const inputs = {};
  const field = (name, control) => { inputs[name] = control; return [h("label", { for: `s-${name}` }, t(`settings.${name}`)), control]; };
  const status = h("span", { class: "muted", "data-testid": "settings-status" });

  const language = h("select", { id: "s-language" },
    ...Object.entries(LANGUAGES).map(([code, label]) => h("option", { value: code, selected: code === values.language }, label)));
  const form = h("div", { class: "card" },
    field("language", language),
    field("theme", h("select", { id: "s-theme" },
      ...["system", "light", "dark"].map((name) => h("option", { value: name, selected: name === values.theme }, t(`settings.theme_${name}`))))),
    field("ollama_host", h("input", { id: "s-ollama_host", value: values.ollama_host })),
    field("chat_model", h("input", { id: "s-chat_model", value: values.chat_model })),
    field("embedding_model", h("select", { id: "s-embedding_model" }, ...embeddingOptions(settings.embedding_models, values.embedding_model, t))),
    h("p", { class: "muted", "data-testid": "embedding-languages" }, t("settings.embedding_hint")),
    field("chat_max_tokens", h("input", { id: "s-chat_max_tokens", type: "number", min: 16, max: 32768, step: 64, value: values.chat_max_tokens })),
    field("memory_top_k", h("input", { id: "s-memory_top_k", type: "number", min: 1, max: 50, value: values.memory_top_k })),
    h("label", {}, h("input", { id: "s-memory_enabled", type: "checkbox", checked: values.memory_enabled }), " ", t("settings.memory_enabled")),
    h("label", {}, h("input", { id: "s-memory_includes_chats", type: "checkbox", checked: values.memory_includes_chats }), " ",
      t("settings.memory_includes_chats")),
    field("system_prompt", h("textarea", { id: "s-system_prompt", rows: 3 }, values.system_prompt)),
  );
  inputs.memory_enabled = form.querySelector("#s-memory_enabled");
  inputs.memory_includes_chats = form.querySelector("#s-memory_includes_chats");
  inputs.system_prompt.value = values.system_prompt;

  const save = h("button", { class: "primary", "data-testid": "settings-save", onclick: async () => {
    const changes = {
      language: inputs.language.value, theme: inputs.theme.value, ollama_host: inputs.ollama_host.value.trim(), chat_model: inputs.chat_model.value.trim(),
      embedding_model: inputs.embedding_model.value.trim(), memory_top_k: Number.parseInt(inputs.memory_top_k.value, 10),
      chat_max_tokens: Number.parseInt(inputs.chat_max_tokens.value, 10),
      memory_enabled: inputs.memory_enabled.checked, memory_includes_chats: inputs.memory_includes_chats.checked,
      system_prompt: inputs.system_prompt.value,
    };
    try {
      const saved = await bridge.call("save_settings", changes);
      setLanguage(saved.language);
      applyTheme(saved.theme);
      await rerender();  // the screen itself in the new language, not only the navigation
      const shown = document.querySelector("[data-testid=settings-status]");
      shown.className = "ok";
      shown.textContent = t("common.saved");
    } catch (error) { status.className = "error"; status.textContent = error.message; showError(error); }
  } }, t("common.save"));

  root.append(
    h("h1", {}, t("settings.title")), form, h("div", { class: "row" }, save, status),
    h("h2", {}, t("settings.data_dir")), h("div", { class: "card muted", "data-testid": "data-dir" }, info.data_dir, ` · v${info.version} · ${info.mode}`),
  );
}
