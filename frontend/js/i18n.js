// UI text in English and Brazilian Portuguese (the app's origin). Keys missing in a language fall back to English.

const MESSAGES = {
  en: {
    "nav.chat": "Chat", "nav.memory": "Memory", "nav.training": "Training", "nav.models": "Models",
    "nav.network": "Network", "nav.settings": "Settings",
    "common.save": "Save", "common.saved": "Saved.",
    "common.cancel": "Cancel", "common.progress": "Progress", "common.delete": "Delete", "common.refresh": "Refresh", "common.keep": "Keep",
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
    "common.cancel": "Cancelar", "common.progress": "Progresso", "common.delete": "Excluir", "common.refresh": "Atualizar", "common.keep": "Manter",
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
    "status.preparing the base model": "preparando o modelo base",
    "status.building a merged model": "montando um modelo com o adaptador embutido", "status.merging the adapter into its base": "embutindo o adaptador no modelo base",
    "status.uploading the merged model": "enviando o modelo combinado",
    "status.loading the tokenizer": "carregando o tokenizador", "status.reading conversations": "lendo as conversas",
    "status.planning": "planejando", "status.uploading the adapter": "enviando o adaptador", "status.creating the model": "criando o modelo",
    "status.asking the base model": "perguntando ao modelo base", "status.asking the new model": "perguntando ao novo modelo",
    "status.checking its answer": "conferindo a resposta", "status.reading and embedding": "lendo e gerando embeddings",
    "status.writing": "gravando", "status.re-embedding memory for the new model": "recalculando a memória para o novo modelo",
    "status.hashing": "calculando o hash", "status.checking the file": "verificando o arquivo", "status.merging": "mesclando",
    "status.loading the base model": "carregando o modelo base", "status.answering": "respondendo",
    "status.reading model metadata": "lendo os metadados do modelo", "status.writing manifest": "gravando o manifesto",
    "error.error": "Algo deu errado; os detalhes estão no registro do Orch-Mind.",
    "error.internal_error": "Algo deu errado dentro do Orch-Mind; os detalhes estão no registro.",
    "error.invalid_argument": "Um dos valores informados não é válido; confira o formulário e tente de novo.",
    "error.not_found": "Não encontrado: ele não existe (ou não existe mais) neste computador.",
    "error.exists": "Esse nome já está em uso; escolha outro ou exclua o existente.",
    "error.incompatible": "Não combinam: foram feitos para modelos base diferentes.",
    "error.no_data": "Ainda não há dados para isso: importe conversas (ou converse) primeiro.",
    "error.unavailable": "Algo de que isso precisa não está disponível agora; tente de novo em instantes.",
    "error.timeout": "Demorou demais e foi interrompido; tente de novo.",
    "error.engine_unreachable": "O motor de modelos não responde. Confira o endereço do Ollama nas Configurações, ou reinicie o Orch-Mind para usar o motor embutido.",
    "error.engine": "O motor de modelos recusou o pedido.",
    "error.missing_package": "Falta um componente do Orch-Mind; reinstale (o make faz isso).",
    "error.missing_extension": "Falta uma extensão do DuckDB; reinstale o Orch-Mind (o make faz isso).",
    "error.invalid_settings": "Uma configuração não é válida; corrija-a e salve de novo.",
    "error.job_failed": "A tarefa falhou; os detalhes estão no registro.",
    "error.adapter": "Problema com o adaptador.",
    "error.bad_signature": "A assinatura não confere com o autor: o conteúdo foi forjado ou alterado, e foi recusado.",
    "error.base_model": "Problema com o modelo base escolhido.",
    "error.blob_not_found": "Falta um arquivo do modelo no motor; envie-o primeiro.",
    "error.busy": "O motor está ocupado com muitos pedidos; tente de novo em instantes.",
    "error.chat": "A conversa não pôde continuar.",
    "error.checkpoint_corrupted": "O ponto de retomada deste treino está danificado; exclua essa pasta para retomar do anterior, ou treine de novo.",
    "error.deploy_failed": "Não foi possível implantar o adaptador.",
    "error.does_not_fit": "Este treino não cabe na memória livre desta máquina: escolha um modelo base menor, treino em 4 bits ou uma máquina com GPU, ou feche outros programas.",
    "error.preparation": "Este GGUF não pode ser preparado para treino aqui (tipo de tensor, espaço em disco ou memória); use outra quantização do mesmo modelo ou libere espaço.",
    "error.embedding_mismatch": "A memória foi calculada com outro modelo de embeddings; reimporte ou recalcule para pesquisar com este.",
    "error.embedding_model": "Este modelo de embeddings não pode ser usado; escolha outro em Configurações.",
    "error.export_failed": "A exportação falhou; os detalhes estão no registro.",
    "error.identity": "Sua identidade na rede não pôde ser lida.",
    "error.insufficient_storage": "Não há espaço em disco suficiente.",
    "error.invalid_model": "Nome ou pedido de modelo inválido: use letras, dígitos, '.', '_' ou '-'.",
    "error.invalid_model_file": "Este arquivo não é um modelo GGUF que o llama.cpp consiga rodar.",
    "error.invalid_request": "O pedido ao motor não é válido.",
    "error.memory_store": "O banco da memória não pôde ser aberto.",
    "error.merge_failed": "A combinação dos adaptadores falhou.",
    "error.model_error": "O modelo respondeu com um erro.",
    "error.model_exists": "Já existe um modelo com esse nome; escolha outro.",
    "error.model_not_found": "Esse modelo não existe; escolha um da lista de Modelos.",
    "error.model_unavailable": "O arquivo deste modelo sumiu ou mudou; adicione-o de novo em Modelos.",
    "error.no_room": "Entre em uma sala primeiro (a comunidade ou uma sala privada com código de convite).",
    "error.not_trainable": "Este modelo não pode ser treinado aqui.",
    "error.offline": "Você está desconectado: clique em “Conectar” primeiro.",
    "error.p2p": "A rede não pôde concluir o pedido.",
    "error.p2p_state": "Um arquivo de estado da rede está danificado; mova-o para outro lugar e tente de novo.",
    "error.prompt_too_long": "A mensagem é longa demais para a janela de contexto do modelo.",
    "error.quantization": "O modelo base não carrega em 4/8 bits nesta máquina; treine sem quantização.",
    "error.rejected": "O adaptador recebido não passou na verificação e foi recusado.",
    "error.room": "Problema com a sala.",
    "error.search": "A pesquisa não pôde ser feita.",
    "error.training": "O treino não pôde continuar.",
    "error.transfer": "A transferência falhou; tente de novo quando o autor estiver conectado.",
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
  const lookup = (words) => (MESSAGES[language] && MESSAGES[language][`status.${words}`]) || MESSAGES.en[`status.${words}`];
  const [words, detail] = text.split(/: (?=[\d.,]+ [A-Z]B$)/);  // "building a merged model: 1.3 GB": words, then a size
  if (detail !== undefined && lookup(words)) return `${lookup(words)}: ${detail}`;
  return lookup(text) || text;
}

export function extend(lang, messages) { Object.assign(MESSAGES[lang], messages); }
/** A number the way the UI's language writes it (3.213 in pt-BR, 3,213 in English). */
export function localNumber(value, digits = 0) {
  return Number(value).toLocaleString(language, { maximumFractionDigits: digits });
}

/** A date (or date and time) from the backend's ISO text, the way the UI's language writes it. */
export function localDate(iso, withTime = false) {
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  return withTime ? when.toLocaleString(language, { dateStyle: "medium", timeStyle: "short" }) : when.toLocaleDateString(language, { dateStyle: "medium" });
}

/** A copy of one language's messages (the tests compare languages with it). */
export function catalog(lang) { return { ...(MESSAGES[lang] || {}) }; }
export const LANGUAGES = { en: "English", "pt-BR": "Português (Brasil)" };
