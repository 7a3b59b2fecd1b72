import { barChart } from "../js/chart.js";
import { clear, confirmInPlace, h, icon } from "../js/dom.js";
import { errorText, extend, localDate, localNumber, statusText } from "../js/i18n.js";

extend("en", {
  "memory.import": "Import", "memory.import_hint": "A ChatGPT export (.zip or conversations.json) or a Claude export.",
  "memory.uploading": "Uploading…", "memory.search_mode": "How to search", "memory.mode_hybrid": "meaning and words",
  "memory.mode_semantic": "meaning only", "memory.mode_keyword": "exact words only",
  "memory.choose": "Choose file…", "memory.mode": "Mode", "memory.increment": "Add and update (keeps what you have)",
  "memory.overwrite": "Replace this source", "memory.search": "Search", "memory.search_placeholder": "Search your memory…",
  "memory.no_results": "No memories matched.", "memory.stats": "What is in memory", "memory.sources": "Sources",
  "memory.activity": "Messages per month", "memory.conversations": "conversations", "memory.messages": "messages",
  "memory.chunks": "chunks", "memory.delete_confirm": "Delete this source and everything imported from it?",
  "memory.open": "Open conversation", "memory.close": "Close",
  "memory.kept_out": "{kept_out} more messages are stored but kept out of memory: tool calls, reasoning, tool output and hidden instructions.",
  "memory.truncated": "Only the first 2,000 messages are shown.",
  "memory.kind.text": "message", "memory.kind.multimodal_text": "message", "memory.kind.code": "code", "memory.kind.canvas": "canvas document",
  "memory.kind.artifact": "artifact", "memory.kind.tether_quote": "quoted page", "memory.kind.attachment": "attachment", "memory.kind.note": "note",
  "memory.done": "Imported {added} new, {updated} updated, {unchanged} unchanged.", "memory.empty": "Nothing imported yet. Where to get your history:",
  "memory.how_chatgpt": "ChatGPT: Settings → Data controls → Export data. The e-mail brings a .zip: import it above as it is.",
  "memory.how_claude": "Claude: Settings → Privacy → Export data. Import the .zip (or its conversations.json) above.",
  "memory.skipped": "{skipped_messages} damaged messages were left out; {duplicates} repeated conversations were imported once.",
});
extend("pt-BR", {
  "memory.import": "Importar", "memory.import_hint": "Uma exportação do ChatGPT (.zip ou conversations.json) ou do Claude.",
  "memory.uploading": "Enviando…", "memory.search_mode": "Como pesquisar", "memory.mode_hybrid": "sentido e palavras",
  "memory.mode_semantic": "só o sentido", "memory.mode_keyword": "só as palavras exatas",
  "memory.choose": "Escolher arquivo…", "memory.mode": "Modo", "memory.increment": "Adicionar e atualizar (mantém o que você tem)",
  "memory.overwrite": "Substituir esta fonte", "memory.search": "Pesquisar", "memory.search_placeholder": "Pesquise sua memória…",
  "memory.no_results": "Nenhuma memória encontrada.", "memory.stats": "O que há na memória", "memory.sources": "Fontes",
  "memory.activity": "Mensagens por mês", "memory.conversations": "conversas", "memory.messages": "mensagens",
  "memory.chunks": "trechos", "memory.delete_confirm": "Excluir esta fonte e tudo o que foi importado dela?",
  "memory.open": "Abrir conversa", "memory.close": "Fechar",
  "memory.kept_out": "Outras {kept_out} mensagens ficam guardadas, mas fora da memória: chamadas e saídas de ferramentas, raciocínio e instruções ocultas.",
  "memory.truncated": "Apenas as primeiras 2.000 mensagens são mostradas.",
  "memory.kind.text": "mensagem", "memory.kind.multimodal_text": "mensagem", "memory.kind.code": "código", "memory.kind.canvas": "documento do canvas",
  "memory.kind.artifact": "artefato", "memory.kind.tether_quote": "página citada", "memory.kind.attachment": "anexo", "memory.kind.note": "nota",
  "memory.done": "Importadas {added} novas, {updated} atualizadas, {unchanged} sem mudança.", "memory.empty": "Nada importado ainda. Onde conseguir seu histórico:",
  "memory.how_chatgpt": "ChatGPT: Configurações → Controles de dados → Exportar dados. O e-mail traz um .zip: importe-o acima como está.",
  "memory.how_claude": "Claude: Configurações → Privacidade → Exportar dados. Importe o .zip (ou o conversations.json dele) acima.",
  "memory.skipped": "{skipped_messages} mensagens danificadas ficaram de fora; {duplicates} conversas repetidas foram importadas uma vez.",
  "error.bad_import": "Este arquivo não é uma exportação que o Orch-Mind lê: use o .zip do ChatGPT ou o conversations.json do ChatGPT ou do Claude.",
  "error.cancelled": "A importação foi cancelada; nada foi alterado.",
});

