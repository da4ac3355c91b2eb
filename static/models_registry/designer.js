// The status model designer (templates/admin/models_registry/statusmodel/designer.html).
//
// The page holds the draft document as JSON ("designer-data"); this script builds a control for
// every field from it, writes every edit back into the document, and keeps the hidden "document"
// field in step for the form's buttons. State keys are chosen from the model's own states and
// renaming a state renames it everywhere in the form. As the form changes, the server reads the
// document (urls.check) and answers with the problems (placed on their row and field), the
// diagram and what publishing would change; the rules stay on the server, in one place.
(function () {
  "use strict";
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", designer);
  else designer();

  function designer() {
    if (!document.getElementById("designer-data")) return; // the models list loads this script too
    var data = JSON.parse(document.getElementById("designer-data").textContent);
    var doc = data.document;
    var editable = data.editable;
    var editor = document.getElementById("designer-editor");
    var form = document.getElementById("designer-form");
    var problemsByPath = {};
    var CHECK_DELAY_MS = 350;

    ["start_events", "states", "transitions", "milestones", "display"].forEach(function (name) {
      if (!Array.isArray(doc[name])) doc[name] = [];
    });

    // ---- small DOM helpers -------------------------------------------------------------------

    function el(tag, attributes, children) {
      var node = document.createElement(tag);
      Object.keys(attributes || {}).forEach(function (name) {
        var value = attributes[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "text") node.textContent = value;
        else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
        else if (name in node && name !== "list" && name !== "form") node[name] = value;
        else node.setAttribute(name, value === true ? "" : value);
      });
      (children || []).forEach(function (child) {
        if (child === null || child === undefined) return;
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      });
      return node;
    }

    // Ids follow the field's path, so that focus stays where it was when the form is drawn again.
    function idFor(path) { return "designer-f-" + path.replace(/[^A-Za-z0-9_-]+/g, "-"); }
    var uid = 0;
    function nextId() { uid += 1; return "designer-field-" + uid; }

    // A labelled control; `path` names it for the server's problems ("transitions[1].to").
    function field(label, path, control, help) {
      var id = control.id || (path ? idFor(path) : nextId());
      control.id = id;
      var wrapper = el("div", { className: "designer-field", "data-path": path }, [
        el("label", { htmlFor: id, text: label }),
        control,
        help ? el("div", { className: "help", text: help }) : null,
      ]);
      if (control.tagName === "FIELDSET") {
        wrapper.replaceChild(el("span", { className: "designer-label", text: label, id: id + "-label" }), wrapper.firstChild);
        control.setAttribute("aria-labelledby", id + "-label");
      }
      return wrapper;
    }

    function textInput(value, onInput, attributes) {
      return el("input", Object.assign({
        type: "text", value: value == null ? "" : String(value), disabled: !editable,
        oninput: function (event) { onInput(event.target.value); refreshNames(); changed(); },
      }, attributes || {}));
    }

    function textArea(value, onInput, attributes) {
      return el("textarea", Object.assign({
        rows: 2, value: value == null ? "" : String(value), disabled: !editable,
        oninput: function (event) { onInput(event.target.value); changed(); },
      }, attributes || {}));
    }

    function select(options, value, onChange, attributes) {
      var control = el("select", Object.assign({
        disabled: !editable,
        onchange: function (event) { onChange(event.target.value); changed(); render(); },
      }, attributes || {}), options.map(function (option) {
        return el("option", { value: option.value, text: option.text, selected: option.value === value, "data-state-name": option.state ? option.value : null });
      }));
      if (value && !options.some(function (option) { return option.value === value; })) {
        // A key the model does not have (a typo in an imported file): shown, so that it can be fixed.
        control.insertBefore(el("option", { value: value, text: value + " (not a state of this model)", selected: true }), control.firstChild);
      }
      return control;
    }

    function button(text, onClick, attributes) {
      return el("button", Object.assign({
        type: "button", className: "button designer-button", text: text, disabled: !editable,
        onclick: function (event) { event.preventDefault(); onClick(); changed(); render(); },
      }, attributes || {}));
    }

    function stateKeys() {
      return doc.states.map(function (state) { return state && state.key; }).filter(Boolean);
    }

    function kindOf(key) {
      var state = doc.states.find(function (s) { return s && s.key === key; });
      return state ? state.kind || "step" : null;
    }

    function stateOptions(filter) {
      return doc.states.filter(function (state) { return state && state.key && (!filter || filter(state)); })
        .map(function (state) { return { value: state.key, text: stateName(state.key), state: true }; });
    }

    function stateName(key) {
      var state = doc.states.find(function (s) { return s && s.key === key; });
      return state ? (state.label || key) + " (" + key + ")" : key;
    }

    // A label edited: every place that names the state says the new one, without drawing the form again.
    function refreshNames() {
      editor.querySelectorAll("[data-state-name]").forEach(function (node) {
        node.textContent = stateName(node.getAttribute("data-state-name"));
      });
      editor.querySelectorAll("[data-title-of]").forEach(function (node) {
        node.textContent = rowTitle(node.getAttribute("data-title-of"));
      });
    }

    function isTerminal(state) { return state.kind === "success" || state.kind === "failure"; }

    // Checkboxes for a set of state keys; `extra` adds entries the model does not have, to fix them.
    function stateChecklist(path, current, options, onChange) {
      var chosen = current();
      var known = options.map(function (option) { return option.value; });
      var unknown = (chosen || []).filter(function (key) { return known.indexOf(key) < 0; });
      var all = options.concat(unknown.map(function (key) {
        return { value: key, text: key + " (not a state of this model)" };
      }));
      return el("fieldset", { className: "designer-checklist" }, all.map(function (option) {
        var id = idFor(path + "-" + option.value);
        return el("span", { className: "designer-check" }, [
          el("input", {
            type: "checkbox", id: id, value: option.value, disabled: !editable,
            checked: (chosen || []).indexOf(option.value) >= 0,
            onchange: function (event) {
              var next = (Array.isArray(current()) ? current() : []).filter(function (key) { return key !== option.value; });
              if (event.target.checked) next.push(option.value);
              // Kept in the model's order, whatever order they were ticked in.
              var order = all.map(function (o) { return o.value; });
              next.sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
              onChange(next);
              changed();
            },
          }),
          el("label", { htmlFor: id, text: option.text, "data-state-name": option.state ? option.value : null }),
        ]);
      }));
    }

    function rowActions(list, index, noun) {
      return el("span", { className: "designer-row-actions" }, [
        button("↑", function () { move(list, index, -1); }, { title: "Move " + noun + " up", "aria-label": "Move " + noun + " " + (index + 1) + " up", disabled: !editable || index === 0 }),
        button("↓", function () { move(list, index, 1); }, { title: "Move " + noun + " down", "aria-label": "Move " + noun + " " + (index + 1) + " down", disabled: !editable || index === list.length - 1 }),
        button("Remove", function () { list.splice(index, 1); }, { className: "button designer-button designer-remove", "aria-label": "Remove " + noun + " " + (index + 1) }),
      ]);
    }

    function move(list, index, by) {
      var target = index + by;
      if (target < 0 || target >= list.length) return;
      var entry = list.splice(index, 1)[0];
      list.splice(target, 0, entry);
    }

    var NOUNS = { states: ["State", "key"], transitions: ["Transition", "event"], milestones: ["Milestone", "label"], display: ["Display field", "field"] };

    function rowTitle(path) {
      var match = /^([a-z_]+)\[(\d+)\]$/.exec(path);
      var noun = NOUNS[match[1]];
      var entry = doc[match[1]][parseInt(match[2], 10)] || {};
      var name = entry[noun[1]];
      return noun[0] + " " + (parseInt(match[2], 10) + 1) + (name ? " (" + name + ")" : "");
    }

    function row(path, list, index, noun, fields) {
      return el("div", { className: "designer-row", "data-row": path }, [
        el("div", { className: "designer-row-head" }, [el("h4", { text: rowTitle(path), "data-title-of": path }), rowActions(list, index, noun)]),
        el("div", { className: "designer-row-problems", "data-row-problems": path }),
        el("div", { className: "designer-row-fields" }, fields),
      ]);
    }

    function section(id, title, intro, content, addButton) {
      return el("fieldset", { className: "module aligned designer-section", id: id }, [
        el("h2", { text: title }),
        intro ? el("p", { className: "designer-intro", text: intro }) : null,
        el("div", { className: "designer-section-problems", "data-row-problems": id.replace("designer-", "") }),
      ].concat(content).concat([addButton ? el("div", { className: "designer-add" }, [addButton]) : null]));
    }

    // ---- renaming a state renames it everywhere ------------------------------------------------

    function renameState(from, to) {
      if (!from || from === to) return;
      if (doc.initial_state === from) doc.initial_state = to;
      doc.transitions.forEach(function (transition) {
        if (Array.isArray(transition.from)) {
          transition.from = transition.from.map(function (key) { return key === from ? to : key; });
        }
        if (transition.to === from) transition.to = to;
      });
      doc.milestones.forEach(function (milestone) {
        if (Array.isArray(milestone.states)) {
          milestone.states = milestone.states.map(function (key) { return key === from ? to : key; });
        }
      });
    }

    function suggestKey(label) {
      return label.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 64);
    }

    function freeKey(base, taken) {
      var key = base, n = 2;
      while (taken.indexOf(key) >= 0) { key = base + "_" + n; n += 1; }
      return key;
    }

    // ---- the sections ----------------------------------------------------------------------------

    function modelSection() {
      var handler = (data.handlers || []).find(function (h) { return h.name === (doc.handler || "declarative"); });
      var handlerHelp = handler && handler.description ? handler.description : null;
      var reads = handler && handler.reads ? Object.keys(handler.reads) : [];
      var fields = [];
      if (data.is_new) {
        fields.push(field("Model id", "id", textInput(doc.id, function (v) { doc.id = v; }, { required: true, placeholder: "loan-application", maxLength: 64 }),
          "The id every event carries as model_id. Lowercase letters, digits, dots, dashes and underscores; it cannot be changed later."));
      }
      fields.push(field("Name", "name", textInput(doc.name, function (v) { doc.name = v; }, { maxLength: 200, placeholder: "Loan application" })));
      fields.push(field("Description", "description", textArea(doc.description, function (v) { doc.description = v; }), "For your colleagues; customers do not see it."));
      fields.push(field("Initial state", "initial_state",
        select(stateOptions(function (s) { return !isTerminal(s); }), doc.initial_state, function (v) { doc.initial_state = v; }),
        "Where an instance starts when its first event arrives."));
      fields.push(field("Start events", "start_events", tagList(doc.start_events),
        doc.start_events.length ? "Only these event types start an instance; others wait for it." : "None listed: any event type of the model starts an instance."));
      fields.push(field("How long early events wait", "park_ttl", durationInput(doc.park_ttl, function (v) { doc.park_ttl = v; }, false),
        "An event that arrives before its instance can take it waits this long, then expires."));
      var handlerSelect = select((data.handlers || []).map(function (h) { return { value: h.name, text: h.name }; }),
        doc.handler || "declarative", function (v) { doc.handler = v; });
      fields.push(field("Handler", "handler", handlerSelect, handlerHelp));
      if (reads.length) {
        fields.push(el("div", { className: "designer-field designer-reads" }, [
          el("span", { className: "designer-label", text: "The handler reads" }),
          el("ul", {}, reads.map(function (eventType) {
            var names = handler.reads[eventType] || [];
            return el("li", {}, [el("code", { text: eventType }), names.length ? " — data: " + names.join(", ") : ""]);
          })),
        ]));
      }
      fields.push(field("Queue", "queue", el("input", {
        type: "text", name: "queue", value: data.queue || "", disabled: !editable, maxLength: 100, placeholder: "default",
      }), "The Celery queue for this model's work; leave empty for the default queue. Workers must consume it (-Q)."));
      return section("designer-model", data.is_new ? "New status model" : "Model " + doc.id, null, [el("div", { className: "designer-row-fields" }, fields)]);
    }

    // ISO 8601 durations as a number and a unit; anything else is kept and shown as typed.
    var UNITS = [["D", "days", "P"], ["H", "hours", "PT"], ["M", "minutes", "PT"]];
    function durationInput(value, onChange, optional) {
      var match = /^P(?:(\d+)D|T(\d+)H|T(\d+)M)$/.exec(value || "");
      var amount = match ? (match[1] || match[2] || match[3]) : "";
      var unit = match ? (match[1] ? "D" : match[2] ? "H" : "M") : "D";
      var custom = value && !match;
      var number = el("input", { type: "number", min: 1, step: 1, value: custom ? "" : amount, disabled: !editable || custom, className: "designer-duration-amount", "aria-label": "amount" });
      var unitSelect = el("select", { disabled: !editable || custom, "aria-label": "unit" }, UNITS.map(function (u) {
        return el("option", { value: u[0], text: u[1], selected: u[0] === unit });
      }));
      function update() {
        var n = parseInt(number.value, 10);
        if (!n || n < 1) { onChange(optional ? undefined : ""); changed(); return; }
        var u = UNITS.find(function (entry) { return entry[0] === unitSelect.value; });
        onChange(u[2] + n + u[0]);
        changed();
      }
      number.addEventListener("input", update);
      unitSelect.addEventListener("change", update);
      var wrapper = el("span", { className: "designer-duration" }, [number, unitSelect]);
      if (custom) {
        wrapper.appendChild(el("code", { text: value }));
        wrapper.appendChild(button("Clear", function () { onChange(optional ? undefined : "P7D"); }));
      } else if (optional) {
        wrapper.appendChild(el("span", { className: "help", text: " empty: no expectation" }));
      }
      return wrapper;
    }

    function tagList(list) {
      var input = el("input", { type: "text", placeholder: "e.g. application.submitted", disabled: !editable, list: "designer-event-types", "aria-label": "New start event type" });
      function add() {
        var value = input.value.trim();
        if (value && list.indexOf(value) < 0) list.push(value);
        input.value = "";
        changed();
        render();
      }
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { event.preventDefault(); add(); }
      });
      return el("div", { className: "designer-tags" }, list.map(function (value, index) {
        return el("span", { className: "designer-tag", "data-path": "start_events[" + index + "]" }, [
          el("code", { text: value }),
          button("×", function () { list.splice(index, 1); }, { "aria-label": "Remove start event " + value, className: "designer-tag-remove" }),
        ]);
      }).concat([input, el("button", { type: "button", className: "button designer-button", text: "Add", disabled: !editable, onclick: function (e) { e.preventDefault(); add(); } })]));
    }

    function statesSection() {
      var kinds = data.kinds.map(function (k) { return { value: k.key, text: k.text }; });
      var rows = doc.states.map(function (state, index) {
        var path = "states[" + index + "]";
        var keyInput = textInput(state.key, function (v) { state.key = v; state._keyEdited = true; }, { maxLength: 64, required: true });
        keyInput.addEventListener("focus", function () { keyInput.dataset.before = state.key || ""; });
        keyInput.addEventListener("change", function () { renameState(keyInput.dataset.before, state.key); render(); });
        var labelInput = textInput(state.label, function (v) {
          state.label = v;
          // A state added on this page takes its key from its label until the key is edited by hand.
          if (state._new && !state._keyEdited) {
            var before = state.key;
            state.key = freeKey(suggestKey(v) || "state", stateKeys().filter(function (k) { return k !== before; }));
            renameState(before, state.key);
            keyInput.value = state.key;
            labelInput.dataset.keyMoved = "true";
          }
        }, { maxLength: 200, required: true });
        // The key moved with the label: the state lists elsewhere in the form are drawn again with it.
        labelInput.addEventListener("change", function () {
          if (labelInput.dataset.keyMoved) render();
        });
          return row(path, doc.states, index, "state", [
          field("Label", path + ".label", labelInput, "What customers read."),
          field("Key", path + ".key", keyInput, "Events and the API name the state by it."),
          field("Kind", path + ".kind", select(kinds, state.kind || "step", function (v) { state.kind = v; })),
          field("Expected within", path + ".expected_within", durationInput(state.expected_within, function (v) {
            if (v) state.expected_within = v; else delete state.expected_within;
          }, true), "After this long in the state, the instance counts as delayed."),
          field("Description", path + ".description", textArea(state.description, function (v) {
            if (v) state.description = v; else delete state.description;
          }, { rows: 1 }), "Shown to customers under the label."),
        ]);
      });
      return section("designer-states", "States", "The steps an instance goes through. Terminal kinds (success, failure) end it.", rows,
        button("Add a state", function () {
          var key = freeKey("new_state", stateKeys());
          doc.states.push({ key: key, label: "New state", kind: "step", _new: true });
        }));
    }

    function transitionsSection() {
      var rows = doc.transitions.map(function (transition, index) {
        var path = "transitions[" + index + "]";
        var any = transition.from === "*";
        var anyId = idFor(path + "-any");
        var sources = el("div", { className: "designer-sources" }, [
          el("span", { className: "designer-check designer-any" }, [
            el("input", {
              type: "checkbox", id: anyId, checked: any, disabled: !editable,
              onchange: function (event) {
                transition.from = event.target.checked ? "*" : [];
                changed();
                render();
              },
            }),
            el("label", { htmlFor: anyId, text: "Any open state (from: \"*\")" }),
          ]),
          any ? null : stateChecklist(path + ".from", function () { return transition.from; }, stateOptions(function (s) { return !isTerminal(s); }), function (v) { transition.from = v; }),
        ]);
        return row(path, doc.transitions, index, "transition", [
          field("Event type", path + ".event", textInput(transition.event, function (v) { transition.event = v; }, { maxLength: 200, list: "designer-event-types", placeholder: "e.g. payment.captured" })),
          field("From", path + ".from", sources),
          field("To", path + ".to", select(stateOptions(), transition.to, function (v) { transition.to = v; })),
          field("Only when", path + ".when", textInput(transition.when, function (v) {
            if (v) transition.when = v; else delete transition.when;
          }, { placeholder: "e.g. data.amount > `0`" }), "Optional: a JMESPath condition on the event."),
          field("Context updates", path + ".set", assignments(transition, path), "Stored on the instance: shown to customers as display fields."),
        ]);
      });
      return section("designer-transitions", "Transitions", "Which event moves an instance from which states to which.", rows,
        button("Add a transition", function () {
          var keys = doc.states.filter(function (s) { return s && s.key && !isTerminal(s); }).map(function (s) { return s.key; });
          var last = doc.transitions[doc.transitions.length - 1];
          var from = last && last.to && keys.indexOf(last.to) >= 0 ? last.to : keys[0];
          var all = stateKeys();
          var to = all[all.indexOf(from) + 1] || all[0];
          doc.transitions.push({ event: "", from: from ? [from] : [], to: to });
        }));
    }

    function assignments(transition, path) {
      var set = transition.set && typeof transition.set === "object" ? transition.set : {};
      var entries = Object.keys(set).map(function (name) { return [name, set[name]]; });
      function write(next) {
        var object = {};
        next.forEach(function (entry) { object[entry[0]] = entry[1]; });
        if (next.length) transition.set = object; else delete transition.set;
      }
      var lines = entries.map(function (entry, index) {
        var nameInput = textInput(entry[0], function (v) { entries[index][0] = v; write(entries); }, { placeholder: "context field", "aria-label": "Context field " + (index + 1) });
        var valueInput = textInput(entry[1], function (v) { entries[index][1] = v; write(entries); }, { placeholder: "data.field", "aria-label": "Expression " + (index + 1) });
        return el("div", { className: "designer-assignment", "data-path": path + ".set." + entry[0] }, [
          nameInput, el("span", { className: "designer-arrow", text: "←" }), valueInput,
          button("Remove", function () { entries.splice(index, 1); write(entries); }, { className: "button designer-button designer-remove", "aria-label": "Remove context update " + (index + 1) }),
        ]);
      });
      return el("div", { className: "designer-assignments" }, lines.concat([
        button("Add a context update", function () {
          var name = freeKey("field", entries.map(function (e) { return e[0]; }));
          entries.push([name, "data." + name]);
          write(entries);
        }),
      ]));
    }

    function milestonesSection() {
      var rows = doc.milestones.map(function (milestone, index) {
        var path = "milestones[" + index + "]";
        return row(path, doc.milestones, index, "milestone", [
          field("Label", path + ".label", textInput(milestone.label, function (v) { milestone.label = v; }, { maxLength: 200 })),
          field("Key", path + ".key", textInput(milestone.key, function (v) { milestone.key = v; }, { maxLength: 64 })),
          field("States", path + ".states", stateChecklist(path + ".states", function () { return milestone.states; }, stateOptions(), function (v) { milestone.states = v; }),
            "The milestone is reached when the instance is in one of these states."),
          field("Description", path + ".description", textArea(milestone.description, function (v) {
            if (v) milestone.description = v; else delete milestone.description;
          })),
        ]);
      });
      return section("designer-milestones", "Milestones",
        doc.milestones.length ? "The steps customers see, each a group of states." : "None: customers see the states themselves as steps. Group states into milestones to show fewer, broader steps.",
        rows, button("Add a milestone", function () {
          var keys = doc.milestones.map(function (m) { return m.key; });
          doc.milestones.push({ key: freeKey("milestone", keys), label: "New milestone", states: [] });
        }));
    }

    function displaySection() {
      var rows = doc.display.map(function (entry, index) {
        var path = "display[" + index + "]";
        return row(path, doc.display, index, "display field", [
          field("Context field", path + ".field", textInput(entry.field, function (v) { entry.field = v; }, { maxLength: 100, list: "designer-context-fields" })),
          field("Label", path + ".label", textInput(entry.label, function (v) { entry.label = v; }, { maxLength: 200 }), "What customers read beside the value."),
        ]);
      });
      return section("designer-display", "Display fields", "Context fields shown to customers, such as a carrier or a tracking number.", rows,
        button("Add a display field", function () {
          var known = contextFields().filter(function (name) { return !doc.display.some(function (d) { return d.field === name; }); });
          var name = known[0] || "field";
          doc.display.push({ field: name, label: name.replace(/_/g, " ").replace(/^./, function (c) { return c.toUpperCase(); }) });
        }));
    }

    function contextFields() {
      var names = [];
      doc.transitions.forEach(function (t) {
        Object.keys(t && t.set && typeof t.set === "object" ? t.set : {}).forEach(function (name) {
          if (names.indexOf(name) < 0) names.push(name);
        });
      });
      return names;
    }

    function eventTypes() {
      var types = [];
      doc.start_events.concat(doc.transitions.map(function (t) { return t && t.event; })).forEach(function (type) {
        if (type && types.indexOf(type) < 0) types.push(type);
      });
      return types;
    }

    // ---- rendering and the server's reading ---------------------------------------------------------

    function render() {
      var focused = document.activeElement && document.activeElement.id;
      editor.replaceChildren(
        modelSection(), statesSection(), transitionsSection(), milestonesSection(), displaySection(),
        el("datalist", { id: "designer-event-types" }, eventTypes().map(function (t) { return el("option", { value: t }); })),
        el("datalist", { id: "designer-context-fields" }, contextFields().map(function (t) { return el("option", { value: t }); }))
      );
      showProblems();
      if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
      renderTry();
      renderPreview();
    }

    function cleanDocument() {
      return JSON.parse(JSON.stringify(doc, function (key, value) {
        return key.charAt(0) === "_" ? undefined : value;
      }));
    }

    var timer = null;
    var sequence = 0;
    function changed() {
      document.getElementById("designer-document").value = JSON.stringify(cleanDocument());
      form.dataset.dirty = "true";
      form.dataset.checking = "true";  // until the server's reading of this form is shown
      clearTimeout(timer);
      timer = setTimeout(check, CHECK_DELAY_MS);
    }

    function csrfToken() {
      return form.querySelector("[name=csrfmiddlewaretoken]").value;
    }

    function post(url, fields) {
      var body = new URLSearchParams(fields);
      return fetch(url, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      }).then(function (response) {
        return response.json().then(function (json) { return { ok: response.ok, json: json }; });
      });
    }

    function check() {
      sequence += 1;
      var mine = sequence;
      post(data.urls.check, { document: JSON.stringify(cleanDocument()) }).then(function (answer) {
        if (mine !== sequence || !answer.ok) return;
        return applyReport(answer.json).then(function () {
          if (mine === sequence) delete form.dataset.checking;
        });
      }).catch(function () {
        document.getElementById("designer-status").textContent = "The server could not be reached to check the form; your edits are kept in the page.";
      });
    }

    function applyReport(report) {
      data.report = report;
      problemsByPath = {};
      report.problems.forEach(function (problem) {
        (problemsByPath[problem.path] = problemsByPath[problem.path] || []).push(problem);
      });
      showProblems();
      var diagram = document.getElementById("designer-diagram");
      diagram.innerHTML = report.diagram_html;
      var drawn = window.statustrackerDiagram ? window.statustrackerDiagram.drawWithin(diagram) : Promise.resolve();
      var changes = document.getElementById("designer-changes");
      if (changes) {
        changes.replaceChildren.apply(changes, report.changes.length ? report.changes.map(function (text) { return el("li", { text: text }); })
          : [el("li", { className: "designer-none", text: "Nothing: the form equals the latest version." })]);
      }
      renderTry();
      return drawn;
    }

    function showProblems() {
      document.querySelectorAll(".designer-field-problems").forEach(function (node) { node.remove(); });
      document.querySelectorAll(".designer-has-problem").forEach(function (node) { node.classList.remove("designer-has-problem"); });
      document.querySelectorAll("[data-row-problems]").forEach(function (node) { node.replaceChildren(); });
      var placed = 0;
      var unplaced = [];
      (data.report.problems || []).forEach(function (problem) {
        var target = problem.path && document.querySelector('.designer-field[data-path="' + cssEscape(problem.path) + '"]');
        if (!target && problem.path) {
          // A problem of one entry of a list ("transitions[1].from[0]") or of a context update stands on its field.
          var parent = problem.path.replace(/\[\d+\]$/, "").replace(/\.set\..*$/, ".set");
          target = document.querySelector('.designer-field[data-path="' + cssEscape(parent) + '"]');
        }
        if (target) {
          var list = target.querySelector(":scope > .designer-field-problems");
          if (!list) {
            list = el("ul", { className: "errorlist designer-field-problems" });
            target.insertBefore(list, target.children[1] || null);
          }
          list.appendChild(el("li", { text: problem.text }));
          target.classList.add("designer-has-problem");
          var control = target.querySelector("input, select, textarea");
          if (control) control.setAttribute("aria-invalid", "true");
          placed += 1;
          return;
        }
        var rowBox = problem.row && document.querySelector('[data-row-problems="' + cssEscape(problem.row) + '"]');
        if (!rowBox) rowBox = document.querySelector('[data-row-problems="' + cssEscape(problem.path.split("[")[0]) + '"]');
        if (rowBox) {
          rowBox.appendChild(el("p", { className: "errornote", text: problem.text }));
          placed += 1;
        } else {
          unplaced.push(problem.text);
        }
      });
      var status = document.getElementById("designer-status");
      var count = (data.report.problems || []).length;
      status.className = "designer-status " + (count ? "designer-status-problems" : "designer-status-ready");
      status.replaceChildren(
        el("strong", { text: count ? count + (count === 1 ? " problem" : " problems") + " to fix before publishing" : "Ready to publish" }),
        count ? " — each is shown on its row, in red." : " — no problems found."
      );
      unplaced.forEach(function (text) { status.appendChild(el("span", { className: "designer-status-detail", text: text })); });
    }

    function cssEscape(value) {
      return window.CSS && CSS.escape ? CSS.escape(value) : value.replace(/["\\]/g, "\\$&");
    }

    // ---- try it ---------------------------------------------------------------------------------------

    var trial = { on: "form", state: "", event: "", context: "", result: null };

    function renderTry() {
      var panel = document.getElementById("designer-try");
      if (!data.urls.try) return;
      panel.hidden = false;
      var body = document.getElementById("designer-try-body");
      var samples = (data.report && data.report.samples) || [];
      if (!trial.event && samples.length) trial.event = JSON.stringify(samples[0], null, 2);
      var versions = [{ value: "form", text: "the form as it is now (unsaved edits included)" }];
      if (data.latest_version) {
        for (var n = data.latest_version; n >= 1; n -= 1) versions.push({ value: String(n), text: "published version " + n });
      }
      var onSelect = el("select", { id: "designer-try-on", onchange: function (e) { trial.on = e.target.value; } },
        versions.map(function (v) { return el("option", { value: v.value, text: v.text, selected: v.value === trial.on }); }));
      var stateSelect = el("select", { id: "designer-try-state", onchange: function (e) { trial.state = e.target.value; } },
        [el("option", { value: "", text: "No instance yet" })].concat(stateOptions().map(function (o) {
          return el("option", { value: o.value, text: o.text, selected: o.value === trial.state });
        })));
      var sampleSelect = el("select", { id: "designer-try-sample", "aria-label": "Sample event", onchange: function (e) {
        var sample = samples[parseInt(e.target.value, 10)];
        if (sample) { trial.event = JSON.stringify(sample, null, 2); eventBox.value = trial.event; }
      } }, [el("option", { value: "", text: "Pick a sample event…" })].concat(samples.map(function (sample, i) {
        return el("option", { value: String(i), text: sample.event_type });
      })));
      var eventBox = el("textarea", { id: "designer-try-event", "aria-label": "Event (JSON)", rows: 6, value: trial.event, spellcheck: false, className: "designer-code",
        oninput: function (e) { trial.event = e.target.value; } });
      var contextBox = el("textarea", { id: "designer-try-context", rows: 2, value: trial.context, spellcheck: false, className: "designer-code",
        placeholder: "{\"carrier\": \"DHL\"}", oninput: function (e) { trial.context = e.target.value; } });
      var result = el("div", { id: "designer-try-result", className: "designer-try-result", "aria-live": "polite" });
      if (trial.result) result.appendChild(trial.result);
      var run = el("button", { type: "button", className: "button default", id: "designer-try-run", text: "Try the event", onclick: function (e) {
        e.preventDefault();
        tryEvent();
      } });
      body.replaceChildren(
        el("p", { className: "designer-intro", text: "What would this event do? Nothing is stored and no instance is touched; the decision is the workers' own." }),
        field("Try on", "", onSelect),
        field("The instance is in", "", stateSelect),
        field("Event", "", el("div", {}, [sampleSelect, eventBox]), "The event's JSON: event_type, data (and anything else an envelope carries)."),
        field("Context (optional)", "", contextBox, "The instance's context as JSON, e.g. what earlier events stored."),
        el("div", { className: "designer-add" }, [run]),
        result
      );
    }

    // ---- the customer's page, before it goes live --------------------------------------------------

    var preview = { on: "draft", state: "" };

    function renderPreview() {
      if (!data.urls.preview) return;
      document.getElementById("designer-preview").hidden = false;
      var versions = [{ value: "draft", text: "the saved draft" }];
      for (var n = data.latest_version || 0; n >= 1; n -= 1) versions.push({ value: String(n), text: "published version " + n });
      var link = el("a", { className: "button", id: "designer-preview-open", target: "_blank", rel: "noopener", text: "Open the preview" });
      function update() {
        var query = new URLSearchParams({ version: preview.on });
        if (preview.state) query.set("state", preview.state);
        link.href = data.urls.preview + "?" + query.toString();
      }
      var onSelect = el("select", { id: "designer-preview-on", onchange: function (e) { preview.on = e.target.value; update(); } },
        versions.map(function (v) { return el("option", { value: v.value, text: v.text, selected: v.value === preview.on }); }));
      var stateSelect = el("select", { id: "designer-preview-state", onchange: function (e) { preview.state = e.target.value; update(); } },
        stateOptions().map(function (o) { return el("option", { value: o.value, text: o.text, selected: o.value === preview.state }); }));
      if (!preview.state && doc.initial_state) preview.state = doc.initial_state;
      stateSelect.value = preview.state;
      update();
      document.getElementById("designer-preview-body").replaceChildren(
        el("p", { className: "designer-intro", text: "What a customer whose request is in a state would see. The preview shows what is saved: save the draft first to see your latest edits." }),
        el("div", { className: "designer-row-fields" }, [field("Show", "", onSelect), field("For a request in", "", stateSelect)]),
        el("div", { className: "designer-add" }, [link])
      );
    }

    // The panel is drawn again whenever the form changes: the answer goes into whichever panel is there.
    function showTrial(node) {
      trial.result = node;
      var result = document.getElementById("designer-try-result");
      if (result) result.replaceChildren(node);
    }

    function tryEvent() {
      var fields = { state: trial.state, event: trial.event, context: trial.context };
      if (trial.on === "form") fields.document = JSON.stringify(cleanDocument());
      else fields.version = trial.on;
      showTrial(el("p", { text: "Trying…" }));
      post(data.urls.try, fields).then(function (answer) {
        showTrial(answer.ok ? describeTrial(answer.json) : el("div", { className: "errornote" }, [
          el("strong", { text: answer.json.detail || "The event could not be tried." }),
          el("ul", {}, (answer.json.problems || []).map(function (text) { return el("li", { text: text }); })),
        ]));
      }).catch(function () {
        showTrial(el("p", { className: "errornote", text: "The server could not be reached." }));
      });
    }

    function label(key) {
      var state = doc.states.find(function (s) { return s && s.key === key; });
      return state && state.label ? state.label + " (" + key + ")" : key;
    }

    function describeTrial(answer) {
      var sentence;
      if (answer.outcome === "created") {
        sentence = "Creates the instance in " + label(answer.steps[0].to_state) + (answer.steps.length > 1 ? ", then moves it to " + label(answer.to_state) : "") + ".";
      } else if (answer.outcome === "applied") {
        sentence = "Moves the instance from " + label(answer.from_state) + " to " + label(answer.to_state) + ".";
      } else if (answer.outcome === "parked") {
        sentence = "Waits (parked)" + (answer.waits_for.length ? " until the instance is in " + answer.waits_for.map(label).join(" or ") : "") + ". " + (answer.reason || "");
      } else if (answer.outcome === "ignored") {
        sentence = "Ignored: " + (answer.reason || "it can never apply") + ".";
      } else {
        sentence = "Fails: " + answer.reason + ". A worker would mark the event failed and hold the instance.";
      }
      var updates = Object.keys(answer.context_updates || {});
      return el("div", { className: "designer-trial designer-trial-" + answer.outcome }, [
        el("p", {}, [el("span", { className: "designer-outcome", text: answer.outcome }), " ", sentence]),
        updates.length ? el("dl", { className: "designer-updates" }, updates.reduce(function (nodes, name) {
          return nodes.concat([el("dt", { text: name }), el("dd", { text: JSON.stringify(answer.context_updates[name]) })]);
        }, [])) : null,
      ]);
    }

    // ---- the form's buttons ---------------------------------------------------------------------------------

    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (submitter && submitter.dataset.confirm && !window.confirm(submitter.dataset.confirm)) {
        event.preventDefault();
        return;
      }
      document.getElementById("designer-document").value = JSON.stringify(cleanDocument());
      form.dataset.dirty = "";
    });
    window.addEventListener("beforeunload", function (event) {
      if (form.dataset.dirty === "true") event.preventDefault();
    });

    document.getElementById("designer-document").value = JSON.stringify(cleanDocument());
    render();
    applyReport(data.report);
  }
})();
