/* Customer page: show times in the viewer's locale and time zone, after the first load and after
   every live update. Loaded from this origin (the Content-Security-Policy allows no inline script). */
(function () {
  "use strict";
  var locales = navigator.languages && navigator.languages.length ? navigator.languages : undefined;
  var styles = {
    datetime: { dateStyle: "medium", timeStyle: "short" },
    date: { weekday: "short", day: "numeric", month: "short", year: "numeric" }
  };

  function localise(root) {
    var times = root.querySelectorAll ? root.querySelectorAll("time[data-local]") : [];
    for (var i = 0; i < times.length; i++) {
      var element = times[i];
      var when = new Date(element.getAttribute("datetime"));
      if (isNaN(when.getTime())) continue;
      try {
        var style = styles[element.getAttribute("data-local")] || styles.datetime;
        element.textContent = new Intl.DateTimeFormat(locales, style).format(when);
      } catch (error) {
        /* An old browser without these options keeps the server's text. */
      }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
  });
  document.addEventListener("htmx:load", function (event) {
    localise(event.detail.elt);
  });
})();
