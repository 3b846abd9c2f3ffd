// What the pages' label tables share: looking a label up (falling back to English) and filling the
// elements marked for translation. Each page keeps its own tables and its own current language.

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
