// Network: rooms, my shared adapters, peers, their adapters, downloads with progress, merge.
// Everything a peer sends (names, descriptions, keys) is put in the page as text, never as HTML.
import { clear, h, icon, redraw } from "../js/dom.js";
import { errorText, extend, localNumber } from "../js/i18n.js";

extend("en", {
  "network.title": "Network",
  "network.what": "Share the adapters you choose with people in your rooms, and download theirs. Your conversations never leave this computer: only adapters you share do.",
  "network.offline": "Offline", "network.online": "Online as {key}", "network.go_online": "Go online", "network.go_offline": "Go offline",
  "network.rooms": "Rooms", "network.join_public": "Join the community room", "network.create_room": "Create a private room",
  "network.room_name": "Room name", "network.invite": "Invite code", "network.join": "Join",
  "network.community": "Community", "network.copy": "Copy", "network.copied": "Copied.", "network.copy_by_hand": "Selected: press Ctrl+C to copy.",
  "network.kind_public": "public", "network.kind_private": "private", "network.peer_adapters": "adapters: {n}",
  "network.rank_of": "rank {rank}", "network.col_name": "Adapter", "network.col_base": "Base model", "network.col_rank": "Rank",
  "network.col_size": "Size", "network.col_author": "Author",
  "network.invite_created": "Give this code only to the people you want in the room:", "network.leave": "Leave",
  "network.shares": "My shared adapters", "network.share": "Share", "network.unshare": "Stop sharing",
  "network.peers": "Peers", "network.no_peers": "No peers yet.", "network.block": "Block",
  "network.available": "Adapters from peers", "network.compatible_only": "Only for base models I have",
  "network.download": "Download", "network.incompatible": "needs a base you do not have",
  "network.downloads": "Downloads", "network.pause": "Pause", "network.resume": "Resume", "network.cancel": "Cancel",
  "network.merge": "Merge adapters", "network.merge_what": "Combine adapters trained on the same base into a new one (federated learning by hand).",
  "network.merge_name": "Name of the merged adapter", "network.method": "Method", "network.merge_button": "Merge",
  "network.refresh": "Refresh", "network.val_loss": "validation loss on your data", "network.downloaded": "Downloaded",
  "network.method.ties": "Keep what they agree on (TIES, recommended)", "network.method.cat": "Exact sum, larger file (cat)",
  "network.method.svd": "Sum compressed to one size (SVD)", "network.method.dare_ties": "Agreement, with random pruning (DARE-TIES)",
  "network.method.linear": "Simple average, same sizes only (linear)",
  "network.state.active": "downloading", "network.state.paused": "paused", "network.state.failed": "failed", "network.state.done": "done",
  "network.slow_holder": "peer {peer}… sent only {rate} KiB/s; asking another one",
  "network.by": "by {author}", "network.shared_by": "shared by {peer}", "network.private": "private room: encrypted",
  "network.disputed": "the same weights are offered under another author's name: check who made it",
});
extend("pt-BR", {
  "network.title": "Rede",
  "network.what": "Compartilhe os adaptadores que escolher com as pessoas das suas salas e baixe os delas. Suas conversas nunca saem deste computador: só os adaptadores que você compartilha.",
  "network.offline": "Desconectado", "network.online": "Conectado como {key}", "network.go_online": "Conectar", "network.go_offline": "Desconectar",
  "network.rooms": "Salas", "network.join_public": "Entrar na sala da comunidade", "network.create_room": "Criar uma sala privada",
  "network.room_name": "Nome da sala", "network.invite": "Código de convite", "network.join": "Entrar",
  "network.community": "Comunidade", "network.copy": "Copiar", "network.copied": "Copiado.", "network.copy_by_hand": "Selecionado: tecle Ctrl+C para copiar.",
  "network.kind_public": "pública", "network.kind_private": "privada", "network.peer_adapters": "adaptadores: {n}",
  "network.rank_of": "posto {rank}", "network.col_name": "Adaptador", "network.col_base": "Modelo base", "network.col_rank": "Posto",
  "network.col_size": "Tamanho", "network.col_author": "Autor",
  "network.invite_created": "Dê este código só a quem você quer na sala:", "network.leave": "Sair",
  "network.shares": "Meus adaptadores compartilhados", "network.share": "Compartilhar", "network.unshare": "Parar de compartilhar",
  "network.peers": "Pares", "network.no_peers": "Nenhum par ainda.", "network.block": "Bloquear",
  "network.available": "Adaptadores dos pares", "network.compatible_only": "Só para modelos base que tenho",
  "network.download": "Baixar", "network.incompatible": "precisa de um modelo base que você não tem",
  "network.downloads": "Downloads", "network.pause": "Pausar", "network.resume": "Continuar", "network.cancel": "Cancelar",
  "network.merge": "Combinar adaptadores", "network.merge_what": "Combine adaptadores treinados no mesmo modelo base em um novo (aprendizado federado manual).",
  "network.merge_name": "Nome do adaptador combinado", "network.method": "Método", "network.merge_button": "Combinar",
  "network.refresh": "Atualizar", "network.val_loss": "perda de validação nos seus dados", "network.downloaded": "Baixado",
  "network.method.ties": "Manter o que eles têm em comum (TIES, recomendado)", "network.method.cat": "Soma exata, arquivo maior (cat)",
  "network.method.svd": "Soma comprimida num só tamanho (SVD)", "network.method.dare_ties": "Acordo, com poda aleatória (DARE-TIES)",
  "network.method.linear": "Média simples, só mesmos tamanhos (linear)",
  "network.state.active": "baixando", "network.state.paused": "pausado", "network.state.failed": "falhou", "network.state.done": "concluído",
  "network.slow_holder": "o par {peer}… enviou só {rate} KiB/s; pedindo a outro",
  "network.by": "por {author}", "network.shared_by": "compartilhado por {peer}", "network.private": "sala privada: criptografado",
  "network.disputed": "os mesmos pesos são oferecidos em nome de outro autor: confira quem o fez",
  "error.bad_invite": "Este código de convite não confere (erro de digitação ou código inventado): copie-o de novo de quem convidou você.",
  "error.stalled": "Nenhum par que tem este adaptador enviou dados: tente de novo quando o autor estiver conectado.",
  "error.mismatch": "A cópia compartilhada não é a que a entrada assinada descreve; nada foi baixado.",
});

