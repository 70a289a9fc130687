/* The dashboard's words in English and Russian, and the API's errors worded as the chat words them
   (controlbot/errors.py), keyed by the error's code and filled from its params. */
"use strict";

window.BotrunnerI18n = (function () {
  const UI = {
    en: {
      title: "Your bots",
      titleAll: "All bots",
      loading: "Loading…",
      empty: "No bots yet. Send the bot a .py file with the caption /start_bot name to deploy one.",
      live: "live",
      paused: "reconnecting…",
      cancel: "Cancel",
      confirm: "Confirm",
      start: "Start",
      stop: "Stop",
      restart: "Restart",
      rollback: "Rollback",
      logs: "Logs",
      memory: "Memory",
      cpu: "CPU",
      noHistory: "no history yet",
      uptime: "up {uptime}",
      restarts: "{n} restarts",
      confirmStop: "Stop {name}? It keeps its slot and logs; start it again any time.",
      confirmRestart: "Restart {name}?",
      confirmRollback: "Roll {name} back to its previous release?",
      done: { start: "{name} started.", stop: "{name} stopped.", restart: "{name} restarted.", rollback: "{name} rolled back." },
      logsOf: "Logs of {name}",
      states: { running: "running", starting: "starting", restarting: "restarting", stopped: "stopped", crashed: "crashed", missing: "missing" },
      noTelegram: "Open this dashboard from the bot's 🖥 Dashboard button in Telegram.",
    },
    ru: {
      title: "Ваши боты",
      titleAll: "Все боты",
      loading: "Загрузка…",
      empty: "Ботов пока нет. Пришлите боту .py-файл с подписью /start_bot имя, чтобы развернуть.",
      live: "в эфире",
      paused: "переподключение…",
      cancel: "Отмена",
      confirm: "Подтвердить",
      start: "Запустить",
      stop: "Остановить",
      restart: "Перезапустить",
      rollback: "Откатить",
      logs: "Логи",
      memory: "Память",
      cpu: "CPU",
      noHistory: "истории пока нет",
      uptime: "работает {uptime}",
      restarts: "перезапусков: {n}",
      confirmStop: "Остановить {name}? Слот и логи сохранятся; запустить снова можно в любой момент.",
      confirmRestart: "Перезапустить {name}?",
      confirmRollback: "Откатить {name} к предыдущему релизу?",
      done: { start: "{name} запущен.", stop: "{name} остановлен.", restart: "{name} перезапущен.", rollback: "{name} откачен." },
      logsOf: "Логи {name}",
      states: { running: "работает", starting: "запускается", restarting: "перезапускается", stopped: "остановлен", crashed: "упал", missing: "отсутствует" },
      noTelegram: "Откройте панель кнопкой 🖥 Панель в чате с ботом в Telegram.",
    },
  };

  const ERRORS = {
    en: {
      UNAUTHORIZED: "Telegram could not vouch for you here. Close the dashboard and open it again from the bot.",
      FORBIDDEN: "You are not allowed to do that.",
      QUOTA_EXCEEDED: "Quota reached: at most {limit} bots per user. Delete one with /delete to free a slot.",
      NOT_FOUND: "No bot named {name}. /list shows your bots.",
      ALREADY_EXISTS: "A bot named {name} already exists, so nothing was changed.",
      INVALID_NAME: "Invalid bot name: {msg}",
      INVALID_SOURCE: "The source was refused: {msg}",
      INVALID_ENV: "Invalid environment variables: {msg}",
      INVALID_INPUT: "Invalid input: {msg}",
      GIT_REFUSED: "That git URL is refused: {msg}",
      GIT_FAILED: "Git failed: {msg}",
      BUILD_FAILED: "The build failed: {msg}",
      DOCKER_UNAVAILABLE: "Docker is unavailable on the runner host. Try again in a minute.",
      RUNNER_UNAVAILABLE: "⚠️ The runner is unavailable right now, so nothing was done. Try again in a minute.",
      STORE_UNAVAILABLE: "⚠️ The store (Redis) is unavailable right now, so nothing was done. Try again in a minute.",
      TOKEN_INVALID: "Telegram rejects the token in {key}: it is wrong or was revoked. Get a new one from @BotFather.",
      TOKEN_IN_USE: "The token in {key} already runs another hosted bot. One token can have only one poller.",
      DISK_LIMIT_EXCEEDED: "The bot holds more in /app and /data than its limit allows. Free some space first.",
      DOCKERFILE_NOT_ALLOWED: "Deploying a repository with its own Dockerfile is not allowed here; an admin can allow it.",
      RATE_LIMITED: "Slow down: too many changes in a minute. Try again in a moment.",
      INVALID_STATE: "Not possible in the bot's current state: {msg}",
      EXPIRED: "The request waited too long and was dropped; nothing was done. Try again.",
      TIMEOUT: "The runner did not answer in time. Check /status {name} shortly.",
      NETWORK: "The dashboard cannot reach the server. Check the connection and try again.",
      INTERNAL: "Something went wrong on the runner. Try again; if it keeps happening, tell an admin.",
    },
    ru: {
      UNAUTHORIZED: "Telegram не подтвердил, что это вы. Закройте панель и откройте её снова из бота.",
      FORBIDDEN: "Вам это не разрешено.",
      QUOTA_EXCEEDED: "Лимит исчерпан: не более {limit} ботов на пользователя. Удалите одного через /delete, чтобы освободить место.",
      NOT_FOUND: "Бота {name} нет. Ваши боты — в /list.",
      ALREADY_EXISTS: "Бот {name} уже существует, ничего не изменено.",
      INVALID_NAME: "Недопустимое имя бота: {msg}",
      INVALID_SOURCE: "Исходник отклонён: {msg}",
      INVALID_ENV: "Недопустимые переменные окружения: {msg}",
      INVALID_INPUT: "Неверный ввод: {msg}",
      GIT_REFUSED: "Этот git-адрес запрещён: {msg}",
      GIT_FAILED: "Ошибка git: {msg}",
      BUILD_FAILED: "Сборка не удалась: {msg}",
      DOCKER_UNAVAILABLE: "Docker на сервере раннера недоступен. Попробуйте через минуту.",
      RUNNER_UNAVAILABLE: "⚠️ Раннер сейчас недоступен, поэтому ничего не сделано. Попробуйте через минуту.",
      STORE_UNAVAILABLE: "⚠️ Хранилище (Redis) сейчас недоступно, ничего не сделано. Попробуйте через минуту.",
      TOKEN_INVALID: "Telegram не принимает токен в {key}: он неверный или отозван. Получите новый у @BotFather.",
      TOKEN_IN_USE: "Токен в {key} уже использует другой размещённый бот. Опрашивать токен может только один процесс.",
      DISK_LIMIT_EXCEEDED: "Бот хранит в /app и /data больше, чем позволяет его лимит. Сначала освободите место.",
      DOCKERFILE_NOT_ALLOWED: "Разворачивать репозиторий с собственным Dockerfile здесь нельзя; это может разрешить админ.",
      RATE_LIMITED: "Помедленнее: слишком много изменений за минуту. Попробуйте чуть позже.",
      INVALID_STATE: "Невозможно в текущем состоянии бота: {msg}",
      EXPIRED: "Запрос ждал слишком долго и был отброшен; ничего не сделано. Попробуйте ещё раз.",
      TIMEOUT: "Раннер не ответил вовремя. Проверьте /status {name} чуть позже.",
      NETWORK: "Панель не может связаться с сервером. Проверьте соединение и попробуйте снова.",
      INTERNAL: "На раннере что-то пошло не так. Попробуйте ещё раз; если повторяется — сообщите администратору.",
    },
  };

  function fill(template, params) {
    return template.replace(/\{(\w+)\}/g, (whole, key) => (params[key] !== undefined && params[key] !== null ? String(params[key]) : whole));
  }

  function pick(languageCode) {
    const lang = String(languageCode || "en").split("-")[0].toLowerCase();
    return Object.prototype.hasOwnProperty.call(UI, lang) ? lang : "en";
  }

  return {
    lang: "en",
    use(languageCode) {
      this.lang = pick(languageCode);
      document.documentElement.lang = this.lang;
    },
    t(key, params) {
      const value = key.split(".").reduce((node, part) => (node ? node[part] : undefined), UI[this.lang]);
      return fill(value === undefined ? key : String(value), params || {});
    },
    /* An API error body's {code, message, params} as the chat would word it, in the user's language. */
    error(err, bot) {
      const code = (err && err.code) || "INTERNAL";
      const params = Object.assign({ name: bot || "?", msg: (err && err.message) || "" }, (err && err.params) || {});
      const template = ERRORS[this.lang][code] || ERRORS[this.lang].INTERNAL;
      return { text: fill(template, params), code };
    },
  };
})();
