import { clear, confirmInPlace, field, h, icon } from "../js/dom.js";
import { errorText, extend, statusText } from "../js/i18n.js";

extend("en", {
  "models.engine": "Engine", "models.embedded": "Embedded engine (llama.cpp), Ollama-compatible, on {host}",
  "models.ollama": "Ollama daemon at {host}", "models.create": "Create a model", "models.name": "Name",
  "models.base": "Base model", "models.system": "System prompt (optional)", "models.running": "loaded",
  "models.adapters_later": "Models from your own LoRA adapters come from the Training screen.",
  "models.add": "Add a model you have", "models.add_what": "Use a GGUF file you already have: it stays where it is, and Orch-Mind notices if it changes.",
  "models.choose": "Choose a GGUF file…", "models.found": "Found on this computer", "models.search": "Look for models",
  "models.none_found": "No GGUF models found in Ollama, LM Studio, Jan, GPT4All or the Hugging Face cache.",
  "models.add_button": "Add", "models.added_as": "added as {name}", "models.adding": "Adding {name}…",
  "models.added": "Added {name}.", "models.unavailable": "unavailable", "models.fits": "fits in memory",
  "models.too_big": "needs {need} GB, {free} GB free", "models.base_model": "base model (no chat template)",
  "models.browser_hint": "In browser mode, add a file with `orch-mind models add PATH`, or pick one found on this computer.",
  "models.delete_confirm": "Delete the model {name}? Its file is not deleted.", "models.name_needed": "Give the new model a name first.",
  "models.col_model": "model", "models.col_what": "what it is", "models.col_size": "size", "models.col_base": "made from",
  "models.prepared": "Prepared for training", "models.prepared_what": "Training reads a base as a bf16 copy of its GGUF (about 2 bytes per parameter), made once. Removing one frees its space; it is made again the next time you train on that base.",
  "models.prepared_none": "No base prepared yet.", "models.prepared_partial": "stopped part-way; goes on from there next time",
  "models.prepared_remove": "Remove the prepared copy of {name} ({size})?", "models.remove": "Remove",
});
extend("pt-BR", {
  "models.engine": "Motor", "models.embedded": "Motor embutido (llama.cpp), compatível com Ollama, em {host}",
  "models.ollama": "Ollama em {host}", "models.create": "Criar um modelo", "models.name": "Nome",
  "models.base": "Modelo base", "models.system": "Prompt de sistema (opcional)", "models.running": "carregado",
  "models.adapters_later": "Modelos a partir dos seus adaptadores LoRA vêm da tela de Treinamento.",
  "models.add": "Adicionar um modelo que você tem", "models.add_what": "Use um arquivo GGUF que você já tem: ele fica onde está, e o Orch-Mind percebe se ele mudar.",
  "models.choose": "Escolher um arquivo GGUF…", "models.found": "Encontrados neste computador", "models.search": "Procurar modelos",
  "models.none_found": "Nenhum modelo GGUF encontrado no Ollama, LM Studio, Jan, GPT4All ou no cache do Hugging Face.",
  "models.add_button": "Adicionar", "models.added_as": "adicionado como {name}", "models.adding": "Adicionando {name}…",
  "models.added": "{name} adicionado.", "models.unavailable": "indisponível", "models.fits": "cabe na memória",
  "models.too_big": "precisa de {need} GB, {free} GB livres", "models.base_model": "modelo base (sem modelo de conversa)",
  "models.browser_hint": "No modo navegador, adicione um arquivo com `orch-mind models add CAMINHO`, ou escolha um encontrado neste computador.",
  "models.delete_confirm": "Excluir o modelo {name}? O arquivo dele não é apagado.", "models.name_needed": "Dê um nome ao novo modelo primeiro.",
  "models.col_model": "modelo", "models.col_what": "o que é", "models.col_size": "tamanho", "models.col_base": "feito a partir de",
  "models.prepared": "Preparados para treino", "models.prepared_what": "O treino lê uma base como uma cópia bf16 do GGUF dela (cerca de 2 bytes por parâmetro), feita uma vez. Remover uma libera o espaço; ela é refeita no próximo treino com essa base.",
  "models.prepared_none": "Nenhuma base preparada ainda.", "models.prepared_partial": "parou no meio; continua dali na próxima vez",
  "models.prepared_remove": "Remover a cópia preparada de {name} ({size})?", "models.remove": "Remover",
});

