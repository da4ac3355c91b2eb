// Draws the dashboard's two charts with Chart.js (static/vendor) from the JSON the page carries
// (tracking/insights/views.py, _charts); the tables on the page say the same without JavaScript.
(function () {
  "use strict";

  function textColour() {
    return getComputedStyle(document.documentElement).getPropertyValue("--body-fg").trim() || "#333";
  }

  function draw() {
    if (!window.Chart) return;
    var data = JSON.parse(document.getElementById("insights-charts").textContent);
    var colour = textColour();
    window.Chart.defaults.color = colour;
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

    var states = document.querySelector('[data-chart="states"]');
    if (states) {
      new window.Chart(states, {
        type: "bar",
        data: {
          labels: data.states.labels,
          datasets: [{ label: "Instances now", data: data.states.counts, backgroundColor: data.states.colours }],
        },
        options: {
          indexAxis: "y",
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { display: false } },
          scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      });
    }

    var days = document.querySelector('[data-chart="days"]');
    if (days) {
      new window.Chart(days, {
        type: "line",
        data: {
          labels: data.days.labels,
          datasets: data.days.series.map(function (series) {
            return {
              label: series.label,
              data: series.values,
              borderColor: series.colour,
              backgroundColor: series.colour,
              pointRadius: data.days.labels.length > 40 ? 0 : 2,
              tension: 0.2,
            };
          }),
        },
        options: {
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { maxRotation: 0, autoSkipPadding: 12 } } },
        },
      });
    }
    document.getElementById("insights").classList.add("insights-charts-drawn");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
