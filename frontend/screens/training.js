import { lineChart } from "../js/chart.js";
import { clear, h } from "../js/dom.js";
import { extend } from "../js/i18n.js";

extend("en", {
  "training.what": "Teach a small model your style with LoRA, on your own conversations. Everything stays on this computer.",
  "training.data": "1. Data", "training.voice": "Whose voice to learn",
  "training.voice_assistant": "Assistant answers: the model learns to answer the way your assistant answered you.",
  "training.voice_user": "My own messages: the model learns to write like you.",
  "training.title_filter": "Only conversations whose title contains", "training.date_from": "From date", "training.date_to": "To date", "training.preview": "Preview",
  "training.estimate": "Estimated with the default settings: about {minutes} min and {gb} GB of memory.",
  "training.settings": "2. Settings", "training.base": "Base model", "training.epochs": "Epochs (passes over the data)",
  "training.rank": "LoRA rank (adapter capacity; 8–16 suits small models)", "training.lr": "Learning rate",
  "training.max_tokens": "Longest sample in tokens", "training.name": "Adapter name", "training.start": "Train",
  "training.progress": "3. Progress", "training.cancel": "Cancel", "training.resume": "Resume",
  "training.runs": "Runs", "training.export": "Save as adapter", "training.adapters": "Adapters", "training.deploy": "Deploy",
  "training.evaluation": "Before / after on held-out conversations", "training.samples_stats": "{train} training and {validation} validation samples, {tokens} tokens, {trained} trained tokens, {cut} over-long turns cut.",
});
extend("pt-BR", {
  "training.what": "Ensine seu estilo a um modelo pequeno com LoRA, nas suas próprias conversas. Tudo fica neste computador.",
  "training.data": "1. Dados", "training.voice": "Qual voz aprender",
  "training.voice_assistant": "Respostas do assistente: o modelo aprende a responder como seu assistente respondeu.",
  "training.voice_user": "Minhas mensagens: o modelo aprende a escrever como você.",
  "training.title_filter": "Só conversas cujo título contém", "training.date_from": "Desde", "training.date_to": "Até", "training.preview": "Pré-visualizar",
  "training.estimate": "Estimativa com os ajustes padrão: cerca de {minutes} min e {gb} GB de memória.",
  "training.settings": "2. Configurações", "training.base": "Modelo base", "training.epochs": "Épocas (passagens pelos dados)",
  "training.rank": "Rank LoRA (capacidade do adaptador; 8–16 para modelos pequenos)", "training.lr": "Taxa de aprendizado",
  "training.max_tokens": "Maior amostra em tokens", "training.name": "Nome do adaptador", "training.start": "Treinar",
  "training.progress": "3. Progresso", "training.cancel": "Cancelar", "training.resume": "Retomar",
  "training.runs": "Execuções", "training.export": "Salvar como adaptador", "training.adapters": "Adaptadores", "training.deploy": "Implantar",
  "training.evaluation": "Antes / depois em conversas separadas", "training.samples_stats": "{train} amostras de treino e {validation} de validação, {tokens} tokens, {trained} tokens treinados, {cut} turnos longos cortados.",
});

