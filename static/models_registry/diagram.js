// Draws every status model diagram on the page with Graphviz (viz-js, static/vendor), from the DOT
// that models_registry.diagram wrote into the page, and marks each state's element with
// data-state="<key>" (Graphviz puts the node's name, the state key, in its <title>).
(function () {
  "use strict";
  // Below this scale labels become too small to read: the diagram scrolls sideways instead.
  var MIN_SCALE = 0.75;
  var PX_PER_PT = 4 / 3;

  function fit(figure) {
    var canvas = figure.querySelector("[data-diagram-canvas]");
    var svg = canvas.querySelector("svg");
    if (!svg) return;
    var natural = svg.viewBox.baseVal.width * PX_PER_PT;
    var available = canvas.clientWidth - 16;
    var scale = Math.max(MIN_SCALE, Math.min(1, available / natural));
    svg.style.width = Math.round(natural * scale) + "px";
    svg.style.height = "auto";
    var scrolls = natural * scale > available;
    canvas.classList.toggle("model-diagram-scrolls", scrolls);
    figure.querySelector("[data-diagram-scroll-hint]").hidden = !scrolls;
  }

  function draw(viz, figure) {
    var canvas = figure.querySelector("[data-diagram-canvas]");
    var dot = JSON.parse(document.getElementById(figure.dataset.dot).textContent);
    var svg;
    try {
      svg = viz.renderSVGElement(dot);
    } catch (error) {
      canvas.querySelector("p").textContent = "The diagram could not be drawn (" + error.message + "); the states and transitions are listed below.";
      return;
    }
    svg.querySelectorAll("g.node.state").forEach(function (node) {
      node.setAttribute("data-state", node.querySelector("title").textContent);
    });
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", figure.querySelector("figcaption").textContent.trim());
    canvas.replaceChildren(svg);
    figure.classList.add("model-diagram-drawn");
    fit(figure);
  }

  var vizReady = null;

  // Draws the diagrams inside root (the page, or a fragment the designer has just put in).
  function drawWithin(root) {
    var figures = root.querySelectorAll("[data-model-diagram]");
    if (!figures.length || !window.Viz) return Promise.resolve();
    vizReady = vizReady || window.Viz.instance();
    return vizReady.then(function (viz) {
      figures.forEach(function (figure) { draw(viz, figure); });
    });
  }

  function start() {
    drawWithin(document);
    window.addEventListener("resize", function () {
      document.querySelectorAll(".model-diagram-drawn").forEach(fit);
    });
  }

  window.statustrackerDiagram = { drawWithin: drawWithin };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
