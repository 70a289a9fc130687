/* The live log tail: GET /api/bots/{name}/logs?follow=true, read as NDJSON while it comes, so the
   tail grows without reloading; a stream the server ends is resumed from where it stopped. */
"use strict";

window.BotrunnerLogTail = function (deps) {
  const I = window.BotrunnerI18n;
  const LOG_LINES_KEPT = 500;
  const $ = (id) => document.getElementById(id);
  let current = null;

  function closeLogs() {
    if (current) current.abort();
    current = null;
    $("logs").hidden = true;
  }

  function appendLines(lines) {
    const pre = $("log-tail");
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const kept = (pre.textContent ? pre.textContent.split("\n") : []).concat(lines).slice(-LOG_LINES_KEPT);
    pre.textContent = kept.join("\n");
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function follow(bot, controller) {
    const live = $("logs-live");
    let since = null;
    while (!controller.signal.aborted) {
      const query = since ? "tail=10000&since=" + encodeURIComponent(since) : "tail=100";
      try {
        const resp = await fetch(deps.api + "bots/" + encodeURIComponent(bot.name) + "/logs?follow=true&" + query, {
          headers: { Authorization: deps.auth(), Accept: "application/x-ndjson" },
          signal: controller.signal,
        });
        if (!resp.ok) {
          let body = null;
          try { body = await resp.json(); } catch (e) { body = null; }
          throw new deps.ApiError(resp.status, body && body.error);
        }
        live.className = "live";
        live.textContent = I.t("live");
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          const parts = buffer.split("\n");
          buffer = parts.pop();
          const lines = [];
          for (const part of parts) {
            if (!part.trim()) continue;
            const item = JSON.parse(part);
            if (item.error) throw new deps.ApiError(200, item.error);
            lines.push(item.line);
          }
          if (lines.length) appendLines(lines);
        }
        since = new Date().toISOString(); // the server ends a follow after a while: resume from here
      } catch (e) {
        if (controller.signal.aborted) return;
        if (e instanceof deps.ApiError) {
          deps.showError(e, bot.name);
          live.className = "live off";
          return;
        }
      }
      live.className = "live off";
      live.textContent = I.t("paused");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  function openLogs(bot) {
    closeLogs();
    $("logs-title").textContent = I.t("logsOf", { name: bot.name });
    $("log-tail").textContent = "";
    $("logs").hidden = false;
    $("logs").dataset.bot = bot.name;
    const controller = new AbortController();
    current = controller;
    follow(bot, controller);
    $("logs").scrollIntoView({ block: "nearest" });
  }

  return { open: openLogs, close: closeLogs };
};
