import { clear, h, icon } from "../js/dom.js";
import { extend } from "../js/i18n.js";
import { renderMarkdown } from "../js/markdown.js";

extend("en", {
  "chat.new": "New chat", "chat.send": "Send", "chat.stop": "Stop", "chat.regenerate": "Regenerate",
  "chat.placeholder": "Message Orch-Mind…", "chat.memory": "Use memory", "chat.model": "Model",
  "chat.system": "System prompt for this chat", "chat.sources": "Sources from memory",
  "chat.dropped": "{n} earlier messages were left out to fit the model's context window.",
  "chat.empty": "Start a conversation. Answers can use what you imported into Memory.", "chat.stopped": "(stopped)",
  "chat.delete": "Delete chat", "chat.close": "Close",
  "chat.settings": "Settings for this chat", "chat.length": "Longest reply (tokens)", "chat.temperature": "Temperature (0 = focused, 1+ = creative)",
  "chat.default": "default", "chat.cut": "(cut at {n} tokens: raise “Longest reply” in this chat's settings for longer answers)",
  "chat.repeating": "(stopped: the model began repeating itself)",
  "chat.delete_confirm": "Delete “{title}”? This cannot be undone.", "chat.delete_yes": "Delete", "chat.cancel": "Cancel",
  "chat.escape": "Esc stops the answer", "chat.you": "You", "chat.assistant": "Orch-Mind",
  "chat.first_title": "Make Orch-Mind yours in three steps",
  "chat.first_import": "Bring your history in: your ChatGPT or Claude export, or a folder of notes.", "chat.first_import_go": "Import →",
  "chat.first_ask": "Ask about it here: answers cite what they found in your memory, and nothing leaves this computer.",
  "chat.first_train": "Train your own model on your conversations, then chat with it.", "chat.first_train_go": "Training →",
});
extend("pt-BR", {
  "chat.new": "Nova conversa", "chat.send": "Enviar", "chat.stop": "Parar", "chat.regenerate": "Gerar de novo",
  "chat.placeholder": "Mensagem para o Orch-Mind…", "chat.memory": "Usar memória", "chat.model": "Modelo",
  "chat.system": "Prompt de sistema desta conversa", "chat.sources": "Fontes da memória",
  "chat.dropped": "{n} mensagens anteriores ficaram de fora para caber na janela de contexto do modelo.",
  "chat.empty": "Comece uma conversa. As respostas podem usar o que você importou na Memória.", "chat.stopped": "(interrompida)",
  "chat.delete": "Excluir conversa", "chat.close": "Fechar",
  "chat.settings": "Ajustes desta conversa", "chat.length": "Resposta mais longa (tokens)", "chat.temperature": "Temperatura (0 = focada, 1+ = criativa)",
  "chat.default": "padrão", "chat.cut": "(cortada em {n} tokens: aumente “Resposta mais longa” nos ajustes desta conversa)",
  "chat.repeating": "(interrompida: o modelo começou a se repetir)",
  "chat.delete_confirm": "Excluir “{title}”? Isso não pode ser desfeito.", "chat.delete_yes": "Excluir", "chat.cancel": "Cancelar",
  "chat.escape": "Esc interrompe a resposta", "chat.you": "Você", "chat.assistant": "Orch-Mind",
  "chat.first_title": "Deixe o Orch-Mind com a sua cara em três passos",
  "chat.first_import": "Traga seu histórico: a exportação do ChatGPT ou do Claude, ou uma pasta de notas.", "chat.first_import_go": "Importar →",
  "chat.first_ask": "Pergunte sobre ele aqui: as respostas citam o que encontraram na sua memória, e nada sai deste computador.",
  "chat.first_train": "Treine seu próprio modelo com as suas conversas e converse com ele.", "chat.first_train_go": "Treinamento →",
});

