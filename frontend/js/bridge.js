// One bridge API for both modes: the pywebview js_api in the window, HTTP + token in browser mode.
// Every call resolves to `data` or throws an Error carrying the backend's {code, message}.

const TOKEN_KEY = "orch-mind-token";

export class BridgeError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

function browserToken() {
  const match = /token=([A-Za-z0-9_\-]+)/.exec(location.hash || "");
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, match[1]);
    history.replaceState(null, "", location.pathname);  // keep the token out of history and screenshots
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function waitForPywebview(timeoutMs) {
  return new Promise((resolve) => {
    if (window.pywebview && window.pywebview.api) return resolve(true);
    const timer = setTimeout(() => resolve(false), timeoutMs);
    window.addEventListener("pywebviewready", () => { clearTimeout(timer); resolve(true); }, { once: true });
  });
}

function unwrap(answer) {
  if (answer && answer.ok) return answer.data;
  const error = (answer && answer.error) || { code: "internal_error", message: "No answer from Orch-Mind." };
  throw new BridgeError(error.code, error.message);
}

export async function connectBridge() {
  const token = browserToken();
  if (!token && await waitForPywebview(8000)) {
    return {
      mode: "window",
      call: async (method, ...args) => unwrap(await window.pywebview.api[method](...args)),
      upload: null,
      subscribe: (onEvent) => pollEvents((cursor) => window.pywebview.api.poll_events(cursor, 20.0), onEvent),
    };
  }
  if (!token) throw new BridgeError("no_bridge", "Orch-Mind's bridge is not available. Open the URL printed by `make run`.");
  const headers = { "Content-Type": "application/json", "X-Orch-Token": token };
  return {
    mode: "browser",
    call: async (method, ...args) => {
      const response = await fetch(`/api/${encodeURIComponent(method)}`, { method: "POST", headers, body: JSON.stringify({ args }) });
      return unwrap(await response.json());
    },
    upload: async (file, onProgress) => {
      const response = await fetch(`/upload?name=${encodeURIComponent(file.name)}`, { method: "POST", headers: { "X-Orch-Token": token }, body: file });
      return unwrap(await response.json());
    },
    subscribe: (onEvent) => {
      const source = new EventSource(`/events?token=${encodeURIComponent(token)}`);
      source.onmessage = (message) => onEvent(JSON.parse(message.data));
      return () => source.close();
    },
  };
}

function pollEvents(poll, onEvent) {
  let cursor = 0;
  let running = true;
  (async () => {
    while (running) {
      try {
        const answer = unwrap(await poll(cursor));
        cursor = answer.cursor;
        answer.events.forEach(onEvent);
      } catch (error) {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  return () => { running = false; };
}
