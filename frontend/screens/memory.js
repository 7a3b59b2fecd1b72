import { barChart } from "../js/chart.js";
import { clear, h } from "../js/dom.js";
import { extend } from "../js/i18n.js";

extend("en", {
  "memory.import": "Import", "memory.import_hint": "A ChatGPT export (.zip or conversations.json) or a Claude export.",
  "memory.choose": "Choose file…", "memory.mode": "Mode", "memory.increment": "Add and update (keeps what you have)",
  "memory.overwrite": "Replace this source", "memory.search": "Search", "memory.search_placeholder": "Search your memory…",
  "memory.no_results": "No memories matched.", "memory.stats": "What is in memory", "memory.sources": "Sources",
  "memory.activity": "Messages per month", "memory.conversations": "conversations", "memory.messages": "messages",
  "memory.chunks": "chunks", "memory.delete_confirm": "Delete this source and everything imported from it?",
  "memory.done": "Imported {added} new, {updated} updated, {unchanged} unchanged.", "memory.empty": "Nothing imported yet.",
  "memory.skipped": "{skipped_messages} damaged messages were left out; {duplicates} repeated conversations were imported once.",
});
extend("pt-BR", {
  "memory.import": "Importar", "memory.import_hint": "Uma exportação do ChatGPT (.zip ou conversations.json) ou do Claude.",
  "memory.choose": "Escolher arquivo…", "memory.mode": "Modo", "memory.increment": "Adicionar e atualizar (mantém o que você tem)",
  "memory.overwrite": "Substituir esta fonte", "memory.search": "Pesquisar", "memory.search_placeholder": "Pesquise sua memória…",
  "memory.no_results": "Nenhuma memória encontrada.", "memory.stats": "O que há na memória", "memory.sources": "Fontes",
  "memory.activity": "Mensagens por mês", "memory.conversations": "conversas", "memory.messages": "mensagens",
  "memory.chunks": "trechos", "memory.delete_confirm": "Excluir esta fonte e tudo o que foi importado dela?",
  "memory.done": "Importadas {added} novas, {updated} atualizadas, {unchanged} sem mudança.", "memory.empty": "Nada importado ainda.",
  "memory.skipped": "{skipped_messages} mensagens danificadas ficaram de fora; {duplicates} conversas repetidas foram importadas uma vez.",
});

export function renderHit(hit) {
  const when = hit.created_at ? hit.created_at.slice(0, 10) : "";
  return h("div", { class: "hit", "data-testid": "hit" },
    h("div", { class: "meta" }, h("strong", {}, hit.title), ` · ${hit.role} · ${when} · ${hit.score.toFixed(3)}`),
    h("div", {}, hit.snippet));
}

export async function render({ root, bridge, t, showError, onEvent }) {
  const statsBox = h("div", { "data-testid": "memory-stats" });
  const progress = h("progress", { max: 1, value: 0, hidden: true, "data-testid": "import-progress" });
  const importStatus = h("div", { class: "muted", "data-testid": "import-status" });
  const mode = h("select", { id: "import-mode" },
    h("option", { value: "increment" }, t("memory.increment")), h("option", { value: "overwrite" }, t("memory.overwrite")));
  let currentJob = null;

  async function refreshStats() {
    const stats = await bridge.call("memory_stats");
    clear(statsBox);
    if (!stats.conversations) { statsBox.append(h("p", { class: "muted" }, t("memory.empty"))); return; }
    statsBox.append(
      h("p", {}, `${stats.conversations} ${t("memory.conversations")} · ${stats.messages} ${t("memory.messages")} · ${stats.chunks} ${t("memory.chunks")}`),
      h("h2", {}, t("memory.activity")),
      barChart(stats.per_month, { label: (p) => p.month, value: (p) => p.messages }),
      h("h2", {}, t("memory.sources")),
      h("table", {}, ...stats.sources.map((s) => h("tr", {},
        h("td", {}, s.label), h("td", {}, s.kind), h("td", {}, String(s.conversations)),
        h("td", {}, h("button", { class: "danger", onclick: async () => {
          if (!confirm(t("memory.delete_confirm"))) return;
          try { await bridge.call("delete_memory_source", s.id); await refreshStats(); } catch (e) { showError(e); }
        } }, t("common.delete"))))))
    );
  }

  function watch(jobId) {
    currentJob = jobId;
    progress.hidden = false; progress.removeAttribute("value");
    importStatus.textContent = "…";
  }

  const stop = onEvent((event) => {
    if (!currentJob || event.job_id !== currentJob && !(event.job && event.job.id === currentJob)) return;
    if (event.type === "progress") {
      if (event.total > 0) { progress.max = event.total; progress.value = event.completed; }
      importStatus.textContent = `${event.status} ${event.total ? Math.round((100 * event.completed) / event.total) + "%" : ""}`;
    } else if (event.type === "job" && ["succeeded", "failed", "cancelled"].includes(event.job.state)) {
      progress.hidden = true;
      currentJob = null;
      if (event.job.state === "succeeded") {
        importStatus.className = "ok";
        const result = event.job.result;
        importStatus.textContent = t("memory.done", result)
          + (result.skipped_messages || result.duplicates ? ` ${t("memory.skipped", result)}` : "");
        refreshStats().catch(showError);
      } else {
        importStatus.className = "error";
        importStatus.textContent = event.job.error ? event.job.error.message : event.job.state;
      }
    }
  });

  const importControls = [];
  if (bridge.mode === "window") {
    importControls.push(h("button", { class: "primary", onclick: async () => {
      try { const answer = await bridge.call("pick_and_import", mode.value); if (answer.job_id) watch(answer.job_id); } catch (e) { showError(e); }
    } }, t("memory.choose")));
  } else {
    const input = h("input", { type: "file", accept: ".zip,.json", "data-testid": "import-file", onchange: async () => {
      const file = input.files[0];
      if (!file) return;
      try {
        importStatus.className = "muted"; importStatus.textContent = "uploading…";
        const uploaded = await bridge.upload(file);
        watch((await bridge.call("start_import_upload", uploaded.upload, mode.value)).job_id);
      } catch (e) { showError(e); importStatus.textContent = e.message; }
    } });
    importControls.push(input);
  }

  const query = h("input", { type: "search", placeholder: t("memory.search_placeholder"), "data-testid": "search-input" });
  const searchMode = h("select", {}, ...["hybrid", "semantic", "keyword"].map((m) => h("option", { value: m }, m)));
  const results = h("div", { "data-testid": "search-results" });
  async function search() {
    if (!query.value.trim()) return;
    try {
      const hits = await bridge.call("search_memory", query.value, 10, searchMode.value);
      clear(results).append(...(hits.length ? hits.map(renderHit) : [h("p", { class: "muted" }, t("memory.no_results"))]));
    } catch (e) { showError(e); }
  }
  query.addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });

  root.append(
    h("h1", {}, t("memory.title")),
    h("div", { class: "card" }, h("h2", {}, t("memory.import")), h("p", { class: "muted" }, t("memory.import_hint")),
      h("label", { for: "import-mode" }, t("memory.mode")), mode, h("div", { class: "row" }, ...importControls), progress, importStatus),
    h("div", { class: "card" }, h("div", { class: "row" }, query, searchMode,
      h("button", { class: "primary", onclick: search, "data-testid": "search-button" }, t("memory.search"))), results),
    h("div", { class: "card" }, h("h2", {}, t("memory.stats")), statsBox),
  );
  await refreshStats();
  return stop;
}
