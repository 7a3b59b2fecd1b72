import { lineChart } from "../js/chart.js";
import { diffWords, markedText } from "../js/diff.js";
import { clear, confirmInPlace, field, h, icon } from "../js/dom.js";
import { errorText, extend, localNumber, statusText } from "../js/i18n.js";
import { jobLine } from "../js/job_line.js";

extend("en", {
  "training.what": "Teach a small model your style with LoRA, on your own conversations. Everything stays on this computer.",
  "training.data": "1. Data", "training.voice": "Whose voice to learn",
  "training.voice_assistant": "Assistant answers: the model learns to answer the way your assistant answered you.",
  "training.voice_user": "My own messages: the model learns to write like you.",
  "training.title_filter": "Only conversations whose title contains", "training.date_from": "From date", "training.date_to": "To date", "training.preview": "Preview",
  "training.settings": "2. Settings", "training.base": "Base model", "training.epochs": "Epochs (passes over the data)",
  "training.rank": "LoRA rank (adapter capacity; 8–16 suits small models)", "training.lr": "Learning rate",
  "training.max_tokens": "Longest sample in tokens", "training.name": "Adapter name", "training.start": "Train",
  "training.progress": "3. Progress", "training.cancel": "Cancel", "training.resume": "Resume",
  "training.no_runs": "No runs yet: preview your data above (step 1), then press Train (step 2).", "training.chat_with": "Chat with it", "training.delete_confirm": "Delete the adapter {name}? Models deployed from it stop working.", "training.cancelling": "Cancelling: saving a checkpoint to resume from…",
  "training.deploying": "Deploying {name} and trying it on one prompt…", "training.previewing": "Reading your conversations and counting tokens…",
  "training.preview_cancelled": "Preview cancelled.", "training.deploy_cancelled": "Deploy cancelled: no model was left behind.",
  "training.sample_tokens": "{tokens} tokens, {trained} trained", "training.deploy_running": "Deploying a model and trying it on one prompt…",
  "training.still_running": "A run is in progress; its next update appears here.",
  "training.curve_train": "training loss", "training.curve_validation": "validation loss", "training.axis_step": "step",
  "training.axis_loss": "loss", "training.chart_title": "Loss by optimizer step (lower is better)",
  "training.runs": "Runs", "training.export": "Save as adapter", "training.adapters": "Adapters", "training.deploy": "Deploy",
  "training.evaluation": "Before / after on held-out conversations", "training.samples_stats": "{train} training and {validation} validation samples, {tokens} tokens, {trained} trained tokens.",
  "training.split": "{split_turns} exchanges longer than the longest sample were split at sentences into several samples.",
  "training.left_out": "{left_out_turns} exchanges do not fit even split at sentences and are left out (raise the longest sample):",
  "training.auto": "auto", "training.show": "Before / after",
  "training.cost": "Runs on {path}: about {ram} GB of RAM{vram} and {disk} MB of disk.",
  "training.cost_vram": ", {vram} GB of GPU memory", "training.fitted": "To fit in free memory it trains in micro-batches of {batch} ({accum} per step) with gradient checkpointing.",
  "training.path.cpu-fp32": "this computer's processor (fp32)", "training.path.cpu-bf16": "this computer's processor (bf16)",
  "training.path.cpu-4bit": "this computer's processor, 4-bit base", "training.path.cpu-8bit": "this computer's processor, 8-bit base",
  "training.path.cuda-qlora": "the GPU, QLoRA (4-bit base)", "training.path.cuda-8bit": "the GPU, 8-bit base",
  "training.path.cuda-bf16": "the GPU (bf16)", "training.path.cuda-fp32": "the GPU (fp32)", "training.path.cuda-fsdp": "{gpus} GPUs, the base sharded across them (FSDP, bf16)",
  "training.plan": "Plan: {steps} steps ({epochs}× over the {samples} samples, {batch} per step, {tokens} tokens), learning rate {lr}, about {minutes} min and {gb} GB of memory. It checks itself on held-out conversations every {every} steps and stops early once they stop improving, keeping the best adapter.",
  "training.early_stop": "Held-out conversations stopped improving: stopped at step {step} of {total}, keeping the adapter of step {best}.",
  "training.verdict_strong": "Clearly learned: on conversations it never saw, the fine-tuned model finds your replies {factor}× easier to predict than the base model (perplexity {before} → {after}).",
  "training.verdict_some": "Learned a little: held-out replies are {percent}% easier to predict (perplexity {before} → {after}).",
  "training.verdict_none": "Nearly unchanged: held-out replies are about as predictable as with the base model (perplexity {before} → {after}).",
  "training.verdict_worse": "Worse on conversations it never saw (perplexity {before} → {after}): it learned the training conversations by heart.",
  "training.advice_none": "Try: leave epochs and learning rate on auto (or raise them), add more conversations, or pick conversations with a consistent style (the title and date filters above).",
  "training.advice_worse": "Try: fewer epochs or a lower learning rate, or more conversations.",
  "training.same_replies": "The sample replies below did not change.",
  "training.prompt": "Prompt", "training.base_reply": "Base model", "training.tuned_reply": "Fine-tuned (changes marked)",
  "training.compare": "Compare adapters", "training.compare_help": "Pick up to three adapters of the same base; each answers the same prompts (one per line).",
  "training.compare_button": "Compare", "training.compare_limit": "Pick one to three adapters.",
});
extend("pt-BR", {
  "training.what": "Ensine seu estilo a um modelo pequeno com LoRA, nas suas próprias conversas. Tudo fica neste computador.",
  "training.data": "1. Dados", "training.voice": "Qual voz aprender",
  "training.voice_assistant": "Respostas do assistente: o modelo aprende a responder como seu assistente respondeu.",
  "training.voice_user": "Minhas mensagens: o modelo aprende a escrever como você.",
  "training.title_filter": "Só conversas cujo título contém", "training.date_from": "Desde", "training.date_to": "Até", "training.preview": "Pré-visualizar",
  "training.settings": "2. Configurações", "training.base": "Modelo base", "training.epochs": "Épocas (passagens pelos dados)",
  "training.rank": "Rank LoRA (capacidade do adaptador; 8–16 para modelos pequenos)", "training.lr": "Taxa de aprendizado",
  "training.max_tokens": "Maior amostra em tokens", "training.name": "Nome do adaptador", "training.start": "Treinar",
  "training.progress": "3. Progresso", "training.cancel": "Cancelar", "training.resume": "Retomar",
  "training.no_runs": "Nenhum treino ainda: pré-visualize seus dados acima (passo 1) e clique em Treinar (passo 2).", "training.chat_with": "Conversar com ele", "training.delete_confirm": "Excluir o adaptador {name}? Os modelos implantados a partir dele param de funcionar.", "training.cancelling": "Cancelando: salvando um ponto de retomada…",
  "training.deploying": "Implantando {name} e testando com uma pergunta…", "training.previewing": "Lendo suas conversas e contando tokens…",
  "training.preview_cancelled": "Pré-visualização cancelada.", "training.deploy_cancelled": "Implantação cancelada: nenhum modelo ficou para trás.",
  "training.sample_tokens": "{tokens} tokens, {trained} treinados", "training.deploy_running": "Implantando um modelo e testando com uma pergunta…",
  "training.still_running": "Há um treino em andamento; a próxima atualização aparece aqui.",
  "training.curve_train": "perda no treino", "training.curve_validation": "perda na validação", "training.axis_step": "passo",
  "training.axis_loss": "perda", "training.chart_title": "Perda por passo do otimizador (menor é melhor)",
  "training.runs": "Execuções", "training.export": "Salvar como adaptador", "training.adapters": "Adaptadores", "training.deploy": "Implantar",
  "training.evaluation": "Antes / depois em conversas separadas", "training.samples_stats": "{train} amostras de treino e {validation} de validação, {tokens} tokens, {trained} tokens treinados.",
  "training.split": "{split_turns} trocas maiores que a amostra mais longa foram divididas em frases, em várias amostras.",
  "training.left_out": "{left_out_turns} trocas não cabem nem divididas em frases e ficaram de fora (aumente a amostra mais longa):",
  "training.auto": "automático", "training.show": "Antes / depois",
  "training.cost": "Roda em {path}: cerca de {ram} GB de RAM{vram} e {disk} MB de disco.",
  "training.cost_vram": ", {vram} GB de memória da GPU", "training.fitted": "Para caber na memória livre, treina em micro-lotes de {batch} ({accum} por passo) com checkpointing de gradiente.",
  "training.path.cpu-fp32": "no processador deste computador (fp32)", "training.path.cpu-bf16": "no processador deste computador (bf16)",
  "training.path.cpu-4bit": "no processador deste computador, base em 4 bits", "training.path.cpu-8bit": "no processador deste computador, base em 8 bits",
  "training.path.cuda-qlora": "na GPU, QLoRA (base em 4 bits)", "training.path.cuda-8bit": "na GPU, base em 8 bits",
  "training.path.cuda-bf16": "na GPU (bf16)", "training.path.cuda-fp32": "na GPU (fp32)", "training.path.cuda-fsdp": "{gpus} GPUs, com a base dividida entre elas (FSDP, bf16)",
  "training.plan": "Plano: {steps} passos ({epochs}× pelas {samples} amostras, {batch} por passo, {tokens} tokens), taxa de aprendizado {lr}, cerca de {minutes} min e {gb} GB de memória. A cada {every} passos ele se avalia em conversas separadas e para antes se elas deixarem de melhorar, mantendo o melhor adaptador.",
  "training.early_stop": "As conversas separadas deixaram de melhorar: parou no passo {step} de {total}, mantendo o adaptador do passo {best}.",
  "training.verdict_strong": "Aprendeu claramente: em conversas que nunca viu, o modelo ajustado acha suas respostas {factor}× mais fáceis de prever que o modelo base (perplexidade {before} → {after}).",
  "training.verdict_some": "Aprendeu um pouco: as respostas separadas ficaram {percent}% mais fáceis de prever (perplexidade {before} → {after}).",
  "training.verdict_none": "Quase igual: as respostas separadas são tão previsíveis quanto com o modelo base (perplexidade {before} → {after}).",
  "training.verdict_worse": "Pior em conversas que nunca viu (perplexidade {before} → {after}): decorou as conversas de treino.",
  "training.advice_none": "Tente: deixar épocas e taxa de aprendizado no automático (ou aumentá-las), adicionar mais conversas ou escolher conversas de estilo consistente (filtros de título e data acima).",
  "training.advice_worse": "Tente: menos épocas ou uma taxa de aprendizado menor, ou mais conversas.",
  "training.same_replies": "As respostas de exemplo abaixo não mudaram.",
  "training.prompt": "Pergunta", "training.base_reply": "Modelo base", "training.tuned_reply": "Ajustado (mudanças marcadas)",
  "training.compare": "Comparar adaptadores", "training.compare_help": "Escolha até três adaptadores do mesmo modelo base; cada um responde às mesmas perguntas (uma por linha).",
  "training.compare_button": "Comparar", "training.compare_limit": "Escolha de um a três adaptadores.",
});