// People see a peer as two words and four hex digits drawn from its key ("amber otter · 3f2a"): easy to
// read aloud and compare, and the same on every screen and machine. The full key is in its tooltip.
const WORDS_A = ["amber", "azure", "brave", "calm", "coral", "crisp", "dusty", "eager", "fern", "gentle", "golden", "hazel",
  "ivory", "jade", "keen", "lunar", "maple", "misty", "noble", "olive", "pearl", "quiet", "rapid", "rustic", "silver", "solar",
  "swift", "tidal", "umber", "velvet", "wild", "zesty"];
const WORDS_B = ["otter", "heron", "lynx", "falcon", "badger", "marten", "ibis", "gecko", "panda", "raven", "tapir", "walrus",
  "wren", "yak", "koala", "lemur", "moose", "newt", "orca", "puffin", "quail", "robin", "seal", "tern", "urchin", "vole",
  "whale", "bison", "crane", "dingo", "egret", "finch"];
const short = (key) => {
  const hex = String(key || "");
  if (!/^[0-9a-f]{8,}$/.test(hex)) return hex;
  return `${WORDS_A[parseInt(hex.slice(0, 2), 16) % 32]} ${WORDS_B[parseInt(hex.slice(2, 4), 16) % 32]} · ${hex.slice(4, 8)}`;
};
const who = (key, text) => h("span", { title: key, "data-key": key }, text ?? short(key));

