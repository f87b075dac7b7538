// The board's script. The live feed: new notes appear on every open board
// without a reload; they arrive over the WebSocket at /live already rendered by
// the server (in each language), so a live card looks exactly like the others.
// And a courtesy check of the attachment's size before uploading it (the server
// enforces the limit anyway, with a 413 page).
(() => {
  "use strict";
  const compose = document.getElementById("compose");
  if (compose) {
    const file = document.getElementById("attachment");
    const tooBig = document.getElementById("too-big");
    const fits = () => {
      const max = Number(compose.dataset.maxBytes);
      return !max || !file.files.length || file.files[0].size <= max;
    };
    file.addEventListener("change", () => { tooBig.hidden = fits(); });
    compose.addEventListener("submit", (event) => {
      if (!fits()) {
        event.preventDefault();
        tooBig.hidden = false;
      }
    });
  }

  const live = document.getElementById("live");
  const list = document.getElementById("notes");
  if (!live || !list) return;
  const strings = JSON.parse(document.getElementById("strings").textContent);
  const label = document.getElementById("live-label");
  const online = document.getElementById("online");
  const count = document.getElementById("count");
  const banner = document.getElementById("banner");
  const lang = document.documentElement.lang;
  let delay = 500;
  let leaving = false;

  window.addEventListener("pagehide", () => { leaving = true; });

  function setState(state) {
    live.dataset.state = state;
    label.textContent = strings["live_" + state];
  }

  function showCount(total) {
    count.textContent = total === 1 ? strings.count_one : strings.count.replace("{count}", total);
  }

  function addNote(message) {
    showCount(message.total);
    if (document.getElementById("note-" + message.id)) return;
    if (list.dataset.liveInsert !== "true") {
      banner.hidden = false;  // not on the first page: offer a link instead
      return;
    }
    const template = document.createElement("template");
    template.innerHTML = message.html[lang] || message.html.en;
    const item = template.content.firstElementChild;
    item.classList.add("fresh");
    list.prepend(item);
    document.getElementById("empty")?.remove();
    const size = Number(list.dataset.pageSize) || 10;
    while (list.children.length > size) list.lastElementChild.remove();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/live`);
    setState("connecting");
    socket.addEventListener("open", () => {
      delay = 500;
      setState("open");
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "note") addNote(message);
      else if (message.type === "presence") {
        online.textContent = strings.online.replace("{count}", message.online);
      }
    });
    socket.addEventListener("close", () => {
      if (leaving) return;
      setState("closed");
      online.textContent = "";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    });
  }

  connect();
})();
