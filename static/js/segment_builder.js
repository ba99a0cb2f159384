// The segment rule builder. The rule JSON lives in the hidden <textarea id="id_rule">; this
// module draws it as nested groups (all / any / not) of conditions with inputs that fit each
// field, and writes every edit back to the textarea before htmx posts the form for the live
// count. Field catalogue and labels come from <script id="builder-meta"> (json_script); no
// user data is ever put into inline script. Errors of the rule engine name a node path such as
// "/all/2/value": they are shown under the condition or group with that path.
(function () {
  "use strict";

  var CHOICE_KINDS = { choice: 1, product_type: 1, branch: 1, rm: 1, segment: 1 };
  var root, textarea, form, meta, ui, fieldsByKey, tree, registry, pathMap = {};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else if (k === "className") {
        node.className = attrs[k];
      } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  // --- the model: {type: "group", op, children} / {type: "cond", field, op, value} ---------
  function isGroupJson(n) {
    return n && typeof n === "object" && !Array.isArray(n) &&
      ("all" in n || "any" in n || "not" in n);
  }

  function fromJson(n) {
    if (isGroupJson(n)) {
      if ("not" in n) {
        var inner = n.not;
        if (inner && typeof inner === "object" && Array.isArray(inner.any)) {
          return { type: "group", op: "not", children: inner.any.map(fromJson) };
        }
        return { type: "group", op: "not", children: inner ? [fromJson(inner)] : [] };
      }
      var op = "all" in n ? "all" : "any";
      var list = Array.isArray(n[op]) ? n[op] : [];
      return { type: "group", op: op, children: list.map(fromJson) };
    }
    n = n && typeof n === "object" ? n : {};
    return { type: "cond", field: n.field || "", op: n.op || "", value: n.value === undefined ? null : n.value };
  }

  function toJson(n) {
    if (n.type === "cond") { return { field: n.field, op: n.op, value: n.value }; }
    var kids = n.children.map(toJson);
    if (n.op === "not") {
      return kids.length === 1 ? { not: kids[0] } : { not: { any: kids } };
    }
    var out = {};
    out[n.op] = kids;
    return out;
  }

  // A condition whose value the user has not entered yet is incomplete, not wrong: it is shown
  // neutrally and left out of the live count (the saved rule still has it, and saving refuses it).
  function isBlank(cond) {
    if (cond.type !== "cond" || !fieldsByKey[cond.field] || cond.op === "is_null") { return false; }
    var v = cond.value;
    if (Array.isArray(v)) {
      return !v.length || v.some(function (x) { return x === null || x === ""; });
    }
    return v === null || v === undefined || v === "";
  }

  // The rule without its incomplete conditions (and groups left empty by that), for the live
  // count; `paths` maps each node path of the result to the path of the same node in the editor.
  function countable(n, path, outPath, paths) {
    if (n.type === "cond") {
      if (isBlank(n)) { return null; }
      paths[outPath] = path;
      return toJson(n);
    }
    var kept = [];
    n.children.forEach(function (child, i) {
      kept.push({ child: child, path: childPath(n, path, i) });
    });
    kept = kept.filter(function (k) { return countableNonEmpty(k.child); });
    if (!kept.length) { return null; }
    var shadow = { type: "group", op: n.op, children: kept.map(function (k) { return k.child; }) };
    var kids = kept.map(function (k, i) {
      return countable(k.child, k.path, childPath(shadow, outPath, i), paths);
    });
    paths[outPath] = path;
    if (n.op === "not") {
      return kids.length === 1 ? { not: kids[0] } : { not: { any: kids } };
    }
    var out = {};
    out[n.op] = kids;
    return out;
  }

  function countableNonEmpty(n) {
    if (n.type === "cond") { return !isBlank(n); }
    return n.children.some(countableNonEmpty);
  }

  function blankCount(n) {
    if (n.type === "cond") { return isBlank(n) ? 1 : 0; }
    return n.children.reduce(function (sum, c) { return sum + blankCount(c); }, 0);
  }

  function childPath(group, path, i) {
    if (group.op === "not") {
      return group.children.length === 1 ? path + "/not" : path + "/not/any/" + i;
    }
    return path + "/" + group.op + "/" + i;
  }

  function defaultValue(field, op) {
    if (op === "is_null") { return true; }
    if (op === "between") { return [null, null]; }
    if (op === "in" || op === "not_in") { return []; }
    if (field && field.kind === "boolean") { return true; }
    return null;
  }

  function convertValue(field, oldOp, newOp, value) {
    if (newOp === "is_null") { return true; }
    var list = oldOp === "is_null" || value === null || value === undefined ? []
      : (Array.isArray(value) ? value : [value]);
    if (newOp === "between") { return [list[0] === undefined ? null : list[0], list[1] === undefined ? null : list[1]]; }
    if (newOp === "in" || newOp === "not_in") { return list.filter(function (v) { return v !== null && v !== ""; }); }
    if (field && field.kind === "boolean") { return typeof list[0] === "boolean" ? list[0] : true; }
    return list.length ? list[0] : null;
  }

  // --- reading inputs ---------------------------------------------------------------------
  function readScalar(field, raw) {
    if (!field) { return raw; }
    if (field.kind === "number") {
      if (raw === "" || raw === null) { return null; }
      var num = Number(raw);
      return isNaN(num) ? raw : num;
    }
    if (field.kind === "boolean") { return raw === "true"; }
    if (raw === "") { return null; }
    return raw;
  }

  function readList(field, raw) {
    return raw.split(/[,，\s]+/).filter(function (s) { return s !== ""; }).map(function (s) {
      return readScalar(field, s);
    });
  }

  // --- drawing ----------------------------------------------------------------------------
  function options(select, pairs, selected, blank) {
    if (blank) { select.appendChild(el("option", { value: "", text: ui.choose })); }
    pairs.forEach(function (p) {
      var opt = el("option", { value: String(p[0]), text: p[1] });
      var sel = Array.isArray(selected) ? selected.map(String).indexOf(String(p[0])) >= 0
        : selected !== null && selected !== undefined && String(selected) === String(p[0]);
      if (sel) { opt.selected = true; }
      select.appendChild(opt);
    });
    return select;
  }

  function scalarInput(field, value, role, label) {
    var attrs = { "data-role": role, "aria-label": label, className: "form-select form-select-sm" };
    if (field.kind === "boolean") {
      return options(el("select", attrs), [["true", ui.yes], ["false", ui.no]],
                     value === false ? "false" : "true");
    }
    if (CHOICE_KINDS[field.kind] && field.choices) {
      return options(el("select", attrs), field.choices, value, true);
    }
    attrs.className = "form-control form-control-sm";
    attrs.type = field.kind === "number" ? "number" : field.kind === "date" ? "date" : "text";
    if (field.kind === "number") { attrs.step = "any"; }
    var input = el("input", attrs);
    input.value = value === null || value === undefined ? "" : String(value);
    return input;
  }

  function valueInputs(cond, field) {
    var box = el("div", { className: "rule-value d-flex flex-wrap align-items-center gap-1" });
    if (!field) { return box; }
    if (cond.op === "is_null") {
      box.appendChild(options(el("select", { "data-role": "value", "aria-label": ui.value,
                                             className: "form-select form-select-sm" }),
                              [["true", ui.yes], ["false", ui.no]],
                              cond.value === false ? "false" : "true"));
      return box;
    }
    if (cond.op === "between") {
      var pair = Array.isArray(cond.value) ? cond.value : [null, null];
      box.appendChild(scalarInput(field, pair[0], "value-low", ui.value));
      box.appendChild(el("span", { className: "small text-body-secondary", text: ui.and }));
      box.appendChild(scalarInput(field, pair[1], "value-high", ui.value));
      return box;
    }
    if (cond.op === "in" || cond.op === "not_in") {
      var list = Array.isArray(cond.value) ? cond.value : [];
      if (CHOICE_KINDS[field.kind] && field.choices) {
        var multi = el("select", { "data-role": "value-multi", multiple: "multiple",
                                   "aria-label": ui.value, title: ui.multi_hint,
                                   className: "form-select form-select-sm rule-multi",
                                   size: String(Math.min(6, field.choices.length)) });
        box.appendChild(options(multi, field.choices, list, false));
        return box;
      }
      var text = el("input", { "data-role": "value-list", type: "text", "aria-label": ui.value,
                               className: "form-control form-control-sm", placeholder: "1, 2, 3" });
      text.value = list.join(", ");
      box.appendChild(text);
      return box;
    }
    box.appendChild(scalarInput(field, cond.value, "value", ui.value));
    return box;
  }

  function drawCondition(cond, path) {
    var id = registry.push(cond) - 1;
    var field = fieldsByKey[cond.field];
    var fieldSel = options(el("select", { "data-role": "field", "aria-label": ui.field,
                                          className: "form-select form-select-sm" }),
                           meta.fields.map(function (f) { return [f.key, f.label]; }),
                           cond.field, !field);
    var opPairs = (field ? field.ops : []).map(function (o) { return [o, ui.ops[o] || o]; });
    var opSel = options(el("select", { "data-role": "op", "aria-label": ui.operator,
                                       className: "form-select form-select-sm" }),
                        opPairs, cond.op, !field || field.ops.indexOf(cond.op) < 0);
    var remove = el("button", { type: "button", "data-action": "remove", "aria-label": ui.remove,
                                title: ui.remove, className: "btn btn-sm btn-outline-danger", text: "×" });
    return el("div", { className: "rule-condition", "data-path": path, "data-nid": String(id),
                       "data-field": cond.field || "" }, [
      el("div", { className: "d-flex flex-wrap align-items-start gap-2" }, [
        el("div", { className: "rule-field" }, [fieldSel]),
        el("div", { className: "rule-op" }, [opSel]),
        valueInputs(cond, field),
        el("div", { className: "ms-auto" }, [remove])
      ]),
      el("div", { className: "rule-incomplete-note small text-body-secondary", text: ui.incomplete })
    ]);
  }

  function drawGroup(group, path, isRoot) {
    var id = registry.push(group) - 1;
    var opSel = options(el("select", { "data-role": "group-op", "aria-label": ui.operator,
                                       className: "form-select form-select-sm w-auto" }),
                        [["all", ui.groups.all], ["any", ui.groups.any], ["not", ui.groups.not]],
                        group.op, false);
    var head = el("div", { className: "rule-group-head d-flex flex-wrap align-items-center gap-2 mb-2" }, [
      opSel,
      el("button", { type: "button", "data-action": "add-cond", className: "btn btn-sm btn-outline-primary", text: "+ " + ui.add_condition }),
      el("button", { type: "button", "data-action": "add-group", className: "btn btn-sm btn-outline-secondary", text: "+ " + ui.add_group }),
      isRoot ? null : el("button", { type: "button", "data-action": "remove", "aria-label": ui.remove,
                                     title: ui.remove, className: "btn btn-sm btn-outline-danger ms-auto", text: "×" })
    ]);
    var body = el("div", { className: "rule-children" });
    group.children.forEach(function (child, i) {
      var p = childPath(group, path, i);
      body.appendChild(child.type === "group" ? drawGroup(child, p, false) : drawCondition(child, p));
    });
    if (!group.children.length) {
      body.appendChild(el("div", { className: "small text-body-secondary rule-empty", text: ui.empty_group }));
    }
    return el("div", { className: "rule-group rule-group-" + group.op + (isRoot ? " rule-root" : ""),
                       "data-path": path, "data-nid": String(id) }, [head, body]);
  }

  function draw() {
    registry = [];
    root.replaceChildren(drawGroup(tree, "", true));
  }

  function markIncomplete() {
    root.querySelectorAll(".rule-condition").forEach(function (row) {
      var node = registry[Number(row.getAttribute("data-nid"))];
      row.classList.toggle("rule-incomplete", isBlank(node));
    });
  }

  function sync() {
    textarea.value = JSON.stringify(toJson(tree));
    markIncomplete();
  }

  // Ask for the live count; htmx waits 400 ms after the last edit (hx-trigger "rule-edit delay").
  function preview() {
    if (window.htmx) { window.htmx.trigger(form, "rule-edit"); }
  }

  function showNeutral(text) {
    var box = document.getElementById("preview");
    if (!box) { return; }
    clearErrors();
    box.replaceChildren(
      el("div", { className: "preview-count text-body-secondary", id: "preview-count", "data-count": "", text: "—" }),
      el("div", { className: "small text-body-secondary", id: "preview-incomplete", text: text }));
  }

  // The live-count request carries the countable rule, not the one being saved.
  function onConfigRequest(event) {
    if (event.target !== form || event.detail.verb !== "post" ||
        event.detail.path !== form.getAttribute("hx-post")) { return; }
    var paths = {};
    var rule = countable(tree, "", "", paths);
    if (!rule) {
      event.preventDefault();
      showNeutral(ui.count_needs_condition);
      return;
    }
    pathMap = paths;
    event.detail.parameters.rule = JSON.stringify(rule);
  }

  function editorPath(countPath) {
    var parts = (countPath || "").split("/");
    for (var n = parts.length; n >= 1; n--) {
      var prefix = parts.slice(0, n).join("/");
      if (Object.prototype.hasOwnProperty.call(pathMap, prefix)) {
        var rest = parts.slice(n).join("/");
        return pathMap[prefix] + (rest ? "/" + rest : "");
      }
    }
    return countPath;
  }

  function nodeOf(target) {
    var holder = target.closest("[data-nid]");
    return holder ? { node: registry[Number(holder.getAttribute("data-nid"))], holder: holder } : null;
  }

  function parentOf(node, group) {
    group = group || tree;
    for (var i = 0; i < group.children.length; i++) {
      var c = group.children[i];
      if (c === node) { return group; }
      if (c.type === "group") { var found = parentOf(node, c); if (found) { return found; } }
    }
    return null;
  }

  function newCondition() {
    var first = meta.fields[0];
    var op = first.ops[0];
    return { type: "cond", field: first.key, op: op, value: defaultValue(first, op) };
  }

  // --- events -----------------------------------------------------------------------------
  function onInput(event) {
    var t = event.target;
    var role = t.getAttribute && t.getAttribute("data-role");
    if (!role) { return; }
    var hit = nodeOf(t);
    if (!hit) { return; }
    var node = hit.node;
    if (role === "group-op") {
      if (event.type !== "change") { return; }
      node.op = t.value;
      draw();
    } else if (role === "field") {
      if (event.type !== "change") { return; }
      var f = fieldsByKey[t.value];
      node.field = t.value;
      node.op = f ? f.ops[0] : "";
      node.value = defaultValue(f, node.op);
      draw();
    } else if (role === "op") {
      if (event.type !== "change") { return; }
      var fld = fieldsByKey[node.field];
      node.value = convertValue(fld, node.op, t.value, node.value);
      node.op = t.value;
      draw();
    } else {
      var field = fieldsByKey[node.field];
      if (role === "value") {
        node.value = node.op === "is_null" ? t.value === "true" : readScalar(field, t.value);
      } else if (role === "value-low" || role === "value-high") {
        var pair = Array.isArray(node.value) ? node.value.slice(0, 2) : [null, null];
        pair[role === "value-low" ? 0 : 1] = readScalar(field, t.value);
        node.value = pair;
      } else if (role === "value-multi") {
        node.value = Array.prototype.filter.call(t.options, function (o) { return o.selected; })
          .map(function (o) { return readScalar(field, o.value); });
      } else if (role === "value-list") {
        node.value = readList(field, t.value);
      }
    }
    sync();
    preview();
  }

  function onClick(event) {
    var button = event.target.closest("[data-action]");
    if (!button || !root.contains(button)) { return; }
    var hit = nodeOf(button);
    if (!hit) { return; }
    var action = button.getAttribute("data-action");
    if (action === "add-cond") {
      hit.node.children.push(newCondition());
    } else if (action === "add-group") {
      hit.node.children.push({ type: "group", op: "any", children: [newCondition()] });
    } else if (action === "remove") {
      var parent = parentOf(hit.node);
      if (!parent) { return; }
      parent.children.splice(parent.children.indexOf(hit.node), 1);
    }
    draw();
    sync();
    preview();
  }

  // --- errors at their node ---------------------------------------------------------------
  function clearErrors() {
    root.querySelectorAll(".rule-error").forEach(function (n) { n.remove(); });
    root.querySelectorAll(".is-invalid, .rule-invalid").forEach(function (n) {
      n.classList.remove("is-invalid", "rule-invalid");
    });
  }

  function showError(path, message) {
    clearErrors();
    if (!message) { return; }
    path = path === "/" ? "" : (path || "");
    var parts = path.split("/");
    var target = null, rest = "";
    for (var n = parts.length; n >= 1 && !target; n--) {
      var prefix = parts.slice(0, n).join("/");
      target = root.querySelector('[data-path="' + (window.CSS && CSS.escape ? CSS.escape(prefix) : prefix) + '"]');
      if (target) { rest = parts.slice(n).join("/"); }
    }
    target = target || root.querySelector(".rule-root");
    if (!target) { return; }
    target.classList.add("rule-invalid");
    var what = rest.split("/")[0];
    var input = null;
    if (what === "field") { input = target.querySelector(':scope > div [data-role="field"]'); }
    else if (what === "op") { input = target.querySelector(':scope > div [data-role="op"]'); }
    else if (what === "value" && target.classList.contains("rule-condition")) {
      var idx = rest.split("/")[1];
      var inputs = target.querySelectorAll(".rule-value [data-role]");
      input = idx !== undefined && inputs[Number(idx)] ? inputs[Number(idx)] : inputs[0];
    }
    if (input) { input.classList.add("is-invalid"); }
    var msg = el("div", { className: "rule-error invalid-feedback d-block", role: "alert",
                          "data-error-node": path, text: message });
    if (target.classList.contains("rule-group")) {
      target.querySelector(".rule-group-head").after(msg);
    } else {
      target.appendChild(msg);
    }
  }

  function onSwap(event) {
    var preview = document.getElementById("preview");
    if (!preview || event.detail.target !== preview) { return; }
    var err = preview.querySelector("[data-rule-error-node]");
    if (err) { showError(editorPath(err.getAttribute("data-rule-error-node")), err.textContent.trim()); }
    else { clearErrors(); }
    var blanks = blankCount(tree);
    if (blanks && !err) {
      preview.appendChild(el("div", { className: "small text-body-secondary mt-2", id: "preview-incomplete",
                                      text: ui.incomplete_skipped.replace("%(n)s", String(blanks)) }));
    }
  }

  function init() {
    root = document.getElementById("rule-builder");
    textarea = document.getElementById("id_rule");
    var metaEl = document.getElementById("builder-meta");
    if (!root || !textarea || !metaEl) { return; }
    form = textarea.form;
    meta = JSON.parse(metaEl.textContent);
    ui = meta.ui;
    ["incomplete", "incomplete_skipped", "count_needs_condition"].forEach(function (k) {
      ui[k] = root.getAttribute("data-" + k.replace(/_/g, "-")) || "";
    });
    fieldsByKey = {};
    meta.fields.forEach(function (f) { fieldsByKey[f.key] = f; });
    var rule = null;
    try { rule = JSON.parse(textarea.value || "null"); } catch (e) { rule = null; }
    if (!rule || typeof rule !== "object" || Array.isArray(rule)) { rule = { all: [] }; }
    if (!isGroupJson(rule)) { rule = { all: [rule] }; }
    tree = fromJson(rule);
    draw();
    sync();
    root.addEventListener("change", onInput);
    root.addEventListener("input", onInput);
    root.addEventListener("click", onClick);
    document.body.addEventListener("htmx:afterSwap", onSwap);
    document.body.addEventListener("htmx:configRequest", onConfigRequest);
    var initial = document.getElementById("rule-error-data");
    var data = initial ? JSON.parse(initial.textContent) : null;
    if (data && data.message) { showError(data.node, data.message); }
    preview();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
