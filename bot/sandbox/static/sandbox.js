// The sandbox page: polls what the signed-in person sees, and turns clicks into Slack interactions.
// All Slack semantics (signing, trigger ids, the 3 s ack rule) live on the server (bot/sandbox/relay.py).
(function () {
  "use strict";
  const body = document.body;
  const user = body.dataset.user;
  const channel = body.dataset.channel;
  const onHome = channel === body.dataset.home;
  const feed = document.getElementById("feed");
  const home = document.getElementById("home");
  const modalRoot = document.getElementById("modal-root");
  const input = document.getElementById("composer-input");
  const suggestions = document.getElementById("suggestions");
  const subcommands = JSON.parse(document.getElementById("subcommands").textContent);
  let lastFeed = null, lastHome = null, modalKey = null, threadTs = null, active = -1;

  async function post(path, data) {
    const answer = await fetch("/ui/" + path, {method: "POST", headers: {"Content-Type": "application/json"},
                                               body: JSON.stringify(Object.assign({as: user, c: channel}, data))});
    const outcome = await answer.json();
    refresh();
    return outcome;
  }

  function toast(text) {
    const el = document.getElementById("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 6000);
  }

  async function refresh() {
    let shown;
    try {
      shown = await (await fetch(`/ui/feed?as=${encodeURIComponent(user)}&c=${encodeURIComponent(channel)}`)).json();
    } catch (e) { return; }
    if (feed && shown.feed !== lastFeed) {
      const first = lastFeed === null;
      const atBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 80;
      feed.innerHTML = shown.feed || '<div class="empty">No messages yet. Type <code>/billing</code> below.</div>';
      lastFeed = shown.feed;
      if (atBottom || first) feed.scrollTop = feed.scrollHeight;
    }
    if (home && shown.home !== lastHome) { home.innerHTML = shown.home; lastHome = shown.home; }
    const key = shown.modal ? shown.modal.id + "/" + shown.modal.hash : null;
    if (key !== modalKey) {
      modalRoot.innerHTML = shown.modal ? shown.modal.html : "";
      modalKey = key;
      const first = modalRoot.querySelector("input, select, textarea");
      if (first) first.focus();
    }
  }

  // --- Block Kit interactions ------------------------------------------------------------------------------

  function inputValue(el, meta) {
    const type = meta.type;
    const v = el.value;
    const option = (value, label) => ({text: {type: "plain_text", text: label, emoji: true}, value: value});
    if (type === "plain_text_input" || type === "number_input") return {type, value: v || null};
    if (type === "datepicker") return {type, selected_date: v || null};
    if (type === "static_select") {
      return {type, selected_option: v ? option(v, el.selectedOptions[0].textContent) : null};
    }
    if (type === "multi_static_select") {
      return {type, selected_options: Array.from(el.selectedOptions).map(o => option(o.value, o.textContent))};
    }
    if (type === "conversations_select") return {type, selected_conversation: v || null};
    if (type === "channels_select") return {type, selected_channel: v || null};
    if (type === "users_select") return {type, selected_user: v || null};
    const boxes = Array.from(el.querySelectorAll("input:checked"))
      .map(b => option(b.value, b.parentElement.textContent.trim()));
    if (type === "radio_buttons") return {type, selected_option: boxes[0] || null};
    if (type === "checkboxes") return {type, selected_options: boxes};
    return {type, value: v || null};
  }

  function stateOf(form) {
    const values = {};
    if (!form) return values;
    form.querySelectorAll("[data-input]").forEach(el => {
      const meta = JSON.parse(el.dataset.input);
      (values[meta.block_id] = values[meta.block_id] || {})[meta.action_id] = inputValue(el, meta);
    });
    return values;
  }

  async function act(el, value) {
    const meta = JSON.parse(el.dataset.act);
    if (value !== undefined) meta.value = value;
    if (el.dataset.confirm && !window.confirm(el.dataset.confirm)) return;
    const data = {act: meta};
    const msg = el.closest("[data-msg]");
    const view = el.closest("[data-view]");
    if (msg) Object.assign(data, JSON.parse(msg.dataset.msg));
    if (view) { data.view = view.dataset.view; data.values = stateOf(view.closest("form")); }
    const outcome = await post("action", data);
    if (!outcome.ok && outcome.error) toast(outcome.error);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.matches("[data-act]")) {
      if (button.dataset.url) window.open(button.dataset.url, "_blank", "noopener");
      act(button);
    } else if (button.matches("[data-close]")) {
      const form = button.closest("form[data-view]");
      modalRoot.innerHTML = ""; modalKey = null;
      if (form) post("close", {view: form.dataset.view});
    } else if (button.matches(".reply-btn")) {
      threadTs = button.dataset.thread;
      document.getElementById("thread-note").hidden = false;
      input.focus();
    } else if (button.id === "thread-cancel") {
      threadTs = null;
      document.getElementById("thread-note").hidden = true;
    }
  });

  document.addEventListener("change", (event) => {
    const el = event.target;
    if (!el.matches("[data-act]")) return;
    const value = el.value;
    if (!value) return;
    act(el, value);
    if (el.classList.contains("bk-overflow")) el.selectedIndex = 0;
  });

  modalRoot.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    form.querySelectorAll(".field-error").forEach(e => { e.hidden = true; e.textContent = ""; });
    const banner = form.querySelector(".modal-error");
    banner.hidden = true;
    const outcome = await post("submit", {view: form.dataset.view, values: stateOf(form)});
    for (const [block, text] of Object.entries(outcome.errors || {})) {
      const slot = form.querySelector(`[data-block-id="${CSS.escape(block)}"] .field-error`);
      if (slot) { slot.textContent = text; slot.hidden = false; } else { banner.textContent = text; banner.hidden = false; }
    }
    if (outcome.error) { banner.textContent = outcome.error; banner.hidden = false; }
    if (outcome.closed) { modalRoot.innerHTML = ""; modalKey = null; }
  });

  // --- the composer and /billing autocomplete ----------------------------------------------------------------

  function matches() {
    const text = input.value;
    if (/^\/\S*$/.test(text) && "/billing".startsWith(text)) {
      return [{fill: "/billing ", name: "/billing", about: "Billing: invoices, usage, forecast, budgets"}];
    }
    const m = /^\/billing\s+(\S*)$/.exec(text);
    if (!m) return [];
    return subcommands.filter(s => s.name.startsWith(m[1].toLowerCase()))
      .map(s => ({fill: "/billing " + s.name + " ", name: s.name, about: s.about + " — e.g. " + s.example}));
  }

  function showSuggestions() {
    const found = matches();
    suggestions.innerHTML = "";
    found.forEach((s, i) => {
      const li = document.createElement("li");
      li.dataset.fill = s.fill;
      li.className = i === active ? "active" : "";
      li.innerHTML = "<b></b> <span></span>";
      li.querySelector("b").textContent = s.name;
      li.querySelector("span").textContent = s.about;
      suggestions.appendChild(li);
    });
    suggestions.hidden = found.length === 0;
  }

  function accept(fill) {
    input.value = fill; active = -1; showSuggestions(); input.focus();
  }

  if (input) {
    input.addEventListener("input", () => { active = -1; showSuggestions(); });
    input.addEventListener("keydown", (event) => {
      const items = suggestions.querySelectorAll("li");
      if (suggestions.hidden || !items.length) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        active = (active + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        showSuggestions(); event.preventDefault();
      } else if (event.key === "Tab" || (event.key === "Enter" && active >= 0)) {
        accept(items[Math.max(active, 0)].dataset.fill); event.preventDefault();
      } else if (event.key === "Escape") {
        suggestions.hidden = true;
      }
    });
    suggestions.addEventListener("mousedown", (event) => {
      const li = event.target.closest("li");
      if (li) { accept(li.dataset.fill); event.preventDefault(); }
    });
    document.getElementById("composer").addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = ""; suggestions.hidden = true;
      const outcome = await post("send", {text, thread_ts: threadTs});
      if (!outcome.ok && outcome.error && !text.startsWith("/")) toast(outcome.error);
    });
  }

  if (onHome) post("home", {});
  refresh();
  setInterval(refresh, 1000);
})();
