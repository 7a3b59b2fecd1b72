// One background job shown where it was started: a progress bar, its step in the UI's language and a
// Cancel button that answers at once (the job itself stops at its next step and leaves nothing half-done).
import { h } from "./dom.js";
import { statusText } from "./i18n.js";

const ENDED = ["succeeded", "failed", "cancelled"];

/** ``onDone(job)`` gets the ended job ({state, result, error}); a cancel calls it at once with
 * {state: "cancelled"}. ``onSettled()`` comes when the job has really stopped (after a cancel, at its
 * next step): work that must not overlap it waits for that. */
export function jobLine({ bridge, t, testid, onDone, onSettled = () => {} }) {
  let id = null;
  let stopping = null;  // a cancelled job still finishing its step
  const bar = h("progress", { "aria-label": t("common.progress") });
  const text = h("span", { class: "muted", "data-testid": `${testid}-status` });
  const cancel = h("button", { class: "secondary", "data-testid": `${testid}-cancel` }, t("common.cancel"));
  const element = h("div", { class: "row job-line", hidden: true, "data-testid": testid }, bar, text, cancel);

  function end(job) {
    id = null; element.hidden = true; onDone(job);
    if (!stopping) onSettled();
  }
  cancel.addEventListener("click", () => {
    if (!id) return;
    stopping = id;
    end({ state: "cancelled" });
    bridge.call("cancel_job", stopping).catch(() => {});  // a job that ended meanwhile has nothing to cancel
  });

  return {
    element,
    get busy() { return id !== null || stopping !== null; },
    async start(jobId, label) {
      id = jobId; element.hidden = false; bar.removeAttribute("value"); text.textContent = label;
      cancel.focus();
      // A job that fails at once may end before this screen knew its id: ask once.
      const job = (await bridge.call("list_jobs")).find((one) => one.id === jobId);
      if (job && id === jobId && ENDED.includes(job.state)) end(job);
    },
    /** Feed it every event; it answers true for this job's own. */
    handle(event) {
      const of = (job) => job && (event.job_id === job || (event.job && event.job.id === job));
      if (of(stopping)) {
        if (event.type === "job" && ENDED.includes(event.job.state)) { stopping = null; if (!id) onSettled(); }
        return true;
      }
      if (!of(id)) return false;
      if (event.type === "progress") {
        if (event.total) { bar.max = event.total; bar.value = event.completed; } else bar.removeAttribute("value");
        text.textContent = statusText(event.status) + (event.total ? ` ${event.completed}/${event.total}` : "");
      } else if (event.type === "job" && ENDED.includes(event.job.state)) end(event.job);
      return true;
    },
  };
}
