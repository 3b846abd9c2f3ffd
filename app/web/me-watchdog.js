// A classic script (no module): if the page's modules never start — a WebView too old for JavaScript
// modules, or a file that failed to load on a bad connection — say so in a sentence instead of
// "Loading…" forever.

(function watch() {
  var TOO_OLD = "此应用内浏览器版本过旧，无法显示此页面。请更新应用或系统后重试。 "
    + "This in-app browser is too old to show the page. Please update the app or the system.";
  var NOT_LOADED = "页面未能加载，请检查网络后从应用重新打开。 "
    + "The page could not load. Check your connection and reopen it from the app.";

  function say(text) {
    var boot = document.getElementById("boot");
    if (!boot || document.body.getAttribute("data-started") === "true") return;
    boot.textContent = text;
    boot.className = "error";
    boot.hidden = false;
  }

  if (!("noModule" in document.createElement("script"))) {
    say(TOO_OLD);
    return;
  }
  window.setTimeout(function () { say(NOT_LOADED); }, 15000);
}());
