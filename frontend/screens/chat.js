import { clear, h } from "../js/dom.js";
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
});

export async function render({ root, bridge, t, showError, onEvent }) {
  const state = { session: null, job: null, streaming: null };
  const history = h("div", { class: "chat-history", "data-testid": "chat-history" });
  const messages = h("div", { class: "messages", "data-testid": "messages" });
  const notice = h("div", { class: "muted", "data-testid": "chat-notice" });
  const input = h("textarea", { rows: 3, placeholder: t("chat.placeholder"), "data-testid": "chat-input" });
  const send = h("button", { class: "primary", "data-testid": "chat-send" }, t("chat.send"));
  const stop = h("button", { class: "secondary", hidden: true, "data-testid": "chat-stop" }, t("chat.stop"));
  const regenerate = h("button", { class: "secondary", "data-testid": "chat-regenerate" }, t("chat.regenerate"));
  const model = h("select", { "data-testid": "chat-model" });
  const memory = h("input", { type: "checkbox", "data-testid": "chat-memory" });
  const system = h("textarea", { rows: 2, "data-testid": "chat-system" });
  const maxTokens = h("input", { type: "number", min: 16, max: 32768, step: 64, placeholder: t("chat.default"), "data-testid": "chat-max-tokens" });
  const temperature = h("input", { type: "number", min: 0, max: 2, step: 0.1, placeholder: t("chat.default"), "data-testid": "chat-temperature" });
  const viewer = h("div", { class: "card", hidden: true, "data-testid": "memory-viewer" });

  async function openSource(source) {
    try {
      const conversation = await bridge.call("memory_conversation", source.conversation_key);
      clear(viewer).append(
        h("div", { class: "row" }, h("strong", {}, conversation.title), h("button", { class: "secondary", onclick: () => { viewer.hidden = true; } }, t("chat.close"))),
        ...conversation.messages.map((m) => h("div", { class: `msg ${m.role}` }, h("div", { class: "meta muted" }, m.role), renderMarkdown(m.text))));
      viewer.hidden = false;
    } catch (e) { showError(e); }
  }

  function messageNode(message) {
    const node = h("div", { class: `msg ${message.role}`, "data-testid": `msg-${message.role}` }, renderMarkdown(message.content));
    const ended = message.stats && message.stats.ended;
    if (ended === "length") node.append(h("div", { class: "muted", "data-testid": "msg-cut" }, t("chat.cut", { n: message.stats.max_tokens })));
    else if (ended === "repetition") node.append(h("div", { class: "muted", "data-testid": "msg-repeating" }, t("chat.repeating")));
    else if (message.stats && message.stats.stopped) node.append(h("span", { class: "muted" }, ` ${t("chat.stopped")}`));
    if (message.sources && message.sources.length) {
      node.append(h("div", { class: "sources", "data-testid": "sources" }, `${t("chat.sources")}: `,
        ...message.sources.map((s) => h("button", { class: "secondary", "data-testid": "source", onclick: () => openSource(s) },
          `[${s.number}] ${s.title}`))));
    }
    return node;
  }

  function showSession(session) {
    state.session = session;
    clear(messages).append(...(session.messages.length ? session.messages.map(messageNode) : [h("p", { class: "muted" }, t("chat.empty"))]));
    memory.checked = session.memory_enabled;
    system.value = session.system_prompt;
    maxTokens.value = session.max_tokens ?? "";
    temperature.value = session.temperature ?? "";
    if ([...model.options].some((o) => o.value === session.model)) model.value = session.model;
    const last = session.messages[session.messages.length - 1];
    notice.textContent = last && last.stats && last.stats.dropped_turns ? t("chat.dropped", { n: last.stats.dropped_turns }) : "";
    messages.scrollTop = messages.scrollHeight;
  }

  async function refreshHistory() {
    const sessions = await bridge.call("chat_sessions");
    clear(history).append(h("button", { class: "primary", "data-testid": "chat-new", onclick: newChat }, t("chat.new")),
      ...sessions.map((s) => h("div", { class: "row" },
        h("button", { class: state.session && s.id === state.session.id ? "primary" : "secondary", onclick: async () => showSession(await bridge.call("chat_get", s.id)) }, s.title),
        h("button", { class: "danger", title: t("chat.delete"), onclick: async () => {
          await bridge.call("chat_delete", s.id);
          if (state.session && state.session.id === s.id) { state.session = null; clear(messages); }
          refreshHistory();
        } }, "×"))));
  }

  async function newChat() {
    try { showSession(await bridge.call("chat_new", model.value || null, null)); await refreshHistory(); } catch (e) { showError(e); }
  }

  function setBusy(busy) { send.disabled = busy; regenerate.disabled = busy; stop.hidden = !busy; }

  async function startTurn(method, ...args) {
    if (!state.session) await newChat();
    try {
      await bridge.call("chat_update", state.session.id, null, model.value || null, system.value, memory.checked);
      const number = (field, parse) => (field.value.trim() === "" ? null : parse(field.value));
      await bridge.call("chat_set_options", state.session.id, number(maxTokens, (v) => Number.parseInt(v, 10)), number(temperature, Number.parseFloat));
      const { job_id } = await bridge.call(method, state.session.id, ...args);
      state.job = job_id;
      state.streaming = h("div", { class: "msg assistant streaming", "data-testid": "msg-streaming" });
      state.streaming.textBuffer = "";
      messages.append(state.streaming);
      setBusy(true);
    } catch (e) { showError(e); }
  }

  send.addEventListener("click", async () => {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    if (state.session) messages.append(messageNode({ role: "user", content: text }));
    await startTurn("chat_send", text);
  });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send.click(); } });
  regenerate.addEventListener("click", () => startTurn("chat_regenerate"));
  stop.addEventListener("click", () => { if (state.job) bridge.call("cancel_job", state.job).catch(showError); });

  const unsubscribe = onEvent(async (event) => {
    if (!state.job) return;
    if (event.type === "chat_token" && event.job_id === state.job && state.streaming) {
      state.streaming.textBuffer += event.token;
      state.streaming.textContent = state.streaming.textBuffer;
      messages.scrollTop = messages.scrollHeight;
    } else if (event.type === "job" && event.job.id === state.job && ["succeeded", "failed", "cancelled"].includes(event.job.state)) {
      state.job = null;
      setBusy(false);
      if (event.job.state === "failed") showError(event.job.error);
      if (state.session) showSession(await bridge.call("chat_get", state.session.id));
      refreshHistory();
    }
  });

  try {
    const overview = await bridge.call("models_overview");
    overview.models.filter((m) => m.available).forEach((m) => model.append(h("option", { value: m.name }, m.name)));
  } catch (e) { showError(e); }

  root.append(h("div", { class: "chat-layout" }, history,
    h("div", { class: "chat-main" },
      h("div", { class: "row" }, h("label", {}, t("chat.model")), model, h("label", {}, memory, " ", t("chat.memory"))),
      h("details", {}, h("summary", { class: "muted" }, t("chat.settings")),
        h("label", {}, t("chat.system")), system,
        h("div", { class: "row" }, h("label", {}, t("chat.length"), " ", maxTokens), h("label", {}, t("chat.temperature"), " ", temperature))),
      messages, viewer, notice,
      h("div", { class: "row" }, input), h("div", { class: "row" }, send, stop, regenerate))));
  const sessions = await bridge.call("chat_sessions");
  await refreshHistory();
  if (sessions.length) showSession(await bridge.call("chat_get", sessions[0].id));
  else clear(messages).append(h("p", { class: "muted" }, t("chat.empty")));
  return unsubscribe;
}
