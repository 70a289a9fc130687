/* The Mini App dashboard: the user's bots, sparklines, actions and a live log tail.

Everything comes from the same /api/... routes as the CLI, authenticated with
`Authorization: tma <initData>`; the server validates initData, the page trusts nothing itself. */
"use strict";

(function () {
  const I = window.BotrunnerI18n;
  const tg = window.Telegram && window.Telegram.WebApp;
  const API = new URL("../api/", window.location.href).pathname; // /app/ sits next to /api/
  const REFRESH_MS = 10000;
  const DESTRUCTIVE = { stop: "confirmStop", restart: "confirmRestart", rollback: "confirmRollback" };

  const $ = (id) => document.getElementById(id);
  const state = { all: null, bots: [], me: null, busy: false, rollback: {} };

  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || "HTTP " + status);
      this.status = status;
      this.error = error || { code: status === 401 ? "UNAUTHORIZED" : "INTERNAL" };
    }
  }

  // -- Telegram: theme, colour scheme, language ---------------------------------------------------
  function applyTheme() {
    const root = document.documentElement;
    const params = (tg && tg.themeParams) || {};
    for (const [key, value] of Object.entries(params)) {
      root.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), value);
    }
    root.dataset.scheme = (tg && tg.colorScheme) === "dark" ? "dark" : "light";
  }

  function translateStatic() {
    document.querySelectorAll("[data-t]").forEach((el) => {
      el.textContent = I.t(el.dataset.t);
    });
  }

  // -- the API ------------------------------------------------------------------------------------
  async function api(method, path, options) {
    let resp;
    try {
      resp = await fetch(API + path, {
        method,
        headers: { Authorization: "tma " + tg.initData, Accept: "application/json" },
        signal: options && options.signal,
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, { code: "NETWORK", message: String(e) });
    }
    if (!resp.ok) {
      let body = null;
      try {
        body = await resp.json();
      } catch (e) {
        body = null;
      }
      throw new ApiError(resp.status, body && body.error);
    }
    return resp.status === 204 ? null : resp.json();
  }

  const logTail = window.BotrunnerLogTail({ api: API, auth: () => "tma " + tg.initData, ApiError, showError });

  function showError(err, bot) {
    const box = $("error");
    if (!err) {
      box.hidden = true;
      box.textContent = "";
      return;
    }
    const worded = I.error(err.error || { code: "INTERNAL" }, bot);
    box.textContent = worded.text;
    const code = document.createElement("code");
    code.textContent = worded.code;
    box.appendChild(code);
    box.hidden = false;
    box.dataset.code = worded.code;
    if (tg && tg.HapticFeedback) tg.HapticFeedback.notificationOccurred("error");
  }

  // -- formatting ---------------------------------------------------------------------------------
  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  function mb(bytes) {
    return (bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0) + " MB";
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  // -- sparklines from GET /api/bots/{name}/stats?range=1h ---------------------------------------
  function sparkline(values, max) {
    const svgNS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("viewBox", "0 0 100 30");
    svg.setAttribute("preserveAspectRatio", "none");
    const top = Math.max(max || 0, ...values) || 1;
    const step = values.length > 1 ? 100 / (values.length - 1) : 100;
    const points = values.map((v, i) => (i * step).toFixed(2) + "," + (29 - (v / top) * 28).toFixed(2));
    const line = document.createElementNS(svgNS, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.appendChild(line);
    return svg;
  }

  function sparkBox(label, id) {
    return el("div", { class: "spark", "data-spark": id }, el("div", {}, label), el("div", { class: "empty" }, "…"));
  }

  async function loadStats(bot, card) {
    let samples = [];
    try {
      const body = await api("GET", "bots/" + encodeURIComponent(bot.name) + "/stats?range=1h");
      samples = (body && body.samples) || [];
    } catch (e) {
      samples = []; // no history endpoint (404) or none yet: the card simply shows no line
    }
    const fill = (id, values, max, label) => {
      const box = card.querySelector('[data-spark="' + id + '"]');
      if (!box) return;
      box.lastChild.replaceWith(
        values.length > 1 ? sparkline(values, max) : el("div", { class: "empty" }, I.t("noHistory"))
      );
      box.firstChild.textContent = label;
    };
    const mem = samples.map((s) => Number(s.memory_bytes) || 0);
    const cpu = samples.map((s) => Number(s.cpu_ratio) || 0);
    const memNow = bot.memory_bytes != null ? " · " + mb(bot.memory_bytes) : "";
    const cpuNow = bot.cpu_percent != null ? " · " + bot.cpu_percent.toFixed(1) + "%" : "";
    fill("mem", mem, null, I.t("memory") + memNow); // scaled to its own range: the shape is the point
    fill("cpu", cpu, null, I.t("cpu") + cpuNow);
  }

  // -- rollback appears once the bot has a previous release (its status says which) ---------------
  async function hasPreviousRelease(bot) {
    return bot.previous_release !== null && bot.previous_release !== undefined;
  }

  // -- the bot cards ------------------------------------------------------------------------------
  function mine(bot) {
    return state.me === null || bot.owner === state.me;
  }

  function card(bot) {
    const stopped = ["stopped", "crashed", "missing"].includes(bot.state);
    const facts = [];
    if (bot.state === "running" && bot.uptime_seconds != null) facts.push(I.t("uptime", { uptime: duration(bot.uptime_seconds) }));
    if (bot.restart_count) facts.push(I.t("restarts", { n: bot.restart_count }));
    const actions = el("div", { class: "actions" });
    actions.append(el("button", { class: "secondary", type: "button", "data-action": "logs", onclick: () => logTail.open(bot) }, I.t("logs")));
    if (mine(bot)) {
      // The API acts on the caller's own bots; an admin sees the others but acts on them in the chat.
      const act = (action) => el("button", { type: "button", "data-action": action, onclick: () => act_(bot, action) }, I.t(action));
      actions.append(stopped ? act("start") : act("stop"), act("restart"));
      if (state.rollback[bot.name]) actions.append(act("rollback"));
    }
    const node = el(
      "article",
      { class: "bot", "data-bot": bot.name, "data-owner": String(bot.owner), "data-state": bot.state },
      el(
        "div",
        { class: "bot-head" },
        el("span", { class: "bot-name" }, bot.name),
        mine(bot) ? null : el("span", { class: "owner" }, String(bot.owner)),
        el("span", { class: "state " + bot.state }, I.t("states." + bot.state))
      ),
      el("div", { class: "facts" }, facts.join(" · ") || "\u00a0"),
      el("div", { class: "sparks" }, sparkBox(I.t("memory"), "mem"), sparkBox(I.t("cpu"), "cpu")),
      actions
    );
    loadStats(bot, node);
    return node;
  }

  function render() {
    const main = $("bots");
    document.querySelector("h1").textContent = I.t(state.all ? "titleAll" : "title");
    main.replaceChildren();
    if (!state.bots.length) {
      main.append(el("p", { class: "muted", id: "empty" }, I.t("empty")));
      return;
    }
    for (const bot of state.bots) main.append(card(bot));
    main.dataset.loaded = "true";
  }

  async function listBots() {
    // Admins see every bot; the API says FORBIDDEN to anyone else, once, and we remember it.
    if (state.all !== false) {
      try {
        const body = await api("GET", "bots?all=true");
        state.all = true;
        return body;
      } catch (e) {
        if (!(e instanceof ApiError && e.error.code === "FORBIDDEN")) throw e;
        state.all = false;
      }
    }
    return api("GET", "bots");
  }

  async function refresh() {
    if (state.busy) return;
    try {
      const body = await listBots();
      const bots = (body && body.bots) || [];
      bots.sort((a, b) => (a.owner === state.me ? 0 : 1) - (b.owner === state.me ? 0 : 1) || a.owner - b.owner || a.name.localeCompare(b.name));
      await Promise.all(bots.filter(mine).map(async (bot) => {
        state.rollback[bot.name] = await hasPreviousRelease(bot);
      }));
      state.bots = bots;
      showError(null);
      render();
    } catch (e) {
      if (e.name === "AbortError") return;
      state.bots = [];
      $("bots").replaceChildren();
      showError(e);
    }
  }

  // -- actions, with a confirmation for the destructive ones ------------------------------------
  function confirmed(text) {
    return new Promise((resolve) => {
      const modal = $("confirm");
      $("confirm-text").textContent = text;
      modal.hidden = false;
      const done = (answer) => {
        modal.hidden = true;
        $("confirm-ok").onclick = null;
        $("confirm-cancel").onclick = null;
        resolve(answer);
      };
      $("confirm-ok").onclick = () => done(true);
      $("confirm-cancel").onclick = () => done(false);
    });
  }

  async function act_(bot, action) {
    if (DESTRUCTIVE[action] && !(await confirmed(I.t(DESTRUCTIVE[action], { name: bot.name })))) return;
    state.busy = true;
    document.querySelectorAll('[data-bot="' + CSS.escape(bot.name) + '"] button').forEach((b) => (b.disabled = true));
    try {
      await api("POST", "bots/" + encodeURIComponent(bot.name) + "/" + action);
      showError(null);
      if (tg && tg.HapticFeedback) tg.HapticFeedback.notificationOccurred("success");
    } catch (e) {
      showError(e, bot.name);
    } finally {
      state.busy = false;
      await refresh();
    }
  }

  // -- start --------------------------------------------------------------------------------------
  async function main() {
    applyTheme(); // before the words load, so the page never shows the wrong colour scheme
    if (!tg || !tg.initData) {
      await I.use(navigator.language);
      translateStatic();
      $("bots").replaceChildren(el("p", { class: "muted" }, I.t("noTelegram")));
      return;
    }
    const user = (tg.initDataUnsafe && tg.initDataUnsafe.user) || {};
    state.me = typeof user.id === "number" ? user.id : null;
    await I.use(user.language_code);
    translateStatic();
    if (tg.onEvent) tg.onEvent("themeChanged", applyTheme);
    if (tg.ready) tg.ready();
    if (tg.expand) tg.expand();
    $("refresh").addEventListener("click", refresh);
    $("logs-close").addEventListener("click", () => logTail.close());
    refresh();
    setInterval(() => {
      if (!document.hidden && $("confirm").hidden) refresh();
    }, REFRESH_MS);
  }

  main();
})();
