/* Draws each chart whose Vega-Lite spec the page carries as JSON in a data-spec attribute into that element,
   with the vendored vega-embed: on load, and in whatever htmx swaps in. ast: true evaluates expressions with
   Vega's interpreter, so the Content-Security-Policy needs no 'unsafe-eval'; defaultStyle: false injects no
   <style>. Each drawn view is kept in window.shipyardCharts under the element's data-chart-name (the browser
   tests read the data it holds). */
(function () {
  "use strict";
  var charts = (window.shipyardCharts = window.shipyardCharts || {});

  function draw(root) {
    var targets = root.querySelectorAll ? Array.prototype.slice.call(root.querySelectorAll("[data-spec]")) : [];
    if (root.hasAttribute && root.hasAttribute("data-spec")) targets.push(root);
    targets.forEach(function (target) {
      if (target.getAttribute("data-drawn")) return;
      target.setAttribute("data-drawn", "pending");
      var name = target.getAttribute("data-chart-name") || target.id;
      window
        .vegaEmbed(target, JSON.parse(target.getAttribute("data-spec")), {
          renderer: "svg", actions: false, ast: true, defaultStyle: false, tooltip: false
        })
        .then(function (result) {
          charts[name] = result.view;
          target.setAttribute("data-drawn", "yes");
        })
        .catch(function (error) {
          target.setAttribute("data-drawn", "failed");
          target.textContent = "The chart could not be drawn: " + error;
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:load", function (event) { draw(event.detail.elt); });
})();