// Kept while the app runs, so leaving the screen loses neither the form nor the run being watched.
const kept = { form: {}, job: null, series: { train: [], eval: [] } };

export async function render({ root, bridge, t, showError, onEvent }) {
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
  // Epochs and learning rate are planned from the data unless the user types a value.
  const epochs = h("input", { type: "number", min: 1, max: 100, placeholder: t("training.auto"), "data-testid": "train-epochs" });
  const rank = h("input", { type: "number", value: 8, min: 1, max: 256 });
  const lr = h("input", { type: "number", step: 0.0001, placeholder: t("training.auto"), "data-testid": "train-lr" });
  const orAuto = (input, parse) => (input.value.trim() === "" ? null : parse(input.value));
  // The form as the bridge's TrainingRequest (one object: no two values can trade places).
  const runRequest = () => ({
    base: base.value, voice: voice.value, title_contains: title.value || null, date_from: dateFrom.value || null, date_to: dateTo.value || null,
    epochs: orAuto(epochs, (v) => Number.parseInt(v, 10)), rank: Number.parseInt(rank.value, 10), learning_rate: orAuto(lr, Number.parseFloat),
    max_tokens: Number.parseInt(maxTokens.value, 10),
  });
  const maxTokens = h("input", { type: "number", value: 512, min: 32, max: 32768 });
  const name = h("input", { value: "my-adapter", "data-testid": "train-name" });
  const preview = h("div", { "data-testid": "train-preview" });
  const bar = h("progress", { max: 1, value: 0, "data-testid": "train-progress" });
  const status = h("div", { class: "muted", "data-testid": "train-status" });
  const chart = h("div", { "data-testid": "loss-chart" });
  const planNote = h("p", { class: "muted", "data-testid": "train-plan-running" });
  const evaluation = h("div", { "data-testid": "train-evaluation" });
  const comparePrompts = h("textarea", { rows: 3, "data-testid": "compare-prompts", "aria-label": t("training.compare_help") });
  const compareResult = h("div", { "data-testid": "compare-result" });
  let compareJob = null;
  const runs = h("div", { "data-testid": "train-runs" });
  const adapters = h("div", { "data-testid": "adapters" });
  const cancel = h("button", { class: "secondary", hidden: true, "data-testid": "train-cancel" }, t("training.cancel"));
  const series = kept.series;
  let job = kept.job;
  const start = h("button", { class: "primary", "data-testid": "train-start" }, t("training.start"));
  const chatWith = h("button", { class: "secondary", hidden: true, "data-testid": "train-chat-with" }, t("training.chat_with"));
  const deployStatus = h("div", { class: "muted", "data-testid": "deploy-status" });
  const setDeployButtons = (busy) => adapters.querySelectorAll("[data-testid=adapter-deploy]").forEach((button) => { button.disabled = busy; });
  const deploying = jobLine({ bridge, t, testid: "deploy-job", onSettled: () => setDeployButtons(false), onDone: (ended) => {
    if (ended.state === "succeeded") {
      const result = ended.result;
      deployStatus.className = "ok"; deployStatus.textContent = `${result.model}: ${result.smoke.adapted.slice(0, 120)}`;
      chatWith.dataset.model = result.model; chatWith.hidden = false;
    } else {
      deployStatus.className = ended.state === "failed" ? "error" : "muted";
      deployStatus.textContent = ended.state === "failed" ? errorText(ended.error) : t("training.deploy_cancelled");
    }
  } });
  const previewButton = h("button", { class: "secondary", "data-testid": "train-preview-button" }, t("training.preview"));
  const previewing = jobLine({ bridge, t, testid: "train-preview-job", onDone: (ended) => {
    previewButton.disabled = false;
    if (ended.state === "succeeded") showPreview(ended.result);
    else clear(preview).append(h("p", { class: ended.state === "failed" ? "error" : "muted", "data-testid": "train-preview-ended" },
      ended.state === "failed" ? errorText(ended.error) : t("training.preview_cancelled")));
  } });
  const remembered = { voice, title, dateFrom, dateTo, epochs, rank, lr, maxTokens, name };
  for (const [key, input] of Object.entries(remembered)) {
    if (kept.form[key] !== undefined) input.value = kept.form[key];
    input.addEventListener("change", () => { kept.form[key] = input.value; });
  }
  function running(on) {
    start.disabled = on; cancel.hidden = !on; cancel.disabled = false;
  }

  function drawChart() {
    clear(chart).append(lineChart([{ name: t("training.curve_train"), tone: "accent", points: series.train },
      { name: t("training.curve_validation"), tone: "ok", points: series.eval }],
    { xLabel: t("training.axis_step"), yLabel: t("training.axis_loss"), title: t("training.chart_title") }));
  }

  const planText = (p) => t("training.plan", { steps: p.steps, epochs: p.epochs, samples: p.samples, batch: p.batch_size * p.grad_accum, tokens: localNumber(p.tokens),
    lr: Number(p.learning_rate).toPrecision(2), minutes: p.estimated_minutes, gb: (p.memory_bytes / 1e9).toFixed(1), every: p.eval_every });

  // What the run takes of this machine, for the path that will run (said before it starts).
  const costText = (p) => t("training.cost", { path: t(`training.path.${p.path}`, { gpus: p.processes || 1 }), ram: ((p.ram_bytes || p.memory_bytes) / 1e9).toFixed(1),
    vram: p.vram_bytes ? t("training.cost_vram", { vram: (p.vram_bytes / 1e9).toFixed(1) }) : "", disk: Math.ceil((p.disk_bytes || 0) / 1e6) })
    + (p.gradient_checkpointing ? " " + t("training.fitted", { batch: p.batch_size, accum: p.grad_accum }) : "");

  // The perplexity change in words, and what to try when training changed nothing or made it worse.
  function verdict(result) {
    if (!result.base_perplexity || !result.perplexity) return null;
    const before = result.base_perplexity.toFixed(1);
    const after = result.perplexity.toFixed(1);
    const change = 1 - result.perplexity / result.base_perplexity;
    if (change >= 0.3) return { cls: "ok", text: t("training.verdict_strong", { factor: (result.base_perplexity / result.perplexity).toFixed(1), before, after }) };
    if (change >= 0.05) return { cls: "ok", text: t("training.verdict_some", { percent: Math.round(change * 100), before, after }) };
    if (change > -0.05) return { cls: "error", text: t("training.verdict_none", { before, after }), advice: t("training.advice_none") };
    return { cls: "error", text: t("training.verdict_worse", { before, after }), advice: t("training.advice_worse") };
  }

  function showEvaluation(result) {
    if (!result) return;
    const said = verdict(result);
    const diffs = result.samples.map((s) => diffWords(s.base, s.fine_tuned));
    const unchanged = diffs.length > 0 && diffs.every((d) => d.same);
    clear(evaluation).append(h("h2", {}, t("training.evaluation")),
      said ? h("p", { class: said.cls, "data-testid": "train-verdict" }, said.text) : "",
      said && said.advice ? h("p", { "data-testid": "train-advice" }, said.advice) : "",
      unchanged ? h("p", { class: "error", "data-testid": "train-same-replies" }, t("training.same_replies")) : "",
      h("table", { "data-testid": "train-samples" },
        h("tr", {}, h("th", {}, t("training.prompt")), h("th", {}, t("training.base_reply")), h("th", {}, t("training.tuned_reply"))),
        ...result.samples.map((s, i) => h("tr", {}, h("td", {}, s.prompt),
          h("td", {}, markedText(diffs[i].before, "removed")), h("td", {}, markedText(diffs[i].after, "added"))))));
    if (!comparePrompts.value) comparePrompts.value = result.samples.map((s) => s.prompt.replace(/\s+/g, " ")).join("\n");
  }

  function showComparison(comparison) {
    clear(compareResult).append(h("table", {},
      h("tr", {}, h("th", {}, t("training.prompt")), h("th", {}, t("training.base_reply")), ...comparison.adapters.map((a) => h("th", {}, a))),
      ...comparison.rows.map((row) => h("tr", {}, h("td", {}, row.prompt), h("td", {}, row.base),
        ...comparison.adapters.map((a) => h("td", {}, markedText(diffWords(row.base, row.replies[a]).after, "added")))))));
  }

  async function refresh() {
    const [runList, adapterList] = await Promise.all([bridge.call("training_runs"), bridge.call("adapters_list")]);
    if (!runList.length) clear(runs).append(h("p", { class: "muted", "data-testid": "train-no-runs" }, t("training.no_runs")));
    else clear(runs).append(h("table", {}, ...runList.map((r) => h("tr", {},
      h("td", {}, r.run), h("td", {}, r.adapter_name), h("td", {}, r.finished ? "✓" : (r.checkpoint || "")),
      h("td", {}, r.evaluation ? h("button", { class: "secondary", "data-testid": "run-show", onclick: () => showEvaluation(r.evaluation) },
        t("training.show")) : ""),
      h("td", {}, r.finished
        ? h("button", { class: "secondary", onclick: async () => {
            try { await bridge.call("training_export", r.run, r.adapter_name); await refresh(); } catch (e) { showError(e); } } }, t("training.export"))
        : r.checkpoint ? h("button", { class: "secondary", onclick: async () => {
            try { watch((await bridge.call("training_resume", r.run)).job_id); } catch (e) { showError(e); } } }, t("training.resume")) : "")))));
    clear(adapters).append(h("table", {}, ...adapterList.map((a) => h("tr", { "data-testid": "adapter-row" },
      h("td", {}, a.name), h("td", {}, a.base.reference), h("td", {}, `r=${a.rank}`),
      h("td", {}, a.metrics.eval_loss !== undefined ? `loss ${a.metrics.eval_loss.toFixed(3)}` : ""),
      h("td", {}, h("input", { type: "checkbox", value: a.name, "data-testid": "compare-pick", "aria-label": `${t("training.compare")}: ${a.name}` })),
      h("td", {}, h("button", { class: "primary", "data-testid": "adapter-deploy", disabled: deploying.busy, onclick: async () => {
        try {
          deployStatus.className = "muted"; deployStatus.textContent = ""; chatWith.hidden = true;
          setDeployButtons(true);
          await deploying.start((await bridge.call("adapters_deploy", a.name, a.name)).job_id, t("training.deploying", { name: a.name }));
        } catch (e) { setDeployButtons(false); showError(e); } } }, t("training.deploy")),
        h("button", { class: "link danger", "data-testid": "adapter-delete", onclick: (event) => confirmInPlace(event.currentTarget, {
          question: t("training.delete_confirm", { name: a.name }), yes: t("common.delete"), no: t("common.keep"),
          run: async () => { try { await bridge.call("adapters_delete", a.name); await refresh(); } catch (e) { showError(e); } },
        }) }, icon("trash-2"), " ", t("common.delete")))))));
  }

  function watch(jobId) {
    job = kept.job = jobId; series.train = []; series.eval = []; running(true); bar.removeAttribute("value"); drawChart();
    planNote.textContent = ""; chatWith.hidden = true;
  }

  const ofJob = (event, id) => id && (event.job_id === id || (event.job && event.job.id === id));

  const stop = onEvent((event) => {
    if (previewing.handle(event) || deploying.handle(event)) return;
    if (ofJob(event, compareJob)) {
      if (event.type === "progress") { compareResult.textContent = event.total ? `${statusText(event.status)} ${event.completed}/${event.total}` : statusText(event.status); }
      else if (event.type === "job" && ["succeeded", "failed", "cancelled"].includes(event.job.state)) {
        compareJob = null;
        if (event.job.state === "succeeded") showComparison(event.job.result);
        else { compareResult.className = "error"; compareResult.textContent = event.job.error ? errorText(event.job.error) : statusText(event.job.state); }
      }
      return;
    }
    if (!ofJob(event, job)) return;
    if (event.type === "history") {  // a resumed run: its curves so far
      series.train = event.train.filter((p) => p[1] !== null); series.eval = event.eval.filter((p) => p[1] !== null); drawChart(); return;
    }
    if (event.type === "run_started" && event.plan) { planNote.className = "muted"; planNote.textContent = planText(event.plan); return; }
    if (event.type === "early_stop") { planNote.className = "ok"; planNote.textContent = t("training.early_stop", { step: event.step, total: event.total, best: event.best_step }); return; }
    if (event.type === "progress") {
      if (event.total) { bar.max = event.total; bar.value = event.completed; }
      status.className = "muted";
      status.textContent = event.loss !== undefined
        ? `${statusText(event.status)} ${event.completed}/${event.total} · loss ${event.loss.toFixed(4)} · ${Math.round(event.tokens_per_s)} tok/s · ETA ${Math.round(event.eta_s)} s`
        : event.hardware ? t("status.training_on", { device: event.hardware, precision: event.precision }) : statusText(event.status);
      if (event.loss !== undefined) { series.train.push([event.completed, event.loss]); drawChart(); }
    } else if (event.type === "eval" && event.eval_loss !== null) {
      series.eval.push([event.step, event.eval_loss]); drawChart();
    } else if (event.type === "job" && ["succeeded", "failed", "cancelled"].includes(event.job.state)) {
      job = kept.job = null; running(false);
      status.className = event.job.state === "succeeded" ? "ok" : "error";
      status.textContent = event.job.state === "failed" ? errorText(event.job.error) : statusText(event.job.state);
      if (event.job.result && event.job.result.evaluation) showEvaluation(event.job.result.evaluation);
      refresh().catch(showError);
    }
  });

  function showPreview(result) {
    const s = result.stats;
    clear(preview).append(h("p", {}, t("training.samples_stats", { train: s.train_samples, validation: s.validation_samples, tokens: s.tokens, trained: s.trained_tokens })),
      s.split_turns ? h("p", { class: "muted", "data-testid": "train-split" }, t("training.split", s)) : "",
      s.left_out_turns ? h("div", { class: "error", "data-testid": "train-left-out" }, t("training.left_out", s),
        h("ul", {}, ...s.left_out.map((note) => h("li", {}, note)))) : "",
      h("p", { class: result.plan.fits_ram ? "muted" : "error", "data-testid": "train-estimate" }, planText(result.plan)),
      h("p", { class: result.plan.fits_ram ? "muted" : "error", "data-testid": "train-cost" }, costText(result.plan)),
      result.plan.advice ? h("p", { class: "error", "data-testid": "train-advice" }, errorText({ code: "does_not_fit", message: result.plan.advice })) : "",
      ...result.samples.map((sample) => h("div", { class: "hit" }, h("div", { class: "meta" }, t("training.sample_tokens", { tokens: sample.tokens, trained: sample.trained_tokens })), h("pre", {}, sample.text))));
  }
  previewButton.addEventListener("click", async () => {
    clear(preview); previewButton.disabled = true;
    try { await previewing.start((await bridge.call("training_preview", runRequest())).job_id, t("training.previewing")); }
    catch (e) { previewButton.disabled = false; showError(e); }
  });
  cancel.addEventListener("click", () => {
    if (!job) return;
    cancel.disabled = true;  // saving a checkpoint takes a moment: say so at once
    status.className = "muted"; status.textContent = t("training.cancelling");
    bridge.call("cancel_job", job).catch(showError);
  });
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      watch((await bridge.call("training_start", { ...runRequest(), adapter_name: name.value })).job_id);
    } catch (e) { start.disabled = false; showError(e); }
  });
  chatWith.addEventListener("click", async () => {
    try { await bridge.call("save_settings", { chat_model: chatWith.dataset.model }); location.hash = "chat"; } catch (e) { showError(e); }
  });

  root.append(
    h("h1", {}, t("training.title")), h("p", { class: "muted" }, t("training.what")),
    h("div", { class: "card" }, h("h2", {}, t("training.data")), ...field(t("training.voice"), voice), ...field(t("training.title_filter"), title),
      ...field(t("training.date_from"), dateFrom), ...field(t("training.date_to"), dateTo),
      h("div", { class: "row" }, previewButton), previewing.element, preview),
    h("div", { class: "card" }, h("h2", {}, t("training.settings")), ...field(t("training.base"), base), ...field(t("training.epochs"), epochs),
      ...field(t("training.rank"), rank), ...field(t("training.lr"), lr), ...field(t("training.max_tokens"), maxTokens), ...field(t("training.name"), name),
      h("div", { class: "row" }, start, cancel)),
    h("div", { class: "card" }, h("h2", {}, t("training.progress")), bar, status, planNote, chart, evaluation),
    h("div", { class: "card" }, h("h2", {}, t("training.runs")), runs, h("h2", {}, t("training.adapters")), adapters, deploying.element, deployStatus, chatWith,
      h("h2", {}, t("training.compare")), h("p", { class: "muted" }, t("training.compare_help")), comparePrompts,
      h("div", { class: "row" }, h("button", { class: "secondary", "data-testid": "compare-start", onclick: async () => {
        const picked = [...adapters.querySelectorAll("[data-testid=compare-pick]:checked")].map((box) => box.value);
        compareResult.className = "";
        if (picked.length < 1 || picked.length > 3) { compareResult.className = "error"; compareResult.textContent = t("training.compare_limit"); return; }
        try {
          compareJob = (await bridge.call("adapters_compare", picked, comparePrompts.value.split("\n").filter((line) => line.trim()))).job_id;
        } catch (e) { showError(e); }
      } }, t("training.compare_button"))), compareResult),
  );
  // Back on the screen (or after a reload): the run this screen watched, or any training run in progress;
  // likewise a preview or deploy still at work.
  let deployRunning = null;
  try {
    const jobs = await bridge.call("list_jobs");
    const active = (one) => one && ["queued", "running"].includes(one.state);
    const current = jobs.find((one) => one.id === job) || jobs.find((one) => one.kind === "train" && active(one));
    job = kept.job = active(current) ? current.id : null;
    running(Boolean(job));
    if (job) { bar.removeAttribute("value"); status.className = "muted"; status.textContent = t("training.still_running"); }
    else if (current && current.kind === "train") {  // it ended while the screen was away
      status.className = current.state === "succeeded" ? "ok" : "error";
      status.textContent = current.error ? errorText(current.error) : statusText(current.state);
      if (current.result && current.result.evaluation) showEvaluation(current.result.evaluation);
    }
    const previewRunning = jobs.find((one) => one.kind === "preview" && active(one));
    if (previewRunning) { previewButton.disabled = true; previewing.start(previewRunning.id, t("training.previewing")).catch(showError); }
    deployRunning = jobs.find((one) => one.kind === "deploy" && active(one));
  } catch (e) { showError(e); }
  drawChart();
  await refresh();
  if (deployRunning) { setDeployButtons(true); deploying.start(deployRunning.id, t("training.deploy_running")).catch(showError); }
  return stop;
}