export async function render({ root, bridge, t, showError, onEvent }) {
  const state = h("p", { "data-testid": "network-state" });
  // Labelled and disabled until the sidecar's state is known: an empty button while the first status
  // was on its way was a real unlabelled control (axe: button-name, seen on a busy machine).
  const onlineButton = h("button", { class: "primary", "data-testid": "network-online", disabled: true }, t("network.go_online"));
  const rooms = h("ul", { "data-testid": "network-rooms" });
  const invite = h("p", { "data-testid": "network-invite", hidden: true });
  const roomName = h("input", { placeholder: t("network.room_name"), "data-testid": "network-room-name" });
  const code = h("input", { placeholder: "om2-…", "data-testid": "network-code" });
  const shareSelect = h("select", { "data-testid": "network-share-select", "aria-label": t("network.shares") });
  const shares = h("ul", { "data-testid": "network-shares" });
  const peers = h("ul", { "data-testid": "network-peers" });
  const compatible = h("input", { type: "checkbox", "data-testid": "network-compatible" });
  const available = h("table", { "data-testid": "network-available" });
  const downloads = h("div", { "data-testid": "network-downloads" });
  const mergeList = h("div", { class: "checks", "data-testid": "network-merge-list" });
  const mergeName = h("input", { placeholder: "merged", "data-testid": "network-merge-name" });
  // Merge methods by what they do; the technical name stays in brackets for those who know it.
  const method = h("select", { "data-testid": "network-merge-method", "aria-label": t("network.method") }, ...["ties", "cat", "svd", "dare_ties", "linear"].map((m) =>
    h("option", { value: m, selected: m === "ties" }, t(`network.method.${m}`))));
  const mergeStatus = h("p", { class: "muted", "data-testid": "network-merge-status" });
  let online = false;

  const act = (fn) => async () => { try { await fn(); await refresh(); } catch (e) { showError(e); } };

  function drawDownloads(list) {
    redraw(downloads, list, (items) => items.map((d) => {
      const bar = h("progress", { max: d.total || 1, value: d.blocks || 0 });
      return h("div", { class: "download", "data-testid": "network-download", dataset: { id: d.id, state: d.state } },
        h("strong", {}, d.name), ` · ${t(`network.state.${d.state}`)}`,
        d.error ? h("span", { class: "error", "data-testid": "network-download-error" }, ` · ${errorText({ code: d.code, message: d.error })}`) : null,
        d.state === "active" && d.slow_holder ? h("span", { class: "muted", "data-testid": "network-download-slow" }, ` · ${t("network.slow_holder",
          { peer: d.slow_holder.peer.slice(0, 12), rate: Math.round(d.slow_holder.bytes_per_s / 1024) })}`) : null, bar,
        d.state === "active" ? h("button", { onclick: act(() => bridge.call("network_pause", d.id)) }, t("network.pause")) : null,
        ["paused", "failed"].includes(d.state) ? h("button", { onclick: act(() => bridge.call("network_resume", d.id)) }, t("network.resume")) : null,
        d.state !== "done" ? h("button", { class: "danger", onclick: act(() => bridge.call("network_cancel", d.id)) }, t("network.cancel")) : null);
    }));
  }

  async function refresh() {
    const status = await bridge.call("network_status");
    online = status.online;
    state.textContent = online ? t("network.online", { key: short(status.public_key) }) : t("network.offline");
    onlineButton.textContent = online ? t("network.go_offline") : t("network.go_online");
    redraw(rooms, status.rooms, (list) => list.map((room) => h("li", { "data-testid": "network-room" },
      `${room.kind === "public" ? t("network.community") : room.name} (${t(`network.kind_${room.kind}`)})`,
      h("button", { class: "link", onclick: act(() => bridge.call("network_leave_room", room.id)) }, t("network.leave")))));
    redraw(shares, status.shares, (list) => list.map((s) => h("li", { "data-testid": "network-shared" }, `${s.adapter} → ${s.rooms.join(", ")}`,
      h("button", { class: "link", onclick: act(() => bridge.call("network_unshare", s.adapter)) }, t("network.unshare")))));
    const adapters = (await bridge.call("adapters_list")).map((a) => ({ name: a.name, rank: a.rank }));
    const chosen = shareSelect.value;
    redraw(shareSelect, adapters, (list) => list.map((a) => h("option", { value: a.name, selected: a.name === chosen }, a.name)));
    const ticked = new Set([...mergeList.querySelectorAll("input:checked")].map((box) => box.value));
    redraw(mergeList, adapters, (list) => list.map((a) => h("label", {},
      h("input", { type: "checkbox", value: a.name, checked: ticked.has(a.name) }), ` ${a.name} (${t("network.rank_of", { rank: a.rank })})`)));
    drawDownloads(status.downloads);
    if (!online) { redraw(peers, null, () => []); redraw(available, null, () => []); return; }
    const peerRows = await bridge.call("network_peers");
    redraw(peers, peerRows, (list) => list.length ? list.map((p) => h("li", { "data-testid": "network-peer" },
      who(p.peer), ` · ${p.rooms.join(", ") || "—"} · ${t("network.peer_adapters", { n: p.adapters })}`,
      h("button", { class: "link danger", onclick: act(() => bridge.call("network_block", p.peer)) }, t("network.block"))))
      : [h("li", { class: "muted" }, t("network.no_peers"))]);
    const fetched = new Set(status.downloads.filter((d) => d.state === "done").map((d) => d.id));
    const rows = (await bridge.call("network_browse", compatible.checked)).map((r) => ({ ...r, fetched: fetched.has(r.id) }));
    redraw(available, rows, (list) => [h("tr", {}, ...["name", "base", "rank", "size", "author", ""].map((c) => h("th", {}, c && t(`network.col_${c}`)))),
      ...list.map((r) => h("tr", { "data-testid": "network-adapter" },
        h("td", {}, h("strong", {}, r.name), h("div", { class: "muted" }, r.description)),
        h("td", {}, r.base.reference || r.base.sha256.slice(0, 12), r.compatible ? "" : h("div", { class: "error" }, t("network.incompatible"))),
        h("td", {}, String(r.rank)), h("td", {}, `${localNumber(r.bytes / 1e6, 1)} MB`),
        h("td", { "data-testid": "network-author" }, who(r.author, t("network.by", { author: short(r.author) })),
          r.shared_by !== r.author ? h("div", { class: "muted" }, who(r.shared_by, t("network.shared_by", { peer: short(r.shared_by) }))) : null,
          r.private ? h("div", { class: "muted" }, t("network.private")) : null,
          r.disputed ? h("div", { class: "error", "data-testid": "network-disputed" }, t("network.disputed")) : null),
        h("td", {}, r.fetched ? h("span", { class: "ok", "data-testid": "network-downloaded" }, `✓ ${t("network.downloaded")}`)
          : h("button", { class: "primary", disabled: !r.compatible, "data-testid": "network-download-button",
            onclick: act(() => bridge.call("network_download", r.id, null)) }, t("network.download")))))]);
  }

  onlineButton.addEventListener("click", act(() => bridge.call(online ? "network_go_offline" : "network_go_online")));
  compatible.addEventListener("change", act(async () => {}));
  let pending = null;
  const stop = onEvent((event) => {
    if (event.type === "job" && event.job.kind === "merge" && ["succeeded", "failed"].includes(event.job.state)) {
      const r = event.job.result || {};
      const scores = Object.entries(r.inputs_eval_loss || {}).map(([name, loss]) => `${name} ${loss === null ? "—" : loss.toFixed(4)}`);
      mergeStatus.textContent = event.job.state === "failed" ? errorText(event.job.error)
        : `${r.adapter} ✓` + (r.eval_loss != null ? ` · ${t("network.val_loss")} ${r.eval_loss.toFixed(4)} (${scores.join(", ")})` : "");
      refresh().catch(showError);
    }
    if (event.type !== "network") return;
    if (event.event === "download-progress") {
      const row = downloads.querySelector(`[data-id="${CSS.escape(event.id)}"] progress`);
      if (row) { row.max = event.total; row.value = event.blocks; }
      return;
    }
    clearTimeout(pending);  // peers and catalogs arrive in bursts: redraw once they settle
    pending = setTimeout(() => refresh().catch(showError), 200);
  });

  root.append(h("h1", {}, t("network.title")), h("p", { class: "muted" }, t("network.what")),
    h("div", { class: "card" }, h("div", { class: "row" }, state, onlineButton)),
    h("div", { class: "card" }, h("h2", {}, t("network.rooms")), rooms,
      h("div", { class: "row" }, h("button", { class: "secondary", "data-testid": "network-join-public", onclick: act(() => bridge.call("network_join_public")) }, t("network.join_public"))),
      h("div", { class: "row" }, roomName, h("button", { class: "secondary", "data-testid": "network-create-room", onclick: act(async () => {
        const room = await bridge.call("network_create_room", roomName.value.trim());
        const copied = h("span", { class: "ok", "data-testid": "network-invite-copied" });
        const copy = h("button", { class: "secondary", "data-testid": "network-invite-copy", onclick: async () => {
          try { await navigator.clipboard.writeText(room.invite_code); copied.textContent = t("network.copied"); }
          catch { window.getSelection().selectAllChildren(codeText); copied.textContent = t("network.copy_by_hand"); }
        } }, icon("copy"), " ", t("network.copy"));
        const codeText = h("code", { "data-testid": "network-invite-code" }, room.invite_code);
        invite.hidden = false; clear(invite).append(t("network.invite_created"), " ", codeText, " ", copy, " ", copied);
      }) }, t("network.create_room"))), invite,
      h("div", { class: "row" }, code, h("button", { class: "secondary", "data-testid": "network-join-room", onclick: act(() => bridge.call("network_join_room", code.value.trim(), "")) }, t("network.join")))),
    h("div", { class: "card" }, h("h2", {}, t("network.shares")), shares,
      h("div", { class: "row" }, shareSelect, h("button", { class: "primary", "data-testid": "network-share", onclick: act(() => bridge.call("network_share", shareSelect.value, null)) }, t("network.share")))),
    h("div", { class: "card" }, h("h2", {}, t("network.peers")), peers),
    h("div", { class: "card" }, h("h2", {}, t("network.available")), h("label", {}, compatible, " ", t("network.compatible_only")), available),
    h("div", { class: "card" }, h("h2", {}, t("network.downloads")), downloads),
    h("div", { class: "card" }, h("h2", {}, t("network.merge")), h("p", { class: "muted" }, t("network.merge_what")), mergeList,
      h("label", {}, t("network.merge_name")), mergeName, h("label", {}, t("network.method")), method,
      h("div", { class: "row" }, h("button", { class: "primary", "data-testid": "network-merge", onclick: act(async () => {
        const names = [...mergeList.querySelectorAll("input:checked")].map((box) => box.value);
        await bridge.call("adapters_merge", names, mergeName.value.trim(), method.value);
        mergeStatus.textContent = "…";
      }) }, t("network.merge_button"))), mergeStatus));
  await refresh().finally(() => { onlineButton.disabled = false; });
  return () => { stop(); clearTimeout(pending); };
}