const KINDS = new Set(["text", "multimodal_text", "code", "canvas", "artifact", "tether_quote", "attachment", "note"]);

function kindLabel(t, kind) { return KINDS.has(kind) ? t(`memory.kind.${kind}`) : kind; }

/** Hits grouped by conversation, best conversation first; ranked, with no raw scores (the modes score on
 * different scales). Everything imported is set as text, never parsed as HTML. */
export function renderResults(hits, t, open) {
  const groups = new Map();
  for (const hit of hits) {
    if (!groups.has(hit.conversation_key)) groups.set(hit.conversation_key, []);
    groups.get(hit.conversation_key).push(hit);
  }
  return [...groups.values()].map((group) => {
    const first = group[0];
    const when = localDate(first.created_at);
    return h("div", { class: "hit-group", "data-testid": "hit-group" },
      h("div", { class: "meta" }, h("strong", {}, first.title), ` · ${when} · ${first.source_id}`,
        h("button", { class: "link", "data-testid": "open-conversation", onclick: () => open(first.conversation_key, group.map((g) => g.message_id)) },
          t("memory.open"))),
      ...group.map((hit) => h("div", { class: "hit", "data-testid": "hit" },
        h("span", { class: "muted" }, `${hit.role} · ${kindLabel(t, hit.kind)} — `), hit.snippet)));
  });
}

