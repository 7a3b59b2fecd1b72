// UI text in English and Brazilian Portuguese (the app's origin). Keys missing in a language fall back to English.

const MESSAGES = {
  en: {
    "nav.chat": "Chat", "nav.memory": "Memory", "nav.training": "Training", "nav.models": "Models",
    "nav.network": "Network", "nav.settings": "Settings",
    "common.save": "Save", "common.saved": "Saved.",
    "common.cancel": "Cancel", "common.delete": "Delete", "common.refresh": "Refresh", "common.keep": "Keep",
    "bridge.ok": "Connected", "bridge.error": "Bridge unavailable", "bridge.mode_browser": "browser", "bridge.mode_window": "window",
    "training.title": "Training",
    "models.title": "Models", "chat.title": "Chat",
    "memory.title": "Memory",
    "settings.title": "Settings", "settings.language": "Language", "settings.ollama_host": "Ollama address",
    "settings.chat_model": "Chat model", "settings.embedding_model": "Embedding model",
    "settings.memory_enabled": "Use memory in chat", "settings.memory_top_k": "Memory chunks per answer",
    "settings.memory_includes_chats": "Answers may also draw on your earlier Orch-Mind chats",
    "settings.system_prompt": "System prompt", "settings.data_dir": "Data folder",
    "status.queued": "waiting", "status.running": "running", "status.succeeded": "done", "status.failed": "failed",
    "status.cancelled": "cancelled", "status.training_on": "training on {device} ({precision})",
  },
  "pt-BR": {
    "nav.chat": "Conversa", "nav.memory": "Memória", "nav.training": "Treinamento", "nav.models": "Modelos",
    "nav.network": "Rede", "nav.settings": "Configurações",
    "common.save": "Salvar", "common.saved": "Salvo.",
    "common.cancel": "Cancelar", "common.delete": "Excluir", "common.refresh": "Atualizar", "common.keep": "Manter",
    "bridge.ok": "Conectado", "bridge.error": "Ponte indisponível", "bridge.mode_browser": "navegador", "bridge.mode_window": "janela",
    "training.title": "Treinamento",
    "models.title": "Modelos", "chat.title": "Conversa",
    "memory.title": "Memória",
    "settings.title": "Configurações", "settings.language": "Idioma", "settings.ollama_host": "Endereço do Ollama",
    "settings.chat_model": "Modelo de conversa", "settings.embedding_model": "Modelo de embeddings",
    "settings.memory_enabled": "Usar memória na conversa", "settings.memory_top_k": "Trechos de memória por resposta",
    "settings.memory_includes_chats": "As respostas também podem usar suas conversas anteriores no Orch-Mind",
    "settings.system_prompt": "Prompt de sistema", "settings.data_dir": "Pasta de dados",
    "status.queued": "aguardando", "status.running": "em andamento", "status.succeeded": "concluído", "status.failed": "falhou",
    "status.cancelled": "cancelado", "status.training_on": "treinando em {device} ({precision})",
    "status.loading base model": "carregando o modelo base", "status.creating adapter layer": "criando a camada do adaptador",
    "status.evaluating": "avaliando", "status.training": "treinando", "status.resumed": "retomado",
    "status.preparing data": "preparando os dados", "status.reading and embedding": "lendo e gerando embeddings",
    "status.writing": "gravando", "status.re-embedding memory for the new model": "recalculando a memória para o novo modelo",
    "status.hashing": "calculando o hash", "status.checking the file": "verificando o arquivo", "status.merging": "mesclando",
    "status.loading the base model": "carregando o modelo base", "status.answering": "respondendo",
    "status.reading model metadata": "lendo os metadados do modelo", "status.writing manifest": "gravando o manifesto",
  },
};

let language = "en";

export function setLanguage(lang) {
  language = MESSAGES[lang] ? lang : "en";
  document.documentElement.lang = language;
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
}

export function t(key, vars = {}) {
  const text = (MESSAGES[language] && MESSAGES[language][key]) || MESSAGES.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** An error from the bridge or a job, in the UI's language: the server's own words in English (they
 * name the file and the problem), a translation by error code in other languages, when there is one. */
export function errorText(error) {
  if (!error) return "";
  const key = `error.${error.code}`;
  if (language !== "en" && MESSAGES[language] && MESSAGES[language][key]) return MESSAGES[language][key];
  return error.message || String(error);
}

/** A job's state or a progress status from the backend (plain English words, e.g. "evaluating"), in
 * the UI's language when there is a translation; unknown ones are shown as they came. */
export function statusText(status) {
  const text = String(status ?? "");
  const running = /^training on (\w+) \(([\w-]+)\)$/.exec(text);
  if (running) return t("status.training_on", { device: running[1], precision: running[2] });
  const key = `status.${text}`;
  return (MESSAGES[language] && MESSAGES[language][key]) || MESSAGES.en[key] || text;
}

export function extend(lang, messages) { Object.assign(MESSAGES[lang], messages); }
/** A copy of one language's messages (the tests compare languages with it). */
export function catalog(lang) { return { ...(MESSAGES[lang] || {}) }; }
export const LANGUAGES = { en: "English", "pt-BR": "Português (Brasil)" };
