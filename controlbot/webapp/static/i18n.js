/* The dashboard's words in the user's language, and the API's errors worded as the chat words them
   (controlbot/errors.py), keyed by the error's code and filled from its params. The words are data,
   one file a language: i18n.<lang>.json holds {"ui": {...}, "errors": {...}}. */
"use strict";

window.BotrunnerI18n = (function () {
  const LANGUAGES = ["en", "ru"];
  const HERE = document.currentScript.src; // the words sit next to this script
  let words = { ui: {}, errors: {} };

  function fill(template, params) {
    return template.replace(/\{(\w+)\}/g, (whole, key) => (params[key] !== undefined && params[key] !== null ? String(params[key]) : whole));
  }

  function pick(languageCode) {
    const lang = String(languageCode || "en").split("-")[0].toLowerCase();
    return LANGUAGES.includes(lang) ? lang : "en";
  }

  async function load(lang) {
    const resp = await fetch(new URL("i18n." + lang + ".json", HERE));
    if (!resp.ok) throw new Error("HTTP " + resp.status + " for " + resp.url);
    return resp.json();
  }

  return {
    lang: "en",
    /* Loads the words of the user's language; the page renders its text once this has settled. */
    async use(languageCode) {
      this.lang = pick(languageCode);
      document.documentElement.lang = this.lang;
      try {
        words = await load(this.lang);
      } catch (e) {
        console.error("the dashboard's words did not load:", e); // keys and codes show instead
      }
    },
    t(key, params) {
      const value = key.split(".").reduce((node, part) => (node ? node[part] : undefined), words.ui);
      return fill(value === undefined ? key : String(value), params || {});
    },
    /* An API error body's {code, message, params} as the chat would word it, in the user's language. */
    error(err, bot) {
      const code = (err && err.code) || "INTERNAL";
      const params = Object.assign({ name: bot || "?", msg: (err && err.message) || "" }, (err && err.params) || {});
      const template = words.errors[code] || words.errors.INTERNAL || code;
      return { text: fill(template, params), code };
    },
  };
})();
