import { clear, h } from "../js/dom.js";
import { extend } from "../js/i18n.js";

extend("en", {
  "models.engine": "Engine", "models.embedded": "Embedded engine (llama.cpp), Ollama-compatible, on {host}",
  "models.ollama": "Ollama daemon at {host}", "models.create": "Create a model", "models.name": "Name",
  "models.base": "Base model", "models.system": "System prompt (optional)", "models.running": "loaded",
  "models.adapters_later": "Models from your own LoRA adapters come from the Training screen.",
});
extend("pt-BR", {
  "models.engine": "Motor", "models.embedded": "Motor embutido (llama.cpp), compatível com Ollama, em {host}",
  "models.ollama": "Ollama em {host}", "models.create": "Criar um modelo", "models.name": "Nome",
  "models.base": "Modelo base", "models.system": "Prompt de sistema (opcional)", "models.running": "carregado",
  "models.adapters_later": "Modelos a partir dos seus adaptadores LoRA vêm da tela de Treinamento.",
});

export async function render({ root, bridge, t, showError }) {
  const list = h("table", { "data-testid": "models-table" });
  const engine = h("p", { "data-testid": "models-engine" });
  const name = h("input", { "data-testid": "model-name", placeholder: "my-assistant" });
  const base = h("select", { "data-testid": "model-base" });
  const system = h("textarea", { rows: 2, "data-testid": "model-system" });

  async function refresh() {
    const overview = await bridge.call("models_overview");
    engine.textContent = t(overview.engine === "ollama" ? "models.ollama" : "models.embedded", { host: overview.host });
    clear(list).append(h("tr", {}, h("th", {}, "model"), h("th", {}, "size"), h("th", {}, "base"), h("th", {})),
      ...overview.models.map((m) => h("tr", { "data-testid": "model-row" },
        h("td", {}, m.name, overview.running.includes(m.name) ? ` · ${t("models.running")}` : ""),
        h("td", {}, `${(m.size / 1e6).toFixed(0)} MB`), h("td", {}, m.parent || "—"),
        h("td", {}, h("button", { class: "danger", onclick: async () => {
          try { await bridge.call("models_delete", m.name); await refresh(); } catch (e) { showError(e); }
        } }, t("common.delete"))))));
    clear(base).append(...overview.models.map((m) => h("option", { value: m.name }, m.name)));
  }

  root.append(h("h1", {}, t("models.title")),
    h("div", { class: "card" }, h("h2", {}, t("models.engine")), engine, list),
    h("div", { class: "card" }, h("h2", {}, t("models.create")),
      h("label", {}, t("models.name")), name, h("label", {}, t("models.base")), base,
      h("label", {}, t("models.system")), system,
      h("div", { class: "row" }, h("button", { class: "primary", "data-testid": "model-create", onclick: async () => {
        try { await bridge.call("models_create", name.value.trim(), base.value, system.value || null); name.value = ""; await refresh(); } catch (e) { showError(e); }
      } }, t("models.create"))),
      h("p", { class: "muted" }, t("models.adapters_later"))));
  await refresh();
}
