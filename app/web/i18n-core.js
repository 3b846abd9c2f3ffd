// What the pages' label tables share: looking a label up (falling back to English), filling the elements marked
// for translation, and a page's current language. Each page keeps its own tables and its own language.

/**
 * The label for ``key`` in ``tables[lang]`` with ``{name}`` placeholders filled in from ``params``; falls back
 * to English, then to ``fallback``, then to the key itself.
 */
export function lookup(tables, lang, key, params = {}, fallback = undefined) {
  const text = tables[lang][key] ?? tables.en[key] ?? fallback ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/** Fill every element marked with data-i18n (text), data-i18n-placeholder, data-i18n-title and data-i18n-aria. */
export function translateMarked(root, t) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
}

/**
 * A page's labels in its current language. ``tables`` maps each language the page speaks to its labels, the
 * language it starts in first; ``onChange(lang)`` runs after every change of language.
 */
export function pageLabels(tables, onChange = () => {}) {
  const langs = Object.keys(tables);
  let current = langs[0];
  const t = (key, params = {}, fallback = undefined) => lookup(tables, current, key, params, fallback);
  const spoken = (browser) => langs.find((lang) => (browser || "").toLowerCase().startsWith(lang.slice(0, 2)));
  return {
    t,
    language: () => current,
    /** The first of ``wanted`` the page speaks, else the browser's language if it speaks it, else its first. */
    pickLanguage: (wanted, browser) => wanted.find((lang) => langs.includes(lang)) ?? spoken(browser) ?? langs[0],
    setLanguage(lang) {
      current = langs.includes(lang) ? lang : langs[0];
      onChange(current);
    },
    /** Fill every element marked for translation (see translateMarked), the document's language and title. */
    translatePage(root = document) {
      document.documentElement.lang = current;
      document.title = t("title");
      translateMarked(root, t);
    },
  };
}