// The chat is a small state machine, so no sequence of clicks can jam it:
//   idle --send/regenerate--> sending --job started--> streaming --job ended--> idle
//   streaming --Stop/Esc--> stopping --job ended--> idle;   sending --error--> idle (nothing lost)
// A new chat is a draft until its first message: empty chats are never stored.
export async function render({ root, bridge, t, showError, onEvent }) {
  const state = { mode: "idle", session: null, job: null, streaming: null, ended: new Map(), imported: null };
  const history = h("div", { class: "chat-history", "data-testid": "chat-history" });
  const messages = h("div", { class: "messages", "data-testid": "messages", "aria-live": "polite" });
  const notice = h("div", { class: "muted", "data-testid": "chat-notice" });
  const input = h("textarea", { rows: 3, placeholder: t("chat.placeholder"), "data-testid": "chat-input", "aria-label": t("chat.placeholder") });
  const send = h("button", { class: "primary", "data-testid": "chat-send" }, t("chat.send"));
  const stop = h("button", { class: "secondary", hidden: true, "data-testid": "chat-stop", title: t("chat.escape") }, t("chat.stop"));
  const regenerate = h("button", { class: "secondary", "data-testid": "chat-regenerate" }, t("chat.regenerate"));
  const model = h("select", { "data-testid": "chat-model", "aria-label": t("chat.model") });
  const memory = h("input", { type: "checkbox", "data-testid": "chat-memory" });
  const system = h("textarea", { rows: 2, "data-testid": "chat-system" });
  const maxTokens = h("input", { type: "number", min: 16, max: 32768, step: 64, placeholder: t("chat.default"), "data-testid": "chat-max-tokens" });
  const temperature = h("input", { type: "number", min: 0, max: 2, step: 0.1, placeholder: t("chat.default"), "data-testid": "chat-temperature" });
  const viewer = h("div", { class: "card", hidden: true, "data-testid": "memory-viewer" });
  let defaults = { memory_enabled: true, system_prompt: "" };

  function setMode(mode) {
    state.mode = mode;
    const idle = mode === "idle";
    send.disabled = !idle;
    regenerate.disabled = !idle || !(state.session && state.session.messages.length);
    stop.hidden = !(mode === "streaming" || mode === "stopping");
    stop.disabled = mode === "stopping";
    messages.dataset.state = mode;  // for tests and styles: idle, sending, streaming, stopping
  }

  async function openSource(source) {
    try {
      const conversation = await bridge.call("memory_conversation", source.conversation_key);
      clear(viewer).append(
        h("div", { class: "row" }, h("strong", {}, conversation.title), h("button", { class: "secondary", onclick: () => { viewer.hidden = true; } }, t("chat.close"))),
        ...conversation.messages.map((m) => h("div", { class: `msg ${m.role}` }, h("div", { class: "meta muted" }, m.role), renderMarkdown(m.text))));
      viewer.hidden = false;
    } catch (e) { showError(e); }
  }

  function uniqueSources(sources) {  // one chip per remembered conversation, however many of its chunks were used
    const seen = new Set();
    return (sources || []).filter((s) => !seen.has(s.conversation_key) && seen.add(s.conversation_key));
  }

  function messageNode(message) {
    const user = message.role === "user";
    // Your own words are shown as typed (line breaks kept); answers are Markdown built as DOM nodes.
    const body = user ? h("div", { class: "plain" }, message.content) : renderMarkdown(message.content);
    const node = h("div", { class: `msg ${message.role}`, "data-testid": `msg-${message.role}` },
      h("div", { class: "who" }, user ? t("chat.you") : t("chat.assistant")), body);
    const ended = message.stats && message.stats.ended;
    if (ended === "length") node.append(h("div", { class: "muted", "data-testid": "msg-cut" }, t("chat.cut", { n: message.stats.max_tokens })));
    else if (ended === "repetition") node.append(h("div", { class: "muted", "data-testid": "msg-repeating" }, t("chat.repeating")));
    else if (message.stats && message.stats.stopped) node.append(h("span", { class: "muted", "data-testid": "msg-stopped" }, ` ${t("chat.stopped")}`));
    const sources = uniqueSources(message.sources);
    if (sources.length) {
      node.append(h("div", { class: "sources", "data-testid": "sources" }, `${t("chat.sources")}: `,
        ...sources.map((s) => h("button", { class: "secondary", "data-testid": "source", onclick: () => openSource(s) },
          `[${s.number}] ${s.title}`))));
    }
    return node;
  }

  // First start (nothing imported yet): the three steps that make Orch-Mind yours, with a way to each.
  function emptyState() {
    if (state.imported !== 0) return h("p", { class: "muted", "data-testid": "chat-empty" }, t("chat.empty"));
    const go = (screen, label) => h("button", { class: "link", onclick: () => { location.hash = screen; } }, label);
    return h("div", { class: "card first-run", "data-testid": "first-run" }, h("h2", {}, t("chat.first_title")),
      h("ol", {},
        h("li", {}, t("chat.first_import"), " ", go("memory", t("chat.first_import_go"))),
        h("li", {}, t("chat.first_ask")),
        h("li", {}, t("chat.first_train"), " ", go("training", t("chat.first_train_go")))));
  }

  function showMessages(list) {
    clear(messages).append(...(list.length ? list.map(messageNode) : [emptyState()]));
    messages.scrollTop = messages.scrollHeight;
  }

  let wantedModel = null;  // the open chat's model, chosen once the list has it
  function pickModel(name) {
    if (name && [...model.options].some((o) => o.value === name)) model.value = name;
  }

  function showSession(session) {
    state.session = session;
    showMessages(session ? session.messages : []);
    memory.checked = session ? session.memory_enabled : defaults.memory_enabled;
    system.value = session ? session.system_prompt : defaults.system_prompt;
    maxTokens.value = session ? session.max_tokens ?? "" : "";
    temperature.value = session ? session.temperature ?? "" : "";
    if (session) { wantedModel = session.model; pickModel(session.model); }
    const last = session && session.messages[session.messages.length - 1];
    notice.textContent = last && last.stats && last.stats.dropped_turns ? t("chat.dropped", { n: last.stats.dropped_turns }) : "";
    setMode(state.mode);
  }

  function historyRow(s) {
    const open = h("button", { class: state.session && s.id === state.session.id ? "primary" : "secondary",
      onclick: async () => { if (state.mode === "idle") showSession(await bridge.call("chat_get", s.id)); refreshHistory(); } }, s.title);
    const row = h("div", { class: "row", "data-testid": "chat-row" }, open);
    const remove = h("button", { class: "link danger", title: t("chat.delete"), "aria-label": `${t("chat.delete")}: ${s.title}`,
      "data-testid": "chat-delete", onclick: () => {
        // A destructive action asks first, in place, with its consequence spelled out.
        clear(row).append(h("span", { class: "confirm", "data-testid": "chat-delete-confirm" }, t("chat.delete_confirm", { title: s.title })),
          h("button", { class: "danger", "data-testid": "chat-delete-yes", onclick: async () => {
            try {
              await bridge.call("chat_delete", s.id);
              if (state.session && state.session.id === s.id) showSession(null);
            } catch (e) { showError(e); }
            refreshHistory();
          } }, t("chat.delete_yes")),
          h("button", { class: "secondary", "data-testid": "chat-delete-no", onclick: () => refreshHistory() }, t("chat.cancel")));
      } }, icon("trash-2"));
    row.append(remove);
    return row;
  }

  async function refreshHistory(answer = null) {
    const sessions = (await (answer || bridge.call("chat_sessions"))).filter((s) => s.message_count > 0 || (state.session && s.id === state.session.id));
    clear(history).append(h("button", { class: "primary", "data-testid": "chat-new", onclick: newChat }, t("chat.new")), ...sessions.map(historyRow));
    return sessions;
  }

  function newChat() {
    if (state.mode !== "idle") return;
    showSession(null);
    refreshHistory().catch(showError);
    input.focus();
  }

  async function ensureSession() {
    if (state.session) return state.session;
    state.session = await bridge.call("chat_new", model.value || null, memory.checked);
    return state.session;
  }

  async function startTurn(method, text) {
    if (state.mode !== "idle") return;
    setMode("sending");
    if (method === "chat_send") {
      if (!state.session || !state.session.messages.length) clear(messages);
      messages.append(messageNode({ role: "user", content: text }));  // shown at once, before the model answers
    }
    state.streaming = h("div", { class: "msg assistant streaming", "data-testid": "msg-streaming" }, h("div", { class: "who" }, t("chat.assistant")));
    state.streaming.append(state.streaming.textNode = document.createTextNode(""));
    messages.append(state.streaming);
    messages.scrollTop = messages.scrollHeight;
    try {
      const session = await ensureSession();
      await bridge.call("chat_update", session.id, { model: model.value || null, system_prompt: system.value, memory_enabled: memory.checked });
      const number = (field, parse) => (field.value.trim() === "" ? null : parse(field.value));
      await bridge.call("chat_set_options", session.id, number(maxTokens, (v) => Number.parseInt(v, 10)), number(temperature, Number.parseFloat));
      const { job_id } = await bridge.call(method, session.id, ...(method === "chat_send" ? [text] : []));
      state.job = job_id;
      setMode("streaming");
      if (state.ended.has(job_id)) finish(state.ended.get(job_id));  // it ended before we knew its id
      else refreshHistory().catch(() => {});
    } catch (e) {
      showError(e);
      if (method === "chat_send" && !input.value) input.value = text;  // nothing typed is lost
      state.streaming = null;
      setMode("idle");
      if (state.session) showSession(await bridge.call("chat_get", state.session.id).catch(() => state.session));
      else showMessages([]);
    }
  }

  async function finish(job) {
    state.job = null;
    state.streaming = null;
    state.ended.clear();
    if (job.state === "failed") showError(job.error);
    try {
      if (state.session) showSession(await bridge.call("chat_get", state.session.id));
      await refreshHistory();
    } catch (e) { showError(e); }
    setMode("idle");
  }

  function stopAnswer() {
    if (state.mode !== "streaming" || !state.job) return;
    setMode("stopping");
    bridge.call("cancel_job", state.job).catch((e) => { showError(e); });
  }

  send.addEventListener("click", () => {
    const text = input.value.replace(/\s+$/, "");
    if (!text.trim() || state.mode !== "idle") return;
    input.value = "";
    startTurn("chat_send", text);
  });
  // Typing is the sign an answer will be wanted: the models load meanwhile, not after Send.
  input.addEventListener("input", () => { bridge.call("chat_prepare").catch(() => {}); }, { once: true });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send.click(); } });
  regenerate.addEventListener("click", () => startTurn("chat_regenerate"));
  stop.addEventListener("click", stopAnswer);
  const onKey = (e) => { if (e.key === "Escape" && (state.mode === "streaming" || state.mode === "stopping")) { e.preventDefault(); stopAnswer(); } };
  document.addEventListener("keydown", onKey);

  const unsubscribe = onEvent(async (event) => {
    if (event.type === "chat_token" && event.job_id === state.job && state.streaming) {
      state.streaming.textNode.data += event.token;
      messages.scrollTop = messages.scrollHeight;
    } else if (event.type === "job" && ["succeeded", "failed", "cancelled"].includes(event.job.state)) {
      if (event.job.id === state.job) finish(event.job);
      else if (state.mode === "sending") state.ended.set(event.job.id, event.job);
    }
  });

  // Everything the first draw needs, asked for at once. The model list waits on the engine (half a
  // second at a first start): the screen is drawn without it and the list filled in when it comes.
  const listed = bridge.call("chat_sessions");
  const overview = bridge.call("models_overview");
  try {
    const [{ values: settings }, stats] = await Promise.all([bridge.call("get_settings"), bridge.call("memory_stats")]);
    state.imported = stats.sources.filter((s) => s.kind !== "orch-chat").length;
    defaults = { memory_enabled: settings.memory_enabled, system_prompt: settings.system_prompt, model: settings.chat_model };
  } catch (e) { showError(e); }
  overview.then(({ models }) => {
    model.replaceChildren(...models.filter((m) => m.available).map((m) => h("option", { value: m.name }, m.name)));
    pickModel(defaults.model);
    pickModel(wantedModel);
    model.dataset.loaded = "true";
  }).catch(showError);

  root.append(h("div", { class: "chat-layout" }, history,
    h("div", { class: "chat-main" },
      h("div", { class: "row" }, h("label", {}, t("chat.model")), model, h("label", {}, memory, " ", t("chat.memory"))),
      h("details", {}, h("summary", { class: "muted" }, t("chat.settings")),
        h("label", {}, t("chat.system")), system,
        h("div", { class: "row" }, h("label", {}, t("chat.length"), " ", maxTokens), h("label", {}, t("chat.temperature"), " ", temperature))),
      messages, viewer, notice,
      h("div", { class: "row" }, input), h("div", { class: "row" }, send, stop, regenerate))));
  const sessions = await refreshHistory(listed);
  showSession(sessions.length ? await bridge.call("chat_get", sessions[0].id) : null);
  if (sessions.length) refreshHistory().catch(() => {});
  return () => { document.removeEventListener("keydown", onKey); unsubscribe(); };
}