export async function render({ root, bridge, t, showError, onEvent }) {
  const field = (label, control) => [h("label", {}, label), control];
  const voice = h("select", { "data-testid": "train-voice" },
    h("option", { value: "assistant" }, t("training.voice_assistant")), h("option", { value: "user" }, t("training.voice_user")));
  const title = h("input", { "data-testid": "train-title" });
  const dateFrom = h("input", { type: "date", "data-testid": "train-date-from" });
  const dateTo = h("input", { type: "date", "data-testid": "train-date-to" });
  // The base is picked from the engine's models, never typed as a path (the bridge refuses paths).
  const base = h("select", { "data-testid": "train-base" }, h("option", { value: "smollm2:latest" }, "smollm2:latest"));
  bridge.call("models_overview").then((overview) => {
    const chosen = base.value;
    clear(base).append(...overview.models.map((m) => h("option", { value: m.name, selected: m.name === chosen }, m.name)));
  }).catch(showError);
  const epochs = h("input", { type: "number", value: 2, min: 1, max: 100, "data-testid": "train-epochs" });
  const rank = h("input", { type: "number", value: 8, min: 1, max: 256 });
  const lr = h("input", { type: "number", value: 0.0002, step: 0.0001, "data-testid": "train-lr" });
  const maxTokens = h("input", { type: "number", value: 512, min: 32, max: 32768 });
  const name = h("input", { value: "my-adapter", "data-testid": "train-name" });
  const preview = h("div", { "data-testid": "train-preview" });
  const bar = h("progress", { max: 1, value: 0, "data-testid": "train-progress" });
  const status = h("div", { class: "muted", "data-testid": "train-status" });
  const chart = h("div", { "data-testid": "loss-chart" });
  const evaluation = h("div", { "data-testid": "train-evaluation" });
  const runs = h("div", { "data-testid": "train-runs" });
  const adapters = h("div", { "data-testid": "adapters" });
  const cancel = h("button", { class: "secondary", hidden: true, "data-testid": "train-cancel" }, t("training.cancel"));
  const series = { train: [], eval: [] };
  let job = null;

  function drawChart() {
    clear(chart).append(lineChart([{ name: "train", color: "#7c9cff", points: series.train }, { name: "validation", color: "#4cd699", points: series.eval }]));
  }

  function showEvaluation(result) {
    if (!result) return;
    const fmt = (v) => (v === null || v === undefined ? "–" : v.toFixed(4));
    clear(evaluation).append(h("h2", {}, t("training.evaluation")), h("table", {},
      h("tr", {}, h("th", {}), h("th", {}, "base"), h("th", {}, "fine-tuned")),
      h("tr", {}, h("td", {}, "validation loss"), h("td", {}, fmt(result.base_eval_loss)), h("td", { "data-testid": "eval-loss" }, fmt(result.eval_loss))),
      h("tr", {}, h("td", {}, "perplexity"), h("td", {}, fmt(result.base_perplexity)), h("td", {}, fmt(result.perplexity))),
      ...result.samples.map((s) => h("tr", {}, h("td", {}, s.prompt), h("td", {}, s.base), h("td", {}, s.fine_tuned)))));
  }

  async function refresh() {
    const [runList, adapterList] = await Promise.all([bridge.call("training_runs"), bridge.call("adapters_list")]);
    clear(runs).append(h("table", {}, ...runList.map((r) => h("tr", {},
      h("td", {}, r.run), h("td", {}, r.adapter_name), h("td", {}, r.finished ? "✓" : (r.checkpoint || "")),
      h("td", {}, r.finished
        ? h("button", { class: "secondary", onclick: async () => {
            try { await bridge.call("training_export", r.run, r.adapter_name); await refresh(); } catch (e) { showError(e); } } }, t("training.export"))
        : r.checkpoint ? h("button", { class: "secondary", onclick: async () => {
            try { watch((await bridge.call("training_resume", r.run)).job_id); } catch (e) { showError(e); } } }, t("training.resume")) : "")))));
    clear(adapters).append(h("table", {}, ...adapterList.map((a) => h("tr", { "data-testid": "adapter-row" },
      h("td", {}, a.name), h("td", {}, a.base.reference), h("td", {}, `r=${a.rank}`),
      h("td", {}, a.metrics.eval_loss !== undefined ? `loss ${a.metrics.eval_loss.toFixed(3)}` : ""),
      h("td", {}, h("button", { class: "primary", onclick: async () => {
        try {
          const result = await bridge.call("adapters_deploy", a.name, a.name);
          status.className = "ok"; status.textContent = `${result.model}: ${result.smoke.adapted.slice(0, 120)}`;
        } catch (e) { showError(e); } } }, t("training.deploy")),
        h("button", { class: "danger", onclick: async () => {
          try { await bridge.call("adapters_delete", a.name); await refresh(); } catch (e) { showError(e); } } }, t("common.delete")))))));
  }

  function watch(jobId) {
    job = jobId; series.train = []; series.eval = []; cancel.hidden = false; bar.removeAttribute("value"); drawChart();
  }

  const stop = onEvent((event) => {
    if (!job || (event.job_id !== job && !(event.job && event.job.id === job))) return;
    if (event.type === "progress") {
      if (event.total) { bar.max = event.total; bar.value = event.completed; }
      status.className = "muted";
      status.textContent = event.loss !== undefined
        ? `${event.status} ${event.completed}/${event.total} · loss ${event.loss.toFixed(4)} · ${Math.round(event.tokens_per_s)} tok/s · ETA ${Math.round(event.eta_s)} s`
        : event.status;
      if (event.loss !== undefined) { series.train.push([event.completed, event.loss]); drawChart(); }
    } else if (event.type === "eval" && event.eval_loss !== null) {
      series.eval.push([event.step, event.eval_loss]); drawChart();
    } else if (event.type === "job" && ["succeeded", "failed", "cancelled"].includes(event.job.state)) {
      job = null; cancel.hidden = true;
      status.className = event.job.state === "succeeded" ? "ok" : "error";
      status.textContent = event.job.state === "failed" ? event.job.error.message : event.job.state;
      if (event.job.result && event.job.result.evaluation) showEvaluation(event.job.result.evaluation);
      refresh().catch(showError);
    }
  });

  cancel.addEventListener("click", () => job && bridge.call("cancel_job", job).catch(showError));

  root.append(
    h("h1", {}, t("training.title")), h("p", { class: "muted" }, t("training.what")),
    h("div", { class: "card" }, h("h2", {}, t("training.data")), ...field(t("training.voice"), voice), ...field(t("training.title_filter"), title),
      ...field(t("training.date_from"), dateFrom), ...field(t("training.date_to"), dateTo),
      h("div", { class: "row" }, h("button", { class: "secondary", "data-testid": "train-preview-button", onclick: async () => {
        try {
          clear(preview).append(h("p", { class: "muted" }, "…"));
          const result = await bridge.call("training_preview", base.value, voice.value, Number.parseInt(maxTokens.value, 10), title.value || null,
            dateFrom.value || null, dateTo.value || null);
          const s = result.stats;
          const e = result.estimate;
          clear(preview).append(h("p", {}, t("training.samples_stats", { train: s.train_samples, validation: s.validation_samples, tokens: s.tokens, trained: s.trained_tokens, cut: s.truncated_turns })),
            h("p", { class: e.fits_ram ? "muted" : "error", "data-testid": "train-estimate" }, t("training.estimate", { minutes: e.minutes, gb: (e.memory_bytes / 1e9).toFixed(1) })),
            ...result.samples.map((sample) => h("div", { class: "hit" }, h("div", { class: "meta" }, `${sample.tokens} tokens, ${sample.trained_tokens} trained`), h("pre", {}, sample.text))));
        } catch (e) { clear(preview); showError(e); }
      } }, t("training.preview"))), preview),
    h("div", { class: "card" }, h("h2", {}, t("training.settings")), ...field(t("training.base"), base), ...field(t("training.epochs"), epochs),
      ...field(t("training.rank"), rank), ...field(t("training.lr"), lr), ...field(t("training.max_tokens"), maxTokens), ...field(t("training.name"), name),
      h("div", { class: "row" }, h("button", { class: "primary", "data-testid": "train-start", onclick: async () => {
        try {
          watch((await bridge.call("training_start", base.value, voice.value, Number.parseInt(epochs.value, 10), Number.parseInt(rank.value, 10),
            Number.parseFloat(lr.value), Number.parseInt(maxTokens.value, 10), title.value || null, name.value,
            dateFrom.value || null, dateTo.value || null)).job_id);
        } catch (e) { showError(e); }
      } }, t("training.start")), cancel)),
    h("div", { class: "card" }, h("h2", {}, t("training.progress")), bar, status, chart, evaluation),
    h("div", { class: "card" }, h("h2", {}, t("training.runs")), runs, h("h2", {}, t("training.adapters")), adapters),
  );
  drawChart();
  await refresh();
  return stop;
}
