// The shopfuse dashboard: a single page on the JSON API under /api/v1.
//
// Vocabulary: a *page* is one entry of PAGES (its hash route, the role it needs, and an async
// render that returns DOM); a *chart* is an ECharts option queued while a page renders and
// drawn once the page is in the document (ECharts needs the element's size). Every figure
// comes from the API with the signed-in key; the UI hides what the role may not see, and the
// API refuses it anyway. Text from the API is only ever set as text, never parsed as HTML.
"use strict";
(() => {
  const ROLES = { viewer: 0, analyst: 1, admin: 2 };
  const PLATFORM_COLORS = { taobao: "#ff6a00", jd: "#e1251b", amazon: "#f0a500", own_shop: "#1a7f37" };
  const S = {
    key: sessionStorage.getItem("shopfuse.key"),
    lang: localStorage.getItem("shopfuse.lang") || ((navigator.language || "").startsWith("zh") ? "zh" : "en"),
    me: null,
    charts: [],
    pending: [],
    cleanup: [],
    renderSeq: 0,
  };

  // ---- words, numbers, dates ------------------------------------------------------------
  const t = (key, params) => {
    let s = (window.I18N[S.lang] || {})[key] ?? window.I18N.en[key] ?? key;
    for (const [p, v] of Object.entries(params || {})) s = s.split(`{${p}}`).join(String(v));
    return s;
  };
  const locale = () => (S.lang === "zh" ? "zh-CN" : "en-US");
  const base = () => (S.me && S.me.base_currency) || "CNY";
  const money = (v, currency) => {
    if (v == null || Number.isNaN(v)) return "–";
    try {
      return new Intl.NumberFormat(locale(), { style: "currency", currency: currency || base(), maximumFractionDigits: 2 }).format(v);
    } catch (_) {
      return `${num(v, 2)} ${currency || ""}`;
    }
  };
  const num = (v, digits = 0) => (v == null ? "–" : new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(v));
  const pct = (v) => (v == null ? "–" : new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(v));
  // Days (YYYY-MM-DD) are calendar days of the project's time zone: formatted as such, in UTC.
  const day = (s) => (s ? new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeZone: "UTC" }).format(new Date(`${s.slice(0, 10)}T00:00:00Z`)) : "–");
  const when = (s) => (s ? new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(s)) : "–");

  // ---- DOM -------------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const card = (title, ...body) => h("section", { class: "card" }, title ? h("h2", null, title) : null, ...body);
  const stat = (label, value) => h("div", { class: "stat" }, h("b", null, value), h("span", null, label));
  const pill = (platform) => h("span", { class: `pill ${platform}` }, platform);
  const link = (href, text) => h("a", { href }, text);
  const errorBox = (e) => h("div", { class: "error", role: "alert" }, t("common.error", { message: e.message || e }));

  function table(columns, rows, empty) {
    if (!rows.length) return h("p", { class: "muted" }, empty || t("common.none"));
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        null,
        h("thead", null, h("tr", null, columns.map((c) => h("th", { class: c.num ? "num" : null }, c.label)))),
        h("tbody", null, rows.map((r) => h("tr", null, columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(r))))))
      )
    );
  }

  // Server-side paging: `load(offset)` fetches one page; the pager re-renders only its box.
  function pagedTable(columns, load, pageSize = 25) {
    const box = h("div", null, h("p", { class: "loading" }, t("common.loading")));
    const show = async (offset) => {
      try {
        const page = await load(offset, pageSize);
        const to = Math.min(offset + page.items.length, page.total);
        box.replaceChildren(
          table(columns, page.items),
          page.total > pageSize
            ? h(
                "div",
                { class: "pager" },
                h("button", { class: "ghost", disabled: offset === 0, onclick: () => show(Math.max(0, offset - pageSize)) }, t("common.prev")),
                h("span", { class: "muted" }, t("common.page", { from: page.total ? offset + 1 : 0, to, total: page.total })),
                h("button", { class: "ghost", disabled: to >= page.total, onclick: () => show(offset + pageSize) }, t("common.next"))
              )
            : null
        );
      } catch (e) {
        box.replaceChildren(errorBox(e));
      }
    };
    show(0);
    return box;
  }

  // ---- charts ----------------------------------------------------------------------------
  function chart(option, cls = "chart") {
    const el = h("div", { class: cls, "data-chart": "1" });
    S.pending.push({ el, option: { animation: false, textStyle: { fontFamily: "inherit" }, ...option } });
    return el;
  }
  function drawCharts() {
    for (const { el, option } of S.pending.splice(0)) {
      const c = window.echarts.init(el, null, { renderer: "canvas", locale: S.lang === "zh" ? "ZH" : "EN" });
      c.setOption(option);
      S.charts.push(c);
    }
  }
  function disposeCharts() {
    S.charts.splice(0).forEach((c) => c.dispose());
    S.pending = [];
  }
  window.addEventListener("resize", () => S.charts.forEach((c) => c.resize()));
  const color = (key, i) => PLATFORM_COLORS[key] || ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"][i % 9];

  // ---- API -------------------------------------------------------------------------------
  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${S.key}` };
    if (options.body) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { ...options, headers });
    const body = await response.json().catch(() => null);
    if (response.status === 401) {
      signOut();
      throw new Error(t("login.bad"));
    }
    if (!response.ok) {
      const e = new Error((body && body.error && body.error.message) || response.statusText);
      e.status = response.status;
      throw e;
    }
    return body;
  }
  const query = (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : "";
  };
  const can = (role) => S.me && ROLES[S.me.role] >= ROLES[role];

  // ---- sign-in and chrome ----------------------------------------------------------------
  function signOut() {
    sessionStorage.removeItem("shopfuse.key");
    S.key = null;
    S.me = null;
  }

  function renderLogin(message) {
    const input = h("input", { type: "password", id: "api-key", autocomplete: "off", "aria-label": t("login.key") });
    const form = h(
      "form",
      {
        class: "card login",
        onsubmit: async (ev) => {
          ev.preventDefault();
          S.key = input.value.trim();
          try {
            S.me = await api("/api/v1/whoami");
            sessionStorage.setItem("shopfuse.key", S.key);
            route();
          } catch (e) {
            signOut();
            renderLogin(t("login.bad"));
          }
        },
      },
      h("h1", null, t("login.title")),
      h("label", { for: "api-key" }, t("login.key")),
      input,
      h("button", { type: "submit", id: "sign-in" }, t("login.go")),
      h("p", { class: "muted" }, t("login.help")),
      message ? h("div", { class: "error" }, message) : null
    );
    renderChrome();
    document.getElementById("main").replaceChildren(form);
    markReady("login");
  }

  function renderChrome() {
    const nav = document.getElementById("nav");
    const current = (location.hash.slice(2).split(/[/?]/)[0] || "overview").replace(/^(product|quarantine)$/, (m) => ({ product: "catalogue", quarantine: "overview" })[m]).replace(/^customer$/, "customers");
    nav.replaceChildren(
      ...(S.me
        ? Object.entries(PAGES)
            .filter(([, p]) => p.nav && can(p.role || "viewer"))
            .map(([id, p]) => h("a", { href: `#/${id}`, id: `nav-${id}`, class: id === current ? "active" : null }, t(p.nav)))
        : [])
    );
    document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
    document.title = t("app.title");
    document.getElementById("lang").textContent = t("lang.switch");
    const who = document.getElementById("who");
    who.textContent = S.me ? `${S.me.name} · ${t(`role.${S.me.role}`)} · ${S.me.project} v${S.me.version}` : "";
    const out = document.getElementById("signout");
    out.hidden = !S.me;
    out.textContent = t("signout");
  }

  function markReady(page) {
    document.body.dataset.page = page;
    document.body.dataset.ready = String(S.renderSeq);
  }

  // ---- router ----------------------------------------------------------------------------
  async function route() {
    const seq = ++S.renderSeq;
    delete document.body.dataset.ready;
    S.cleanup.splice(0).forEach((f) => f());
    disposeCharts();
    if (!S.key) return renderLogin();
    if (!S.me) {
      try {
        S.me = await api("/api/v1/whoami");
      } catch (e) {
        return renderLogin();
      }
    }
    const [path, qs] = location.hash.slice(1).split("?");
    const parts = path.split("/").filter(Boolean);
    const id = PAGES[parts[0]] ? parts[0] : "overview";
    const page = PAGES[id];
    renderChrome();
    const main = document.getElementById("main");
    main.replaceChildren(h("p", { class: "loading" }, t("common.loading")));
    let node;
    if (!can(page.role || "viewer")) {
      node = h("div", { class: "error", id: "forbidden", role: "alert" }, t("common.forbidden", { role: t(`role.${S.me.role}`) }));
    } else {
      try {
        node = await page.render(parts.slice(1).map(decodeURIComponent), new URLSearchParams(qs || ""));
      } catch (e) {
        node = errorBox(e);
      }
    }
    if (seq !== S.renderSeq) return; // a newer navigation won
    main.replaceChildren(node);
    drawCharts();
    markReady(id);
  }

  // ---- Overview --------------------------------------------------------------------------
  async function overview() {
    const [ready, quality, quarantine, evaluations] = await Promise.all([
      api("/api/v1/ready"),
      api("/api/v1/reports/quality").catch(() => ({ sources: [] })),
      api("/api/v1/reports/quarantine"),
      api("/api/v1/reports/evaluations"),
    ]);
    const sources = quality.sources || [];
    const byReason = {};
    for (const g of quarantine.groups) byReason[g.reason] = (byReason[g.reason] || 0) + g.rows;
    const stages = Object.entries(evaluations.stages).filter(([, s]) => s.seconds != null);
    const fields = sources
      .flatMap((s) => s.fields.map((f) => ({ ...f, kind: s.kind })))
      .filter((f) => f.nulls || f.invalid || f.imputed)
      .sort((a, b) => b.null_share - a.null_share || b.invalid - a.invalid)
      .slice(0, 40);
    return h(
      "div",
      null,
      h("h1", null, t("overview.title")),
      h(
        "div",
        { class: "stats" },
        stat(t("overview.version"), `v${ready.version}`),
        stat(t("overview.committed"), when(evaluations.committed_at || ready.committed_at)),
        stat(t("overview.products"), num(ready.products)),
        stat(t("overview.customers"), num(ready.customers))
      ),
      card(
        t("overview.sources"),
        table(
          [
            { label: t("overview.source"), cell: (s) => s.source },
            { label: t("common.platform"), cell: (s) => pill(s.platform) },
            { label: t("overview.kind"), cell: (s) => s.kind },
            { label: t("overview.read"), num: true, cell: (s) => num(s.rows_read) },
            { label: t("overview.accepted"), num: true, cell: (s) => num(s.rows_accepted) },
            { label: t("overview.quarantined"), num: true, cell: (s) => (s.rows_quarantined && can("analyst") ? link(`#/quarantine${query({ source: s.source })}`, num(s.rows_quarantined)) : num(s.rows_quarantined)) },
            { label: t("overview.duplicates"), num: true, cell: (s) => num(s.duplicates_removed) },
            { label: t("overview.outliers"), num: true, cell: (s) => num(s.outliers) },
            { label: t("overview.balanced"), cell: (s) => (s.rows_read === s.rows_accepted + s.rows_quarantined ? h("span", { class: "good" }, "✓") : h("span", { class: "bad" }, "✗")) },
          ],
          sources
        )
      ),
      h(
        "div",
        { class: "grid", style: "margin-top:14px" },
        card(
          t("overview.byReason"),
          chart(
            {
              tooltip: {},
              grid: { left: 120, right: 20, top: 10, bottom: 30 },
              xAxis: { type: "value" },
              yAxis: { type: "category", data: Object.keys(byReason) },
              series: [{ type: "bar", data: Object.values(byReason), itemStyle: { color: "#c8372d" }, name: t("overview.rows") }],
            },
            "chart small"
          ),
          table(
            [
              { label: t("overview.source"), cell: (g) => g.source },
              { label: t("overview.kind"), cell: (g) => g.kind },
              { label: t("overview.reason"), cell: (g) => g.reason },
              { label: t("overview.rows"), num: true, cell: (g) => num(g.rows) },
              { label: "", cell: (g) => (can("analyst") ? link(`#/quarantine${query({ source: g.source, reason: g.reason })}`, t("overview.showRows")) : null) },
            ],
            quarantine.groups
          )
        ),
        card(
          t("overview.stages"),
          chart(
            {
              tooltip: {},
              grid: { left: 90, right: 30, top: 10, bottom: 30 },
              xAxis: { type: "value", name: t("overview.seconds") },
              yAxis: { type: "category", data: stages.map(([n]) => n), inverse: true },
              series: [{ type: "bar", name: t("overview.seconds"), data: stages.map(([, s]) => Number(s.seconds.toFixed(2))), itemStyle: { color: "#1f6feb" } }],
            },
            "chart small"
          ),
          table(
            [
              { label: t("overview.stage"), cell: ([n]) => n },
              { label: "v", num: true, cell: ([, s]) => s.version },
              { label: t("overview.seconds"), num: true, cell: ([, s]) => num(s.seconds, 2) },
            ],
            stages
          )
        )
      ),
      h(
        "div",
        { style: "margin-top:14px" },
        card(
          t("overview.fields"),
          table(
            [
              { label: t("overview.source"), cell: (f) => f.source },
              { label: t("overview.field"), cell: (f) => f.field },
              { label: t("overview.nulls"), num: true, cell: (f) => `${num(f.nulls)} (${pct(f.null_share)})` },
              { label: t("overview.invalid"), num: true, cell: (f) => num(f.invalid) },
              { label: t("overview.imputed"), num: true, cell: (f) => num(f.imputed) },
            ],
            fields
          )
        )
      )
    );
  }

  // ---- Risk ------------------------------------------------------------------------------
  const score = (v) => num(v, 1);
  const ringLink = (id) => (id ? link(`#/ring/${encodeURIComponent(id)}`, id) : "–");
  const customerLink = (id) => (id ? link(`#/customer/${encodeURIComponent(id)}`, id) : "–");

  async function risk() {
    const top = await api("/api/v1/risk?top=30");
    const cross = top.rings.filter((r) => r.kind === "cross-platform").length;
    return h(
      "div",
      null,
      h("h1", null, t("nav.risk")),
      card(null, h("div", { class: "stats" }, stat(t("risk.rings"), num(top.rings.length)), stat(t("risk.crossPlatform"), num(cross)))),
      h(
        "div",
        { id: "risk-rings" },
        card(
          t("risk.rings"),
          table(
            [
              { label: "ID", cell: (r) => ringLink(r.ring_id) },
              { label: t("risk.kind"), cell: (r) => t(`risk.kind.${r.kind}`) },
              { label: t("catalogue.platforms"), cell: (r) => (r.platforms || "").split(";").filter(Boolean).map(pill) },
              { label: t("risk.members"), num: true, cell: (r) => r.members },
              { label: t("risk.density"), num: true, cell: (r) => num(r.density, 2) },
              { label: t("risk.evidence"), cell: (r) => r.evidence },
            ],
            top.rings
          )
        )
      ),
      card(
        t("risk.orders"),
        table(
          [
            { label: t("common.platform"), cell: (o) => pill(o.platform) },
            { label: t("risk.order"), cell: (o) => o.order_id },
            { label: t("risk.customer"), cell: (o) => customerLink(o.customer_id) },
            { label: t("risk.score"), num: true, cell: (o) => score(o.score) },
            { label: t("risk.reasons"), cell: (o) => o.reasons },
            { label: t("risk.ring"), cell: (o) => ringLink(o.ring_id) },
          ],
          top.orders
        )
      ),
      card(
        t("risk.reviews"),
        table(
          [
            { label: t("common.platform"), cell: (r) => pill(r.platform) },
            { label: t("risk.review"), cell: (r) => r.review_id },
            { label: t("risk.score"), num: true, cell: (r) => score(r.score) },
            { label: t("risk.reasons"), cell: (r) => r.reasons },
          ],
          top.reviews
        )
      )
    );
  }

  async function ring([id]) {
    const v = await api(`/api/v1/risk/rings/${encodeURIComponent(id)}`);
    const r = v.ring;
    return h(
      "div",
      null,
      h("h1", null, `${t("risk.ring")} ${r.ring_id}`),
      card(
        null,
        h("p", { id: "ring-evidence" }, r.evidence),
        h("div", { class: "stats" }, stat(t("risk.members"), num(r.members)), stat(t("risk.density"), num(r.density, 2)), stat(t("common.orders"), num(r.orders))),
        h("p", { class: "muted" }, `${t("risk.listings")}: ${r.listings}`)
      ),
      card(
        t("risk.accounts"),
        table(
          [
            { label: t("common.platform"), cell: (a) => pill(a.platform) },
            { label: t("risk.account"), cell: (a) => a.account_id },
            { label: t("risk.customer"), cell: (a) => customerLink(a.customer_id) },
            { label: t("common.orders"), num: true, cell: (a) => a.orders },
            { label: t("risk.score"), num: true, cell: (a) => score(a.score) },
          ],
          v.accounts
        )
      ),
      card(
        t("risk.orders"),
        table(
          [
            { label: t("common.platform"), cell: (o) => pill(o.platform) },
            { label: t("risk.order"), cell: (o) => o.order_id },
            { label: t("risk.score"), num: true, cell: (o) => score(o.score) },
            { label: t("risk.reasons"), cell: (o) => o.reasons },
          ],
          v.orders.slice(0, 100)
        )
      )
    );
  }

  async function quarantineRows(_, params) {
    const filters = { source: params.get("source"), reason: params.get("reason"), kind: params.get("kind") };
    return h(
      "div",
      null,
      h("h1", null, t("quarantine.title")),
      h("p", { class: "muted" }, Object.entries(filters).filter(([, v]) => v).map(([k, v]) => `${k} = ${v}`).join(" · ")),
      card(
        null,
        pagedTable(
          [
            { label: t("overview.source"), cell: (r) => r.source },
            { label: t("quarantine.file"), cell: (r) => r.file },
            { label: t("quarantine.row"), num: true, cell: (r) => r.row },
            { label: t("overview.field"), cell: (r) => r.field || "–" },
            { label: t("overview.reason"), cell: (r) => r.reason },
            { label: t("quarantine.message"), cell: (r) => r.message },
            { label: t("quarantine.raw"), cell: (r) => h("code", null, r.raw) },
          ],
          async (offset, limit) => {
            const page = await api(`/api/v1/reports/quarantine/rows${query({ ...filters, offset, limit })}`);
            return { total: page.total, items: page.rows };
          }
        )
      )
    );
  }

  // ---- Sales -----------------------------------------------------------------------------
  // The periods holding 618 and Double 11, in the grain's own labels.
  function promotionPeriods(periods, grain) {
    const marks = [];
    const years = new Set(periods.map((p) => p.slice(0, 4)));
    for (const y of years) {
      for (const [md, name] of [["06-18", "618"], ["11-11", S.lang === "zh" ? "双十一" : "Double 11"]]) {
        const target = `${y}-${md}`;
        let label;
        if (grain === "day") label = target;
        else if (grain === "month") label = `${target.slice(0, 7)}-01`;
        else {
          const d = new Date(`${target}T00:00:00Z`);
          d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
          label = d.toISOString().slice(0, 10);
        }
        if (periods.includes(label)) marks.push({ xAxis: label, name, label: { formatter: name } });
      }
    }
    return marks;
  }

  function salesChart(report, measure) {
    const periods = [...new Set(report.points.map((p) => p.period))].sort();
    const keys = [...new Set(report.points.map((p) => p.key ?? "–"))];
    const at = new Map(report.points.map((p) => [`${p.period}|${p.key ?? "–"}`, p[measure]]));
    const marks = promotionPeriods(periods, report.grain);
    return chart({
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { left: 70, right: 20, top: 40, bottom: 60 },
      dataZoom: [{ type: "slider", bottom: 10 }],
      xAxis: { type: "category", data: periods },
      yAxis: { type: "value" },
      series: keys.map((k, i) => ({
        name: k,
        type: report.grain === "day" ? "line" : "bar",
        stack: "sales",
        showSymbol: false,
        areaStyle: report.grain === "day" ? { opacity: 0.25 } : undefined,
        itemStyle: { color: color(k, i) },
        data: periods.map((p) => at.get(`${p}|${k}`) || 0),
        markLine: i === 0 && marks.length ? { symbol: "none", lineStyle: { color: "#c8372d", type: "dashed" }, data: marks } : undefined,
      })),
    });
  }

  async function forecastCard(platform) {
    const level = platform ? "platform" : "total";
    let fc;
    try {
      fc = await api(`/api/v1/forecasts${query({ level, key: platform })}`);
    } catch (e) {
      if (e.status === 404) return h("p", { class: "muted" }, t("sales.noForecast"));
      throw e;
    }
    const first = new Date(`${fc.points[0].day}T00:00:00Z`);
    const from = new Date(first.getTime() - 90 * 86400000).toISOString().slice(0, 10);
    const to = new Date(first.getTime() - 86400000).toISOString().slice(0, 10);
    const history = await api(`/api/v1/reports/sales${query({ grain: "day", by: platform ? "platform" : "total", from, to })}`);
    const actual = new Map(history.points.filter((p) => !platform || p.key === platform).map((p) => [p.period, p.units]));
    const days = [];
    for (let d = new Date(`${from}T00:00:00Z`); d <= first; d = new Date(d.getTime() + 86400000)) days.push(d.toISOString().slice(0, 10));
    const all = [...days.slice(0, -1), ...fc.points.map((p) => p.day)];
    const ahead = new Map(fc.points.map((p) => [p.day, p]));
    return chart({
      tooltip: { trigger: "axis" },
      legend: { top: 0, data: [t("sales.actual"), t("sales.p50"), t("sales.band")] },
      grid: { left: 60, right: 20, top: 40, bottom: 30 },
      xAxis: { type: "category", data: all },
      yAxis: { type: "value", name: t("common.units") },
      series: [
        { name: t("sales.actual"), type: "line", showSymbol: false, data: all.map((d) => (ahead.has(d) ? null : actual.get(d) || 0)), itemStyle: { color: "#1d2430" } },
        { name: "p10", type: "line", stack: "band", symbol: "none", lineStyle: { opacity: 0 }, data: all.map((d) => (ahead.has(d) ? ahead.get(d).p10 : null)), tooltip: { show: false } },
        { name: t("sales.band"), type: "line", stack: "band", symbol: "none", lineStyle: { opacity: 0 }, areaStyle: { color: "rgba(31,111,235,0.2)" }, data: all.map((d) => (ahead.has(d) ? ahead.get(d).p90 - ahead.get(d).p10 : null)) },
        { name: t("sales.p50"), type: "line", showSymbol: false, data: all.map((d) => (ahead.has(d) ? ahead.get(d).forecast : null)), itemStyle: { color: "#1f6feb" }, lineStyle: { type: "dashed" } },
      ],
    });
  }

  async function sales(_, params) {
    const grain = params.get("grain") || "day";
    const by = params.get("by") || "platform";
    const platform = params.get("platform") || "";
    const [report, forecast] = await Promise.all([api(`/api/v1/reports/sales${query({ grain, by })}`), forecastCard(platform)]);
    const go = (change) => {
      const next = { grain, by, platform, ...change };
      location.hash = `#/sales${query(next)}`;
    };
    const select = (id, value, options, onchange) =>
      h("select", { id, onchange: (e) => onchange(e.target.value) }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
    const byLabel = t(by === "total" ? "sales.total" : `common.${by}`);
    return h(
      "div",
      null,
      h("h1", null, t("sales.title")),
      h(
        "div",
        { class: "filters" },
        h("label", null, t("sales.grain")),
        select("sales-grain", grain, ["day", "week", "month"].map((g) => [g, t(`sales.${g}`)]), (v) => go({ grain: v })),
        h("label", null, t("sales.by")),
        select("sales-by", by, [["platform", t("common.platform")], ["category", t("common.category")], ["total", t("sales.total")]], (v) => go({ by: v })),
        h("span", { class: "muted" }, `${t("sales.promo")} · ${report.timezone} · ${report.base_currency}`)
      ),
      h("div", { class: "grid" }, card(t("sales.revenueBy", { by: byLabel }), salesChart(report, "revenue_base")), card(t("sales.ordersBy", { by: byLabel }), salesChart(report, "orders"))),
      h(
        "div",
        { style: "margin-top:14px" },
        card(
          t("sales.forecast"),
          h(
            "div",
            { class: "filters" },
            h("label", null, t("sales.series")),
            select("forecast-series", platform, [["", t("sales.total")], ...(S.me.platforms || []).map((p) => [p, p])], (v) => go({ platform: v }))
          ),
          forecast
        )
      )
    );
  }

  // ---- Catalogue -------------------------------------------------------------------------
  async function catalogue(_, params) {
    const facets = await api("/api/v1/products/facets");
    const f = {
      q: params.get("q") || "",
      brand: params.get("brand") || "",
      category: params.get("category") || "",
      platform: params.get("platform") || "",
      min_price: params.get("min_price") || "",
      max_price: params.get("max_price") || "",
    };
    const input = (name, placeholder, type = "text") => h("input", { name, id: `filter-${name}`, type, placeholder, value: f[name] });
    const choose = (name, label, values) =>
      h("select", { name, id: `filter-${name}`, "aria-label": label }, h("option", { value: "" }, `${label}: ${t("common.all")}`), values.map((v) => h("option", { value: v.value, selected: v.value === f[name] }, `${v.value} (${v.products})`)));
    const form = h(
      "form",
      {
        class: "filters",
        onsubmit: (ev) => {
          ev.preventDefault();
          const data = Object.fromEntries(new FormData(ev.target).entries());
          location.hash = `#/catalogue${query(data)}`;
        },
      },
      input("q", t("catalogue.query"), "search"),
      choose("brand", t("common.brand"), facets.brands),
      choose("category", t("common.category"), facets.categories),
      choose("platform", t("common.platform"), facets.platforms),
      input("min_price", `${t("catalogue.minPrice")} (${base()})`, "number"),
      input("max_price", `${t("catalogue.maxPrice")} (${base()})`, "number"),
      h("button", { type: "submit", id: "catalogue-search" }, t("common.search"))
    );
    return h(
      "div",
      null,
      h("h1", null, t("catalogue.title")),
      form,
      card(
        null,
        pagedTable(
          [
            { label: t("common.title"), cell: (p) => link(`#/product/${encodeURIComponent(p.golden_id)}`, p.title || p.golden_id) },
            { label: t("common.brand"), cell: (p) => p.brand || "–" },
            { label: t("common.category"), cell: (p) => p.category || "–" },
            { label: t("catalogue.platforms"), cell: (p) => p.platforms.map(pill) },
            { label: t("catalogue.listings"), num: true, cell: (p) => p.listings },
            { label: t("catalogue.median"), num: true, cell: (p) => money(p.price_base) },
            { label: t("catalogue.range"), num: true, cell: (p) => (p.min_price_base != null && p.max_price_base !== p.min_price_base ? `${money(p.min_price_base)} – ${money(p.max_price_base)}` : "") },
          ],
          (offset, limit) => api(`/api/v1/products${query({ ...f, offset, limit })}`)
        )
      )
    );
  }

  async function product([id]) {
    const [p, prices, similar, sentiment] = await Promise.all([
      api(`/api/v1/products/${encodeURIComponent(id)}`),
      api(`/api/v1/products/${encodeURIComponent(id)}/prices`),
      api(`/api/v1/products/${encodeURIComponent(id)}/similar?k=6`),
      // No reviews (404) or no sentiment stage yet (409): the page shows the rest.
      api(`/api/v1/products/${encodeURIComponent(id)}/sentiment?examples=5`).catch((e) => (e.status === 404 || e.status === 409 ? null : Promise.reject(e))),
    ]);
    const priced = p.offers.filter((o) => o.price_base != null);
    const cheapest = priced.length ? Math.min(...priced.map((o) => o.price_base)) : null;
    const offer = (o) => {
      const gap = cheapest && o.price_base != null ? o.price_base / cheapest - 1 : null;
      return h(
        "div",
        { class: `offer${gap === 0 ? " cheapest" : ""}`, "data-platform": o.platform },
        h("div", null, pill(o.platform), " ", h("span", { class: "muted" }, o.listing_id)),
        h("p", { lang: /[\u4e00-\u9fff]/.test(o.title) ? "zh" : "en" }, o.title),
        h("div", { class: "price" }, money(o.price, o.currency || base())),
        o.currency && o.currency !== base() && o.price_base != null ? h("div", { class: "muted" }, `≈ ${money(o.price_base, base())}`) : null,
        h("div", { class: gap ? "bad" : "good" }, gap == null ? "" : gap === 0 ? t("product.cheapest") : t("product.gap", { gap: pct(gap) })),
        h("div", { class: "muted" }, `${t("common.stock")}: ${o.stock ?? "–"}`),
        o.url ? h("a", { href: o.url, rel: "noopener noreferrer", target: "_blank" }, t("product.open")) : null
      );
    };
    const weeks = [...new Set(prices.history.map((r) => r.week))].sort();
    const platforms = [...new Set(prices.history.map((r) => r.platform))];
    const priceAt = new Map(prices.history.map((r) => [`${r.week}|${r.platform}`, r.price_base]));
    const facts = [
      [t("common.brand"), p.brand],
      [t("common.category"), p.category],
      [t("product.model"), p.model_code],
      [t("product.color"), p.color],
      [t("product.capacity"), p.capacity],
      [t("product.gtin"), p.gtin],
    ].filter(([, v]) => v);
    return h(
      "div",
      null,
      h("h1", { id: "product-title" }, p.title || p.golden_id),
      h("p", { class: "muted" }, `${p.golden_id} · `, facts.map(([k, v]) => `${k}: ${v}`).join(" · ")),
      card(t("product.offers"), h("div", { class: "offers" }, p.offers.map(offer))),
      h(
        "div",
        { class: "grid", style: "margin-top:14px" },
        card(
          t("product.prices"),
          weeks.length
            ? chart({
                tooltip: { trigger: "axis" },
                legend: { top: 0 },
                grid: { left: 70, right: 20, top: 40, bottom: 30 },
                xAxis: { type: "category", data: weeks },
                yAxis: { type: "value", scale: true, name: base() },
                series: platforms.map((pl, i) => ({ name: pl, type: "line", step: "end", showSymbol: false, connectNulls: true, itemStyle: { color: color(pl, i) }, data: weeks.map((w) => priceAt.get(`${w}|${pl}`) ?? null) })),
              })
            : h("p", { class: "muted" }, t("common.none")),
          h("h2", { style: "margin-top:10px" }, t("product.alerts")),
          table(
            [
              { label: t("product.day"), cell: (a) => day(a.day) },
              { label: t("common.platform"), cell: (a) => pill(a.platform) },
              { label: t("product.kind"), cell: (a) => a.kind },
              { label: t("common.price"), num: true, cell: (a) => money(a.price_base) },
              { label: t("product.change"), num: true, cell: (a) => pct(a.change) },
            ],
            prices.alerts
          )
        ),
        card(
          t("product.why"),
          p.cohesion != null ? h("p", null, t("product.cohesion", { p: num(p.cohesion, 3) })) : null,
          h("div", { class: "drivers", id: "match-drivers" }, (p.merges || "–").split(" | ").join("\n"))
        )
      ),
      sentimentCard(sentiment),
      h(
        "div",
        { class: "grid", style: "margin-top:14px" },
        card(
          t("product.fields"),
          table(
            [
              { label: t("product.field"), cell: (s) => s.field },
              { label: t("product.value"), cell: (s) => s.value ?? "–" },
              { label: t("product.rule"), cell: (s) => s.rule },
              { label: t("product.source"), cell: (s) => [pill(s.platform), " ", s.listing_id] },
            ],
            p.provenance
          )
        ),
        card(
          t("product.similar"),
          table(
            [
              { label: t("common.title"), cell: (s) => link(`#/product/${encodeURIComponent(s.golden_id)}`, s.title || s.golden_id) },
              { label: t("catalogue.median"), num: true, cell: (s) => money(s.price_base) },
              { label: t("customer.why"), cell: (s) => s.reason },
            ],
            similar.items
          )
        )
      )
    );
  }

  // Review sentiment of one product: negative share per month, per aspect, alerts, and the
  // most negative reviews (from the sentiment stage's tables).
  function sentimentCard(r) {
    if (!r) return h("div", { style: "margin-top:14px" }, card(t("sentiment.title"), h("p", { class: "muted" }, t("common.none"))));
    const months = Object.keys(r.months).sort();
    const aspects = Object.entries(r.aspects).sort((a, b) => b[1].negative_share - a[1].negative_share);
    const when = (us) => (us == null ? "–" : day(new Date(us / 1000).toISOString()));
    return h(
      "div",
      { class: "grid", style: "margin-top:14px", id: "product-sentiment" },
      card(
        t("sentiment.title"),
        h("p", null, t("sentiment.summary", { n: r.overall.total, neg: pct(r.overall.negative_share), stars: r.overall.mean_rating != null ? num(r.overall.mean_rating, 2) : "–", mismatch: r.rating_mismatches })),
        chart(
          {
            tooltip: { trigger: "axis" },
            legend: { top: 0 },
            grid: { left: 50, right: 50, top: 40, bottom: 30 },
            xAxis: { type: "category", data: months },
            yAxis: [{ type: "value", name: t("sentiment.reviews") }, { type: "value", name: t("sentiment.negShare"), max: 1, axisLabel: { formatter: (v) => `${Math.round(v * 100)}%` } }],
            series: [
              { name: t("sentiment.reviews"), type: "bar", data: months.map((m) => r.months[m].total), itemStyle: { color: "#91cc75" } },
              { name: t("sentiment.negShare"), type: "line", yAxisIndex: 1, data: months.map((m) => r.months[m].negative_share), itemStyle: { color: "#ee6666" } },
            ],
          },
          "chart small"
        ),
        table(
          [
            { label: t("sentiment.aspect"), cell: ([a]) => t(`aspect.${a}`) },
            { label: t("sentiment.clauses"), num: true, cell: ([, x]) => x.total },
            { label: t("sentiment.negShare"), num: true, cell: ([, x]) => h("span", { class: x.negative_share > 0.3 ? "bad" : "" }, pct(x.negative_share)) },
          ],
          aspects
        )
      ),
      card(
        t("sentiment.alerts"),
        table(
          [
            { label: t("sentiment.aspect"), cell: (a) => (a.aspect === "overall" ? t("sentiment.overall") : t(`aspect.${a.aspect}`)) },
            { label: t("sentiment.window"), cell: (a) => `${when(a.window_start)} → ${when(a.window_end)}` },
            { label: t("sentiment.negShare"), num: true, cell: (a) => `${pct(a.negative_share)} (${pct(a.baseline_share)})` },
            { label: t("common.platform"), cell: (a) => a.platforms },
          ],
          r.alerts
        ),
        h("h2", { style: "margin-top:10px" }, t("sentiment.worst")),
        table(
          [
            { label: t("common.platform"), cell: (v) => pill(v.platform) },
            { label: "★", num: true, cell: (v) => v.rating ?? "–" },
            { label: t("sentiment.text"), cell: (v) => h("span", { lang: /[\u4e00-\u9fff]/.test(v.text || "") ? "zh" : "en" }, v.text || "–") },
          ],
          r.most_negative
        )
      )
    );
  }

  // ---- Customers -------------------------------------------------------------------------
  function segmentChart(report) {
    return chart(
      {
        tooltip: {},
        grid: { left: 110, right: 30, top: 10, bottom: 30 },
        xAxis: { type: "value" },
        yAxis: { type: "category", data: report.groups.map((g) => g.group), inverse: true },
        series: [{ type: "bar", name: t("customers.customers"), data: report.groups.map((g) => Math.max(0, Math.round(g.customers))), itemStyle: { color: "#1f6feb" } }],
      },
      "chart small"
    );
  }

  async function customers(_, params) {
    const [segments, platformsUsed] = await Promise.all([api("/api/v1/reports/segments"), api("/api/v1/reports/segments?by=platforms")]);
    const note = segments.epsilon != null ? t("customers.dp", { eps: segments.epsilon }) : t("customers.exact");
    const filter = { segment: params.get("segment") || "", platform: params.get("platform") || "" };
    const listCard = can("analyst")
      ? card(
          t("customers.list"),
          h(
            "div",
            { class: "filters" },
            h(
              "select",
              { id: "customer-segment", onchange: (e) => (location.hash = `#/customers${query({ ...filter, segment: e.target.value })}`) },
              h("option", { value: "" }, `${t("customers.segment")}: ${t("common.all")}`),
              segments.groups.map((g) => h("option", { value: g.group, selected: g.group === filter.segment }, g.group))
            ),
            h(
              "select",
              { id: "customer-platform", onchange: (e) => (location.hash = `#/customers${query({ ...filter, platform: e.target.value })}`) },
              h("option", { value: "" }, `${t("common.platform")}: ${t("common.all")}`),
              (S.me.platforms || []).map((p) => h("option", { value: p, selected: p === filter.platform }, p))
            )
          ),
          pagedTable(
            [
              { label: "ID", cell: (c) => link(`#/customer/${encodeURIComponent(c.customer_id)}`, c.customer_id) },
              { label: t("catalogue.platforms"), cell: (c) => c.platforms.map(pill) },
              { label: t("customers.accounts"), num: true, cell: (c) => c.accounts },
              { label: t("common.orders"), num: true, cell: (c) => c.orders },
              { label: t("customers.spend"), num: true, cell: (c) => money(c.monetary_base) },
              { label: t("customers.segment"), cell: (c) => c.segment },
              { label: t("customers.city"), cell: (c) => c.city || "–" },
              { label: t("customers.lastSeen"), cell: (c) => when(c.last_seen) },
            ],
            (offset, limit) => api(`/api/v1/customers${query({ ...filter, offset, limit })}`)
          )
        )
      : null;
    return h(
      "div",
      null,
      h("h1", null, t("customers.title")),
      h("p", { class: "muted", id: "dp-note" }, note),
      h("div", { class: "grid" }, card(t("customers.segments"), segmentChart(segments)), card(t("customers.platformsUsed"), segmentChart(platformsUsed))),
      listCard ? h("div", { style: "margin-top:14px" }, listCard) : null
    );
  }

  // "mobile phones 0.62, earphones 0.38" → [[name, share], …]
  const interests = (text) =>
    (text || "")
      .split(",")
      .map((s) => s.trim().match(/^(.*)\s+([\d.]+)$/))
      .filter(Boolean)
      .map((m) => [m[1], Number(m[2])]);

  async function customer([id]) {
    const enc = encodeURIComponent(id);
    const [c, recs, propensity] = await Promise.all([
      api(`/api/v1/customers/${enc}`),
      api(`/api/v1/customers/${enc}/recommendations?k=8`),
      api(`/api/v1/customers/${enc}/propensity`).catch(() => null),
    ]);
    const topics = interests(c.top_categories);
    return h(
      "div",
      null,
      h("h1", { id: "customer-title" }, c.customer_id),
      h("p", null, c.platforms.map(pill), " ", h("span", { class: "muted" }, `${t("customers.segment")}: ${c.segment} · ${t("customers.city")}: ${c.city || "–"}`)),
      h(
        "div",
        { class: "stats" },
        stat(t("customer.recency"), num(c.recency_days, 0)),
        stat(t("customer.frequency"), num(c.orders)),
        stat(t("customer.monetary"), money(c.monetary_base)),
        stat(t("customer.scores"), `${c.r_score ?? "–"} / ${c.f_score ?? "–"} / ${c.m_score ?? "–"}`),
        propensity ? stat(t("customer.pbuy"), pct(propensity.p_buy_30d)) : null,
        propensity ? stat(t("customer.pchurn"), pct(propensity.p_churn_90d)) : null,
        propensity ? stat(t("customer.spend90"), money(propensity.expected_spend_90d)) : null
      ),
      h(
        "div",
        { class: "grid" },
        card(
          t("customer.accounts"),
          table(
            [
              { label: t("common.platform"), cell: (a) => pill(a.platform) },
              { label: "ID", cell: (a) => a.account_id },
              { label: t("customers.city"), cell: (a) => a.city || "–" },
              { label: t("customer.registered"), cell: (a) => when(a.registered_at) },
            ],
            c.accounts
          ),
          h("h2", { style: "margin-top:10px" }, t("customer.links")),
          table(
            [
              { label: t("customer.link"), cell: (l) => `${l.left} ↔ ${l.right}` },
              { label: t("customer.p"), num: true, cell: (l) => num(l.match_probability, 3) },
              { label: t("customer.reason"), cell: (l) => `${l.link_type}: ${l.reason}` },
            ],
            c.links
          )
        ),
        card(
          t("customer.interests"),
          topics.length
            ? chart(
                {
                  tooltip: { trigger: "item" },
                  series: [{ type: "pie", radius: ["35%", "70%"], data: topics.map(([name, value]) => ({ name, value })), label: { formatter: "{b} {d}%" } }],
                },
                "chart small"
              )
            : h("p", { class: "muted" }, t("common.none")),
          propensity && propensity.drivers.length ? h("div", { class: "drivers" }, propensity.drivers.join("\n")) : null
        )
      ),
      h(
        "div",
        { class: "grid", style: "margin-top:14px" },
        card(
          t("customer.timeline"),
          pagedTable(
            [
              { label: t("customer.when"), cell: (e) => when(e.at) },
              { label: t("common.platform"), cell: (e) => pill(e.platform) },
              { label: t("customer.what"), cell: (e) => e.kind },
              { label: t("customer.product"), cell: (e) => (e.golden_id ? link(`#/product/${encodeURIComponent(e.golden_id)}`, e.title || e.golden_id) : e.listing_id) },
              { label: t("customer.amount"), num: true, cell: (e) => (e.amount_base != null ? money(e.amount_base) : "") },
              { label: t("customer.status"), cell: (e) => e.status || "" },
            ],
            async (offset, limit) => api(`/api/v1/customers/${enc}/timeline${query({ offset, limit })}`),
            15
          )
        ),
        card(
          t("customer.recs"),
          table(
            [
              { label: "#", num: true, cell: (r) => r.rank },
              { label: t("customer.product"), cell: (r) => link(`#/product/${encodeURIComponent(r.golden_id)}`, r.title) },
              { label: t("customer.why"), cell: (r) => r.reason },
            ],
            recs.items
          )
        )
      )
    );
  }

  // ---- Review queue ----------------------------------------------------------------------
  async function review() {
    const queue = await api("/api/v1/review/pairs?limit=20");
    const pairs = queue.pairs.slice();
    const box = h("div", { id: "review-pair" });
    const status = h("p", { class: "muted", id: "review-status", "aria-live": "polite" });
    let busy = false;
    const show = () => {
      if (!pairs.length) {
        box.replaceChildren(h("p", { class: "notice", id: "review-done" }, t("review.done")));
        return;
      }
      const p = pairs[0];
      box.dataset.left = `${p.left_platform}:${p.left_listing_id}`;
      box.dataset.right = `${p.right_platform}:${p.right_listing_id}`;
      const side = (platform, listing, title) => h("div", { class: "side" }, pill(platform), " ", h("span", { class: "muted" }, listing), h("p", null, title));
      box.replaceChildren(
        h("p", null, h("b", null, t("review.p", { p: num(p.match_probability, 3) })), " · ", h("span", { class: "muted" }, t("review.left", { n: pairs.length }))),
        h("div", { class: "pair" }, side(p.left_platform, p.left_listing_id, p.left_title), side(p.right_platform, p.right_listing_id, p.right_title)),
        h("h2", { style: "margin-top:12px" }, t("review.drivers")),
        h("div", { class: "drivers" }, p.drivers),
        h(
          "div",
          { class: "pager" },
          h("button", { id: "review-accept", onclick: () => decide(true) }, t("review.accept")),
          h("button", { id: "review-reject", class: "ghost", onclick: () => decide(false) }, t("review.reject")),
          h("button", { id: "review-skip", class: "ghost", onclick: () => decide(null) }, t("review.skip"))
        )
      );
    };
    const decide = async (same) => {
      if (busy || !pairs.length) return;
      const p = pairs.shift();
      if (same == null) {
        pairs.push(p);
        return show();
      }
      busy = true;
      try {
        const receipt = await api("/api/v1/review/decisions", {
          method: "POST",
          body: JSON.stringify({ decisions: [{ left_platform: p.left_platform, left_listing_id: p.left_listing_id, right_platform: p.right_platform, right_listing_id: p.right_listing_id, same_product: same }] }),
        });
        status.textContent = t("review.saved", { labels: receipt.labels, total: receipt.total_reviewed });
        status.dataset.saved = String(receipt.total_reviewed);
      } catch (e) {
        pairs.unshift(p);
        status.replaceChildren(errorBox(e));
      } finally {
        busy = false;
        show();
      }
    };
    const keys = (ev) => {
      if (ev.target instanceof HTMLInputElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const action = { a: true, r: false, s: null }[ev.key.toLowerCase()];
      if (action !== undefined) {
        ev.preventDefault();
        decide(action);
      }
    };
    document.addEventListener("keydown", keys);
    S.cleanup.push(() => document.removeEventListener("keydown", keys));
    show();
    return h("div", null, h("h1", null, t("review.title")), h("p", { class: "muted" }, t("review.help"), " ", h("span", { class: "keys" }, t("review.keys"))), card(null, box, status));
  }

  const PAGES = {
    overview: { nav: "nav.overview", render: overview },
    sales: { nav: "nav.sales", render: sales },
    catalogue: { nav: "nav.catalogue", render: catalogue },
    product: { render: product },
    customers: { nav: "nav.customers", render: customers },
    customer: { role: "analyst", render: customer },
    risk: { nav: "nav.risk", role: "analyst", render: risk },
    ring: { role: "analyst", render: ring },
    review: { nav: "nav.review", role: "admin", render: review },
    quarantine: { role: "analyst", render: quarantineRows },
  };

  document.getElementById("lang").addEventListener("click", () => {
    S.lang = S.lang === "zh" ? "en" : "zh";
    localStorage.setItem("shopfuse.lang", S.lang);
    route();
  });
  document.getElementById("signout").addEventListener("click", () => {
    signOut();
    location.hash = "#/overview";
    route();
  });
  window.addEventListener("hashchange", route);
  route();
})();