const gb = (bytes) => (bytes / 1e9).toFixed(1);
const size = (bytes) => (bytes >= 1e9 ? `${gb(bytes)} GB` : `${(bytes / 1e6).toFixed(0)} MB`);

export async function render({ root, bridge, t, showError, onEvent }) {
  const list = h("table", { "data-testid": "models-table" });
  const engine = h("p", { "data-testid": "models-engine" });
  const name = h("input", { "data-testid": "model-name", placeholder: "my-assistant" });
  const base = h("select", { "data-testid": "model-base" });
  const system = h("textarea", { rows: 2, "data-testid": "model-system" });
  const found = h("div", { "data-testid": "models-found" });
  const addStatus = h("div", { class: "muted", "data-testid": "model-add-status" });
  const addProgress = h("progress", { max: 1, value: 0, hidden: true, "data-testid": "model-add-progress" });
  let currentJob = null;

  function describe(m) {
    if (!m.available) return h("span", { class: "error" }, `${t("models.unavailable")}: ${m.reason}`);
    const parts = [m.family, m.parameters, m.quantization, m.context_length ? `ctx ${m.context_length}` : ""].filter(Boolean).join(" · ");
    const notes = [];
    if (m.fit) notes.push(m.fit.fits_ram ? t("models.fits") : t("models.too_big", { need: gb(m.fit.needed_bytes), free: gb(m.fit.free_ram_bytes) }));
    if (m.available && !m.chat_template && !m.embedding_model) notes.push(t("models.base_model"));
    return h("span", {}, parts, notes.length ? h("div", { class: "muted" }, notes.join(" · ")) : "");
  }

  async function refresh() {
    const overview = await bridge.call("models_overview");
    engine.textContent = t(overview.engine === "ollama" ? "models.ollama" : "models.embedded", { host: overview.host });
    clear(list).append(h("tr", {}, ...["col_model", "col_what", "col_size", "col_base"].map((c) => h("th", {}, t(`models.${c}`))), h("th", {})),
      ...overview.models.map((m) => h("tr", { "data-testid": "model-row", class: m.available ? "" : "unavailable" },
        h("td", {}, m.name, overview.running.includes(m.name) ? ` · ${t("models.running")}` : ""),
        h("td", {}, describe(m)),
        h("td", {}, m.size ? size(m.size) : "—"), h("td", {}, m.parent || "—"),
        h("td", {}, h("button", { class: "link danger", "data-testid": "model-delete", onclick: (event) => confirmInPlace(event.currentTarget, {
          question: t("models.delete_confirm", { name: m.name }), yes: t("common.delete"), no: t("common.keep"),
          run: async () => { try { await bridge.call("models_delete", m.name); await refresh(); } catch (e) { showError(e); } },
        }) }, icon("trash-2"), " ", t("common.delete"))))));
    clear(base).append(...overview.models.filter((m) => m.available).map((m) => h("option", { value: m.name }, m.name)));
  }

  const prepared = h("div", { "data-testid": "models-prepared" });
  async function refreshPrepared() {
    const bases = await bridge.call("models_prepared");
    clear(prepared);
    if (!bases.length) { prepared.append(h("p", { class: "muted" }, t("models.prepared_none"))); return; }
    prepared.append(h("table", {}, ...bases.map((b) => h("tr", { "data-testid": "prepared-row" },
      h("td", {}, b.gguf || b.id), h("td", {}, size(b.bytes)),
      h("td", { class: "muted" }, b.complete ? "" : t("models.prepared_partial")),
      h("td", {}, h("button", { class: "link danger", "data-testid": "prepared-remove", onclick: (event) => confirmInPlace(event.currentTarget, {
        question: t("models.prepared_remove", { name: b.gguf || b.id, size: size(b.bytes) }), yes: t("models.remove"), no: t("common.keep"),
        run: async () => { try { await bridge.call("models_remove_prepared", b.id); await refreshPrepared(); } catch (e) { showError(e); } },
      }) }, icon("trash-2"), " ", t("models.remove")))))));
  }

  async function discover() {
    clear(found).append(h("p", { class: "muted" }, "…"));
    try {
      const result = await bridge.call("models_discover");
      clear(found);
      if (!result.models.length) { found.append(h("p", { class: "muted" }, t("models.none_found"))); return; }
      found.append(h("table", {}, ...result.models.map((m) => h("tr", { "data-testid": "found-row" },
        h("td", {}, m.app), h("td", {}, m.label),
        h("td", {}, m.info ? [m.info.architecture, m.info.parameter_label, m.info.quantization].join(" · ") : ""),
        h("td", {}, size(m.size)),
        h("td", {}, m.added_as ? h("span", { class: "muted" }, t("models.added_as", { name: m.added_as }))
          : h("button", { "data-testid": "found-add", onclick: async () => {
            try { watch((await bridge.call("models_add_discovered", m.path, m.suggested_name)).job_id, m.suggested_name); } catch (e) { showError(e); }
          } }, t("models.add_button")))))));
    } catch (e) { clear(found); showError(e); }
  }

  function watch(jobId, label) {
    if (!jobId) return;
    currentJob = jobId;
    addProgress.hidden = false; addProgress.removeAttribute("value");
    addStatus.className = "muted"; addStatus.textContent = t("models.adding", { name: label });
  }

  const stop = onEvent((event) => {
    if (!currentJob || (event.job_id !== currentJob && !(event.job && event.job.id === currentJob))) return;
    if (event.type === "progress" && event.total > 0) {
      addProgress.max = event.total; addProgress.value = event.completed;
    } else if (event.type === "job" && ["succeeded", "failed", "cancelled"].includes(event.job.state)) {
      addProgress.hidden = true;
      currentJob = null;
      if (event.job.state === "succeeded") {
        addStatus.className = "ok"; addStatus.textContent = t("models.added", { name: event.job.result.name });
        refresh().then(discover).catch(showError);
      } else {
        addStatus.className = "error"; addStatus.textContent = event.job.error ? errorText(event.job.error) : statusText(event.job.state);
      }
    }
  });

  const addControls = bridge.mode === "window"
    ? [h("button", { class: "primary", "data-testid": "model-pick", onclick: async () => {
      try { const answer = await bridge.call("models_pick_and_add", null); watch(answer.job_id, "…"); } catch (e) { showError(e); }
    } }, t("models.choose"))]
    : [h("p", { class: "muted" }, t("models.browser_hint"))];

  root.append(h("h1", {}, t("models.title")),
    h("div", { class: "card" }, h("h2", {}, t("models.engine")), engine, list),
    h("div", { class: "card" }, h("h2", {}, t("models.add")), h("p", { class: "muted" }, t("models.add_what")),
      h("div", { class: "row" }, ...addControls), addProgress, addStatus,
      h("h2", {}, t("models.found")),
      h("div", { class: "row" }, h("button", { class: "secondary", "data-testid": "models-search", onclick: discover }, t("models.search"))), found),
    h("div", { class: "card" }, h("h2", {}, t("models.create")),
      ...field(t("models.name"), name), ...field(t("models.base"), base), ...field(t("models.system"), system),
      h("div", { class: "row" }, h("button", { class: "primary", "data-testid": "model-create", onclick: async () => {
        if (!name.value.trim()) { showError(new Error(t("models.name_needed"))); name.focus(); return; }
        try { await bridge.call("models_create", name.value.trim(), base.value, system.value || null); name.value = ""; await refresh(); } catch (e) { showError(e); }
      } }, t("models.create"))),
      h("p", { class: "muted" }, t("models.adapters_later"))),
    h("div", { class: "card" }, h("h2", {}, t("models.prepared")), h("p", { class: "muted" }, t("models.prepared_what")), prepared));
  await refresh();
  refreshPrepared().catch(showError);
  discover();
  return stop;
}