function renderConversation(conversation, highlighted, t, close) {
  const marked = new Set(highlighted);
  const items = conversation.messages.map((m) => h("div", {
    class: `message ${m.role}${marked.has(m.message_id) ? " matched" : ""}`, "data-testid": "conversation-message" },
  h("div", { class: "meta muted" }, `${m.role} · ${kindLabel(t, m.kind)}${m.created_at ? " · " + localDate(m.created_at, true) : ""}`),
  h("div", { class: "text" }, m.text)));
  const notes = [];
  if (conversation.kept_out) notes.push(t("memory.kept_out", conversation));
  if (conversation.truncated) notes.push(t("memory.truncated"));
  return h("div", { class: "card conversation", "data-testid": "conversation-view" },
    h("div", { class: "row" }, h("h2", {}, conversation.title), h("button", { onclick: close, "data-testid": "close-conversation" }, t("memory.close"))),
    ...notes.map((n) => h("p", { class: "muted" }, n)), ...items);
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
    if (!stats.conversations) {
      statsBox.append(h("p", { class: "muted" }, t("memory.empty")),
        h("ul", { class: "muted", "data-testid": "memory-how-to-export" }, h("li", {}, t("memory.how_chatgpt")), h("li", {}, t("memory.how_claude"))));
      return;
    }
    statsBox.append(
      h("p", {}, `${localNumber(stats.conversations)} ${t("memory.conversations")} · ${localNumber(stats.messages)} ${t("memory.messages")} · ${localNumber(stats.chunks)} ${t("memory.chunks")}`),
      stats.kept_out ? h("p", { class: "muted" }, t("memory.kept_out", stats)) : "",
      h("h2", {}, t("memory.activity")),
      barChart(stats.per_month, { label: (p) => p.month, value: (p) => p.messages, title: t("memory.activity") }),
      h("h2", {}, t("memory.sources")),
      h("table", {}, ...stats.sources.map((s) => h("tr", {},
        h("td", {}, s.label), h("td", {}, s.kind), h("td", {}, String(s.conversations)),
        h("td", {}, h("button", { class: "link danger", "data-testid": "source-delete", onclick: (event) => confirmInPlace(event.currentTarget, {
          question: t("memory.delete_confirm"), yes: t("common.delete"), no: t("common.keep"),
          run: async () => { try { await bridge.call("delete_memory_source", s.id); await refreshStats(); } catch (e) { showError(e); } },
        }) }, icon("trash-2"), " ", t("common.delete"))))))
    );
  }

  function finished(job) {
    progress.hidden = true;
    currentJob = null;
    if (job.state === "succeeded") {
      importStatus.className = "ok";
      const result = job.result;
      importStatus.textContent = t("memory.done", result)
        + (result.skipped_messages || result.duplicates ? ` ${t("memory.skipped", result)}` : "");
      refreshStats().catch(showError);
    } else {
      importStatus.className = "error";
      importStatus.textContent = job.error ? errorText(job.error) : statusText(job.state);
    }
  }

  async function watch(jobId) {
    currentJob = jobId;
    progress.hidden = false; progress.removeAttribute("value");
    importStatus.className = "muted";
    importStatus.textContent = "…";
    // A bad file fails in milliseconds, possibly before this screen knew the job's id: ask once.
    const job = (await bridge.call("list_jobs")).find((one) => one.id === jobId);
    if (job && currentJob === jobId && ["succeeded", "failed", "cancelled"].includes(job.state)) finished(job);
  }

  const stop = onEvent((event) => {
    if (!currentJob || event.job_id !== currentJob && !(event.job && event.job.id === currentJob)) return;
    if (event.type === "progress") {
      if (event.total > 0) { progress.max = event.total; progress.value = event.completed; }
      importStatus.textContent = `${statusText(event.status)} ${event.total ? Math.round((100 * event.completed) / event.total) + "%" : ""}`;
    } else if (event.type === "job" && ["succeeded", "failed", "cancelled"].includes(event.job.state)) {
      finished(event.job);
    }
  });

  const importControls = [];
  if (bridge.mode === "window") {
    importControls.push(h("button", { class: "primary", onclick: async () => {
      try { const answer = await bridge.call("pick_and_import", mode.value); if (answer.job_id) await watch(answer.job_id); } catch (e) { showError(e); }
    } }, t("memory.choose")));
  } else {
    const input = h("input", { type: "file", accept: ".zip,.json", "data-testid": "import-file", "aria-label": t("memory.choose"), onchange: async () => {
      const file = input.files[0];
      if (!file) return;
      try {
        importStatus.className = "muted"; importStatus.textContent = t("memory.uploading");
        const uploaded = await bridge.upload(file);
        await watch((await bridge.call("start_import_upload", uploaded.upload, mode.value)).job_id);
      } catch (e) { showError(e); importStatus.textContent = e.message; }
    } });
    importControls.push(input);
  }

  const query = h("input", { type: "search", placeholder: t("memory.search_placeholder"), "data-testid": "search-input" });
  const searchMode = h("select", { "aria-label": t("memory.search_mode"), "data-testid": "search-mode" },
    ...["hybrid", "semantic", "keyword"].map((m) => h("option", { value: m }, t(`memory.mode_${m}`))));
  const results = h("div", { "data-testid": "search-results" });
  const conversationBox = h("div", {});
  async function open(key, messageIds) {
    try {
      const conversation = await bridge.call("memory_conversation", key);
      clear(conversationBox).append(renderConversation(conversation, messageIds, t, () => clear(conversationBox)));
      const matched = conversationBox.querySelector(".message.matched");
      (matched || conversationBox).scrollIntoView({ block: "center" });
    } catch (e) { showError(e); }
  }
  async function search() {
    if (!query.value.trim()) return;
    try {
      const hits = await bridge.call("search_memory", { query: query.value, k: 10, mode: searchMode.value });
      clear(conversationBox);
      clear(results).append(...(hits.length ? renderResults(hits, t, open) : [h("p", { class: "muted" }, t("memory.no_results"))]));
    } catch (e) { showError(e); }
  }
  query.addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });

  root.append(
    h("h1", {}, t("memory.title")),
    h("div", { class: "card" }, h("h2", {}, t("memory.import")), h("p", { class: "muted" }, t("memory.import_hint")),
      h("label", { for: "import-mode" }, t("memory.mode")), mode, h("div", { class: "row" }, ...importControls), progress, importStatus),
    h("div", { class: "card" }, h("div", { class: "row" }, query, searchMode,
      h("button", { class: "primary", onclick: search, "data-testid": "search-button" }, t("memory.search"))), results),
    conversationBox,
    h("div", { class: "card" }, h("h2", {}, t("memory.stats")), statsBox),
  );
  await refreshStats();
  return stop;
}
